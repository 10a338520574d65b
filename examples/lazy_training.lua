-- Lazy training: under the ntk parameterization the empirical NTK moves
-- less and less during training as the network gets wider.
--
--   ntk examples/lazy_training.lua [n=24] [widths=16,32,64,128,256,512,1024]
--       [depth=3] [seeds=3] [epochs=200] [lr=0.5] [out=.]
--
-- Trains tanh MLPs of growing width by full-batch gradient descent on the
-- same regression problem (n points in the plane, target sin(2 x1) cos(x2);
-- same learning rate, same epochs) and measures the kernel's drift between
-- initialisation and the end of training with ntk.kernel_distance (relative
-- Frobenius change and 1 - alignment), along with the parameters' relative
-- change. A callback records the drift during training. Prints a table with
-- the fitted slope of log drift against log width (Lee et al. 2019 bound
-- the change by O(width^-1/2); it often falls faster) and writes
-- lazy_training.csv, lazy_training.svg and lazy_training_epochs.svg into
-- `out`.
local ntk = require "ntk"

local opt = ntk.args({n = 24, widths = {16, 32, 64, 128, 256, 512, 1024}, depth = 3, seeds = 3,
                      epochs = 200, lr = 0.5, out = "."}, ...)
local N = opt.n
local X = ntk.randn(N, 2, 3)
local Y = ntk.matrix(N, 1)
for i = 1, N do Y:set(i, 1, math.sin(2 * X:get(i, 1)) * math.cos(X:get(i, 2))) end

local widths = opt.widths
local seeds = opt.seeds
local epochs = opt.epochs
local every = math.max(1, epochs // 20)
local lr = opt.lr

local function slope(xs, ys)
  local n, sx, sy, sxx, sxy = #xs, 0, 0, 0, 0
  for i = 1, n do
    local x, y = math.log(xs[i]), math.log(ys[i])
    sx, sy, sxx, sxy = sx + x, sy + y, sxx + x * x, sxy + x * y
  end
  return (n * sxy - sx * sy) / (n * sxx - sx * sx)
end

local rows, drifts, trails = {}, {}, {}
print(string.format("%7s %11s %11s %11s %11s", "width", "loss", "K change", "1-align", "theta chg"))
for _, width in ipairs(widths) do
  local acc = {loss = 0, rel = 0, mis = 0, dtheta = 0}
  local trail = {x = {}, y = {}, label = "width " .. width}
  for s = 1, seeds do
    local sizes = {2}
    for _ = 1, opt.depth - 1 do sizes[#sizes + 1] = width end
    sizes[#sizes + 1] = 1
    local net = ntk.mlp{sizes = sizes, activation = "tanh", weight_std = 1.5, bias_std = 0.1, seed = s}
    local K0 = net:ntk(X, {progress = false})
    local theta0 = net:params()
    local hist, msg = net:train{X = X, Y = Y, lr = lr, epochs = epochs, progress = false,
      callback = s == 1 and function(epoch)
        if epoch % every == 0 then
          trail.x[#trail.x + 1] = epoch
          trail.y[#trail.y + 1] = ntk.kernel_distance(K0, net:ntk(X, {progress = false}))
        end
      end or nil}
    assert(hist, msg)
    local rel, mis = ntk.kernel_distance(K0, net:ntk(X, {progress = false}))
    acc.loss = acc.loss + hist[#hist]
    acc.rel = acc.rel + rel
    acc.mis = acc.mis + mis
    acc.dtheta = acc.dtheta + (net:params() - theta0):norm() / theta0:norm()
  end
  for k, v in pairs(acc) do acc[k] = v / seeds end
  drifts[#drifts + 1] = acc.rel
  trails[#trails + 1] = trail
  rows[#rows + 1] = string.format("%d,%d,%d,%.6g,%.6g,%.6g,%.6g", width, seeds, epochs, acc.loss,
                                  acc.rel, acc.mis, acc.dtheta)
  print(string.format("%7d %11.3e %11.3e %11.3e %11.3e", width, acc.loss, acc.rel, acc.mis, acc.dtheta))
end
print(string.format("slope of log kernel change vs log width: %.3f (O(width^-1/2) or faster expected)",
                    slope(widths, drifts)))

local csv = opt.out .. "/lazy_training.csv"
local f = assert(io.open(csv, "w"))
f:write("width,seeds,epochs,final_loss,kernel_rel_change,kernel_misalignment,param_rel_change\n",
        table.concat(rows, "\n"), "\n")
f:close()
print("wrote " .. csv)

local svg = opt.out .. "/lazy_training.svg"
local ok, err = pcall(ntk.plot.lines, {{x = widths, y = drifts, label = "||K_T - K_0|| / ||K_0||"}}, svg, {
  logx = true, logy = true, xlabel = "width", ylabel = "relative kernel change",
  title = "NTK drift after " .. epochs .. " epochs of gradient descent (ntk parameterization)"})
print(ok and ("wrote " .. svg) or ("no plot: " .. tostring(err)))
svg = opt.out .. "/lazy_training_epochs.svg"
ok, err = pcall(ntk.plot.lines, trails, svg, {
  logy = true, xlabel = "epoch", ylabel = "relative kernel change",
  title = "NTK drift during training, by width"})
print(ok and ("wrote " .. svg) or ("no plot: " .. tostring(err)))
