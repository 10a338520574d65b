-- Losses, gradients and training from Lua: hand values, finite
-- differences, PyTorch reference runs (tests/fixtures/train_reference.lua
-- from scripts/make_train_reference.py), callbacks, progress, divergence,
-- bad input; ntk.kernel_distance.
local ntk = require "ntk"
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local ref = dofile(root .. "/tests/fixtures/train_reference.lua")

local inputs = H.inputs

-- Central differences of net:loss over every parameter.
local function fd_grad(net, X, Y, loss)
  local theta = net:params()
  local g = ntk.matrix(theta:rows(), 1)
  for p = 1, theta:rows() do
    local t, h = theta:get(p, 1), 1e-5
    theta:set(p, 1, t + h)
    net:set_params(theta)
    local lp = net:loss(X, Y, loss)
    theta:set(p, 1, t - h)
    net:set_params(theta)
    local lm = net:loss(X, Y, loss)
    theta:set(p, 1, t)
    g:set(p, 1, (lp - lm) / (2 * h))
  end
  net:set_params(theta)
  return g
end

-- Two separable blobs in the plane; labels 1 and 2.
local function blobs(n, seed)
  local X = ntk.randn(n, 2, seed)
  local y = ntk.matrix(n, 1)
  for i = 1, n do
    local s = X:get(i, 1) + X:get(i, 2) > 0 and 1 or -1
    X:set(i, 1, X:get(i, 1) + 1.5 * s)
    X:set(i, 2, X:get(i, 2) + 1.5 * s)
    y:set(i, 1, s > 0 and 2 or 1)
  end
  return X, y
end

describe("losses and gradients", function()
  it("follow the documented definitions by hand", function()
    -- one linear layer, ntk parameterization: f = (w / sqrt 2) W x + b_std b
    local net = ntk.mlp{sizes = {2, 2}, weight_std = 1.3, bias_std = 0.4}
    net:set_layer(1, ntk.matrix{{1, 0}, {0, 1}}, ntk.vector{0.5, -0.5})
    local X = ntk.matrix{{1, 2}, {-1, 0.5}}
    local c = 1.3 / math.sqrt(2)
    local f = {{c + 0.2, 2 * c - 0.2}, {-c + 0.2, 0.5 * c - 0.2}}
    local Y = ntk.matrix{{0.3, -0.1}, {1, 2}}
    local mse = 0
    for i = 1, 2 do
      for a = 1, 2 do mse = mse + 0.5 * (f[i][a] - Y:get(i, a)) ^ 2 end
    end
    assert.near(mse / 2, net:loss(X, Y), 1e-15)
    assert.near(mse / 2, net:loss(X, Y, "mse"), 1e-15)
    local function lse(r) return math.log(math.exp(r[1]) + math.exp(r[2])) end
    local ce = 0.5 * ((lse(f[1]) - f[1][2]) + (lse(f[2]) - f[2][1]))
    assert.near(ce, net:loss(X, ntk.vector{2, 1}, "cross_entropy"), 1e-15)
    assert.near(ce, net:loss(X, ntk.matrix{{0, 1}, {1, 0}}, "cross_entropy"), 1e-15)
  end)

  it("have gradients that match finite differences", function()
    local X = ntk.randn(5, 3, 4)
    for _, act in ipairs{"tanh", "gelu", "softplus"} do
      for _, param in ipairs{"ntk", "standard"} do
        local net = ntk.mlp{sizes = {3, 6, 5, 3}, activation = act, parameterization = param, seed = 2}
        local cases = {
          {ntk.randn(5, 3, 8), "mse"},
          {ntk.vector{1, 3, 2, 2, 1}, "cross_entropy"},
          {ntk.rand(5, 3, 9), "cross_entropy"},
        }
        for _, c in ipairs(cases) do
          local g, l = net:grad(X, c[1], c[2])
          assert.equal(net:num_params(), g:rows())
          assert.near(net:loss(X, c[1], c[2]), l, 1e-15)
          local err = H.rel(g, fd_grad(net, X, c[1], c[2]))
          assert.is_true(err < 1e-7, string.format("%s %s %s: %g", act, param, c[2], err))
        end
      end
    end
  end)

  it("agree with PyTorch autograd", function()
    for _, c in ipairs(ref.train) do
      local net = H.fixture_net(c)
      local X = inputs(c.n, c.sizes[1], 0)
      local loss = c.kind == "mse" and "mse" or "cross_entropy"
      local g, l = net:grad(X, ntk.matrix(c.Y), loss)
      assert.near(c.loss, l, 1e-14 * math.abs(c.loss))
      assert.is_true(H.rel(g, ntk.matrix(c.grad)) < 1e-12, c.name)
    end
  end)

  it("give the vector-Jacobian product J^T g", function()
    local net = ntk.mlp{sizes = {4, 7, 3}, activation = "sin", seed = 3}
    local X, G = ntk.randn(5, 4, 1), ntk.randn(5, 3, 2)
    local J = net:jacobian(X) -- (N m) x P
    local want = J:T():mm(G:reshape(15, 1))
    assert.is_true(H.rel(net:vjp(X, G), want) < 1e-13)
    assert.error_matches(function() net:vjp(X, ntk.randn(5, 2)) end, "G must be 5x3")
  end)

  it("reject bad targets naming the argument", function()
    local net = ntk.mlp{sizes = {2, 4, 3}}
    local X = ntk.randn(3, 2)
    assert.error_matches(function() net:loss(X, ntk.zeros(3, 2)) end, "Y must be 3x3 %(one target row per sample%) for mse")
    assert.error_matches(function() net:loss(X, ntk.zeros(3, 3), "hinge") end, "unknown loss 'hinge'")
    assert.error_matches(function() net:loss(X, ntk.vector{1, 0, 2}, "cross_entropy") end,
                         "class indices 1..3, got 0.0+ at row 2")
    assert.error_matches(function() net:loss(X, ntk.vector{1, 4, 2}, "cross_entropy") end, "1..3")
    assert.error_matches(function() net:loss(X, ntk.vector{1, 1.5, 2}, "cross_entropy") end, "1..3")
    assert.error_matches(function() net:loss(X, ntk.zeros(3, 2), "cross_entropy") end, "or 3x1")
    assert.error_matches(function() net:loss(X, -ntk.ones(3, 3), "cross_entropy") end, "non%-negative")
    local Y = ntk.zeros(3, 3)
    Y:set(2, 3, 0 / 0)
    assert.error_matches(function() net:grad(X, Y) end, "Y contains NaN at row 2, column 3")
    assert.error_matches(function() net:grad(ntk.randn(3, 3), ntk.zeros(3, 3)) end, "X must be N x 2")
    assert.error_matches(function() net:grad(ntk.matrix(0, 2), ntk.zeros(0, 3)) end, "at least one row")
    assert.error_matches(function() net:grad(X, {}) end, "Y must be an ntk.Matrix")
    assert.error_matches(function() ntk.mlp{sizes = {2, 1}}:loss(X, ntk.vector{1, 1, 1}, "cross_entropy") end,
                         "at least 2 outputs")
  end)
end)

