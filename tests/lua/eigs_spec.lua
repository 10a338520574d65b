-- Top-k spectra without forming K: net:ntk_matvec, net:ntk_eigs and
-- ntk.eigs, against dense kernels and PyTorch/numpy reference values
-- (tests/fixtures/linalg_reference.lua).
local ntk = require "ntk"
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local ref = dofile(root .. "/tests/fixtures/linalg_reference.lua")

local inputs = H.inputs

local function ref_net() return H.fixture_net(ref.net) end

describe("net:ntk_matvec", function()
  it("equals K V for PyTorch's kernel", function()
    local net = ref_net()
    local X = inputs(ref.net.n1, 3, 0)
    local KV = net:ntk_matvec(X, ntk.matrix(ref.net.V))
    assert.same({12, 3}, {KV:shape()})
    assert.is_true(H.rel(KV, ntk.matrix(ref.net.KV)) < 1e-12)
  end)

  it("equals net:ntk(X):mm(V) across architectures and memory budgets", function()
    local cases = {
      {sizes = {3, 2}},
      {sizes = {4, 8, 3}, activation = "relu", parameterization = "standard"},
      {sizes = {5, 9, 7, 4}, activation = {"gelu", "sigmoid"}},
    }
    for ci, c in ipairs(cases) do
      c.seed = ci
      local net = ntk.mlp(c)
      local X = ntk.randn(13, c.sizes[1], ci)
      local K = net:ntk(X)
      local V = ntk.randn(K:rows(), 5, 10 + ci)
      local want = K:mm(V)
      for _, mem in ipairs{0, 1, 30000} do
        local opts = mem > 0 and {memory = mem} or nil
        assert.is_true(H.rel(net:ntk_matvec(X, V, opts), want) < 1e-13, ci .. "/" .. mem)
      end
      assert.is_true(H.rel(net:ntk_matvec(X, V:col(2)), want:col(2)) < 1e-13)
    end
  end)

  it("refuses wrong shapes, NaN and unknown options", function()
    local net = ntk.mlp{sizes = {3, 5, 2}}
    local X = ntk.randn(4, 3, 1)
    assert.has_error(function() net:ntk_matvec(X, ntk.zeros(7, 1)) end,
      "bad argument #2 to 'ntk_matvec' (V must be (N m) x k = 8 x k (N = 4 samples, m = 2 outputs), got 7x1)")
    assert.has_error(function() net:ntk_matvec(ntk.zeros(4, 2), ntk.zeros(8, 1)) end)
    local V = ntk.zeros(8, 2)
    V:set(3, 2, 0 / 0)
    assert.has_error(function() net:ntk_matvec(X, V) end,
      "bad argument #2 to 'ntk_matvec' (V contains NaN at row 3, column 2)")
    assert.has_error(function() net:ntk_matvec(X, ntk.zeros(8, 1), {chunk = 2}) end)
    assert.has_error(function() net:ntk_matvec(X, ntk.zeros(8, 1), {memory = -1}) end)
    assert.has_error(function() net:ntk_matvec(X) end)
    assert.same({8, 0}, {net:ntk_matvec(X, ntk.zeros(8, 0)):shape()})
  end)

  it("reports progress and can be stopped", function()
    local net = ntk.mlp{sizes = {3, 5, 2}}
    local X = ntk.randn(6, 3, 1)
    local calls = 0
    net:ntk_matvec(X, ntk.ones(12, 1), {progress = function(task)
      assert.equal("ntk_matvec", task)
      calls = calls + 1
    end})
    assert.is_true(calls >= 3)
    local before = ntk.bytes_in_use()
    assert.has_error(function()
      net:ntk_matvec(X, ntk.ones(12, 1), {progress = function() error("stop here") end})
    end, "stop here")
    assert.equal(before, ntk.bytes_in_use())
  end)
end)

