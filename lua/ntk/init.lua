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

-- The kind of a default value for ntk.args: how its argument is converted.
local function arg_kind(v)
  local t = type(v)
  if t == "number" then return math.type(v) == "integer" and "integer" or "number" end
  if t == "string" or t == "boolean" then return t end
  if t == "table" then
    -- A list: all strings (also when empty) or all numbers, nothing else.
    local n, elem = 0, "string"
    for _ in pairs(v) do n = n + 1 end
    if n ~= #v then return nil end
    for i, e in ipairs(v) do
      local et = type(e) == "number" and (math.type(e) == "integer" and "integer" or "number") or type(e)
      if i == 1 then elem = et end
      if et == "string" ~= (elem == "string") or (et ~= "string" and et ~= "integer" and et ~= "number") then
        return nil
      end
      if et == "number" then elem = "number" end
    end
    return "list", elem
  end
end

local function arg_value(kind, s)
  if kind == "integer" then return math.tointeger(tonumber(s)) end
  if kind == "number" then return tonumber(s) end
  if kind == "boolean" then
    if s == "true" then return true elseif s == "false" then return false end
    return nil
  end
  return s
end

local ARG_WANTS = {integer = "an integer", number = "a number", boolean = "true or false"}

--- Script arguments "key=value" over a table of defaults: ntk.args({n = 100,
-- widths = {64, 256}, out = "."}, ...) returns a new table with the
-- defaults replaced by the arguments given. Each value converts like its
-- default (integer, number, boolean, string; a list of numbers or of
-- strings takes comma-separated values like its elements). Errors carry no position: they are for
-- whoever typed the command line.
function ntk.args(defaults, ...)
  if type(defaults) ~= "table" then
    error("bad argument #1 to 'args' (table of defaults expected, got " .. type(defaults) .. ")", 2)
  end
  local keys, out = {}, {}
  for k, v in pairs(defaults) do
    if type(k) ~= "string" or not arg_kind(v) then
      error("bad argument #1 to 'args' (defaults must map names to numbers, strings, booleans or lists, "
            .. "got " .. tostring(k) .. " = " .. tostring(v) .. ")", 2)
    end
    keys[#keys + 1] = k
    out[k] = type(v) == "table" and table.move(v, 1, #v, 1, {}) or v
  end
  table.sort(keys)
  for i = 1, select("#", ...) do
    local a = select(i, ...)
    local k, s = tostring(a):match("^([%w_]+)=(.*)$")
    if not k or defaults[k] == nil then
      error(("unknown argument '%s' (expected key=value with key one of: %s)")
            :format(tostring(a), table.concat(keys, ", ")), 0)
    end
    local kind, elem = arg_kind(defaults[k])
    if kind == "list" then
      local list = {}
      for w in (s .. ","):gmatch("([^,]*),") do
        local v = w ~= "" and arg_value(elem, w) or nil
        if v == nil then
          list = nil
          break
        end
        list[#list + 1] = v
      end
      if not list then
        error(("%s must be a comma-separated list of %ss, got '%s'"):format(k, elem, s), 0)
      end
      out[k] = list
    else
      local v = arg_value(kind, s)
      if v == nil then error(("%s must be %s, got '%s'"):format(k, ARG_WANTS[kind], s), 0) end
      out[k] = v
    end
  end
  return out
end

-- Sections, each a file lua/ntk/<name>.lua returning function(ntk, core).
for _, name in ipairs{"linalg", "data", "plot", "train", "mpi"} do
  require("ntk." .. name)(ntk, core)
end

return ntk