describe("net:train", function()
  it("reproduces PyTorch's optimizers step for step", function()
    for _, c in ipairs(ref.train) do
      local X = inputs(c.n, c.sizes[1], 0)
      local Y = ntk.matrix(c.Y)
      for _, run in ipairs(c.runs) do
        local net = H.fixture_net(c)
        local opts = {X = X, Y = Y, loss = c.kind == "mse" and "mse" or "cross_entropy"}
        for k, v in pairs(run.opts) do opts[k] = v end
        local hist = net:train(opts)
        assert.equal(#run.history, #hist)
        for e = 1, #hist do assert.near(run.history[e], hist[e], 1e-13 * run.history[e]) end
        assert.is_true(H.rel(net:params(), ntk.matrix(run.params)) < 1e-12,
                       c.name .. " " .. run.opts.optimizer)
      end
    end
  end)

  it("takes the documented steps (checked by hand with net:grad)", function()
    local X, Y = ntk.randn(6, 3, 1), ntk.randn(6, 2, 2)
    local function fresh() return ntk.mlp{sizes = {3, 5, 2}, activation = "tanh", seed = 9} end
    local probe = fresh()
    local t0 = probe:params()
    local g0 = probe:grad(X, Y)
    -- sgd
    local net = fresh()
    net:train{X = X, Y = Y, lr = 0.1}
    assert.is_true(H.rel(net:params(), t0 - 0.1 * g0) < 1e-14)
    -- momentum, two steps
    local t1 = t0 - 0.1 * g0
    probe:set_params(t1)
    local g1 = probe:grad(X, Y)
    net = fresh()
    net:train{X = X, Y = Y, lr = 0.1, optimizer = "momentum", momentum = 0.5, epochs = 2}
    assert.is_true(H.rel(net:params(), t1 - 0.1 * (0.5 * g0 + g1)) < 1e-14)
    -- adam, first step: lr * g / (|g| + eps) entrywise
    net = fresh()
    net:train{X = X, Y = Y, lr = 0.01, optimizer = "adam", eps = 1e-3}
    local step = ntk.matrix(t0:rows(), 1)
    for p = 1, t0:rows() do
      local gp = g0:get(p, 1)
      step:set(p, 1, 0.01 * gp / (math.abs(gp) + 1e-3))
    end
    assert.is_true(H.rel(net:params(), t0 - step) < 1e-13)
  end)

  it("fits a small separable problem to near-zero loss", function()
    local X, y = blobs(40, 21)
    local net = ntk.mlp{sizes = {2, 32, 2}, activation = "relu", seed = 4}
    local before = net:loss(X, y, "cross_entropy")
    local hist = net:train{X = X, Y = y, loss = "cross_entropy", optimizer = "adam", lr = 0.05,
                           epochs = 300, batch_size = 10, seed = 1}
    assert.equal(300, #hist)
    assert.is_true(hist[300] < 1e-2, hist[300])
    assert.is_true(before > 0.1)
    assert.near(net:loss(X, y, "cross_entropy"), hist[300], 1e-15)
    -- every sample classified right
    local F = net:forward(X)
    for i = 1, 40 do
      local pick = F:get(i, 2) > F:get(i, 1) and 2 or 1
      assert.equal(y:get(i, 1), pick)
    end
  end)

  it("shuffles reproducibly from its seed", function()
    local X, Y = ntk.randn(9, 2, 1), ntk.randn(9, 1, 2)
    local function run(seed, shuffle)
      local net = ntk.mlp{sizes = {2, 8, 1}, seed = 3}
      net:train{X = X, Y = Y, lr = 0.05, epochs = 3, batch_size = 2, seed = seed, shuffle = shuffle}
      return net:params()
    end
    assert.equal(0, (run(5) - run(5)):max_abs())
    assert.is_true((run(5) - run(6)):max_abs() > 1e-8)
    assert.equal(0, (run(5, false) - run(6, false)):max_abs())
  end)

  it("calls back after every epoch and stops when the callback returns false", function()
    local X, Y = ntk.randn(8, 3, 1), ntk.randn(8, 2, 2)
    local net = ntk.mlp{sizes = {3, 16, 2}, activation = "tanh", seed = 1}
    local seen = {}
    local hist = net:train{X = X, Y = Y, lr = 0.1, epochs = 10, callback = function(epoch, loss)
      seen[#seen + 1] = loss
      assert.equal(#seen, epoch)
      assert.near(net:loss(X, Y), loss, 1e-15) -- the network is current
      if epoch == 4 then return false end
    end}
    assert.equal(4, #hist)
    assert.same(hist, seen)
  end)

  it("lets the callback measure kernels while the progress display goes on", function()
    local X, Y = ntk.randn(6, 3, 1), ntk.randn(6, 1, 2)
    local net = ntk.mlp{sizes = {3, 32, 1}, seed = 2}
    local K0 = net:ntk(X)
    local drift, progress = {}, {}
    net:train{X = X, Y = Y, lr = 0.5, epochs = 5,
              progress = function(task, done, total)
                if task == "train" then progress[#progress + 1] = done end
              end,
              callback = function(epoch)
                drift[epoch] = ntk.kernel_distance(K0, net:ntk(X, {progress = false}))
              end}
    assert.equal(5, #drift)
    assert.is_true(drift[5] > drift[1] and drift[1] > 0)
    -- start, then one report per epoch: none lost to the nested ntk calls
    assert.same({0, 1, 2, 3, 4, 5}, progress)
  end)

  it("raises the callback's error after cleaning up", function()
    local X, Y = ntk.randn(4, 2, 1), ntk.randn(4, 1, 2)
    local net = ntk.mlp{sizes = {2, 4, 1}}
    collectgarbage()
    collectgarbage()
    local before = ntk.bytes_in_use()
    local ok, err = pcall(net.train, net, {X = X, Y = Y, epochs = 5, callback = function(e)
      if e == 2 then error({code = 42}) end
    end})
    assert.is_false(ok)
    assert.same({code = 42}, err)
    assert.equal(before, ntk.bytes_in_use())
    assert.error_matches(function()
      net:train{X = X, Y = Y, epochs = 3, callback = function() getmetatable(net).__close(net) end}
    end, "in use by a running computation")
    assert.error_matches(function()
      net:train{X = X, Y = Y, epochs = 3, progress = function() getmetatable(net).__gc(net) end}
    end, "in use by a running computation")
    assert.equal(1, net:num_params() > 0 and 1 or 0) -- still open
  end)

  it("keeps its data alive when the callback drops the option table's references", function()
    local net = ntk.mlp{sizes = {2, 4, 1}}
    local opts = {Y = ntk.randn(50, 1, 2), epochs = 3}
    opts.X = ntk.randn(50, 2, 1)
    opts.callback = function()
      opts.X, opts.Y = nil, nil
      collectgarbage()
      collectgarbage()
    end
    assert.equal(3, #net:train(opts))
  end)

  it("is interrupted by its progress function and restores the last epoch", function()
    local X, Y = ntk.randn(9, 3, 1), ntk.randn(9, 2, 2)
    local a = ntk.mlp{sizes = {3, 8, 2}, seed = 1}
    local b = a:copy()
    local after2
    a:train{X = X, Y = Y, lr = 0.05, epochs = 2, batch_size = 4}
    after2 = a:params()
    collectgarbage()
    collectgarbage()
    local before = ntk.bytes_in_use()
    assert.error_matches(function()
      b:train{X = X, Y = Y, lr = 0.05, epochs = 10, batch_size = 4,
              progress = function(_, done) return done <= 2.5 end}
    end, "interrupted during train")
    assert.equal(0, (b:params() - after2):max_abs())
    assert.equal(before, ntk.bytes_in_use())
  end)

  it("returns nil, a message and the history when training diverges", function()
    local X, Y = ntk.randn(6, 2, 1), ntk.randn(6, 1, 2)
    local net = ntk.mlp{sizes = {2, 8, 1}, seed = 1}
    local start = net:params()
    local hist, msg, partial = net:train{X = X, Y = Y, lr = 1e300, epochs = 4}
    assert.is_nil(hist)
    assert.matches("diverged in epoch 1", msg)
    assert.same({}, partial)
    assert.equal(0, (net:params() - start):max_abs())
  end)

  it("rejects bad options naming them", function()
    local net = ntk.mlp{sizes = {2, 4, 3}}
    local X, Y = ntk.randn(3, 2), ntk.zeros(3, 3)
    local function bad(extra, pattern)
      local o = {X = X, Y = Y}
      for k, v in pairs(extra) do o[k] = v end
      assert.error_matches(function() net:train(o) end, pattern)
    end
    assert.error_matches(function() net:train() end, "table expected")
    assert.error_matches(function() net:train{Y = Y} end, "X must be an ntk.Matrix")
    bad({X = ntk.randn(3, 3)}, "X must be N x 2")
    bad({Y = ntk.zeros(2, 3)}, "Y must be 3x3")
    bad({lr = 0}, "lr must be > 0")
    bad({lr = -1}, "lr must be > 0")
    bad({lr = 0 / 0}, "finite")
    bad({epochs = -1}, "epochs must be")
    bad({epochs = 1.5}, "epochs")
    bad({batch_size = -2}, "batch_size")
    bad({momentum = 1}, "momentum must be in %[0, 1%)")
    bad({beta1 = -0.1}, "beta1")
    bad({beta2 = 1}, "beta2")
    bad({eps = 0}, "eps must be > 0")
    bad({optimizer = "rmsprop"}, "unknown optimizer 'rmsprop'")
    bad({loss = "hinge"}, "unknown loss 'hinge'")
    bad({callback = 3}, "callback must be a function")
    bad({progress = 3}, "progress")
    bad({shuffle = "yes"}, "shuffle")
    bad({learning_rate = 0.1}, "unknown option 'learning_rate'")
    local Xn = ntk.randn(3, 2)
    Xn:set(1, 2, math.huge)
    bad({X = Xn}, "X contains Inf at row 1, column 2")
    bad({X = ntk.matrix(0, 2), Y = ntk.zeros(0, 3)}, "at least one row")
    assert.same({}, net:train{X = X, Y = Y, epochs = 0})
  end)
end)

describe("ntk.kernel_distance", function()
  it("gives the relative Frobenius change and 1 - alignment", function()
    local I = ntk.eye(3)
    local rel, mis = ntk.kernel_distance(I, 2 * I)
    assert.near(1, rel, 1e-15)
    assert.near(0, mis, 1e-15)
    local D = ntk.matrix{{1, 0}, {0, -1}}
    rel, mis = ntk.kernel_distance(ntk.eye(2), D)
    assert.near(math.sqrt(2), rel, 1e-15)
    assert.near(1, mis, 1e-15)
    -- against the definitions on random matrices
    local A, B = ntk.randn(4, 4, 1), ntk.randn(4, 4, 2)
    rel, mis = ntk.kernel_distance(A, B)
    assert.near((B - A):norm() / A:norm(), rel, 1e-14)
    assert.near(1 - A:cmul(B):sum() / (A:norm() * B:norm()), mis, 1e-14)
    -- tiny drifts keep their precision
    local t = 1e-9
    rel, mis = ntk.kernel_distance(ntk.matrix{{1, 0}}, ntk.matrix{{math.cos(t), math.sin(t)}})
    assert.near(2 * math.sin(t / 2) ^ 2, mis, 1e-6 * t * t)
  end)

  it("tracks a kernel's drift during training, smaller for wider networks", function()
    local X, Y = ntk.randn(8, 3, 1), ntk.randn(8, 1, 2)
    local drift = {}
    for w, width in ipairs{32, 512} do
      local net = ntk.mlp{sizes = {3, width, width, 1}, activation = "tanh", seed = 3}
      local K0 = net:ntk(X)
      net:train{X = X, Y = Y, lr = 0.5, epochs = 30}
      drift[w] = ntk.kernel_distance(K0, net:ntk(X))
    end
    assert.is_true(drift[2] < drift[1] / 2, drift[1] .. " " .. drift[2])
  end)

  it("rejects bad kernels", function()
    assert.error_matches(function() ntk.kernel_distance(ntk.eye(2), ntk.eye(3)) end,
                         "K1 must have K0's shape 2x2, got 3x3")
    assert.error_matches(function() ntk.kernel_distance(ntk.zeros(2, 2), ntk.eye(2)) end, "K0 is zero")
    assert.error_matches(function() ntk.kernel_distance(ntk.eye(2), ntk.zeros(2, 2)) end, "K1 is zero")
    assert.error_matches(function() ntk.kernel_distance(ntk.matrix(0, 0), ntk.matrix(0, 0)) end, "empty")
    local K = ntk.eye(2)
    K:set(1, 2, 0 / 0)
    assert.error_matches(function() ntk.kernel_distance(ntk.eye(2), K) end, "K1 contains NaN")
    assert.error_matches(function() ntk.kernel_distance(ntk.eye(2)) end, "ntk.Matrix expected")
  end)
end)

describe("examples", function()
  -- Both run end to end on small sizes and write their CSV and plots.
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local runs = {
    ntk_convergence = {"n=6", "widths=8,32", "seeds=2", "out=" .. dir},
    lazy_training = {"n=8", "widths=8,32", "seeds=1", "epochs=10", "out=" .. dir},
  }
  for name, args in pairs(runs) do
    it(name .. ".lua runs", function()
      local printed = {}
      local env = setmetatable({print = function(...)
        printed[#printed + 1] = table.concat({...}, " ")
      end}, {__index = _G})
      local chunk = assert(loadfile(root .. "/examples/" .. name .. ".lua", "t", env))
      chunk(table.unpack(args))
      local out = table.concat(printed, "\n")
      assert.matches("slope of log", out)
      local f = assert(io.open(dir .. "/" .. name .. ".csv"))
      local text = f:read("a")
      f:close()
      local lines = 0
      for _ in text:gmatch("\n") do lines = lines + 1 end
      assert.is_true(lines >= 3, text)
      assert.is_nil(text:find("nan") or text:find("inf"))
      if ntk.plot and ntk.plot.lines then
        local svg = dir .. "/" .. name .. ".svg"
        assert.matches("wrote " .. svg:gsub("%p", "%%%0"), out)
        local ok = os.execute("xmllint --noout '" .. svg .. "' 2>/dev/null")
        assert.is_true(ok == true or ok == 0, svg .. " does not parse")
      end
      assert.error_matches(function() chunk("bogus=1") end, "unknown argument 'bogus=1'")
    end)
  end
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)
end)