describe("net:ntk_eigs", function()
  it("finds numpy's top eigenvalues of PyTorch's kernel", function()
    local net = ref_net()
    local X = inputs(ref.net.n3, 3, ref.net.shift3)
    local want = ntk.vector(ref.net.eig3_top)
    local ev, info = net:ntk_eigs(X, 8)
    assert.same({8, 1}, {ev:shape()})
    for i = 1, 8 do
      assert.is_true(math.abs(ev:get(i, 1) - want:get(i, 1)) <= 1e-8 * want:get(i, 1), i)
    end
    assert.is_true(info.converged)
    assert.equal(8, info.nconverged)
    assert.is_false(info.dense)
    assert.is_true(info.iterations >= 1 and info.matvecs >= info.iterations)
    assert.equal(8, #info.residuals)
    assert.is_true(info.residual <= 1e-8 * ev:get(1, 1))
    assert.equal(1e-8, info.tol)
    assert.near(math.abs(ev:get(1, 1)), info.scale, 1e-12 * ev:get(1, 1))
    assert.matches("^converged: 8 of 8 eigenpairs within tol 1e%-08 after %d+ iterations", tostring(info))
  end)

  it("agrees with eigh of the formed kernel, vectors included", function()
    local net = ntk.mlp{sizes = {4, 20, 20, 3}, activation = "tanh", seed = 5}
    local X = ntk.randn(50, 4, 6)
    local K = net:ntk(X)
    local full = ntk.eigvalsh(K)
    local ev, V, info = net:ntk_eigs(X, 6, {vectors = true, tol = 1e-10})
    assert.same({150, 6}, {V:shape()})
    assert.is_true(H.rel(ev, full:sub(1, 6)) < 1e-10)
    assert.is_true((V:T():mm(V) - ntk.eye(6)):max_abs() < 1e-10)
    for j = 1, 6 do
      local r = (K:mm(V:col(j)) - V:col(j) * ev:get(j, 1)):norm()
      assert.is_true(r <= 1e-10 * full:get(1, 1))
      assert.near(info.residuals[j], r, 1e-12 * full:get(1, 1))
    end
    -- block size 1 (plain Lanczos) and a small basis give the same values
    local e1 = net:ntk_eigs(X, 6, {block = 1, basis = 12})
    assert.is_true(H.rel(e1, full:sub(1, 6)) < 1e-8)
    -- the same with the dense operator
    local e2 = ntk.eigs(K, 6)
    assert.is_true(H.rel(e2, full:sub(1, 6)) < 1e-12)
  end)

  it("returns nil, message and the best estimates when it does not converge", function()
    local net = ntk.mlp{sizes = {4, 20, 3}, activation = "tanh", seed = 5}
    local X = ntk.randn(50, 4, 6)
    local ev, msg, info = net:ntk_eigs(X, 4, {maxiter = 1, tol = 1e-14, vectors = true})
    assert.is_nil(ev)
    assert.matches("did not converge", msg)
    assert.is_false(info.converged)
    assert.equal(1, info.iterations)
    assert.same({4, 1}, {info.values:shape()})
    assert.same({150, 4}, {info.vectors:shape()})
    assert.equal(4, #info.residuals)
    assert.matches("^NOT converged: %d of 4", tostring(info))
  end)

  it("solves small problems densely", function()
    local net = ntk.mlp{sizes = {2, 6, 2}, seed = 2}
    local X = ntk.randn(5, 2, 1)
    local ev, info = net:ntk_eigs(X, 3)
    assert.is_true(info.dense)
    assert.is_true(H.rel(ev, ntk.eigvalsh(net:ntk(X)):sub(1, 3)) < 1e-12)
  end)

  it("refuses bad k, options and inputs", function()
    local net = ntk.mlp{sizes = {3, 5, 2}}
    local X = ntk.randn(30, 3, 1)
    assert.has_error(function() net:ntk_eigs(X, 0) end,
      "bad argument #2 to 'ntk_eigs' (k must be between 1 and n = 60, got 0)")
    assert.has_error(function() net:ntk_eigs(X, 61) end)
    assert.has_error(function() net:ntk_eigs(X, 2.5) end)
    assert.has_error(function() net:ntk_eigs(X) end)
    assert.has_error(function() net:ntk_eigs(X, 2, {tol = -1}) end)
    assert.has_error(function() net:ntk_eigs(X, 2, {tol = 1}) end)
    assert.has_error(function() net:ntk_eigs(X, 2, {blocks = 1}) end)
    assert.has_error(function() net:ntk_eigs(X, 2, {basis = 3}) end,
      "bad argument #3 to 'ntk_eigs' (basis must be at least k + block = 4, got 3)")
    assert.has_error(function() net:ntk_eigs(X, 2, {block = 61}) end,
      "bad argument #3 to 'ntk_eigs' (block must be at most n = 60, got 61)")
    -- a progress function cannot close the network under the computation
    local closer = ntk.mlp{sizes = {3, 5, 2}}
    local function close() getmetatable(closer).__close(closer) end
    for _, call in ipairs{
      function() return closer:ntk_eigs(X, 2, {progress = close}) end,
      function() return closer:ntk_matvec(X, ntk.ones(60, 1), {progress = close}) end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("in use by a running computation", err)
      assert.equal(5, closer:sizes()[2])
    end
    assert.has_error(function() net:ntk_eigs(ntk.randn(3, 4), 2) end)
    local Xn = X:copy():set(4, 1, 0 / 0)
    assert.has_error(function() net:ntk_eigs(Xn, 2) end)
    local ok, err = pcall(ntk.eigs, ntk.matrix{{1, 2}, {3, 4}}, 1)
    assert.is_false(ok)
    assert.matches("(K is not symmetric: |K[1,2] - K[2,1]| = 1", err, 1, true)
    assert.is_not_nil(ntk.eigs(ntk.matrix{{1, 2}, {3, 4}}, 1, {symmetrize = true}))
    assert.has_error(function() ntk.eigs(ntk.eye(3), 1, {memory = 1000}) end)
    assert.has_error(function() net:ntk_eigs(X, 2, {symmetrize = true}) end)
  end)

  it("reports progress per iteration and stops when asked", function()
    local net = ntk.mlp{sizes = {4, 20, 3}, activation = "tanh", seed = 5}
    local X = ntk.randn(50, 4, 6)
    local last, calls = -1, 0
    net:ntk_eigs(X, 4, {progress = function(task, done, total)
      assert.equal("eigs", task)
      assert.equal(4, total)
      assert.is_true(done >= 0 and done <= total)
      last = done
      calls = calls + 1
    end})
    assert.equal(4, last)
    assert.is_true(calls >= 3)
    local before = ntk.bytes_in_use()
    local n = 0
    assert.has_error(function()
      net:ntk_eigs(X, 4, {progress = function() n = n + 1; return n < 3 end})
    end, "interrupted during eigs")
    assert.equal(before, ntk.bytes_in_use())
  end)
end)

describe("examples/top_eigenvalues.lua", function()
  local build = os.getenv("NTK_BUILD_DIR") or (root .. "/build")
  local exists = H.exists
  it("runs end to end on small sizes and writes its plot", function()
    if not exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") then
      return pending("needs the Debian package dataset-fashion-mnist (scripts/setup installs it)")
    end
    if not exists(build .. "/bin/ntk") then return pending("needs the ntk program (build/bin/ntk)") end
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p '" .. dir .. "'"))
    local p = io.popen(("cd '%s' && NTK_PROGRESS=0 '%s' '%s' n=40 big=100,250 k=4 width=16 2>&1; echo \"EXIT:$?\"")
                       :format(dir, build .. "/bin/ntk", root .. "/examples/top_eigenvalues.lua"))
    local out = p:read("a")
    p:close()
    assert.matches("EXIT:0", out, 1, true)
    local diff = tonumber(out:match("largest relative difference ([%d.e+-]+)"))
    assert.is_true(diff ~= nil and diff < 1e-8, out)
    assert.matches("N = 250 +kernel 2500 x 2500", out)
    assert.is_true(exists(dir .. "/top_eigenvalues.svg"))
    local ok = os.execute("xmllint --noout '" .. dir .. "/top_eigenvalues.svg' 2>/dev/null")
    assert.is_true(ok == true or ok == 0)
    os.execute("rm -rf '" .. dir .. "'")
    local _, bad = (function()
      local q = io.popen(("'%s' '%s' nn=3 2>&1; echo \"EXIT:$?\""):format(build .. "/bin/ntk",
                         root .. "/examples/top_eigenvalues.lua"))
      local s = q:read("a")
      q:close()
      return nil, s
    end)()
    assert.matches("unknown argument 'nn=3'", bad, 1, true)
  end)
end)
