-- Quickstart: an MLP, its full block NTK, and a summary.
local ntk = require "ntk"

local N, n = 200, 64
local X = ntk.randn(N, n, 1)
local net = ntk.mlp{sizes = {n, 256, 256, 10}, activation = "relu", seed = 1}
print(net)
local t0 = os.clock()
local K = net:ntk(X)
print(string.format("NTK %dx%d in %.2f s CPU, trace %.6g", K:rows(), K:cols(), os.clock() - t0, K:trace()))
print(K)
