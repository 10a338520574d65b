-- The spectrum of an NTK on Fashion-MNIST and what the kernel predicts:
-- eigenvalues and their statistics, kernel-target alignment, the
-- linearised network's training dynamics, and the top of the spectrum of a
-- kernel too large to form.
--
--   lua5.4 examples/spectrum.lua [N_train [N_big]]     (defaults 300, 3000)
local ntk = require "ntk"

local N = tonumber(arg and arg[1]) or 300
local N_big = tonumber(arg and arg[2]) or 3000

local X, labels, Y = assert(ntk.datasets.fashion_mnist{split = "train", n = N, seed = 1,
                                                       one_hot = true})
local Xt, labels_t, Yt = assert(ntk.datasets.fashion_mnist{split = "test", n = 200, seed = 2,
                                                           one_hot = true})
-- Centred one-hot targets: the class mean is not something to learn.
Y, Yt = Y - 0.1, Yt - 0.1
local net = ntk.mlp{sizes = {784, 128, 10}, activation = "relu", seed = 1}
print(net)

local K = net:ntk(X)                 -- (N 10) x (N 10), the full block kernel
local Kt = net:ntk(Xt, X)            -- test x train
local ev = ntk.eigvalsh(K)
print(string.format("\nNTK %dx%d", K:rows(), K:cols()))
print(ntk.spectrum_stats(ev))
print(string.format("alignment with the labels %.4f (centred %.4f)",
                    ntk.alignment(K, Y), ntk.alignment(K, Y, {center = true})))

local function accuracy(F, lab)
  local hits = 0
  for i = 1, F:rows() do
    local _, _, col = F:row(i):max()
    if col - 1 == lab:get(i, 1) then hits = hits + 1 end
  end
  return hits / F:rows()
end

-- Gradient flow on the MSE loss, times in units of 1 / l_max.
local lmax = ev:get(1, 1)
local units = {0, 1, 10, 100, 1000, 10000, math.huge}
local times = {}
for i, u in ipairs(units) do times[i] = u / lmax end
local run = ntk.gd_dynamics{K_train = K, K_test_train = Kt, Y = Y,
                            f0_train = net:forward(X), f0_test = net:forward(Xt),
                            times = times}
print("\nlinearised training (gradient flow, MSE):")
print("  t * l_max    train loss   train acc   test acc")
for i, u in ipairs(units) do
  local r = run.train[i] - Y
  print(string.format("  %9s   %10.4f   %9.3f   %8.3f", u == math.huge and "inf" or tostring(u),
                      0.5 * r:cmul(r):sum() / N, accuracy(run.train[i], labels),
                      accuracy(run.test[i], labels_t)))
end

-- Kernel ridge regression directly: the t = infinity limit plus a ridge.
local alpha, info = assert(ntk.kernel_regression(K, Y - net:forward(X), {ridge = 1e-3 * lmax}))
local pred = net:forward(Xt) + ntk.kernel_predict(Kt, alpha)
print(string.format("kernel ridge regression (ridge 1e-3 l_max, jitter %g): test acc %.3f",
                    info.jitter, accuracy(pred, labels_t)))

-- A kernel too large to form: the top 10 from products alone.
local Xb = assert(ntk.datasets.fashion_mnist{split = "train", n = N_big, seed = 3})
local n = N_big * 10
print(string.format("\nmatrix-free top 10 of the %d x %d NTK (dense: %.1f GiB)", n, n,
                    n * n * 8 / 2 ^ 30))
local top, einfo = net:ntk_eigs(Xb, 10)
print(top:T())
print(einfo)
