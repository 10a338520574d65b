-- Quickstart: the empirical NTK of an MLP on a Fashion-MNIST subset, its
-- spectrum and summary statistics, and two pictures.
--
--   ntk examples/quickstart.lua [n=256] [width=256] [depth=2] [seed=1] [out=.]
--
-- n images (one per row, 784 pixels scaled to [0, 1]) go through an MLP
-- 784 -> width x depth (relu) -> 10; the full block kernel K is
-- (n m) x (n m) with m = 10. Writes spectrum.svg and heatmap.svg to `out`.
local ntk = require "ntk"

local opt = ntk.args({n = 256, width = 256, depth = 2, seed = 1, out = "."}, ...)
assert(opt.n >= 2 and opt.width >= 1 and opt.depth >= 1, "need n >= 2, width >= 1, depth >= 1")
local fmt = string.format
local function mb(bytes) return fmt("%.1f MB", bytes / 2 ^ 20) end
local function peak_rss()
  local f = io.open("/proc/self/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local kb = s:match("VmHWM:%s*(%d+)")
  return kb and tonumber(kb) * 1024
end

print("ntk quickstart: the empirical neural tangent kernel of an MLP on Fashion-MNIST")

local t = ntk.clock()
local X, labels = ntk.datasets.fashion_mnist{split = "train", n = opt.n, seed = opt.seed}
if not X then error(labels, 0) end
local t_data = ntk.clock() - t
local N, n_in = X:shape()
print(fmt("  data      Fashion-MNIST train, N = %d random images (seed %d), %d pixels in [0, 1]  (%.2f s)",
          N, opt.seed, n_in, t_data))

local sizes = {n_in}
for _ = 1, opt.depth do sizes[#sizes + 1] = opt.width end
sizes[#sizes + 1] = 10
local net = ntk.mlp{sizes = sizes, activation = "relu", seed = opt.seed}
local m, P = net:output_dim(), net:num_params()
print(fmt("  network   %s relu MLP, %s parameterization, m = %d outputs, P = %d parameters",
          table.concat(sizes, "-"), net:parameterization(), m, P))

local plan = net:ntk_plan(X)
t = ntk.clock()
local K = net:ntk(X)
local t_kernel = ntk.clock() - t
print(fmt("  kernel    full block NTK, (N m) x (N m) = %d x %d, method %s, %.2f s (%.3g GFLOP)",
          K:rows(), K:cols(), plan.method, t_kernel, plan.flops / 1e9))
local rss = peak_rss()
print(fmt("  memory    kernel %s, working memory %s (planned), peak resident %s",
          mb(plan.output_bytes), mb(plan.memory), rss and mb(rss) or "unknown"))

t = ntk.clock()
local ev = ntk.eigvalsh(K)
local t_eig = ntk.clock() - t
local st = ntk.spectrum_stats(ev)
local top = {}
for k = 1, math.min(5, ev:rows()) do top[k] = fmt("%.4g", ev:get(k, 1)) end
print(fmt("  spectrum  eigvalsh %.2f s; trace %.4g; top eigenvalues %s", t_eig, st.trace, table.concat(top, ", ")))
print(fmt("            effective rank %.2f ((sum l)^2 / sum l^2), entropy rank %.2f", st.effective_rank,
          st.entropy_rank))
print(fmt("            condition number %.4g (largest / smallest %s), top-%d share of the trace %.3f",
          st.condition, st.min > 0 and "eigenvalue" or "- not positive definite", st.top_k, st.top_fraction))
if st.power_law then
  print(fmt("            power law l_k ~ %.3g k^-%.3f over ranks %d..%d (R^2 %.3f)", st.power_law.coef,
            st.power_law.alpha, st.power_law.first, st.power_law.last, st.power_law.r2))
end
print()
print(ntk.plot.text(ev, {width = 64, height = 8, title = "eigenvalues of K, largest first"}))
print()

-- The per-output picture: the trace kernel Theta (mean over outputs) times
-- the m x m identity is what infinite width predicts; its eigenvalues are
-- Theta's, each m times.
local T = net:ntk(X, {mode = "trace", normalize = "mean"})
local evT = ntk.eigvalsh(T)
local kron = {}
for k = 1, evT:rows() do
  for _ = 1, m do kron[#kron + 1] = evT:get(k, 1) end
end
local sep = package.config:sub(1, 1)
local function out_path(name) -- absolute, so the report says exactly where
  local dir = opt.out
  if dir:sub(1, 1) ~= sep and os.getenv("PWD") then
    dir = dir == "." and os.getenv("PWD") or os.getenv("PWD") .. sep .. dir
  end
  return dir .. sep .. name
end
local spectrum_svg = assert(ntk.plot.spectrum(
  {{values = ev, label = fmt("K, full block NTK (%d x %d)", K:rows(), K:cols())},
   {values = kron, label = fmt("Theta x I_%d (trace kernel, mean over outputs)", m), dash = true}},
  out_path("spectrum.svg"),
  {title = fmt("NTK spectrum: %s relu MLP, N = %d Fashion-MNIST images", table.concat(sizes, "-"), N),
   logx = true}))

-- The kernel of a few images sorted by class: m x m blocks per pair.
local pick = {}
for i = 1, math.min(N, 20) do pick[i] = i end
table.sort(pick, function(a, b)
  local la, lb = labels:get(a, 1), labels:get(b, 1)
  if la ~= lb then return la < lb end
  return a < b
end)
local rows = {}
for i, r in ipairs(pick) do rows[i] = X:row(r):totable()[1] end
local Ks = net:ntk(ntk.matrix(rows))
local heatmap_svg = assert(ntk.plot.heatmap(Ks, out_path("heatmap.svg"), {
  block = m,
  title = fmt("NTK of %d images sorted by class: %d x %d blocks, one per pair", #pick, m, m)}))

print("  wrote     " .. spectrum_svg .. "  (eigenvalues of K against Theta x I)")
print("            " .. heatmap_svg .. "  (kernel heatmap with its m x m blocks)")
