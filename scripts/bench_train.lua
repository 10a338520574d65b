-- Timings for scripts/bench_train (the ntk side). Prints "task<TAB>median
-- seconds" lines; the task definitions match scripts/bench_train.py.
local ntk = require "ntk"
local threads = tonumber(arg[1]) or 1
local reps = tonumber(arg[2]) or 5
ntk.set_threads(threads)

local now = ntk.clock -- monotonic wall clock

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or 0.5 * (t[n / 2] + t[n / 2 + 1])
end

local function time(name, setup, run)
  local state = setup()
  run(state) -- warm-up
  local ts = {}
  for i = 1, reps do
    local t0 = now()
    run(state)
    ts[i] = now() - t0
  end
  print(string.format("%s\t%.6f", name, median(ts)))
end

-- Deterministic data shared with the Python side: x_ij = sin(0.37 i + 0.11 j),
-- labels (i mod 10) + 1.
local function data(N, n)
  local X = ntk.matrix(N, n)
  for i = 1, N do
    for j = 1, n do X:set(i, j, math.sin(0.37 * i + 0.11 * j)) end
  end
  local y = ntk.matrix(N, 1)
  for i = 1, N do y:set(i, 1, (i - 1) % 10 + 1) end
  return X, y
end

local sizes = {784, 512, 512, 10}
time("grad  784-512-512-10 relu, N=1024, cross-entropy", function()
  local X, y = data(1024, 784)
  return {net = ntk.mlp{sizes = sizes, seed = 1}, X = X, y = y}
end, function(s) s.net:grad(s.X, s.y, {loss = "cross_entropy", progress = false}) end)

time("train 784-512-512-10 relu, N=4096, 1 epoch, batch 128, sgd", function()
  local X, y = data(4096, 784)
  return {net = ntk.mlp{sizes = sizes, seed = 1}, X = X, y = y}
end, function(s)
  s.net:train{X = s.X, Y = s.y, loss = "cross_entropy", lr = 0.01, batch_size = 128,
              shuffle = false, progress = false}
end)

time("train 784-512-512-10 relu, N=4096, 1 epoch, batch 128, adam", function()
  local X, y = data(4096, 784)
  return {net = ntk.mlp{sizes = sizes, seed = 1}, X = X, y = y}
end, function(s)
  s.net:train{X = s.X, Y = s.y, loss = "cross_entropy", optimizer = "adam", lr = 1e-3,
              batch_size = 128, shuffle = false, progress = false}
end)

time("analytic NTK relu depth 3, N=2000 x 2000, n0=784", function()
  local X = data(2000, 784)
  return {a = ntk.analytic{depth = 3, activation = "relu", weight_std = 1.4, bias_std = 0.1}, X = X}
end, function(s) s.a:ntk(s.X, {progress = false}) end)

time("analytic NTK erf depth 3, N=2000 x 2000, n0=784", function()
  local X = data(2000, 784)
  return {a = ntk.analytic{depth = 3, activation = "erf", weight_std = 1.4, bias_std = 0.1}, X = X}
end, function(s) s.a:ntk(s.X, {progress = false}) end)

time("analytic NTK tanh depth 2, N=200 x 200, quadrature tol 1e-8", function()
  local X = data(200, 784)
  return {a = ntk.analytic{depth = 2, activation = "tanh", weight_std = 1.4, bias_std = 0.1}, X = X}
end, function(s) s.a:ntk(s.X, {progress = false}) end)
