-- Networks trained elsewhere: load per-layer weights saved with numpy
-- (np.save of each nn.Linear's weight and bias), run ntk's forward pass on
-- inputs saved alongside, and compare with numpy's own forward pass.
--
--   lua5.4 examples/load_numpy_weights.lua [dir]
--
-- dir defaults to tests/fixtures/data/weights, written by
-- scripts/make_fixtures.py: W1.npy .. W3.npy (n_out x n_in, PyTorch's
-- nn.Linear.weight orientation), b1.npy .. b3.npy (1-D), X.npy (inputs, one
-- per row) and Y_numpy.npy (numpy's outputs: tanh hidden layers, linear
-- output). Exits nonzero if the two disagree beyond rounding.
local ntk = require "ntk"

local dir = arg and arg[1] or "tests/fixtures/data/weights"
local function load(name) return assert(ntk.load_npy(dir .. "/" .. name .. ".npy")) end

-- Architecture from the weight shapes: W_l is n_l x n_{l-1}.
local sizes, l = {}, 1
while io.open(dir .. "/W" .. l .. ".npy") do
  local W = load("W" .. l)
  if l == 1 then sizes[1] = W:cols() end
  sizes[l + 1] = W:rows()
  l = l + 1
end
local depth = #sizes - 1
assert(depth >= 1, "no W1.npy in " .. dir)

-- "standard" makes the layer map exactly z = W a + b, as in PyTorch; the
-- stds only matter for a fresh initialisation, which set_layer overwrites.
local net = ntk.mlp{sizes = sizes, activation = "tanh", parameterization = "standard", seed = 0}
for k = 1, depth do net:set_layer(k, load("W" .. k), load("b" .. k)) end
print(net)

local X, Y_numpy = load("X"), load("Y_numpy")
local Y = net:forward(X)
local err = (Y - Y_numpy):max_abs() / Y_numpy:max_abs()
print(string.format("max relative difference between ntk and numpy: %.3g", err))
if err > 1e-13 then
  io.stderr:write("ntk and numpy disagree\n")
  os.exit(1)
end
print("ntk's forward pass matches numpy's")
