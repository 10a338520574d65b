-- The empirical NTK of finite networks converging to the infinite-width
-- (analytic) NTK as the width grows.
--
--   lua5.4 examples/ntk_convergence.lua [outdir] [--quick]
--
-- For relu and erf MLPs of depth 3 under the ntk parameterization, draws
-- several random networks per width, measures the relative Frobenius error
-- ||K_emp - Theta||_F / ||Theta||_F against ntk.analytic, prints a table
-- with the fitted slope of log error against log width (theory: -1/2),
-- and writes ntk_convergence.csv (and ntk_convergence.svg when ntk.plot
-- is available) into outdir (default: the current directory).
local ntk = require "ntk"

local outdir, quick = ".", false
for _, a in ipairs{...} do
  if a == "--quick" then quick = true else outdir = a end
end

local N, n0 = 16, 8
local X = ntk.randn(N, n0, 1)
local widths = quick and {16, 64} or {16, 32, 64, 128, 256, 512, 1024}
local seeds = quick and 2 or 8
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
  local spec = {sizes = {n0, 1, 1, 1}, activation = act, weight_std = 1.4, bias_std = 0.1}
  local theta = ntk.analytic(spec):ntk(X)
  local errs = {}
  for _, width in ipairs(widths) do
    spec.sizes = {n0, width, width, 1}
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

local csv = outdir .. "/ntk_convergence.csv"
local f = assert(io.open(csv, "w"))
f:write("activation,width,seeds,mean_rel_error,std_rel_error\n", table.concat(rows, "\n"), "\n")
f:close()
print("wrote " .. csv)

-- A width^(-1/2) guide through the first relu point.
local guide = {}
for i, w in ipairs(widths) do guide[i] = series[1].y[1] * math.sqrt(widths[1] / w) end
series[#series + 1] = {x = widths, y = guide, label = "width^-1/2", dash = true}
if ntk.plot and ntk.plot.lines then
  local svg = outdir .. "/ntk_convergence.svg"
  local ok, err = pcall(ntk.plot.lines, series, svg, {
    logx = true, logy = true, xlabel = "width", ylabel = "||K - Theta||_F / ||Theta||_F",
    title = "Empirical NTK -> analytic NTK (depth 3, " .. seeds .. " nets per width)"})
  print(ok and ("wrote " .. svg) or ("no plot: " .. tostring(err)))
else
  print("ntk.plot.lines is not available in this build: plot the CSV instead")
end
