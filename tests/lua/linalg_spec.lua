-- Eigen routines, spectrum statistics and kernel methods from Lua: results
-- against constructed cases and numpy/scipy/PyTorch reference values
-- (tests/fixtures/linalg_reference.lua, from scripts/make_linalg_reference.py),
-- option handling and errors.
local ntk = require "ntk"
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local ref = dofile(root .. "/tests/fixtures/linalg_reference.lua")

local inputs = H.inputs

local function ref_net()
  local r = ref.net
  return H.fixture_net(r), inputs(r.n1, 3, 0), inputs(r.n2, 3, 0.25)
end

--- Q D Q^T with Q orthogonal (Gram-Schmidt of a fixed random matrix, in Lua).
local function constructed(d)
  local n = #d
  local G = ntk.randn(n, n, 99)
  local Q = ntk.matrix(n, n)
  for j = 1, n do
    for i = 1, n do Q:set(i, j, G:get(i, j)) end
    for _ = 1, 2 do
      for p = 1, j - 1 do
        local s = 0
        for i = 1, n do s = s + Q:get(i, p) * Q:get(i, j) end
        for i = 1, n do Q:set(i, j, Q:get(i, j) - s * Q:get(i, p)) end
      end
    end
    local s = 0
    for i = 1, n do s = s + Q:get(i, j) ^ 2 end
    for i = 1, n do Q:set(i, j, Q:get(i, j) / math.sqrt(s)) end
  end
  local A = ntk.matrix(n, n)
  for i = 1, n do
    for j = 1, i do
      local s = 0
      for t = 1, n do s = s + Q:get(i, t) * d[t] * Q:get(j, t) end
      A:set(i, j, s)
      A:set(j, i, s)
    end
  end
  return A
end

local function sorted_desc(d)
  local t = {}
  for i, v in ipairs(d) do t[i] = v end
  table.sort(t, function(a, b) return a > b end)
  return ntk.vector(t)
end

