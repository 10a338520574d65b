--- ntk.repl: the Lua half of the `ntk` program's interactive session.
-- Showing results readably, completing names, and help(). A plain module
-- (`require "ntk.repl"`), usable from any Lua host; it sets no globals.
local M = {}

local ntk_ok, ntk = pcall(require, "ntk")
if not ntk_ok then ntk = nil end

local function is_matrix(v)
  return ntk ~= nil and ntk.is_matrix(v)
end

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
    and not M.keywords_set[s]
end

M.keywords = {
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function",
  "goto", "if", "in", "local", "nil", "not", "or", "repeat", "return", "then",
  "true", "until", "while",
}
M.keywords_set = {}
for _, k in ipairs(M.keywords) do M.keywords_set[k] = true end

-- Order for table keys: integers, then strings, then anything else.
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta == "number" and tb == "number" then return a < b end
  if ta == "number" then return true end
  if tb == "number" then return false end
  if ta == "string" and tb == "string" then return a < b end
  if ta == "string" then return true end
  if tb == "string" then return false end
  return tostring(a) < tostring(b)
end

local function short_userdata(v)
  if is_matrix(v) then
    local ok, r, c = pcall(v.shape, v)
    if ok then return string.format("[ntk.Matrix %dx%d]", r, c) end
    return "[ntk.Matrix (closed)]"
  end
  local s = tostring(v)
  return (s:match("^[^\n]*")) -- the first line names it
end

local format

