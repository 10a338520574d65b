local ntk = require "ntk"
local H = require "helpers"

local ACTS = {"identity", "relu", "tanh", "sigmoid", "erf", "gelu", "softplus", "sin"}

describe("ntk.mlp", function()
  it("builds networks and reports their architecture", function()
    local net = ntk.mlp{sizes = {4, 8, 6, 3}, activation = {"tanh", "relu"}, seed = 1}
    assert.same({4, 8, 6, 3}, net:sizes())
    assert.equal(3, net:depth())
    assert.equal(4, net:input_dim())
    assert.equal(3, net:output_dim())
    assert.same({"tanh", "relu"}, net:activations())
    assert.equal("ntk", net:parameterization())
    assert.equal(1.0, net:weight_std())
    assert.equal(0.1, net:bias_std())
    assert.equal(8 * 4 + 8 + 6 * 8 + 6 + 3 * 6 + 3, net:num_params())
    local s = tostring(net)
    assert.matches("4 %-> 8 %(tanh%) %-> 6 %(relu%) %-> 3", s)
    assert.matches("115 parameters", s)
    local one = ntk.mlp{sizes = {2, 1}}
    assert.equal(3, one:num_params())
    assert.same({}, one:activations())
  end)

  it("is seeded: same seed, same parameters; other seed, others", function()
    local a = ntk.mlp{sizes = {5, 7, 2}, seed = 11}
    local b = ntk.mlp{sizes = {5, 7, 2}, seed = 11}
    local c = ntk.mlp{sizes = {5, 7, 2}, seed = 12}
    assert.equal(0, (a:params() - b:params()):max_abs())
    assert.is_true((a:params() - c:params()):max_abs() > 0)
  end)

  it("draws parameters at the documented scales", function()
    -- ntk: W, b ~ N(0, 1); standard: W ~ N(0, w^2/n_in), b ~ N(0, b^2)
    local n = ntk.mlp{sizes = {400, 300, 1}, parameterization = "ntk", seed = 3}
    local W = n:layer(1)
    local var = W:cmul(W):mean()
    assert.is_true(math.abs(var - 1) < 0.02, var)
    local s = ntk.mlp{sizes = {400, 300, 1}, parameterization = "standard",
                      weight_std = 2, bias_std = 0.5, seed = 3}
    local Ws, bs = s:layer(1)
    assert.is_true(math.abs(Ws:cmul(Ws):mean() / (4 / 400) - 1) < 0.02)
    assert.is_true(math.abs(bs:cmul(bs):mean() / 0.25 - 1) < 0.25)
  end)

  it("lays parameters out as the seed note's eq. 3", function()
    local net = ntk.mlp{sizes = {3, 2, 2}, seed = 5}
    local P = net:num_params()
    local theta = ntk.matrix(P, 1)
    for k = 1, P do theta:set(k, 1, k) end
    net:set_params(theta)
    local W1, b1 = net:layer(1)
    assert.same({{1, 2, 3}, {4, 5, 6}}, W1:totable())
    assert.same({{7}, {8}}, b1:totable())
    local W2, b2 = net:layer(2)
    assert.same({{9, 10}, {11, 12}}, W2:totable())
    assert.same({{13}, {14}}, b2:totable())
    assert.equal(0, (net:params() - theta):max_abs())
    -- set_layer writes the same slots; b may be a row or a column.
    net:set_layer(2, ntk.matrix{{-1, -2}, {-3, -4}}, ntk.matrix{{-5, -6}})
    local p = net:params()
    assert.same({-1, -2, -3, -4, -5, -6},
                {p:get(9, 1), p:get(10, 1), p:get(11, 1), p:get(12, 1), p:get(13, 1), p:get(14, 1)})
    net:set_params(theta:T()) -- 1 x P is accepted too
    assert.equal(0, (net:params() - theta):max_abs())
  end)

  it("computes forward passes by the documented layer map", function()
    -- ntk parameterization: z = (w/sqrt(n_in)) W a + b_std b
    local net = ntk.mlp{sizes = {2, 3, 1}, activation = "tanh", weight_std = 1.5, bias_std = 0.4}
    local W1, b1 = net:layer(1)
    local W2, b2 = net:layer(2)
    local X = ntk.matrix{{0.3, -0.7}, {1.1, 0.2}}
    local Y = net:forward(X)
    for i = 1, 2 do
      local out = 0.4 * b2:get(1, 1)
      for r = 1, 3 do
        local z = 0.4 * b1:get(r, 1)
        for c = 1, 2 do z = z + 1.5 / math.sqrt(2) * W1:get(r, c) * X:get(i, c) end
        out = out + 1.5 / math.sqrt(3) * W2:get(1, r) * math.tanh(z)
      end
      assert.near(out, Y:get(i, 1), 1e-14)
    end
    assert.same({0, 1}, {net:forward(ntk.matrix(0, 2)):shape()})
  end)

  it("copies networks independently", function()
    local a = ntk.mlp{sizes = {2, 3, 1}, seed = 1}
    local b = a:copy()
    b:set_params(b:params() * 2)
    assert.equal(0, (a:params() * 2 - b:params()):max_abs())
  end)

  it("rejects bad specifications with clear messages", function()
    assert.error_matches(function() ntk.mlp() end, "table expected")
    assert.error_matches(function() ntk.mlp{} end, "sizes must be a table")
    assert.error_matches(function() ntk.mlp{sizes = {3}} end, "at least an input and an output")
    assert.error_matches(function() ntk.mlp{sizes = {3, 0, 1}} end, "sizes%[2%] must be a positive integer")
    assert.error_matches(function() ntk.mlp{sizes = {3, -2, 1}} end, "sizes%[2%]")
    assert.error_matches(function() ntk.mlp{sizes = {3, 2.5, 1}} end, "sizes%[2%]")
    assert.error_matches(function() ntk.mlp{sizes = {3, "a", 1}} end, "sizes%[2%]")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, activation = "swish"} end,
                         "unknown activation 'swish'")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 4, 1}, activation = {"relu"}} end,
                         "one activation per hidden layer %(2%)")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, activation = 3} end,
                         "activation must be a name")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, parameterization = "mup"} end,
                         "unknown parameterization 'mup'")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, weight_std = -1} end, "weight_std")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, bias_std = 0 / 0} end, "bias_std")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, weight_std = math.huge} end, "finite")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, seed = 1.5} end, "seed")
    assert.error_matches(function() ntk.mlp{sizes = {3, 4, 1}, sead = 1} end, "unknown option 'sead'")
    assert.error_matches(function() ntk.mlp{sizes = {2 ^ 20, 2 ^ 20, 2 ^ 20}} end, "memory")
  end)

  it("rejects bad inputs and parameters naming the argument", function()
    local net = ntk.mlp{sizes = {3, 4, 2}}
    assert.error_matches(function() net:forward(ntk.matrix(2, 4)) end,
                         "X must be N x 3 %(one sample per row%), got 2x4")
    assert.error_matches(function() net:forward({}) end, "ntk.Matrix expected")
    local X = ntk.matrix(2, 3)
    X:set(2, 2, 0 / 0)
    assert.error_matches(function() net:forward(X) end, "X contains NaN at row 2, column 2")
    X:set(2, 2, math.huge)
    assert.error_matches(function() net:jacobian(X) end, "X contains Inf")
    assert.error_matches(function() net:ntk(X) end, "X1 contains Inf")
    assert.error_matches(function() net:ntk(ntk.matrix(2, 3), X) end, "X2 contains Inf")
    assert.error_matches(function() net:set_params(ntk.matrix(5, 1)) end, "theta must be 26x1")
    local theta = net:params()
    theta:set(4, 1, 0 / 0)
    assert.error_matches(function() net:set_params(theta) end, "theta contains NaN")
    assert.error_matches(function() net:layer(0) end, "layer must be between 1 and 2, got 0")
    assert.error_matches(function() net:layer(3) end, "layer must be between 1 and 2")
    assert.error_matches(function() net:set_layer(1, ntk.matrix(3, 4), ntk.matrix(4, 1)) end,
                         "W for layer 1 must be 4x3 %(n_out x n_in%), got 3x4")
    assert.error_matches(function() net:set_layer(1, ntk.matrix(4, 3), ntk.matrix(3, 1)) end,
                         "b for layer 1 must be 4x1")
    -- parameters so large that the output overflows are refused
    net:set_params(ntk.matrix(26, 1, 1e300))
    assert.error_matches(function() net:forward(ntk.ones(1, 3)) end, "overflow")
    assert.error_matches(function() net:ntk(ntk.ones(1, 3)) end, "overflow")
  end)

  it("releases through one idempotent __gc/__close", function()
    local mt = getmetatable(ntk.mlp{sizes = {1, 1}})
    assert.equal(mt.__gc, mt.__close)
    assert.equal("ntk.Net", mt.__name)
    local net = ntk.mlp{sizes = {2, 2}}
    do
      local n <close> = net
    end
    assert.error_matches(function() net:params() end, "network is closed")
    mt.__gc(net)
    assert.equal("[ntk.Net (closed)]", tostring(net))
  end)
