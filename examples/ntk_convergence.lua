-- The empirical NTK of finite networks converging to the infinite-width
-- (analytic) NTK as the width grows.
--
--   ntk examples/ntk_convergence.lua [n=16] [widths=16,32,64,128,256,512,1024]
--       [depth=3] [seeds=8] [out=.]
--
-- For relu and erf MLPs under the ntk parameterization (n Gaussian inputs in
-- R^8), draws `seeds` random networks per width, measures the relative
-- Frobenius error ||K_emp - Theta||_F / ||Theta||_F against ntk.analytic,
-- prints a table with the fitted slope of log error against log width
-- (theory: -1/2, the fluctuations' 1/sqrt(width)), and writes
-- ntk_convergence.csv and ntk_convergence.svg into `out`.
local ntk = require "ntk"

local opt = ntk.args({n = 16, widths = {16, 32, 64, 128, 256, 512, 1024}, depth = 3, seeds = 8,
                      out = "."}, ...)
local N, n0 = opt.n, 8
local X = ntk.randn(N, n0, 1)
local widths = opt.widths
local seeds = opt.seeds
local acts = {"relu", "erf"}

local function slope(xs, ys)
  local n, sx, sy, sxx, sxy = #xs, 0, 0, 0, 0
  for i = 1, n do
    local x, y = math.log(xs[i]), math.log(ys[i])
    sx, sy, sxx, sxy = sx + x, sy + y, sxx + x * x, sxy + x * y
  end
  return (n * sxy - sx * sy) / (n * sxx - sx * sx)
end

local rows, series = {}, {}
print(string.format("%-6s %7s %12s %10s", "act", "width", "rel. error", "std"))
for _, act in ipairs(acts) do
  local function sizes(w)
    local t = {n0}
    for _ = 1, opt.depth - 1 do t[#t + 1] = w end
    t[#t + 1] = 1
    return t
  end
  local spec = {sizes = sizes(1), activation = act, weight_std = 1.4, bias_std = 0.1}
  local theta = ntk.analytic(spec):ntk(X)
  local errs = {}
  for _, width in ipairs(widths) do
    spec.sizes = sizes(width)
    local sum, sq = 0, 0
    for s = 1, seeds do
      spec.seed = s
      local K = ntk.mlp(spec):ntk(X, {progress = false})
      local e = (K - theta):norm() / theta:norm()
      sum, sq = sum + e, sq + e * e
    end
    spec.seed = nil
    local mean = sum / seeds
    local std = math.sqrt(math.max(sq / seeds - mean * mean, 0))
    errs[#errs + 1] = mean
    rows[#rows + 1] = string.format("%s,%d,%d,%.6g,%.6g", act, width, seeds, mean, std)
    print(string.format("%-6s %7d %12.5f %10.5f", act, width, mean, std))
  end
  print(string.format("%-6s slope of log error vs log width: %.3f (theory -0.5)", act,
                      slope(widths, errs)))
  series[#series + 1] = {x = widths, y = errs, label = act}
end

local csv = opt.out .. "/ntk_convergence.csv"
local f = assert(io.open(csv, "w"))
f:write("activation,width,seeds,mean_rel_error,std_rel_error\n", table.concat(rows, "\n"), "\n")
f:close()
print("wrote " .. csv)

-- A width^(-1/2) guide through the first relu point.
local guide = {}
for i, w in ipairs(widths) do guide[i] = series[1].y[1] * math.sqrt(widths[1] / w) end
series[#series + 1] = {x = widths, y = guide, label = "width^-1/2", dash = true}
local svg = opt.out .. "/ntk_convergence.svg"
local ok, err = pcall(ntk.plot.lines, series, svg, {
  logx = true, logy = true, xlabel = "width", ylabel = "||K - Theta||_F / ||Theta||_F",
  title = "Empirical NTK -> analytic NTK (depth " .. opt.depth .. ", " .. seeds .. " nets per width)"})
print(ok and ("wrote " .. svg) or ("no plot: " .. tostring(err)))