-- One entry per key of t, formatted; returns the parts and whether any was cut.
local function table_parts(t, opts, depth, seen)
  local parts, n, limit = {}, #t, opts.items
  local shown = 0
  for i = 1, n do
    if shown >= limit then
      parts[#parts + 1] = string.format("... (%d more)", n - i + 1)
      break
    end
    parts[#parts + 1] = format(t[i], opts, depth + 1, seen)
    shown = shown + 1
  end
  local keys = {}
  for k in next, t do
    if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  for i, k in ipairs(keys) do
    if shown >= limit then
      parts[#parts + 1] = string.format("... (%d more)", #keys - i + 1)
      break
    end
    local ks = is_identifier(k) and k or "[" .. format(k, opts, depth + 1, seen) .. "]"
    parts[#parts + 1] = ks .. " = " .. format(rawget(t, k), opts, depth + 1, seen)
    shown = shown + 1
  end
  return parts
end

--- A readable string for any value. Tables are shown with their contents
--- (sorted keys, nested up to opts.depth, at most opts.items entries per
--- table, one line when it fits in opts.width); matrices by their own
--- tostring at the top level and as [ntk.Matrix RxC] inside tables.
function format(v, opts, depth, seen)
  opts = opts or {}
  opts.depth = opts.depth or 3
  opts.items = opts.items or 40
  opts.width = opts.width or 78
  depth = depth or 0
  local t = type(v)
  if t == "string" then
    if depth == 0 and not opts.quote then return v end
    return string.format("%q", v):gsub("\\\n", "\\n")
  elseif t == "number" or t == "boolean" or t == "nil" then
    return tostring(v)
  elseif t == "userdata" then
    if depth == 0 then return tostring(v) end
    return short_userdata(v)
  elseif t ~= "table" then
    return tostring(v)
  end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then return tostring(v) end
  seen = seen or {}
  if seen[v] then return "<cycle>" end
  if next(v) == nil then return "{}" end
  if depth >= opts.depth then return "{...}" end
  seen[v] = true
  local parts = table_parts(v, opts, depth, seen)
  seen[v] = nil
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if #one + 2 * depth <= opts.width and not one:find("\n") then return one end
  local pad = string.rep("  ", depth + 1)
  return "{\n" .. pad .. table.concat(parts, ",\n" .. pad) .. "\n" .. string.rep("  ", depth) .. "}"
end
local function argerror(fname, n, msg)
  error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

local format_keys = {depth = "count", items = "count", width = "count", quote = "boolean"}

M.format = function(v, opts)
  if opts ~= nil then
    if type(opts) ~= "table" then argerror("format", 2, "options table expected, got " .. type(opts)) end
    for k, x in pairs(opts) do
      local want = format_keys[k]
      if not want then
        argerror("format", 2, "unknown option '" .. tostring(k) .. "' (expected one of: depth items quote width)")
      elseif want == "boolean" and type(x) ~= "boolean" then
        argerror("format", 2, "option '" .. k .. "' must be a boolean, got " .. type(x))
      elseif want == "count" and not (math.type(x) == "integer" and x >= 1) then
        argerror("format", 2, "option '" .. k .. "' must be a positive integer, got " .. tostring(x))
      end
    end
  end
  return format(v, opts and setmetatable({}, {__index = opts}))
end

--- Print each value as the session shows results: values that fit on one
--- line side by side (tab-separated), others each on their own lines.
function M.show(...)
  local n = select("#", ...)
  local out, multi = {}, false
  for i = 1, n do
    out[i] = format((select(i, ...)), {})
    if out[i]:find("\n") then multi = true end
  end
  io.stdout:write(table.concat(out, multi and "\n" or "\t"), "\n")
  io.stdout:flush()
end

-- Fields of v that completion may offer, with their values: a table's own
-- keys and those of its __index tables; for userdata and strings, their
-- metatable's __index table.
local function members(v, methods_only)
  local out, visited = {}, {}
  local function add(t)
    if type(t) ~= "table" or visited[t] then return end
    visited[t] = true
    for k, x in next, t do
      if type(k) == "string" and out[k] == nil and (not methods_only or type(x) == "function") then
        out[k] = x
      end
    end
    local mt = getmetatable(t)
    if type(mt) == "table" then add(rawget(mt, "__index")) end
  end
  if type(v) == "table" then
    add(v)
  elseif type(v) == "userdata" or type(v) == "string" then
    local mt = getmetatable(v)
    if type(mt) == "table" then add(rawget(mt, "__index")) end
  end
  return out
end

-- Resolve a dotted path ("ntk.plot") without calling any code.
local function resolve(path, env)
  local v = env
  for name in path:gmatch("[^.]+") do
    local fields = members(v, false)
    v = fields[name]
    if v == nil then return nil end
  end
  return v
end

--- Completion candidates for the word being typed, given the line before
--- it: names of globals and keywords, fields after `a.b.`, methods after
--- `x:`. Tables get a trailing ".", functions "(".
function M.complete(before, word, env)
  if type(before) ~= "string" then argerror("complete", 1, "string expected, got " .. type(before)) end
  if word ~= nil and type(word) ~= "string" then argerror("complete", 2, "string expected, got " .. type(word)) end
  if env ~= nil and type(env) ~= "table" then argerror("complete", 3, "table expected, got " .. type(env)) end
  env = env or _G
  word = word or ""
  local found = {}
  local path, sep = before:match("([%a_][%w_.]*)([.:])$")
  local pool
  if path and not path:find("%.%.") and not path:find("%.$") then
    local v = resolve(path, env)
    if v == nil then return {} end
    pool = members(v, sep == ":")
  elseif before:match("[%w_.:]$") then
    return {} -- inside a number or an expression we cannot resolve
  else
    pool = members(env, false)
    for _, k in ipairs(M.keywords) do if pool[k] == nil then pool[k] = true end end
  end
  local hide_private = word:sub(1, 1) ~= "_"
  for name, v in pairs(pool) do
    if name:sub(1, #word) == word and is_identifier(name) or (M.keywords_set[name] and name:sub(1, #word) == word) then
      if not (hide_private and name:sub(1, 1) == "_") then
        local suffix = ""
        if sep == ":" or type(v) == "function" then suffix = "("
        elseif type(v) == "table" and not M.keywords_set[name] then suffix = "." end
        found[#found + 1] = name .. suffix
      end
    end
  end
  table.sort(found)
  return found
end

local function names_of(t, filter)
  local out = {}
  for k, v in pairs(members(t, false)) do
    if k:sub(1, 1) ~= "_" and filter(v) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- Columns of names, like `ls`.
local function columns(names, width)
  width = width or 78
  local w = 0
  for _, n in ipairs(names) do w = math.max(w, #n) end
  w = w + 2
  local per = math.max(1, width // w)
  local lines, line = {}, {}
  for i, n in ipairs(names) do
    line[#line + 1] = n .. string.rep(" ", w - #n)
    if #line == per or i == #names then
      lines[#lines + 1] = "  " .. table.concat(line):gsub("%s+$", "")
      line = {}
    end
  end
  return table.concat(lines, "\n")
end

local overview = [[
ntk %s: empirical Neural Tangent Kernels.

  net = ntk.mlp{sizes = {784, 256, 10}, seed = 1}   an MLP (input, hidden..., output)
  X = ntk.randn(100, 784, 7)                        100 samples, one per row
  K = net:ntk(X)                                    the block NTK, (N m) x (N m)
  ntk.plot.text(K:diag())                           a quick chart here in the terminal
  ntk.plot.spectrum(ev, "spectrum.svg")             an SVG plot of eigenvalues

help(ntk.plot), help(net) or help(K) list what a table or object offers.
Documentation: README.md, docs/api.md, docs/program.md, docs/plots.md.
]]

--- help(): an overview; help(x): the fields or methods x offers.
function M.help(x)
  local out = {}
  if x == nil then
    out[1] = string.format(overview, ntk and ntk.version or "?")
    if ntk then
      out[#out + 1] = "Functions of ntk:\n" .. columns(names_of(ntk, function(v) return type(v) == "function" end))
      local subs = names_of(ntk, function(v) return type(v) == "table" end)
      if #subs > 0 then out[#out + 1] = "\nTables of ntk: " .. table.concat(subs, ", ") end
    end
  elseif type(x) == "table" or type(x) == "userdata" or type(x) == "string" then
    local fns = names_of(x, function(v) return type(v) == "function" end)
    local others = names_of(x, function(v) return type(v) ~= "function" end)
    local what = type(x) == "table" and "fields" or "methods"
    if type(x) == "userdata" then
      out[1] = short_userdata(x)
      what = "methods (call as x:name(...))"
    end
    if #fns > 0 then out[#out + 1] = "Functions / " .. what .. ":\n" .. columns(fns) end
    if #others > 0 then
      local lines = {}
      for _, k in ipairs(others) do
        lines[#lines + 1] = "  " .. k .. " = " .. format(members(x, false)[k], {}, 1)
      end
      out[#out + 1] = "Values:\n" .. table.concat(lines, "\n")
    end
    if #out == 0 then out[1] = format(x, {}) .. " has no fields" end
  elseif type(x) == "function" then
    local info = debug.getinfo(x, "S")
    if info.what == "C" then
      out[1] = "a function written in C (ntk's are described in docs/api.md)"
    else
      out[1] = string.format("a Lua function defined at %s:%d", info.short_src, info.linedefined)
    end
  else
    out[1] = format(x, {}) .. " (a " .. type(x) .. ")"
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
end

return M
