-- Every example runs end to end through the ntk program on small sizes,
-- prints its report and writes SVG files that parse. An example that reads
-- Fashion-MNIST is pending where the dataset is not installed.
local H = require "helpers"

local root = os.getenv("NTK_SOURCE_DIR") or "."
local build = os.getenv("NTK_BUILD_DIR") or (root .. "/build")
local program = build .. "/bin/ntk"

local shell_quote = H.shell_quote

-- Run an example in a fresh directory; returns exit code, output, directory.
local function run_example(name, args)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. shell_quote(dir)))
  local cmd = {"cd", shell_quote(dir), "&&", "NTK_PROGRESS=0", shell_quote(program),
               shell_quote(root .. "/examples/" .. name)}
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = shell_quote(a) end
  local p = io.popen(table.concat(cmd, " ") .. " 2>&1; echo \"EXIT:$?\"")
  local out = p:read("a")
  p:close()
  local code = tonumber(out:match("EXIT:(%d+)%s*$"))
  return code, out:gsub("EXIT:%d+%s*$", ""), dir
end

local function fashion_mnist_installed()
  return H.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
end

-- pending() with the reason when the data an example reads is not installed.
local function wait_reason(name)
  if not fashion_mnist_installed() then
    return name .. " needs the Debian package dataset-fashion-mnist (scripts/setup installs it)"
  end
end

local function svg_ok(dir, file)
  local p = dir .. "/" .. file
  assert.is_true(H.exists(p), file .. " was not written")
  assert.is_true(H.xmllint_ok(p), file .. " does not parse")
  return H.read(p)
end

describe("examples", function()
  it("the program exists", function()
    assert.is_true(H.exists(program), "build/bin/ntk missing")
  end)

  it("quickstart.lua reports the kernel and its spectrum and writes two plots", function()
    local why = wait_reason("quickstart.lua")
    if why then return pending(why) end
    local code, out, dir = run_example("quickstart.lua", {"n=12", "width=16", "out=."})
    assert.equal(0, code, out)
    for _, want in ipairs{"data%s+Fashion%-MNIST train, N = 12", "network%s+784%-16%-16%-10 relu MLP",
                          "kernel%s+full block NTK, %(N m%) x %(N m%) = 120 x 120, method %a+",
                          "memory%s+kernel", "top eigenvalues", "effective rank", "condition number",
                          "wrote%s+/", "spectrum%.svg", "heatmap%.svg"} do
      assert.matches(want, out)
    end
    local s = svg_ok(dir, "spectrum.svg")
    assert.equal(2, select(2, s:gsub('<polyline class="series"', "")))
    s = svg_ok(dir, "heatmap.svg")
    assert.truthy(s:find('class="blocks"', 1, true))
  end)

  it("spectrum_vs_width.lua compares widths and depths in one plot", function()
    local why = wait_reason("spectrum_vs_width.lua")
    if why then return pending(why) end
    local code, out, dir = run_example("spectrum_vs_width.lua",
                                       {"n=8", "widths=8,16", "depths=1,2", "out=" .. "."})
    assert.equal(0, code, out)
    local rows = 0
    for _ in out:gmatch("\n%s+%d%s+%d+%s+%d+%s+[%d.e+-]+") do rows = rows + 1 end
    assert.equal(4, rows, out)
    local s = svg_ok(dir, "spectrum_vs_width.svg")
    assert.equal(4, select(2, s:gsub('<polyline class="series"', "")))
    assert.truthy(s:find(">depth 2, width 16</text>", 1, true))
  end)

  it("kernel_regression.lua compares the network with its NTK predictions", function()
    local why = wait_reason("kernel_regression.lua")
    if why then return pending(why) end
    local code, out, dir = run_example("kernel_regression.lua",
                                       {"n_train=20", "n_test=20", "width=16", "epochs=3", "out=."})
    assert.equal(0, code, out)
    for _, want in ipairs{"network at initialisation%s+test accuracy 0%.%d+",
                          "kernel regression with the block NTK K%s+test accuracy",
                          "trace kernel", "gradient descent%s+test accuracy", "linearised network after"} do
      assert.matches(want, out)
    end
    svg_ok(dir, "kernel_regression.svg")
  end)

  it("per_output_blocks.lua measures cross-output coupling (Gaussian inputs)", function()
    local code, out, dir = run_example("per_output_blocks.lua",
                                       {"data=gaussian", "n=5", "widths=8,32", "seeds=2", "out=."})
    assert.equal(0, code, out)
    local rows = {}
    for w, cross, spread, total in out:gmatch("\n%s+(%d+)%s+%d+%s+([%d.e+-]+)%s+([%d.e+-]+)%s+([%d.e+-]+)") do
      rows[#rows + 1] = {tonumber(w), tonumber(cross), tonumber(spread), tonumber(total)}
    end
    assert.equal(2, #rows, out)
    for _, r in ipairs(rows) do
      -- orthogonal parts: total^2 = cross^2 + spread^2 (to the 4 printed digits)
      assert.is_true(math.abs(r[4] ^ 2 - r[2] ^ 2 - r[3] ^ 2) < 1e-3 * r[4] ^ 2 + 1e-12, out)
      assert.is_true(r[2] > 0 and r[2] < 1)
    end
    svg_ok(dir, "per_output_blocks.svg")
    local s = svg_ok(dir, "per_output_heatmap.svg")
    assert.truthy(s:find('class="blocks"', 1, true))
  end)

  it("per_output_blocks.lua runs on Fashion-MNIST", function()
    local why = wait_reason("per_output_blocks.lua")
    if why then return pending(why) end
    local code, out = run_example("per_output_blocks.lua", {"n=4", "widths=8", "seeds=1", "out=."})
    assert.equal(0, code, out)
    assert.matches("Fashion%-MNIST inputs", out)
  end)

  it("load_numpy_weights.lua reproduces numpy's forward pass from saved weights", function()
    local code, out = run_example("load_numpy_weights.lua", {root .. "/tests/fixtures/data/weights"})
    assert.equal(0, code, out)
    assert.matches("MLP 4 %-> 6 %(tanh%) %-> 5 %(tanh%) %-> 3", out)
    local diff = tonumber(out:match("max relative difference between ntk and numpy: ([%d.e+-]+)"))
    assert.is_true(diff ~= nil and diff <= 1e-13, out)
    assert.matches("ntk's forward pass matches numpy's", out, 1, true)
    code, out = run_example("load_numpy_weights.lua", {"/nonexistent"})
    assert.equal(1, code)
    assert.matches("no W1.npy in /nonexistent", out, 1, true)
  end)

  it("repl_tour.md: its transcripts replay through the session", function()
    local why = wait_reason("repl_tour.md")
    if why then return pending(why) end
    local p = io.popen(("cd %s && NTK_PROGRAM=%s %s scripts/repl_tour.lua --check 2>&1; echo \"EXIT:$?\"")
                       :format(shell_quote(root), shell_quote(program), shell_quote(program)))
    local out = p:read("a")
    p:close()
    assert.matches("EXIT:0", out, 1, true)
    assert.matches("blocks match", out)
  end)

  it("an example with a bad argument says what it expects", function()
    local code, out = run_example("per_output_blocks.lua", {"data=gaussian", "nn=3"})
    assert.equal(1, code)
    assert.matches("unknown argument 'nn=3' %(expected key=value with key one of: data, depth", out)
  end)
end)
