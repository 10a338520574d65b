-- How the NTK's spectrum changes with the network's width and depth: one
-- plot of trace-normalised eigenvalues (colour = width, dash = depth) and a
-- table of summary statistics.
--
--   ntk examples/spectrum_vs_width.lua [n=100] [widths=64,256,1024] [depths=1,2,3]
--       [seed=1] [out=.]
--
-- n Fashion-MNIST images, MLPs 784 -> width x depth (relu) -> 10, the full
-- (n m) x (n m) kernel of each. Writes spectrum_vs_width.svg to `out`.
local ntk = require "ntk"

local opt = ntk.args({n = 100, widths = {64, 256, 1024}, depths = {1, 2, 3}, seed = 1, out = "."}, ...)
local widths, depths = opt.widths, opt.depths
for _, list in ipairs{"widths", "depths"} do
  for _, v in ipairs(opt[list]) do
    if v < 1 then error(list .. " must be positive integers, got " .. v, 0) end
  end
end
local fmt = string.format

local X, err = ntk.datasets.fashion_mnist{split = "train", n = opt.n, seed = opt.seed}
if not X then error(err, 0) end
local N, n_in = X:shape()
local m = 10

print(fmt("NTK spectra of relu MLPs on N = %d Fashion-MNIST images (kernels %d x %d)", N, N * m, N * m))
print(fmt("%6s %6s %9s %10s %11s %10s %11s %8s %8s", "depth", "width", "P", "trace", "lambda_max",
          "eff.rank", "condition", "top-10", "seconds"))

local PALETTE = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"}
local DASHES = {false, "6,3", "2,2", "8,3,2,3"}
local series = {}
for di, depth in ipairs(depths) do
  for wi, w in ipairs(widths) do
    local sizes = {n_in}
    for _ = 1, depth do sizes[#sizes + 1] = w end
    sizes[#sizes + 1] = m
    local net = ntk.mlp{sizes = sizes, activation = "relu", seed = opt.seed}
    local t = ntk.clock()
    local K = net:ntk(X)
    local ev = ntk.eigvalsh(K)
    t = ntk.clock() - t
    local st = ntk.spectrum_stats(ev)
    print(fmt("%6d %6d %9d %10.4g %11.4g %10.2f %11.4g %8.3f %8.2f", depth, w, net:num_params(), st.trace,
              st.max, st.effective_rank, st.condition, st.top_fraction, t))
    series[#series + 1] = {values = ev, label = fmt("depth %d, width %d", depth, w),
                           color = PALETTE[(wi - 1) % #PALETTE + 1], dash = DASHES[(di - 1) % #DASHES + 1]}
  end
end

local sep = package.config:sub(1, 1)
local dir = opt.out
if dir:sub(1, 1) ~= sep and os.getenv("PWD") then
  dir = dir == "." and os.getenv("PWD") or os.getenv("PWD") .. sep .. dir
end
local svg = assert(ntk.plot.spectrum(series, dir .. sep .. "spectrum_vs_width.svg", {
  normalize = "trace", logx = true,
  title = fmt("NTK spectrum against width and depth (N = %d Fashion-MNIST images)", N),
  ylabel = "eigenvalue / trace"}))
print("wrote " .. svg)