end)

describe("net:jacobian", function()
  for _, param in ipairs{"ntk", "standard"} do
    for _, act in ipairs(ACTS) do
      it("matches central differences for " .. act .. " (" .. param .. ")", function()
        for _, sizes in ipairs{{3, 5, 4, 2}, {1, 1, 1}, {2, 3, 3, 3, 1}} do
          local net = ntk.mlp{sizes = sizes, activation = act, parameterization = param,
                              weight_std = 1.3, bias_std = 0.2, seed = #act}
          for _, N in ipairs{1, 3} do
            local X = ntk.randn(N, sizes[1], N + 10)
            local J = net:jacobian(X, {layout = "rows"})
            assert.same({N * net:output_dim(), net:num_params()}, {J:shape()})
            local err = H.rel(J, H.fd_jacobian(net, X))
            assert.is_true(err < 1e-6, act .. " relative error " .. err)
          end
        end
      end)
    end
  end

  it("returns Df(x) as P x m for one sample and stacks Df(x_i)^T for many", function()
    local net = ntk.mlp{sizes = {3, 4, 2}, seed = 2}
    local X = ntk.randn(3, 3, 1)
    local Jall = net:jacobian(X)
    assert.same({6, net:num_params()}, {Jall:shape()})
    local J2 = net:jacobian(X:sub(2, 2, 1, 3))
    assert.same({net:num_params(), 2}, {J2:shape()})
    assert.equal(0, (J2:T() - Jall:sub(3, 4, 1, net:num_params())):max_abs())
    assert.error_matches(function() net:jacobian(X, {layout = "diagonal"}) end, "layout")
  end)
end)

describe("net:ntk", function()
  local net = ntk.mlp{sizes = {4, 7, 5, 3}, activation = {"gelu", "tanh"}, seed = 8}
  local X = ntk.randn(6, 4, 2)
  local X2 = ntk.randn(4, 4, 3)
  local J = net:jacobian(X, {layout = "rows"})
  local J2 = net:jacobian(X2, {layout = "rows"})
  local Kref = J:mm(J:T())
  local m = 3

  it("is the block matrix J J^T, symmetric and positive semi-definite", function()
    local K = net:ntk(X)
    assert.same({18, 18}, {K:shape()})
    assert.is_true(H.rel(K, Kref) < 1e-13)
    assert.is_true(H.is_symmetric(K))
    assert.is_true(H.is_psd(K, 1e-10 * K:max_abs()))
  end)

  it("puts sample i, output a at row (i-1)*m + a", function()
    local K = net:ntk(X)
    -- block (2, 5), entry (a=3, b=1): Df_3(x_2) . Df_1(x_5)
    local r, c = (2 - 1) * m + 3, (5 - 1) * m + 1
    local s = 0
    for p = 1, net:num_params() do s = s + J:get(r, p) * J:get(c, p) end
    assert.near(s, K:get(r, c), 1e-12 * K:max_abs())
  end)

  it("computes cross kernels, and ntk(X, X) equals ntk(X)", function()
    local K12 = net:ntk(X, X2)
    assert.same({18, 12}, {K12:shape()})
    assert.is_true(H.rel(K12, J:mm(J2:T())) < 1e-13)
    assert.is_true(H.rel(net:ntk(X, X), net:ntk(X)) < 1e-13)
    assert.same({18, 0}, {net:ntk(X, ntk.matrix(0, 4)):shape()})
    assert.same({0, 0}, {net:ntk(ntk.matrix(0, 4)):shape()})
  end)

  it("gives the trace, outputs and blocks modes as slices of the full kernel", function()
    local K = net:ntk(X)
    local T = net:ntk(X, {mode = "trace"})
    local Tm = net:ntk(X, {mode = "trace", normalize = "mean"})
    local O = net:ntk(X, {mode = "outputs"})
    local B = net:ntk(X, {mode = "blocks"})
    assert.equal(m, #O)
    assert.same({18, 3}, {B:shape()})
    for i = 1, 6 do
      for j = 1, 6 do
        local s = 0
        for a = 1, m do
          local kij = K:get((i - 1) * m + a, (j - 1) * m + a)
          s = s + kij
          assert.near(kij, O[a]:get(i, j), 1e-12)
        end
        assert.near(s, T:get(i, j), 1e-12)
        assert.near(s / m, Tm:get(i, j), 1e-12)
      end
      for a = 1, m do
        for b = 1, m do
          assert.near(K:get((i - 1) * m + a, (i - 1) * m + b), B:get((i - 1) * m + a, b), 1e-12)
        end
      end
    end
    local Tx = net:ntk(X, X2, {mode = "trace"})
    assert.same({6, 4}, {Tx:shape()})
    local Ox = net:ntk(X, X2, {mode = "outputs"})
    local K12 = net:ntk(X, X2)
    assert.near(K12:get(2 * m + 2, 3 * m + 2), Ox[2]:get(3, 4), 1e-12)
  end)

  it("gives the same kernel in chunks and under a tiny memory budget", function()
    local K = net:ntk(X)
    for _, chunk in ipairs{1, 2, 4, 6, 100} do
      for _, method in ipairs{"jacobian"} do
        local o = {chunk = chunk, method = method}
        assert.is_true(H.rel(net:ntk(X, o), K) < 1e-13)
        assert.is_true(H.rel(net:ntk(X, X2, o), net:ntk(X, X2)) < 1e-13)
        local ot = {chunk = chunk, method = method, mode = "trace"}
        assert.is_true(H.rel(net:ntk(X, ot), net:ntk(X, {mode = "trace"})) < 1e-13)
      end
    end
    assert.is_true(H.rel(net:ntk(X, {memory = 1}), K) < 1e-13)
    local plan = net:ntk_plan(X, {memory = 1, method = "jacobian"})
    assert.equal("jacobian", plan.method)
    assert.equal(1, plan.chunk)
    assert.is_true(plan.flops > 0)
    assert.equal(18 * 18 * 8, plan.output_bytes)
  end)

  it("works with widths, outputs and samples of 1", function()
    local tiny = ntk.mlp{sizes = {1, 1, 1}, activation = "sin", seed = 4}
    local x = ntk.matrix{{0.3}}
    local K = tiny:ntk(x)
    local Jt = tiny:jacobian(x) -- P x 1
    assert.near(Jt:T():mm(Jt):get(1, 1), K:get(1, 1), 1e-14)
    assert.same({1, 1}, {tiny:ntk(x, {mode = "trace"}):shape()})
  end)

  it("reports progress to a function and stops when it returns false", function()
    local calls = 0
    net:ntk(X, {chunk = 2, method = "jacobian", progress = function(task, done, total)
      calls = calls + 1
      assert.equal("ntk", task)
      assert.is_true(done <= total)
    end})
    assert.is_true(calls >= 3)
    assert.error_matches(function()
      net:ntk(X, {chunk = 2, method = "jacobian", progress = function() return false end})
    end, "interrupted")
    assert.error_matches(function()
      net:ntk(X, {chunk = 2, method = "jacobian", progress = function() error("boom") end})
    end, "boom")
    -- work started inside a progress function hands the hook back
    local outer, inner = 0, 0
    net:ntk(X, {chunk = 1, method = "jacobian", progress = function()
      outer = outer + 1
      if outer == 2 then
        net:ntk(X:sub(1, 2), {progress = function() inner = inner + 1 end})
      end
    end})
    assert.is_true(inner >= 1)
    assert.is_true(outer >= 6, "outer progress calls after the nested one: " .. outer)
    -- the network is still usable after an interruption
    assert.is_true(H.rel(net:ntk(X), Kref) < 1e-13)
  end)

  it("rejects bad options and arguments", function()
    assert.error_matches(function() net:ntk(X, {mode = "diag"}) end, "mode must be full, trace, outputs or blocks")
    assert.error_matches(function() net:ntk(X, {method = "fast"}) end, "method must be auto, jacobian or structured")
    assert.error_matches(function() net:ntk(X, {normalize = "max"}) end, "normalize must be")
    assert.error_matches(function() net:ntk(X, {memory = -1}) end, "memory")
    assert.error_matches(function() net:ntk(X, {chunk = 0.5}) end, "chunk")
    assert.error_matches(function() net:ntk(X, {modes = "trace"}) end, "unknown option 'modes'")
    assert.error_matches(function() net:ntk(X, X2, {mode = "blocks"}) end, "one input set")
    assert.error_matches(function() net:ntk(X, "trace") end, "ntk.Matrix %(X2%) or options table")
    assert.error_matches(function() net:ntk(ntk.matrix(2, 5)) end, "X1 must be N x 4")
    assert.error_matches(function() net:ntk(X, ntk.matrix(2, 5)) end, "X2 must be N x 4")
    assert.error_matches(function() net:ntk(X, {progress = 3}) end, "progress")
  end)
end)

describe("ntk.set_threads", function()
  it("sets and reports the thread count", function()
    ntk.set_threads(1)
    assert.equal(1, ntk.get_threads())
    ntk.set_threads(0)
    assert.is_true(ntk.get_threads() >= 1)
    assert.error_matches(function() ntk.set_threads(-1) end, "threads")
  end)
end)
