-- Turn the usage guide at the top of ntk.h into C for test_guide.c: every
-- line " *     code" (five spaces) of the first comment is code; the lines
-- before "From Lua" form guide_c(), the rest guide_lua().
--   lua5.4 extract_guide.lua ntk.h out.c
local header, out = arg[1], arg[2]
local body = {c = {}, lua = {}}
local part = "c"
for line in io.lines(header) do
  if line == " */" then break end
  if line == " * From Lua" then
    part = "lua"
  else
    local code = line:match("^ %*     (.*)$")
    if code then table.insert(body[part], "    " .. code) end
  end
end
assert(#body.c > 0 and #body.lua > 0, "no usage guide code in " .. header)
local text = "/* Generated from the usage guide in ntk.h by extract_guide.lua. */\n"
  .. "static int guide_c(void)\n{\n" .. table.concat(body.c, "\n") .. "\n}\n\n"
  .. "static int guide_lua(void)\n{\n" .. table.concat(body.lua, "\n") .. "\n    return 0;\n}\n"
local f = io.open(out, "rb")
local old = f and f:read("a")
if f then f:close() end
if old ~= text then -- unchanged output: nothing to rebuild
  f = assert(io.open(out, "wb"))
  f:write(text)
  f:close()
end
