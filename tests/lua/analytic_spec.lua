-- Infinite-width kernels: reference values (numpy closed forms and scipy
-- dblquad, tests/fixtures/train_reference.lua from
-- scripts/make_train_reference.py), layouts, Monte Carlo averages of
-- empirical kernels over many random networks, and bad input.
local ntk = require "ntk"
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local ref = dofile(root .. "/tests/fixtures/train_reference.lua")

local inputs = H.inputs

local function sizes_of(n0, width, depth, m)
  local s = {n0}
  for _ = 1, depth - 1 do s[#s + 1] = width end
  s[#s + 1] = m
  return s
end

-- Mean and standard error over seeds of net:ntk(X, trace, mean) (the
-- per-output kernel, which the analytic NTK is the limit of).
local function monte_carlo(spec, X, seeds, what)
  local N = X:rows()
  local sum, sq = ntk.zeros(N, N), ntk.zeros(N, N)
  for s = 1, seeds do
    spec.seed = 1000 + s
    local net = ntk.mlp(spec)
    local K
    if what == "nngp" then
      -- outputs are independent draws of the NNGP: average f_a(x) f_a(x')
      local F = net:forward(X)
      K = F:mm(F:T()) / F:cols()
    else
      K = net:ntk(X, {mode = "trace", normalize = "mean"})
    end
    sum = sum + K
    sq = sq + K:cmul(K)
  end
  spec.seed = nil
  local mean = sum / seeds
  local se = ntk.matrix(N, N)
  for i = 1, N do
    for j = 1, N do
      local v = sq:get(i, j) / seeds - mean:get(i, j) ^ 2
      se:set(i, j, math.sqrt(math.max(v, 0) / (seeds - 1)))
    end
  end
  return mean, se
end

-- Every entry within 4 standard errors plus a finite-width bias allowance
-- of `bias` (relative to the diagonal scale).
local function agrees(mean, se, K, bias)
  local scale = K:diag():max_abs()
  for i = 1, K:rows() do
    for j = 1, K:cols() do
      local d = math.abs(mean:get(i, j) - K:get(i, j))
      if d > 4 * se:get(i, j) + bias * scale then return false, i, j, d, se:get(i, j) end
    end
  end
  return true
end

describe("ntk.analytic", function()
  describe("against reference values (numpy, scipy dblquad)", function()
    for _, c in ipairs(ref.analytic) do
      it("agrees for " .. c.name, function()
        local a = ntk.analytic{sizes = c.sizes, activation = c.activation,
                               parameterization = c.parameterization,
                               weight_std = c.weight_std, bias_std = c.bias_std,
                               quad_tol = 1e-11}
        local X1, X2 = inputs(4, c.sizes[1], 0), inputs(3, c.sizes[1], 0.25)
        local nngp, k = a:kernels(X1)
        assert.is_true(H.rel(nngp, ntk.matrix(c.nngp)) < 1e-9)
        assert.is_true(H.rel(k, ntk.matrix(c.ntk)) < 1e-9)
        assert.is_true(H.rel(a:nngp(X1, X2), ntk.matrix(c.nngp12)) < 1e-9)
        assert.is_true(H.rel(a:ntk(X1, X2), ntk.matrix(c.ntk12)) < 1e-9)
      end)
    end
  end)

  it("matches Monte Carlo averages of empirical NTKs over random networks", function()
    local X = ntk.randn(6, 3, 5)
    for _, cfg in ipairs{{"relu", "ntk", 512, 3}, {"erf", "ntk", 512, 3},
                         {"tanh", "ntk", 512, 2}, {"relu", "standard", 256, 3}} do
      local spec = {sizes = sizes_of(3, cfg[3], cfg[4], 2), activation = cfg[1],
                    parameterization = cfg[2], weight_std = 1.4, bias_std = 0.3}
      local K = ntk.analytic(spec):ntk(X)
      local mean, se = monte_carlo(spec, X, 30)
      local ok, i, j, d, s = agrees(mean, se, K, 2 / cfg[3])
      assert.is_true(ok, string.format("%s/%s entry (%s, %s): off by %s, se %s",
                                       cfg[1], cfg[2], i, j, d, s))
      -- The test can fail: a kernel with another bias std is rejected.
      spec.bias_std = 0.6
      local wrong = ntk.analytic(spec):ntk(X)
      assert.is_false(agrees(mean, se, wrong, 2 / cfg[3]), cfg[1])
    end
  end)

  it("matches the covariance of network outputs over random networks (NNGP)", function()
    local X = ntk.randn(5, 4, 9)
    local spec = {sizes = {4, 256, 256, 64}, activation = "tanh", weight_std = 1.5, bias_std = 0.2}
    local G = ntk.analytic(spec):nngp(X)
    local mean, se = monte_carlo(spec, X, 20, "nngp")
    assert.is_true(agrees(mean, se, G, 2 / 256))
    spec.weight_std = 1.8
    assert.is_false(agrees(mean, se, ntk.analytic(spec):nngp(X), 2 / 256))
  end)

  it("is approached by the empirical NTK as width grows", function()
    local X = ntk.randn(8, 3, 17)
    local errs = {}
    for w, width in ipairs{16, 64, 256} do
      local spec = {sizes = {3, width, width, 1}, activation = "relu", weight_std = 1.4, bias_std = 0.2}
      local K = ntk.analytic(spec):ntk(X)
      local e = 0
      for s = 1, 6 do
        spec.seed = s
        e = e + (ntk.mlp(spec):ntk(X) - K):norm() / K:norm()
      end
      errs[w] = e / 6
    end
    assert.is_true(errs[1] > errs[2] and errs[2] > errs[3], table.concat(errs, " "))
    -- fluctuations fall like 1 / sqrt(width): a factor 4 over 16x the width
    assert.is_true(errs[1] / errs[3] > 2.5, table.concat(errs, " "))
  end)

  it("offers the m-output layouts of net:ntk", function()
    local a = ntk.analytic{depth = 3, outputs = 3, activation = "erf", bias_std = 0.4}
    assert.equal(3, a:output_dim())
    local X1, X2 = ntk.randn(4, 5, 1), ntk.randn(2, 5, 2)
    local K = a:ntk(X1, X2)
    assert.same({4, 2}, {K:shape()})
    local F = a:ntk(X1, X2, {mode = "full"})
    assert.same({12, 6}, {F:shape()})
    for i = 1, 4 do
      for j = 1, 2 do
        for p = 1, 3 do
          for q = 1, 3 do
            assert.equal(p == q and K:get(i, j) or 0, F:get((i - 1) * 3 + p, (j - 1) * 3 + q))
          end
        end
      end
    end
    assert.is_true(H.rel(a:ntk(X1, X2, {mode = "trace"}), K * 3) < 1e-15)
    assert.is_true(H.rel(a:ntk(X1, X2, {mode = "trace", normalize = "mean"}), K) < 1e-15)
    local B = a:nngp(X1, {mode = "blocks"})
    local G = a:nngp(X1)
    assert.same({12, 3}, {B:shape()})
    assert.equal(G:get(2, 2), B:get(5, 2))
    assert.equal(0, B:get(5, 1))
    local outs = a:ntk(X1, {mode = "outputs"})
    assert.equal(3, #outs)
    assert.equal(0, (outs[3] - a:ntk(X1)):max_abs())
    -- the same layout as an empirical kernel of a 3-output net
    local net = ntk.mlp{sizes = {5, 64, 64, 3}, activation = "erf", bias_std = 0.4}
    assert.same({net:ntk(X1, X2):shape()}, {F:shape()})
  end)

  it("is symmetric and positive semi-definite, and its cross kernel agrees", function()
    local X = ntk.randn(12, 4, 3)
    for _, act in ipairs{"relu", "tanh", "gelu", "sin", "identity", "sigmoid", "softplus", "erf"} do
      local a = ntk.analytic{depth = 3, activation = act, weight_std = 1.2, quad_tol = 1e-6}
      local N, K = a:kernels(X)
      assert.is_true(H.is_symmetric(K) and H.is_symmetric(N), act)
      assert.is_true(H.is_psd(K, 1e-10 * K:trace()) and H.is_psd(N, 1e-10 * N:trace()), act)
      assert.is_true(H.rel(a:ntk(X, X), K) < 1e-12, act)
    end
  end)

  it("builds from a network with net:analytic()", function()
    local net = ntk.mlp{sizes = {3, 20, 10, 2}, activation = {"tanh", "relu"},
                        parameterization = "standard", weight_std = 1.3, bias_std = 0.2}
    local a = net:analytic{quad_tol = 1e-9}
    assert.same({3, 20, 10, 2}, a:sizes())
    assert.same({"tanh", "relu"}, a:activations())
    assert.equal("standard", a:parameterization())
    assert.equal(1.3, a:weight_std())
    assert.equal(0.2, a:bias_std())
    assert.equal(3, a:depth())
    local X = ntk.randn(3, 3, 1)
    local b = ntk.analytic{sizes = {3, 20, 10, 2}, activation = {"tanh", "relu"},
                           parameterization = "standard", weight_std = 1.3, bias_std = 0.2,
                           quad_tol = 1e-9}
    assert.equal(0, (a:ntk(X) - b:ntk(X)):max_abs())
    assert.matches("3 %-> 20 %-> 10 %-> 2", tostring(a))
    assert.matches("tanh relu, parameterization standard", tostring(a))
    assert.is_nil(ntk.analytic{depth = 2}:sizes())
    assert.error_matches(function() net:analytic{sizes = {1, 2}} end, "comes from the network")
    assert.error_matches(function() net:analytic{quad_points = -1} end, "quad_points")
    local one = ntk.mlp{sizes = {2, 3}}
    assert.same({}, one:analytic():activations())
  end)

  it("exposes the Gaussian expectations", function()
    local e, ed = ntk.gaussian_expect("relu", 2, 8, 0)
    assert.near(4 / (2 * math.pi), e, 1e-15)
    assert.near(0.25, ed, 1e-15)
    local q, qd = ntk.gaussian_expect("erf", 1, 2, 0.7, {force_quadrature = true, quad_points = 128})
    local c, cd = ntk.gaussian_expect("erf", 1, 2, 0.7)
    assert.near(c, q, 1e-12)
    assert.near(cd, qd, 1e-12)
    assert.error_matches(function() ntk.gaussian_expect("relu", 1, 1, 2) end, "covariance")
    assert.error_matches(function() ntk.gaussian_expect("swish", 1, 1, 0) end, "unknown activation")
    assert.error_matches(function() ntk.gaussian_expect("relu", -1, 1, 0) end, "variance")
    assert.error_matches(function() ntk.gaussian_expect("relu", 1, 1, 0, {points = 3}) end,
                         "unknown option 'points'")
  end)

  it("rejects bad specifications and inputs with clear messages", function()
    assert.error_matches(function() ntk.analytic() end, "table expected")
    assert.error_matches(function() ntk.analytic{} end, "either sizes")
    assert.error_matches(function() ntk.analytic{depth = 2, sizes = {1, 2, 3}} end, "either sizes")
    assert.error_matches(function() ntk.analytic{depth = 0} end, "depth must be")
    assert.error_matches(function() ntk.analytic{depth = 1.5} end, "depth must be")
    assert.error_matches(function() ntk.analytic{sizes = {3}} end, "at least an input")
    assert.error_matches(function() ntk.analytic{sizes = {3, 0, 1}} end, "sizes%[2%]")
    assert.error_matches(function() ntk.analytic{sizes = {3, 4, 1}, outputs = 2} end, "outputs goes with depth")
    assert.error_matches(function() ntk.analytic{depth = 2, outputs = 0} end, "outputs must be")
    assert.error_matches(function() ntk.analytic{depth = 2, activation = "swish"} end, "unknown activation 'swish'")
    assert.error_matches(function() ntk.analytic{depth = 3, activation = {"relu"}} end, "one activation per hidden layer")
    assert.error_matches(function() ntk.analytic{depth = 2, parameterization = "mup"} end, "unknown parameterization")
    assert.error_matches(function() ntk.analytic{depth = 2, weight_std = -1} end, "weight_std")
    assert.error_matches(function() ntk.analytic{depth = 2, bias_std = 0 / 0} end, "bias_std")
    assert.error_matches(function() ntk.analytic{depth = 2, quad_points = 513} end, "quad_points")
    assert.error_matches(function() ntk.analytic{depth = 2, quad_tol = 0} end, "quad_tol")
    assert.error_matches(function() ntk.analytic{depth = 2, widths = 3} end, "unknown option 'widths'")
    local a = ntk.analytic{sizes = {3, 10, 1}}
    assert.error_matches(function() a:ntk(ntk.ones(2, 4)) end, "X1 must be N x 3 %(one sample per row%), got 2x4")
    assert.error_matches(function() a:ntk(ntk.ones(2, 3), ntk.ones(2, 2)) end, "X2 must be N x 3")
    local X = ntk.ones(2, 3)
    X:set(2, 1, 0 / 0)
    assert.error_matches(function() a:nngp(X) end, "X1 contains NaN at row 2, column 1")
    assert.error_matches(function() a:ntk(ntk.ones(2, 3), ntk.ones(1, 3), {mode = "blocks"}) end, "one input set")
    assert.error_matches(function() a:ntk(ntk.ones(2, 3), {mode = "diag"}) end, "mode must be")
    assert.error_matches(function() a:ntk(ntk.ones(2, 3), {normalize = "max"}) end, "normalize must be")
    assert.error_matches(function() a:ntk(ntk.ones(2, 3), {chunk = 1}) end, "unknown option 'chunk'")
    assert.error_matches(function() a:ntk(ntk.ones(2, 3), 5) end, "ntk.Matrix %(X2%) or options table")
    assert.error_matches(function() a:ntk({}) end, "ntk.Matrix expected")
    assert.error_matches(function() ntk.analytic{depth = 2}:ntk(ntk.matrix(2, 0)) end, "at least one column")
    local std = ntk.analytic{depth = 2, parameterization = "standard"}
    assert.error_matches(function() std:ntk(ntk.ones(2, 3)) end, "give sizes")
    assert.equal(2, std:nngp(ntk.ones(2, 3)):rows())
    assert.error_matches(function() ntk.analytic{depth = 8, weight_std = 1e80}:ntk(ntk.ones(1, 3)) end,
                         "overflowed")
    -- empty inputs give empty kernels
    assert.same({0, 0}, {a:ntk(ntk.matrix(0, 3)):shape()})
    assert.same({2, 0}, {a:ntk(ntk.ones(2, 3), ntk.matrix(0, 3)):shape()})
  end)

  it("reports progress and can be interrupted", function()
    local a = ntk.analytic{depth = 2, activation = "tanh", quad_points = 8}
    local X = ntk.randn(300, 2, 1)
    local calls = 0
    a:ntk(X, {progress = function(task, done, total)
      assert.equal("analytic", task)
      assert.equal(300, total)
      calls = calls + 1
    end})
    assert.is_true(calls >= 3)
    collectgarbage()
    collectgarbage()
    local before = ntk.bytes_in_use()
    assert.error_matches(function()
      a:ntk(X, {progress = function(_, done) return done == 0 end})
    end, "interrupted during analytic")
    assert.equal(before, ntk.bytes_in_use())
  end)
end)
