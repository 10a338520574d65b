-- ntk.plot: SVG files that parse (xmllint), hold the expected elements, and
-- put points where independent arithmetic says they belong; text charts.
local ntk = require "ntk"
local H = require "helpers"

local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir -p " .. tmp))
local function path(name) return tmp .. "/" .. name end

local read, xmllint_ok = H.read, H.xmllint_ok

local function count(s, pat)
  local n = 0
  for _ in s:gmatch(pat) do n = n + 1 end
  return n
end

-- Points of every <polyline class="series">, as lists of {x, y}.
local function polylines(svg)
  local out = {}
  for pts in svg:gmatch('<polyline class="series"[^>]- points="([^"]*)"') do
    local line = {}
    for x, y in pts:gmatch("([%-%d%.]+),([%-%d%.]+)") do line[#line + 1] = {tonumber(x), tonumber(y)} end
    out[#out + 1] = line
  end
  return out
end

local function close(a, b, tol) return math.abs(a - b) <= (tol or 0.02) end

describe("ntk.plot.spectrum", function()
  it("writes a valid SVG with axes, labels, title and one polyline per series", function()
    local p = path("one.svg")
    local ev = ntk.matrix{100, 10, 1, 0.1, 0.01}
    local r = ntk.plot.spectrum(ev, p, {title = "A <b> & c", xlabel = "k", ylabel = "lambda_k"})
    assert.equal(p, r)
    assert.is_true(xmllint_ok(p))
    local svg = read(p)
    assert.matches('^<%?xml version="1.0"', svg)
    assert.matches('<svg xmlns="http://www.w3.org/2000/svg"', svg)
    assert.truthy(svg:find("A &lt;b&gt; &amp; c", 1, true))
    assert.truthy(svg:find('class="xlabel"[^>]*>k</text>'))
    assert.truthy(svg:find('class="ylabel"[^>]*>lambda_k</text>'))
    assert.equal(1, #polylines(svg))
    assert.equal(0, count(svg, 'class="legend"')) -- no label, no legend
    assert.truthy(svg:find('10<tspan dy="-5" font-size="9">-2</tspan>', 1, true))
  end)

  it("places eigenvalues on a log scale: equal ratios give equal steps", function()
    local p = path("log.svg")
    local ev = {}
    for k = 1, 6 do ev[k] = 3 * 10 ^ (-(k - 1) * 0.7) end
    ntk.plot.spectrum(ev, p)
    local pts = polylines(read(p))[1]
    assert.equal(6, #pts)
    local dy, dx = pts[2][2] - pts[1][2], pts[2][1] - pts[1][1]
    assert.is_true(dy > 0, "smaller values lie lower (larger SVG y)")
    for k = 2, 6 do
      assert.is_true(close(pts[k][2] - pts[k - 1][2], dy), "log spacing at " .. k)
      assert.is_true(close(pts[k][1] - pts[k - 1][1], dx), "index spacing at " .. k)
    end
  end)

  it("sorts in descending order and draws a linear scale on request", function()
    local p = path("lin.svg")
    ntk.plot.spectrum({1, 4, 2, 3}, p, {log = false})
    local pts = polylines(read(p))[1]
    -- values 4, 3, 2, 1: equal differences give equal pixel steps
    local dy = pts[2][2] - pts[1][2]
    assert.is_true(dy > 0)
    for k = 2, 4 do assert.is_true(close(pts[k][2] - pts[k - 1][2], dy)) end
  end)

  it("compares several series with a legend", function()
    local p = path("multi.svg")
    local a, b = {8, 4, 2, 1}, {5, 5, 5, 5}
    ntk.plot.spectrum({{values = a, label = "width 64"}, {values = ntk.matrix(b), label = "width 512"}},
                      p, {title = "widths"})
    assert.is_true(xmllint_ok(p))
    local svg = read(p)
    assert.equal(2, #polylines(svg))
    assert.equal(1, count(svg, 'class="legend"'))
    assert.truthy(svg:find(">width 64</text>", 1, true))
    assert.truthy(svg:find(">width 512</text>", 1, true))
    -- labels may also come as an option
    ntk.plot.spectrum({a, b}, p, {labels = {"first", "second"}})
    svg = read(p)
    assert.truthy(svg:find(">first</text>", 1, true) and svg:find(">second</text>", 1, true))
    ntk.plot.spectrum({a, b}, p, {labels = {"x", "y"}, legend = false})
    assert.equal(0, count(read(p), 'class="legend"'))
    -- outside: the plotting area shrinks and the legend sits to its right
    ntk.plot.spectrum({a, b}, p, {labels = {"first", "second"}, legend = "outside"})
    svg = read(p)
    local fx, fw = svg:match('<rect class="frame" x="([%d.]+)" y="[%d.]+" width="([%d.]+)"')
    local lx = svg:match('<g class="legend">%s*<rect x="([%d.]+)"')
    assert.is_true(tonumber(lx) > tonumber(fx) + tonumber(fw))
    assert.is_true(tonumber(lx) < 720)
  end)

  it("normalizes by the trace: the same picture as dividing by hand", function()
    local v = {6, 3, 1}
    local p1, p2 = path("n1.svg"), path("n2.svg")
    ntk.plot.spectrum(v, p1, {normalize = "trace"})
    ntk.plot.spectrum({0.6, 0.3, 0.1}, p2)
    local a, b = polylines(read(p1))[1], polylines(read(p2))[1]
    for k = 1, 3 do
      assert.is_true(close(a[k][1], b[k][1]) and close(a[k][2], b[k][2]))
    end
  end)

  it("leaves out non-positive values on a log scale and says so", function()
    local p = path("neg.svg")
    local _, info = ntk.plot.spectrum({5, 1, -1e-12, 0}, p)
    assert.same({2}, info.dropped)
    local svg = read(p)
    assert.equal(2, #polylines(svg)[1])
    assert.truthy(svg:find("2 non-positive values not shown", 1, true))
    assert.has_error(function() ntk.plot.spectrum({0, -1}, p) end,
                     "bad argument #1 to 'spectrum' (no positive eigenvalues to show on a log scale (use log = false))")
  end)

  it("keeps only the top k", function()
    local p = path("k.svg")
    ntk.plot.spectrum({9, 8, 7, 6, 5, 4}, p, {k = 3})
    assert.equal(3, #polylines(read(p))[1])
  end)

  it("refuses bad input with messages naming the argument", function()
    local p = path("bad.svg")
    assert.has_error(function() ntk.plot.spectrum({1, 0 / 0}, p) end,
                     "bad argument #1 to 'spectrum' (values contains NaN at 2)")
    assert.has_error(function() ntk.plot.spectrum(ntk.matrix{1, math.huge}, p) end,
                     "bad argument #1 to 'spectrum' (values contains Inf at row 2, column 1)")
    assert.has_error(function() ntk.plot.spectrum({}, p) end,
                     "bad argument #1 to 'spectrum' (no values to plot (empty table))")
    assert.has_error(function() ntk.plot.spectrum("x", p) end)
    assert.has_error(function() ntk.plot.spectrum({1, "a"}, p) end,
                     "bad argument #1 to 'spectrum' (values[2] must be a number, got string)")
    assert.has_error(function() ntk.plot.spectrum({1}, nil) end,
                     "bad argument #2 to 'spectrum' (path must be a file name (string), got nil)")
    assert.has_error(function() ntk.plot.spectrum({1}, p, {colour = "red"}) end)
    assert.has_error(function() ntk.plot.spectrum({1}, p, {log = "yes"}) end,
                     "bad argument #3 to 'spectrum' (option 'log' must be a boolean, got string)")
    assert.has_error(function() ntk.plot.spectrum({1}, p, {width = -3}) end)
    assert.has_error(function() ntk.plot.spectrum({1}, p, {normalize = "sum"}) end)
    assert.has_error(function() ntk.plot.spectrum({{values = {}}, {1}}, p) end,
                     "bad argument #1 to 'spectrum' (series 1 is empty)")
  end)

  it("returns nil and a message when the file cannot be written", function()
    local r, err = ntk.plot.spectrum({1, 2}, "/nonexistent-dir/x.svg")
    assert.is_nil(r)
    assert.matches("cannot write plot", err)
  end)
end)

describe("ntk.plot.histogram", function()
  it("draws bars whose heights are the counts", function()
    local p = path("hist.svg")
    ntk.plot.histogram({1, 1, 1, 2, 2, 3}, p, {bins = 3, title = "counts"})
    assert.is_true(xmllint_ok(p))
    local svg = read(p)
    local heights = {}
    local bars = svg:match('<g class="bars".-</g>')
    for h in bars:gmatch('height="([%d%.]+)"') do heights[#heights + 1] = tonumber(h) end
    assert.equal(3, #heights)
    assert.is_true(close(heights[1] / heights[3], 3, 1e-3))
    assert.is_true(close(heights[2] / heights[3], 2, 1e-3))
  end)

  it("bins positive values by decades with logx, and overlays series", function()
    local p = path("hist2.svg")
    ntk.plot.histogram({{values = {1, 10, 100, 1000}, label = "a"}, {values = {2, 20, -1}, label = "b"}},
                       p, {logx = true, bins = 3, logy = true})
    assert.is_true(xmllint_ok(p))
    local svg = read(p)
    assert.equal(2, count(svg, '<g class="bars"'))
    assert.truthy(svg:find("1 non-positive value not shown", 1, true))
    assert.truthy(svg:find(">a</text>", 1, true))
    -- density: the bar areas sum to one
    ntk.plot.histogram({0, 0, 1, 1, 1, 1, 2, 2}, p, {bins = 4, density = true})
    assert.is_true(xmllint_ok(p))
  end)

  it("refuses bad input", function()
    local p = path("hbad.svg")
    assert.has_error(function() ntk.plot.histogram({1, 2}, p, {bins = 0}) end)
    assert.has_error(function() ntk.plot.histogram({1, 2}, p, {range = {3, 1}}) end,
                     "bad argument #3 to 'histogram' (option 'range' must be {lo, hi} with lo < hi)")
    assert.has_error(function() ntk.plot.histogram({-1, 0}, p, {logx = true}) end)
  end)
end)

describe("ntk.plot.lines", function()
  it("draws curves with x values, log axes, dashes and a legend", function()
    local p = path("lines.svg")
    ntk.plot.lines({{x = {1, 10, 100}, y = {1, 0.1, 0.01}, label = "train"},
                    {y = ntk.matrix{0.5, 0.4, 0.3}, label = "test", dash = true}},
                   p, {logx = true, logy = true, xlabel = "step", ylabel = "loss", title = "loss"})
    assert.is_true(xmllint_ok(p))
    local svg = read(p)
    local lines = polylines(svg)
    assert.equal(2, #lines)
    -- a power law is a straight line on log-log axes
    local a = lines[1]
    local s1 = (a[2][2] - a[1][2]) / (a[2][1] - a[1][1])
    local s2 = (a[3][2] - a[2][2]) / (a[3][1] - a[2][1])
    assert.is_true(close(s1, s2, 1e-3))
    assert.equal(1, count(svg, 'polyline class="series"[^>]*stroke%-dasharray'))
    assert.truthy(svg:find(">step</text>", 1, true))
  end)

  it("refuses values whose range overflows instead of looping", function()
    assert.has_error(function() ntk.plot.lines({1e308, -1e308}, path("big.svg")) end,
                     "values too large to plot: their range overflows a double")
    assert.has_error(function() ntk.plot.spectrum({1e308, -1e308}, path("big.svg"), {log = false}) end,
                     "values too large to plot: their range overflows a double")
    -- log scales take any positive double
    assert.truthy(ntk.plot.spectrum({1e308, 1e-308}, path("big.svg")))
  end)

  it("refuses mismatched x and y", function()
    assert.has_error(function() ntk.plot.lines({x = {1, 2}, y = {1}}, path("l.svg")) end,
                     "bad argument #1 to 'lines' (series: x has 2 values and y 1)")
    assert.has_error(function() ntk.plot.lines({}, path("l.svg")) end)
  end)
end)

describe("ntk.plot.heatmap", function()
  it("colours cells by value and draws the m x m block boundaries", function()
    local p = path("heat.svg")
    local N, m = 4, 3
    local K = ntk.matrix(N * m, N * m, 1)
    K:set(1, 1, 0)    -- the minimum: first colour of viridis
    K:set(5, 5, 10)   -- the maximum: last colour
    ntk.plot.heatmap(K, p, {block = m, title = "K"})
    assert.is_true(xmllint_ok(p))
    local svg = read(p)
    local blocks = svg:match('<g class="blocks".-</g>')
    assert.equal(2 * (N - 1), count(blocks, "<line"))
    local cells = svg:match('<g class="cells".-</g>')
    local first = cells:match('<path[^>]-fill="(#%x+)"')
    assert.equal("#440154", first)
    assert.truthy(cells:find('fill="#fde725"', 1, true))
    assert.equal(1, count(svg, 'class="colorbar"'))
    assert.truthy(svg:find("sample (blocks of 3 outputs)", 1, true))
  end)

  it("uses a diverging map centred on zero for signed matrices", function()
    local p = path("div.svg")
    ntk.plot.heatmap(ntk.matrix{{-2, 0}, {1, 2}}, p, {colorbar = false})
    local cells = read(p):match('<g class="cells".-</g>')
    local fills = {}
    for c in cells:gmatch('fill="(#%x+)"') do fills[#fills + 1] = c end
    -- -2 and 2 are the ends of the map, 0 its middle stop; 1 lies halfway
    -- between the stops (0.957, 0.647, 0.510) and (0.839, 0.376, 0.302):
    -- 255 * (0.898, 0.5115, 0.406) rounds to (229, 130, 104) = #e58268.
    assert.same({"#053061", "#f7f7f7", "#e58268", "#67001f"}, fills)
  end)

  it("averages big matrices down to max_cells (by BLAS) and says so", function()
    local p = path("pool.svg")
    local rows, cols = 400, 300
    local K = ntk.matrix(rows, cols)
    for i = 1, rows do for j = 1, cols do K:set(i, j, i) end end
    ntk.plot.heatmap(K, p, {max_cells = 100})
    local svg = read(p)
    assert.is_true(xmllint_ok(p))
    assert.truthy(svg:find("400x300 shown as 100x100 averages", 1, true))
    -- each pooled row is constant, so one run (one M...z) per row, and the
    -- rows of 4 consecutive indices average to 2.5, 6.5, ...: 100 distinct
    -- values spread over the 129 colour steps
    local cells = svg:match('<g class="cells".-</g>')
    assert.equal(100, count(cells, "M[%d.]+ [%d.]+h"))
    assert.is_true(count(cells, "<path") >= 90)
  end)

  it("refuses what it cannot draw", function()
    local p = path("hbad.svg")
    assert.has_error(function() ntk.plot.heatmap({{1}}, p) end,
                     "bad argument #1 to 'heatmap' (K must be a matrix, got table)")
    assert.has_error(function() ntk.plot.heatmap(ntk.matrix(0, 3), p) end,
                     "bad argument #1 to 'heatmap' (K is empty (0x3))")
    local K = ntk.matrix(3, 3)
    K:set(2, 3, 0 / 0)
    assert.has_error(function() ntk.plot.heatmap(K, p) end,
                     "bad argument #1 to 'heatmap' (K contains NaN or Inf at row 2, column 3)")
    K = ntk.matrix(2, 2)
    K:set(2, 1, -math.huge)
    assert.has_error(function() ntk.plot.heatmap(K, p) end,
                     "bad argument #1 to 'heatmap' (K contains NaN or Inf at row 2, column 1)")
    -- finite but beyond what the colour scale can span
    assert.has_error(function() ntk.plot.heatmap(ntk.matrix{{1e308, -1e308}, {1e308, 1e308}}, p) end,
                     "bad argument #1 to 'heatmap' (K's entries are too large to draw (their averages or range overflow))")
    assert.has_error(function() ntk.plot.heatmap(ntk.eye(2), p, {block = 0}) end)
    assert.has_error(function() ntk.plot.heatmap(ntk.eye(2), p, {colormap = "jet"}) end)
  end)
end)

describe("text charts", function()
  local utf8_len = utf8.len

  it("ntk.plot.text draws height rows of width columns with labels", function()
    local ev = {}
    for k = 1, 100 do ev[k] = 1000 * k ^ -2 end
    local s = ntk.plot.text(ev, {width = 50, height = 8, title = "spectrum"})
    local lines = {}
    for l in (s .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
    assert.equal("spectrum", lines[1]:match("%S.*"))
    assert.equal(1 + 8 + 2, #lines) -- title, rows, index axis, footer
    assert.matches("^ *1000 ┤", lines[2])
    assert.matches("log scale", lines[#lines])
    assert.matches("100 values in 50 columns", lines[#lines])
    for r = 2, 9 do assert.is_true(utf8_len(lines[r]) <= 8 + 2 + 50) end
    -- the first column is full height, the tallest; the bottom is the minimum
    assert.matches("┤█", lines[2])
    assert.matches("^ 0.1 ┤", lines[9])
  end)

  it("ntk.plot.text draws bars from zero on a linear scale", function()
    local s = ntk.plot.text({1, 2, 3, 4}, {height = 4})
    local rows = {}
    for l in s:gmatch("[^\n]+") do rows[#rows + 1] = l end
    -- value k fills k of the 4 rows
    assert.matches("┤   █$", rows[1])
    assert.equal("0 ┤████", rows[4])
    assert.matches("^0 ┤", rows[4])
  end)

  it("ascii charts and sparklines", function()
    local s = ntk.plot.text({5, 4, 3, 2, 1}, {ascii = true, height = 3})
    assert.is_nil(s:find("[\128-\255]"))
    local sp = ntk.plot.sparkline({1, 2, 3, 4, 5, 6, 7, 8})
    assert.equal("▁▂▃▄▅▆▇█", sp)
    assert.equal(10, utf8_len(ntk.plot.sparkline(ntk.randn(100, 1, 1), {width = 10})))
    assert.equal("..::||##", ntk.plot.sparkline({1, 2, 3, 4, 5, 6, 7, 8}, {ascii = true}))
  end)

  it("refuses bad input", function()
    assert.has_error(function() ntk.plot.text({}) end,
                     "bad argument #1 to 'text' (no values to plot (empty))")
    assert.has_error(function() ntk.plot.text({1, 0 / 0}) end)
    assert.has_error(function() ntk.plot.sparkline({1}, {width = 0}) end)
    assert.has_error(function() ntk.plot.text({-1, -2}, {log = true}) end)
  end)
end)
