-- The m x m block structure of the NTK, the seed note's subject: block (i, j)
-- of K is Df(x_i)^T Df(x_j), so output a at x_i is coupled to every output b
-- at x_j. At infinite width the blocks become Theta(x_i, x_j) I_m: no
-- coupling across outputs, and every output sees the same kernel. This
-- example measures both departures at finite width and how they fade.
--
--   ntk examples/per_output_blocks.lua [n=40] [widths=16,64,256,1024] [depth=2]
--       [seeds=3] [data=fashion|gaussian] [out=.]
--
-- With Dmask the 0/1 matrix of same-output entries ((i,a), (j,b) with a = b)
-- and Theta the trace kernel (mean over outputs), K splits orthogonally:
--   K - Theta x I = (K - K o Dmask)  +  (K o Dmask - Theta x I)
--                    cross-output       same-output spread
-- Writes per_output_blocks.svg (both against width) and
-- per_output_heatmap.svg (K - Theta x I at the smallest width).
local ntk = require "ntk"

local opt = ntk.args({n = 40, widths = {16, 64, 256, 1024}, depth = 2, seeds = 3, data = "fashion",
                      out = "."}, ...)
local widths = opt.widths
assert(#widths >= 1 and opt.n >= 2 and opt.seeds >= 1 and opt.depth >= 1, "need widths, n >= 2, seeds >= 1")
local fmt = string.format

local X
if opt.data == "fashion" then
  local err
  X, err = ntk.datasets.fashion_mnist{split = "train", n = opt.n, seed = 7}
  if not X then error(err, 0) end
elseif opt.data == "gaussian" then
  X = ntk.randn(opt.n, 784, 7) / math.sqrt(784) * 10 -- about the norm of an image
else
  error("data must be fashion or gaussian, got " .. opt.data, 0)
end
local N, n_in = X:shape()
local m = 10

-- Selection matrices, so the block algebra is matrix products (BLAS):
-- S (N m x m) picks output a of every sample; E (N m x N) spreads sample i
-- over its m rows.
local S, E = ntk.matrix(N * m, m), ntk.matrix(N * m, N)
for i = 1, N do
  for a = 1, m do
    S:set((i - 1) * m + a, a, 1)
    E:set((i - 1) * m + a, i, 1)
  end
end
local Dmask = S:mm(S:T())       -- 1 where the outputs agree
local Et = E:T()

print(fmt("Per-output blocks of the NTK: N = %d %s inputs, m = %d outputs, depth %d, RMS over %d seeds per width",
          N, opt.data == "fashion" and "Fashion-MNIST" or "Gaussian", m, opt.depth, opt.seeds))
print(fmt("%8s %10s %18s %20s %18s", "width", "P", "cross-output", "same-output spread", "K vs Theta x I"))

local rows, first_residual = {}, nil
for _, w in ipairs(widths) do
  local sizes = {n_in}
  for _ = 1, opt.depth do sizes[#sizes + 1] = w end
  sizes[#sizes + 1] = m
  local acc = {cross = 0, spread = 0, total = 0}
  local P
  for seed = 1, opt.seeds do
    local net = ntk.mlp{sizes = sizes, activation = "relu", seed = 1000 * w + seed}
    P = net:num_params()
    local K = net:ntk(X)
    local Theta = net:ntk(X, {mode = "trace", normalize = "mean"})
    local kron = E:mm(Theta):mm(Et):cmul(Dmask)   -- Theta x I_m
    local same = K:cmul(Dmask)
    local norm = K:norm()
    local cross = (K - same):norm() / norm
    local spread = (same - kron):norm() / norm
    local total = (K - kron):norm() / norm
    -- the two parts are orthogonal: a check on the arithmetic above
    assert(math.abs(total ^ 2 - cross ^ 2 - spread ^ 2) <= 1e-9 * math.max(total ^ 2, 1e-300))
    acc.cross, acc.spread, acc.total = acc.cross + cross ^ 2, acc.spread + spread ^ 2, acc.total + total ^ 2
    if not first_residual then first_residual = {K = K - kron, width = w} end
  end
  -- root mean squares over the seeds, so the parts still add in squares
  local r = {width = w, P = P, cross = math.sqrt(acc.cross / opt.seeds),
             spread = math.sqrt(acc.spread / opt.seeds), total = math.sqrt(acc.total / opt.seeds)}
  rows[#rows + 1] = r
  print(fmt("%8d %10d %18.4g %20.4g %18.4g", w, P, r.cross, r.spread, r.total))
end

if #rows >= 2 then
  local a, b = rows[1], rows[#rows]
  print(fmt("slope of log(cross-output) against log(width): %.3f (infinite-width theory: fluctuations ~ width^-1/2)",
            math.log(b.cross / a.cross) / math.log(b.width / a.width)))
end

local sep = package.config:sub(1, 1)
local function out_path(name)
  local dir = opt.out
  if dir:sub(1, 1) ~= sep and os.getenv("PWD") then
    dir = dir == "." and os.getenv("PWD") or os.getenv("PWD") .. sep .. dir
  end
  return dir .. sep .. name
end

local x, cross, spread, total, ref = {}, {}, {}, {}, {}
for i, r in ipairs(rows) do
  x[i], cross[i], spread[i], total[i] = r.width, r.cross, r.spread, r.total
  ref[i] = rows[1].total * math.sqrt(rows[1].width / r.width)
end
local lines_svg = assert(ntk.plot.lines({
  {x = x, y = total, label = "||K - Theta x I|| / ||K||"},
  {x = x, y = cross, label = "cross-output part"},
  {x = x, y = spread, label = "same-output spread"},
  {x = x, y = ref, label = "width^-1/2 (reference)", dash = true, color = "#999999"},
}, out_path("per_output_blocks.svg"), {
  logx = true, logy = #rows >= 1, xlabel = "hidden width", ylabel = "relative Frobenius norm",
  title = fmt("How far the NTK's %dx%d blocks are from Theta I (N = %d, depth %d)", m, m, N, opt.depth)}))

local show = math.min(N, 12) * m
local heat_svg = assert(ntk.plot.heatmap(first_residual.K:sub(1, show, 1, show), out_path("per_output_heatmap.svg"), {
  block = m,
  title = fmt("K - Theta x I at width %d: couplings across outputs and samples", first_residual.width)}))
print("wrote " .. lines_svg)
print("      " .. heat_svg)
