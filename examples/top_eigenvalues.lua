-- The top of an NTK's spectrum without forming the kernel: net:ntk_eigs
-- (block Lanczos on kernel-vector products) checked against the dense
-- eigendecomposition on a small set, then run on sets whose kernels would
-- not fit in memory. The plot shows l_i / N against i for each N: the top
-- eigenvalues of the empirical kernel, divided by the number of samples,
-- settle towards those of the kernel's integral operator.
--
--   ntk examples/top_eigenvalues.lua [n=200] [big=1000,3000] [k=10] [width=256]
--       [seed=1] [out=.]
--
-- Fashion-MNIST images, the MLP 784 -> width -> width -> 10 (relu). Writes
-- top_eigenvalues.svg to `out`.
local ntk = require "ntk"

local opt = ntk.args({n = 200, big = {1000, 3000}, k = 10, width = 256, seed = 1, out = "."}, ...)
local bigs = opt.big
for _, v in ipairs(bigs) do
  if v < 1 then error("big must be positive integers, got " .. v, 0) end
end
local fmt, m, k = string.format, 10, opt.k
local net = ntk.mlp{sizes = {784, opt.width, opt.width, m}, activation = "relu", seed = opt.seed}
local clock = ntk.clock

local function images(n, seed)
  local X, labels, Y = ntk.datasets.fashion_mnist{split = "train", n = n, seed = seed, one_hot = true}
  if not X then error(labels, 0) end
  return X, labels, Y
end

local function peak_rss()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+) kB")
  return kb and tonumber(kb) / 1024
end

print(fmt("top %d eigenvalues of the NTK of a 784-%d-%d-10 relu MLP (P = %d) on Fashion-MNIST",
          k, opt.width, opt.width, net:num_params()))

-- 1. A set small enough to form K: the matrix-free values against LAPACK's.
local X, _, Y = images(opt.n, opt.seed)
local t = clock()
local K = net:ntk(X)
local ev = ntk.eigvalsh(K, {k = k})
local t_dense = clock() - t
t = clock()
local top, info = net:ntk_eigs(X, k)
local t_free = clock() - t
if not top then error(info, 0) end
local diff = 0
for i = 1, k do diff = math.max(diff, math.abs(top:get(i, 1) - ev:get(i, 1)) / ev:get(i, 1)) end
print(fmt("  N = %-6d kernel %d x %d formed and decomposed in %.2f s; matrix-free %.2f s;"
          .. " largest relative difference %.1e", opt.n, opt.n * m, opt.n * m, t_dense, t_free, diff))
print(fmt("             alignment with the labels %.4f (centred %.4f)", ntk.alignment(K, Y),
          ntk.alignment(K, Y, {center = true})))
K = nil
collectgarbage()

-- 2. Larger sets: products with K only.
local series = {{values = top / opt.n, label = fmt("N = %d", opt.n)}}
for _, N in ipairs(bigs) do
  local Xb = images(N, opt.seed + N)
  t = clock()
  local tb, ib = net:ntk_eigs(Xb, k)
  if not tb then error(ib, 0) end
  local rss = peak_rss()
  print(fmt("  N = %-6d kernel %d x %d (dense: %.2f GiB): %.2f s, %d iterations, %d products;"
            .. " l_1 = %.5g, l_%d = %.5g; peak resident %s", N, N * m, N * m,
            (N * m) ^ 2 * 8 / 2 ^ 30, clock() - t, ib.iterations, ib.matvecs, tb:get(1, 1), k,
            tb:get(k, 1), rss and fmt("%.0f MiB", rss) or "unknown"))
  series[#series + 1] = {values = tb / N, label = fmt("N = %d", N)}
end

local sep = package.config:sub(1, 1)
local dir = opt.out
if dir:sub(1, 1) ~= sep and os.getenv("PWD") then
  dir = dir == "." and os.getenv("PWD") or os.getenv("PWD") .. sep .. dir
end
local svg = assert(ntk.plot.spectrum(series, dir .. sep .. "top_eigenvalues.svg", {
  title = fmt("top %d NTK eigenvalues / N (matrix-free)", k), ylabel = "eigenvalue / N"}))
print("wrote " .. svg)