describe("ntk.eigvalsh and ntk.eigh", function()
  local d = {3, -1, 2.5, 0, 0, 7, -4, 1, 1, 1, 0.5, 6}
  local A = constructed(d)

  it("find the eigenvalues of Q D Q^T in descending order", function()
    local ev = ntk.eigvalsh(A)
    assert.same({#d, 1}, {ev:shape()})
    assert.is_true(H.rel(ev, sorted_desc(d)) < 1e-13)
    for _, drv in ipairs{"evd", "evr", "auto"} do
      assert.is_true(H.rel(ntk.eigvalsh(A, {driver = drv}), sorted_desc(d)) < 1e-13, drv)
    end
  end)

  it("return orthonormal eigenvectors that reconstruct K", function()
    for _, drv in ipairs{"evd", "evr"} do
      local w, V = ntk.eigh(A, {driver = drv})
      assert.same({#d, #d}, {V:shape()})
      assert.is_true((V:T():mm(V) - ntk.eye(#d)):max_abs() < 1e-13, drv)
      local D = ntk.zeros(#d, #d)
      for i = 1, #d do D:set(i, i, w:get(i, 1)) end
      assert.is_true(H.rel(V:mm(D):mm(V:T()), A) < 1e-13, drv)
      -- columns match the values' order
      for j = 1, #d do
        local v = V:col(j)
        assert.is_true((A:mm(v) - v * w:get(j, 1)):max_abs() < 1e-12)
      end
    end
  end)

  it("give the top k through an index range", function()
    local all = sorted_desc(d)
    for _, k in ipairs{1, 3, 11, 12} do
      local w = ntk.eigvalsh(A, {k = k})
      assert.same({k, 1}, {w:shape()})
      assert.is_true(H.rel(w, all:sub(1, k)) < 1e-13)
      local w2, V = ntk.eigh(A, {k = k})
      assert.same({#d, k}, {V:shape()})
      assert.is_true(H.rel(w2, all:sub(1, k)) < 1e-13)
      for j = 1, k do
        assert.is_true((A:mm(V:col(j)) - V:col(j) * w2:get(j, 1)):max_abs() < 1e-12)
      end
    end
  end)

  it("agree with numpy.linalg.eigvalsh", function()
    local ev = ntk.eigvalsh(ntk.matrix(ref.sym.A))
    assert.is_true(H.rel(ev, ntk.vector(ref.sym.eigvalsh)) < 1e-13)
  end)

  it("handle 1 x 1 and 0 x 0", function()
    assert.equal(-3, ntk.eigvalsh(ntk.matrix{{-3}}):get(1, 1))
    local w, V = ntk.eigh(ntk.zeros(0, 0))
    assert.same({0, 1}, {w:shape()})
    assert.same({0, 0}, {V:shape()})
  end)

  it("refuse non-square, asymmetric, NaN and bad k", function()
    assert.has_error(function() ntk.eigvalsh(ntk.zeros(2, 3)) end,
      "bad argument #1 to 'eigvalsh' (K must be square, got 2x3)")
    local B = ntk.matrix{{1, 2}, {2.5, 1}}
    local ok, err = pcall(ntk.eigh, B)
    assert.is_false(ok)
    assert.matches("K is not symmetric: |K[1,2] - K[2,1]| = 0.5", err, 1, true)
    assert.matches("symmetrize", err)
    local w = ntk.eigvalsh(B, {symmetrize = true})
    assert.is_true(H.rel(w, ntk.vector{3.25, -1.25}) < 1e-15)
    -- the tolerance is relative to max|K|
    local C = ntk.matrix{{1, 2}, {2 + 1e-12, 1}}
    assert.equal(2, ntk.eigvalsh(C):rows())
    assert.has_error(function() ntk.eigvalsh(ntk.matrix{{1, 2}, {2 + 1e-6, 1}}) end)
    assert.equal(2, ntk.eigvalsh(ntk.matrix{{1, 2}, {2 + 1e-6, 1}}, {symmetry_tol = 1e-5}):rows())
    local N = ntk.eye(3)
    N:set(2, 2, 0 / 0)
    assert.has_error(function() ntk.eigvalsh(N) end,
      "bad argument #1 to 'eigvalsh' (K contains NaN at row 2, column 2)")
    N:set(2, 2, math.huge)
    assert.has_error(function() ntk.eigh(N) end)
    assert.has_error(function() ntk.eigvalsh(ntk.eye(3), {k = 0}) end,
      "bad argument #2 to 'eigvalsh' (k must be between 1 and n = 3, got 0)")
    assert.has_error(function() ntk.eigvalsh(ntk.eye(3), {k = 4}) end)
    assert.has_error(function() ntk.eigvalsh(ntk.zeros(0, 0), {k = 1}) end)
    assert.has_error(function() ntk.eigvalsh(ntk.eye(3), {k = 1.5}) end)
    assert.has_error(function() ntk.eigvalsh(ntk.eye(3), {driver = "qr"}) end)
    assert.has_error(function() ntk.eigvalsh(ntk.eye(3), {kk = 1}) end)
    assert.has_error(function() ntk.eigvalsh("K") end)
    assert.has_error(function() ntk.eigvalsh() end)
  end)

  it("report progress and can be stopped", function()
    local seen = {}
    ntk.eigvalsh(A, {progress = function(task, done, total) seen[#seen + 1] = {task, done, total} end})
    assert.same({"eigh", 0, 1}, seen[1])
    assert.same({"eigh", 1, 1}, seen[#seen])
    local before = ntk.bytes_in_use()
    assert.has_error(function() ntk.eigh(A, {progress = function() return false end}) end,
      "interrupted during eigh")
    assert.equal(before, ntk.bytes_in_use())
  end)
end)

describe("ntk.spectrum_stats", function()
  it("summarises a spectrum by hand", function()
    local s = ntk.spectrum_stats({2, 4, 1, 3}, {top_k = 2})
    assert.equal(4, s.n)
    assert.equal(10, s.trace)
    assert.equal(4, s.max)
    assert.equal(1, s.min)
    assert.equal(4, s.condition)
    assert.near(100 / 30, s.effective_rank, 1e-14)
    local h = -(0.4 * math.log(0.4) + 0.3 * math.log(0.3) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert.near(h, s.entropy, 1e-14)
    assert.near(math.exp(h), s.entropy_rank, 1e-13)
    assert.near(0.7, s.top_fraction, 1e-15)
    assert.equal(2, s.top_k)
    assert.is_table(s.power_law)
    local text = tostring(s)
    assert.matches("spectrum of 4 eigenvalues: trace 10, largest 4, smallest 1, condition 4", text, 1, true)
    assert.matches("top 2 hold 70.0% of the trace", text, 1, true)
    assert.matches("power law l_i ~ ", text, 1, true)
  end)

  it("fits an exact power law, on a chosen range too", function()
    local ev = {}
    for i = 1, 60 do ev[i] = 3 * i ^ -2 end
    local s = ntk.spectrum_stats(ntk.vector(ev))
    assert.near(2, s.power_law.alpha, 1e-12)
    assert.near(3, s.power_law.coef, 1e-11)
    assert.near(1, s.power_law.r2, 1e-12)
    for i = 31, 60 do ev[i] = 3 * 30 ^ -2 * (i / 30) ^ -4 end
    s = ntk.spectrum_stats(ntk.vector(ev), {fit = {35, 60}})
    assert.near(4, s.power_law.alpha, 1e-11)
    assert.same({35, 60}, {s.power_law.first, s.power_law.last})
  end)

  it("agrees with numpy on a kernel's spectrum", function()
    local s = ntk.spectrum_stats(ntk.eigvalsh(ntk.matrix(ref.pd.B)), {top_k = 3})
    for k, v in pairs(ref.pd.stats) do
      local got = s[k] or s.power_law[k]
      assert.is_true(math.abs(got - v) <= 1e-10 * math.abs(v), k)
    end
  end)

  it("copes with negative and zero eigenvalues", function()
    local s = ntk.spectrum_stats{1, 0.5, -1e-17, 0}
    assert.equal(math.huge, s.condition)
    assert.near(1.5 ^ 2 / 1.25, s.effective_rank, 1e-14)
    assert.is_nil(ntk.spectrum_stats{5}.power_law)
  end)

  it("refuses bad input", function()
    assert.has_error(function() ntk.spectrum_stats{} end)
    assert.has_error(function() ntk.spectrum_stats{1, 0 / 0} end)
    assert.has_error(function() ntk.spectrum_stats(ntk.vector{1, math.huge}) end)
    assert.has_error(function() ntk.spectrum_stats{1, "x"} end)
    assert.has_error(function() ntk.spectrum_stats({1, 2}, {top_k = 3}) end)
    assert.has_error(function() ntk.spectrum_stats({1, 2}, {fit = {2, 1}}) end)
    assert.has_error(function() ntk.spectrum_stats({1, 2}, {fit = 2}) end)
    assert.has_error(function() ntk.spectrum_stats({1, 2}, {what = 1}) end)
    assert.has_error(function() ntk.spectrum_stats(3) end)
  end)
end)

describe("ntk.alignment", function()
  it("is 1 for K = y y^T and 1/sqrt(n) for K = I", function()
    local y = ntk.vector{1, -2, 0.5, 3}
    assert.near(1, ntk.alignment(y:mm(y:T()), y), 1e-14)
    assert.near(0.5, ntk.alignment(ntk.eye(4), y), 1e-14)
  end)

  it("agrees with numpy in both layouts, centred or not", function()
    local B = ntk.matrix(ref.pd.B)
    assert.near(ref.pd.alignment, ntk.alignment(B, ntk.matrix(ref.pd.Y)), 1e-13)
    assert.near(ref.pd.alignment_centered,
      ntk.alignment(B, ntk.matrix(ref.pd.Y), {center = true}), 1e-13)
    assert.near(ref.pd.alignment_block, ntk.alignment(B, ntk.matrix(ref.pd.Y42)), 1e-13)
    assert.near(ref.pd.alignment_block_centered,
      ntk.alignment(B, ntk.matrix(ref.pd.Y42), {center = true}), 1e-13)
  end)

  it("refuses mismatched shapes and zero targets", function()
    local K = ntk.eye(6)
    assert.has_error(function() ntk.alignment(K, ntk.zeros(5, 1)) end)
    assert.has_error(function() ntk.alignment(K, ntk.zeros(6, 1)) end,
      "bad argument #2 to 'alignment' (the alignment is undefined: Y is zero)")
    assert.has_error(function() ntk.alignment(K, ntk.ones(6, 1), {center = true}) end)
    assert.has_error(function() ntk.alignment(ntk.zeros(6, 5), ntk.ones(6, 1)) end)
    assert.has_error(function() ntk.alignment(K, ntk.ones(6, 1), {centre = true}) end)
  end)
end)

describe("ntk.kernel_regression and ntk.kernel_predict", function()
  local B, Y = ntk.matrix(ref.pd.B), ntk.matrix(ref.pd.Y)

  it("solve K alpha = Y like numpy.linalg.solve", function()
    local alpha, info = ntk.kernel_regression(B, Y)
    assert.is_true(H.rel(alpha, ntk.matrix(ref.pd.alpha)) < 1e-12)
    assert.equal(0, info.jitter)
    assert.equal(0, info.ridge)
    local ar = ntk.kernel_regression(B, Y, {ridge = 0.1})
    assert.is_true(H.rel(ar, ntk.matrix(ref.pd.alpha_ridge)) < 1e-12)
    -- the block layout: vec(Y) of a 4 x 2 target matrix against 8 x 8
    local ab = ntk.kernel_regression(B, ntk.matrix(ref.pd.Y42))
    assert.same({4, 2}, {ab:shape()})
    assert.is_true(H.rel(ab, ntk.matrix(ref.pd.alpha_block)) < 1e-12)
  end)

  it("predict the training targets back, in both layouts", function()
    local alpha = ntk.kernel_regression(B, Y)
    assert.is_true(H.rel(ntk.kernel_predict(B, alpha), Y) < 1e-12)
    local Y42 = ntk.matrix(ref.pd.Y42)
    local ab = ntk.kernel_regression(B, Y42)
    local p = ntk.kernel_predict(B, ab)
    assert.same({4, 2}, {p:shape()})
    assert.is_true(H.rel(p, Y42) < 1e-12)
    -- a cross kernel: rows are test points (trace) or (test point, output)
    assert.same({3, 2}, {ntk.kernel_predict(B:sub(1, 3), alpha):shape()})
    assert.same({3, 2}, {ntk.kernel_predict(B:sub(1, 6), ab):shape()})
  end)

  it("adds jitter to a singular kernel and says how much", function()
    local G = ntk.randn(10, 3, 4)
    local K = G:mm(G:T())
    local y = ntk.randn(10, 1, 5)
    local alpha, info = ntk.kernel_regression(K, y)
    assert.is_true(info.jitter > 0)
    assert.is_true(info.jitter <= 1e-4 * K:trace() / 10 * (1 + 1e-9))
    local Kj = K + ntk.eye(10) * info.jitter
    assert.is_true((Kj:mm(alpha) - y):max_abs() < 1e-6 * alpha:max_abs() * Kj:max_abs())
    local none, msg = ntk.kernel_regression(K, y, {jitter = false})
    assert.is_nil(none)
    assert.matches("not positive definite", msg)
    local bad, msg2 = ntk.kernel_regression(ntk.matrix{{1, 0}, {0, -1}}, ntk.ones(2, 1))
    assert.is_nil(bad)
    assert.matches("even with jitter", msg2)
  end)

  it("refuses bad input", function()
    assert.has_error(function() ntk.kernel_regression(B, ntk.ones(5, 1)) end)
    assert.has_error(function() ntk.kernel_regression(ntk.zeros(3, 4), ntk.ones(3, 1)) end)
    assert.has_error(function() ntk.kernel_regression(B, Y, {ridge = -1}) end)
    assert.has_error(function() ntk.kernel_regression(B, Y, {ridge = 0 / 0}) end)
    assert.has_error(function() ntk.kernel_regression(B, Y, {lambda = 1}) end)
    local Yn = Y:copy():set(2, 1, 0 / 0)
    assert.has_error(function() ntk.kernel_regression(B, Yn) end,
      "bad argument #2 to 'kernel_regression' (Y contains NaN at row 2, column 1)")
    local Ba = B:copy():set(1, 2, B:get(1, 2) + 1)
    assert.has_error(function() ntk.kernel_regression(Ba, Y) end)
    assert.is_table(select(2, ntk.kernel_regression(Ba, Y, {symmetrize = true})))
    assert.has_error(function() ntk.kernel_predict(ntk.zeros(3, 7), ntk.zeros(8, 2)) end)
    -- empty problems are valid and give empty answers
    assert.same({0, 2}, {ntk.kernel_regression(ntk.zeros(0, 0), ntk.zeros(0, 2)):shape()})
    assert.same({3, 2}, {ntk.kernel_predict(ntk.zeros(3, 0), ntk.zeros(0, 2)):shape()})
    assert.equal(0, ntk.kernel_predict(ntk.zeros(3, 0), ntk.zeros(0, 2)):max_abs())
    assert.has_error(function() ntk.alignment(ntk.zeros(0, 0), ntk.zeros(0, 1)) end,
      "bad argument #1 to 'alignment' (K is empty)")
    assert.has_error(function() ntk.kernel_predict(ntk.zeros(3, 8), ntk.zeros(4, 2)) end)
  end)
end)

describe("ntk.gd_dynamics", function()
  local r = ref.net
  local net, X1, X2 = ref_net()
  local K, K21 = net:ntk(X1), net:ntk(X2, X1)
  local f0, g0 = net:forward(X1), net:forward(X2)
  local Y = ntk.matrix(r.Y)

  it("starts from the kernels we expect", function()
    assert.is_true(H.rel(K, ntk.matrix(r.K)) < 1e-10)
    assert.is_true(H.rel(K21, ntk.matrix(r.K21)) < 1e-10)
    assert.is_true(H.rel(f0, ntk.matrix(r.f0)) < 1e-12)
  end)

  it("matches scipy's matrix exponential with the full block kernel", function()
    local out = ntk.gd_dynamics{K_train = K, K_test_train = K21, f0_train = f0,
                                f0_test = g0, Y = Y, lr = r.lr, times = r.times}
    assert.same(r.times, out.times)
    for t = 1, #r.times do
      assert.is_true(H.rel(out.train[t], ntk.matrix(r.dyn_full.train[t])) < 1e-8, t)
      assert.is_true(H.rel(out.test[t], ntk.matrix(r.dyn_full.test[t])) < 1e-8, t)
    end
  end)

  it("matches with the trace kernel (targets sharing it)", function()
    local Kt = net:ntk(X1, {mode = "trace"})
    local Kt21 = net:ntk(X2, X1, {mode = "trace"})
    local out = ntk.gd_dynamics{K_train = Kt, K_test_train = Kt21, f0_train = f0,
                                f0_test = g0, Y = Y, lr = r.lr, times = r.times}
    for t = 1, #r.times do
      assert.is_true(H.rel(out.train[t], ntk.matrix(r.dyn_trace.train[t])) < 1e-8, t)
      assert.is_true(H.rel(out.test[t], ntk.matrix(r.dyn_trace.test[t])) < 1e-8, t)
    end
  end)

  it("keeps its matrices alive when a progress function empties the spec", function()
    local want = ntk.gd_dynamics{K_train = K, K_test_train = K21, Y = Y, times = {0.5, 2}}
    local spec = {K_train = K:copy(), K_test_train = K21:copy(), Y = Y:copy(), times = {0.5, 2}}
    spec.progress = function()
      spec.K_train, spec.K_test_train, spec.Y = nil, nil, nil
      collectgarbage()
      collectgarbage()
    end
    local got = ntk.gd_dynamics(spec)
    for t = 1, 2 do
      assert.equal(0, (got.train[t] - want.train[t]):max_abs())
      assert.equal(0, (got.test[t] - want.test[t]):max_abs())
    end
  end)

  it("reaches kernel regression at t = math.huge", function()
    local out = ntk.gd_dynamics{K_train = K, K_test_train = K21, Y = Y, times = math.huge}
    assert.is_true(H.rel(out.train[1], Y) < 1e-8)
    local alpha = ntk.kernel_regression(K, Y)
    assert.is_true(H.rel(out.test[1], ntk.kernel_predict(K21, alpha)) < 1e-8)
    -- no test kernel: train only
    local t0 = ntk.gd_dynamics{K_train = K, Y = Y, f0_train = f0, times = {0}}
    assert.is_nil(t0.test)
    assert.equal(0, (t0.train[1] - f0):max_abs())
  end)

  it("refuses bad input", function()
    local function gd(spec) return function() ntk.gd_dynamics(spec) end end
    assert.has_error(gd{K_train = K, Y = Y, times = {-1}})
    assert.has_error(gd{K_train = K, Y = Y, times = {0 / 0}})
    assert.has_error(gd{K_train = K, Y = Y, times = {}})
    assert.has_error(gd{K_train = K, Y = Y, times = {"1"}})
    assert.has_error(gd{K_train = K, Y = Y})
    assert.has_error(gd{K_train = K, times = {1}})
    assert.has_error(gd{Y = Y, times = {1}})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, lr = 0})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, loss = "l1"})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, learning_rate = 1})
    assert.has_error(gd{K_train = K, Y = ntk.zeros(5, 2), times = 1})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, K_test_train = ntk.zeros(6, 11)})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, K_test_train = ntk.zeros(5, 12)})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, f0_test = g0})
    assert.has_error(gd{K_train = K, Y = Y, times = 1, f0_train = ntk.zeros(2, 6)})
    assert.has_error(gd{K_train = "K", Y = Y, times = 1})
    local ok, err = pcall(ntk.gd_dynamics, {K_train = K:copy():set(1, 2, 5), Y = Y, times = 1})
    assert.is_false(ok)
    assert.matches("K_train is not symmetric: |K_train[1,2] - K_train[2,1]|", err, 1, true)
    assert.has_error(gd(42))
    local empty = ntk.gd_dynamics{K_train = ntk.zeros(0, 0), Y = ntk.zeros(0, 2), times = {1, 2},
                                  K_test_train = ntk.zeros(3, 0)}
    assert.same({0, 2}, {empty.train[2]:shape()})
    assert.same({3, 2}, {empty.test[1]:shape()})
    assert.equal(0, empty.test[1]:max_abs())
  end)
end)
