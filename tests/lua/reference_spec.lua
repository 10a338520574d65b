-- The engine against PyTorch's functorch recipe (tests/fixtures/reference.lua,
-- written by scripts/make_reference.py).
local ntk = require "ntk"
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local cases = dofile(root .. "/tests/fixtures/reference.lua")

local function theta_for(P)
  local t = ntk.matrix(P, 1)
  for k = 1, P do t:set(k, 1, 0.5 * math.sin(0.7 * k + 0.3)) end
  return t
end

local function inputs(n, d, shift)
  local x = ntk.matrix(n, d)
  for i = 1, n do
    for j = 1, d do x:set(i, j, math.cos(1.3 * i + 0.7 * j + shift)) end
  end
  return x
end

describe("reference values from PyTorch", function()
  for _, c in ipairs(cases) do
    it("agree to 1e-10 for " .. c.name, function()
      local net = ntk.mlp{sizes = c.sizes, activation = c.activation,
                          parameterization = c.parameterization,
                          weight_std = c.weight_std, bias_std = c.bias_std}
      assert.equal(c.num_params, net:num_params())
      net:set_params(theta_for(c.num_params))
      local X1 = inputs(c.n1, c.sizes[1], 0)
      local X2 = inputs(c.n2, c.sizes[1], 0.25)
      assert.is_true(H.rel(net:forward(X1), ntk.matrix(c.Y)) < 1e-12)
      for _, method in ipairs{"jacobian", "structured", "auto"} do
        local K = net:ntk(X1, {method = method})
        assert.is_true(H.rel(K, ntk.matrix(c.K)) < 1e-10, method)
        local K12 = net:ntk(X1, X2, {method = method})
        assert.is_true(H.rel(K12, ntk.matrix(c.K12)) < 1e-10, method)
      end
    end)
  end
end)
