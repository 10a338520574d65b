-- The engine against PyTorch's functorch recipe (tests/fixtures/reference.lua,
-- written by scripts/make_reference.py).
local ntk = require "ntk"
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local cases = dofile(root .. "/tests/fixtures/reference.lua")

local inputs = H.inputs

describe("reference values from PyTorch", function()
  for _, c in ipairs(cases) do
    it("agree to 1e-10 for " .. c.name, function()
      local net = H.fixture_net(c)
      assert.equal(c.num_params, net:num_params())
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
