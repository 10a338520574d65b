-- Keeps examples/repl_tour.md honest: every ```ntk-session block in it is a
-- transcript whose input lines ("> " and ">> ") are replayed through
-- `ntk -i`, and whose output is what the program printed.
--
--   build/bin/ntk scripts/repl_tour.lua            rewrite the transcripts
--   build/bin/ntk scripts/repl_tour.lua --check    compare instead (numbers
--                                                   to a relative 1e-6); exit 1
--                                                   on a difference
-- Environment: NTK_PROGRAM (default build/bin/ntk next to this script).
local check = (...) == "--check"
local here = (arg and arg[0] or "scripts/repl_tour.lua"):match("^(.*)/scripts/[^/]*$") or "."
local program = os.getenv("NTK_PROGRAM") or (here .. "/build/bin/ntk")
local doc_path = here .. "/examples/repl_tour.md"

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Prompts that cannot occur in real output, so the output splits by chunk.
local P1, P2 = "\1P1\1", "\1P2\1"

-- Replay a session's input lines; returns the transcript text.
local function replay(inputs, workdir)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(("_PROMPT, _PROMPT2 = %q, %q\n"):format(P1, P2))
  for _, line in ipairs(inputs) do f:write(line.text, "\n") end
  f:close()
  local cmd = ("cd %s && NTK_PROGRESS=0 NTK_HISTORY= OPENBLAS_NUM_THREADS=2 %s -i < %s 2>&1")
    :format(quote(workdir), quote(program), quote(tmp))
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  os.remove(tmp)
  -- out: "> " (the first prompt), then for each input line a prompt marker
  -- followed by the output of the chunk that line completed.
  out = out:gsub("^> ", "")
  local pieces = {}
  local pos = 1
  while true do
    local a, b = out:find("[\1]P[12][\1]", pos)
    pieces[#pieces + 1] = out:sub(pos, (a or 0) - 1)
    if not a then break end
    pos = b + 1
  end
  -- pieces[1] is the output of the prompt-setting line (empty); piece k + 1
  -- follows input line k.
  local lines = {}
  for k, line in ipairs(inputs) do
    lines[#lines + 1] = (line.cont and ">> " or "> ") .. line.text
    local o = pieces[k + 1] or ""
    if k == #inputs then o = o:gsub("\n$", "") end -- the newline at end of input
    if o ~= "" then
      o = o:gsub("\n$", "")
      lines[#lines + 1] = o
    end
  end
  return table.concat(lines, "\n")
end

local doc = read(doc_path)
local workdir = os.tmpname()
os.remove(workdir)
assert(os.execute("mkdir -p " .. quote(workdir)))

-- Numbers compared loosely: BLAS on another CPU rounds differently.
local function same(a, b)
  local na, nb = {}, {}
  local sa = a:gsub("[-+]?%d+%.?%d*[eE]?[-+]?%d*", function(x) na[#na + 1] = tonumber(x) return "#" end)
  local sb = b:gsub("[-+]?%d+%.?%d*[eE]?[-+]?%d*", function(x) nb[#nb + 1] = tonumber(x) return "#" end)
  if sa ~= sb or #na ~= #nb then return false end
  for i = 1, #na do
    local x, y = na[i], nb[i]
    if x ~= y and not (x and y and math.abs(x - y) <= 1e-6 * math.max(math.abs(x), math.abs(y), 1e-300)
                       + 1e-12) then
      return false
    end
  end
  return true
end

-- One session for the whole document, so later blocks see earlier variables.
local blocks, inputs = {}, {}
for body in doc:gmatch("```ntk%-session\n(.-)```") do
  local b = {inputs = {}, old = body:gsub("\n$", "")}
  for line in (body .. "\n"):gmatch("(.-)\n") do
    local cont, text = line:match("^(>>) (.*)$")
    if not cont then text = line:match("^> (.*)$") end
    if text then
      local item = {text = text, cont = cont ~= nil}
      b.inputs[#b.inputs + 1] = item
      inputs[#inputs + 1] = item
    end
  end
  blocks[#blocks + 1] = b
end
assert(#blocks > 0, "no ```ntk-session blocks in " .. doc_path)

-- Replay everything at once, then cut the transcript back into blocks.
local all = replay(inputs, workdir)
local per_line = {}
do
  -- split the full transcript at input lines, in order
  local idx, rest = 1, all .. "\n"
  local cur
  for line in rest:gmatch("(.-)\n") do
    local it = inputs[idx]
    if it and line == (it.cont and ">> " or "> ") .. it.text then
      cur = {line}
      per_line[idx] = cur
      idx = idx + 1
    elseif cur then
      cur[#cur + 1] = line
    end
  end
end
local k, failures = 0, 0
local new_doc = doc:gsub("```ntk%-session\n(.-)```", function()
  k = k + 1
  local b = blocks[k]
  local text = {}
  for _, item in ipairs(b.inputs) do
    for i, it in ipairs(inputs) do
      if it == item then
        for _, l in ipairs(per_line[i] or {}) do text[#text + 1] = l end
      end
    end
  end
  local fresh = table.concat(text, "\n")
  if check and not same(fresh, b.old) then
    failures = failures + 1
    io.stderr:write(("repl_tour: block %d differs\n--- in the document\n%s\n--- now\n%s\n"):format(k, b.old, fresh))
  end
  return "```ntk-session\n" .. fresh .. "\n```"
end)
os.execute("rm -rf " .. quote(workdir))

if check then
  if failures > 0 then os.exit(1) end
  print(("repl_tour: %d blocks match"):format(#blocks))
else
  local f = assert(io.open(doc_path, "wb"))
  f:write(new_doc)
  f:close()
  print(("repl_tour: rewrote %d blocks of %s"):format(#blocks, doc_path))
end
