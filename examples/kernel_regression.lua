-- NTK regression against the network's own test accuracy.
--
--   ntk examples/kernel_regression.lua [n_train=256] [n_test=500] [width=512]
--       [depth=2] [epochs=100] [seed=1] [out=.]
--
-- An MLP 784 -> width x depth (relu) -> 10 is trained by full-batch
-- gradient descent on the mean squared error to one-hot Fashion-MNIST
-- labels. Its empirical NTK at initialisation predicts that training:
-- the linearised network follows gradient flow (ntk.gd_dynamics) and ends
-- at kernel regression on the residual Y - f0 (t = infinity). The example
-- compares test accuracies of the trained network, of the linearised one
-- at the same times, and of kernel regression with the full block kernel
-- and with the trace kernel (Theta x I, the infinite-width form).
-- Writes kernel_regression.svg (accuracy against epoch) to `out`.
local ntk = require "ntk"

local opt = ntk.args({n_train = 256, n_test = 500, width = 512, depth = 2, epochs = 100, seed = 1,
                      out = "."}, ...)
local fmt = string.format

local Xtr, ytr, Ytr = ntk.datasets.fashion_mnist{split = "train", n = opt.n_train, seed = opt.seed,
                                                one_hot = true}
if not Xtr then error(ytr, 0) end
local Xte, yte = ntk.datasets.fashion_mnist{split = "test", n = opt.n_test, seed = opt.seed}
if not Xte then error(yte, 0) end
local N, n_in = Xtr:shape()
local m = 10

-- Fraction of rows whose largest output is the label (labels 0..9).
local function accuracy(F, labels)
  local rows = F:totable()
  local hit = 0
  for i, r in ipairs(rows) do
    local best = 1
    for a = 2, #r do if r[a] > r[best] then best = a end end
    if best - 1 == labels:get(i, 1) then hit = hit + 1 end
  end
  return hit / #rows
end

local sizes = {n_in}
for _ = 1, opt.depth do sizes[#sizes + 1] = opt.width end
sizes[#sizes + 1] = m
local net = ntk.mlp{sizes = sizes, activation = "relu", seed = opt.seed}
print(fmt("Fashion-MNIST: %d training and %d test images; %s relu MLP, P = %d", N, Xte:rows(),
          table.concat(sizes, "-"), net:num_params()))

local f0tr, f0te = net:forward(Xtr), net:forward(Xte)
local t = ntk.clock()
local K = net:ntk(Xtr)
local Kx = net:ntk(Xte, Xtr)
print(fmt("kernels: K %dx%d and K_test,train %dx%d in %.2f s", K:rows(), K:cols(), Kx:rows(), Kx:cols(),
          ntk.clock() - t))

-- Kernel regression, t = infinity of the linearised network.
local rows = {}
local function report(name, acc)
  rows[#rows + 1] = {name = name, acc = acc}
  print(fmt("  %-58s test accuracy %.3f", name, acc))
end
report("network at initialisation", accuracy(f0te, yte))
local alpha = assert(ntk.kernel_regression(K, Ytr - f0tr))
local lin_inf = f0te + ntk.kernel_predict(Kx, alpha)
report("linearised network trained to convergence (K, residual)", accuracy(lin_inf, yte))
local alpha0 = assert(ntk.kernel_regression(K, Ytr))
report("kernel regression with the block NTK K", accuracy(ntk.kernel_predict(Kx, alpha0), yte))
local T = net:ntk(Xtr, {mode = "trace", normalize = "mean"})
local Tx = net:ntk(Xte, Xtr, {mode = "trace", normalize = "mean"})
local beta = assert(ntk.kernel_regression(T, Ytr))
report("kernel regression with the trace kernel (Theta x I)", accuracy(ntk.kernel_predict(Tx, beta), yte))

-- Gradient descent on the network itself, full batch, at a step size the
-- kernel says is stable: the top mode of K moves half its distance per step.
local lmax = ntk.eigvalsh(K, {k = 1}):get(1, 1)
local lr = 0.5 / lmax * N
local trained = net:copy()
local epochs, acc_net = {}, {}
t = ntk.clock()
-- The loss is (1/2N) sum_i ||f(x_i) - y_i||^2, so one full-batch step moves
-- the linearised outputs by -(lr/N) K (f - Y).
local history, why = trained:train{X = Xtr, Y = Ytr, loss = "mse", optimizer = "sgd", lr = lr,
                                   epochs = opt.epochs, batch_size = N, seed = opt.seed,
                                   callback = function(epoch)
                                     epochs[#epochs + 1] = epoch
                                     acc_net[#acc_net + 1] = accuracy(trained:forward(Xte), yte)
                                   end}
if not history then error("training diverged: " .. tostring(why), 0) end
print(fmt("trained %d epochs (lr %.4g) in %.2f s", #epochs, lr, ntk.clock() - t))
report(fmt("the network after %d epochs of gradient descent", #epochs), acc_net[#acc_net])

-- The linearised network at the same times: gradient flow with rate lr/N
-- on the summed squared error (ntk.gd_dynamics' convention), t in epochs.
local times = {}
for i, e in ipairs(epochs) do times[i] = e end
local dyn = assert(ntk.gd_dynamics{K_train = K, K_test_train = Kx, f0_train = f0tr, f0_test = f0te,
                                    Y = Ytr, lr = lr / N, times = times})
local acc_lin = {}
for i = 1, #times do acc_lin[i] = accuracy(dyn.test[i], yte) end
report(fmt("linearised network after %d epochs (gradient flow)", #epochs), acc_lin[#acc_lin])
if type(history) == "table" and #history > 0 then
  print(fmt("training loss: %.4g at epoch 1, %.4g at epoch %d", history[1], history[#history], #history))
end

local sep = package.config:sub(1, 1)
local dir = opt.out
if dir:sub(1, 1) ~= sep and os.getenv("PWD") then
  dir = dir == "." and os.getenv("PWD") or os.getenv("PWD") .. sep .. dir
end
local flat = function(v) return {x = {epochs[1], epochs[#epochs]}, y = {v, v}} end
local s_inf = flat(rows[2].acc)
s_inf.label, s_inf.dash = "linearised, t = infinity (kernel regression on Y - f0)", true
local s_tr = flat(rows[4].acc)
s_tr.label, s_tr.dash = "trace kernel regression (Theta x I)", "2,3"
local svg = assert(ntk.plot.lines({
  {x = epochs, y = acc_net, label = "network trained by gradient descent"},
  {x = epochs, y = acc_lin, label = "linearised network (empirical NTK at init)"},
  s_inf, s_tr,
}, dir .. sep .. "kernel_regression.svg", {
  logx = true, xlabel = "epoch (full-batch gradient descent)", ylabel = "test accuracy",
  legend = "outside", width = 1000,
  title = fmt("%s MLP on %d Fashion-MNIST images: network against its NTK", table.concat(sizes, "-"), N)}))
print("wrote " .. svg)
