--- ntk: empirical Neural Tangent Kernels, scripted from Lua.
-- The native core is `ntk.core`; this layer re-exports it and adds the
-- ergonomic parts written in Lua. Loading it sets no globals.
local core = require "ntk.core"

local ntk = {}
for k, v in pairs(core) do ntk[k] = v end

ntk.core = core
ntk.version = core.version

--- Column vector from a Lua list: ntk.vector{1, 2, 3} is 3 x 1.
function ntk.vector(t)
  if type(t) ~= "table" then
    error("bad argument #1 to 'vector' (table expected, got " .. type(t) .. ")", 2)
  end
  if #t == 0 then return core.zeros(0, 1) end
  return core.matrix(t)
end

-- Sections, each a file lua/ntk/<name>.lua returning function(ntk, core).
for _, name in ipairs{"linalg", "data", "plot", "train", "mpi"} do
  require("ntk." .. name)(ntk, core)
end

return ntk
