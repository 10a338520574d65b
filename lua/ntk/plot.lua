-- ntk.plot: SVG figures written in plain Lua (no outside dependency) and
-- text charts for the terminal. See docs/plots.md.
--
--   ntk.plot.spectrum(ev, path[, opts])    eigenvalues against index, log scale
--   ntk.plot.histogram(values, path[, opts])
--   ntk.plot.heatmap(K, path[, opts])      with the NTK's m x m block boundaries
--   ntk.plot.lines(series, path[, opts])   curves: losses, predictions over time
--   ntk.plot.text(values[, opts])          a small character chart (a string)
--   ntk.plot.sparkline(values[, opts])     one line of block characters
return function(ntk, core)
  local plot = {}
  ntk.plot = plot

  local floor, ceil, log10 = math.floor, math.ceil, function(x) return math.log(x, 10) end
  local fmt = string.format

  local PALETTE = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
  }

  ---------------------------------------------------------------------------
  -- Arguments
  ---------------------------------------------------------------------------

  local function argerror(fname, n, msg)
    error(fmt("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
  end

  local function check_options(fname, n, opts, known)
    if opts == nil then return {} end
    if type(opts) ~= "table" then argerror(fname, n, "options must be a table, got " .. type(opts)) end
    local set = {}
    for _, k in ipairs(known) do set[k] = true end
    for k in pairs(opts) do
      if not set[k] then
        table.sort(known)
        argerror(fname, n, fmt("unknown option '%s' (expected one of: %s)", tostring(k),
                               table.concat(known, " ")))
      end
    end
    return opts
  end

  local function opt_type(fname, n, opts, key, want)
    local v = opts[key]
    if v ~= nil and type(v) ~= want then
      argerror(fname, n, fmt("option '%s' must be a %s, got %s", key, want, type(v)))
    end
    return v
  end

  local function opt_positive(fname, n, opts, key, def, integer)
    local v = opts[key]
    if v == nil then return def end
    if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge
       or (integer and math.type(v) ~= "integer" and v ~= floor(v)) then
      argerror(fname, n, fmt("option '%s' must be a positive %s, got %s", key,
                             integer and "integer" or "number", tostring(v)))
    end
    return integer and floor(v) or v
  end

  -- A list of finite numbers from a matrix (all entries, row by row) or a
  -- Lua list. `what` names the argument in messages.
  local function numbers(fname, n, v, what)
    local out = {}
    if ntk.is_matrix(v) then
      local rows = v:totable()
      for i = 1, #rows do
        local row = rows[i]
        for j = 1, #row do
          local x = row[j]
          if x ~= x or x == math.huge or x == -math.huge then
            argerror(fname, n, fmt("%s contains %s at row %d, column %d", what,
                                   x ~= x and "NaN" or "Inf", i, j))
          end
          out[#out + 1] = x
        end
      end
    elseif type(v) == "table" then
      local len = #v
      for i = 1, len do
        local x = v[i]
        if type(x) ~= "number" then
          argerror(fname, n, fmt("%s[%d] must be a number, got %s", what, i, type(x)))
        end
        if x ~= x or x == math.huge or x == -math.huge then
          argerror(fname, n, fmt("%s contains %s at %d", what, x ~= x and "NaN" or "Inf", i))
        end
        out[i] = x
      end
    else
      argerror(fname, n, fmt("%s must be a matrix or a list of numbers, got %s", what, type(v)))
    end
    return out
  end

  -- Normalise "one series or several" into {{values = {...}, label = ...}, ...}.
  -- A series is a matrix, a list of numbers, or {values = ..., label = ...,
  -- color = ...}; several series are a list of those.
  local function series_list(fname, n, arg, labels)
    local function one(v, i)
      if type(v) == "table" and not ntk.is_matrix(v) and v.values ~= nil then
        local s = {values = numbers(fname, n, v.values, fmt("series %d", i)),
                   label = v.label, color = v.color, dash = v.dash}
        if s.dash ~= nil and type(s.dash) ~= "boolean" and type(s.dash) ~= "string" then
          argerror(fname, n, fmt("series %d: dash must be a boolean or a dash pattern such as \"4,2\"", i))
        end
        if s.label ~= nil and type(s.label) ~= "string" and type(s.label) ~= "number" then
          argerror(fname, n, fmt("series %d: label must be a string", i))
        end
        if s.color ~= nil and type(s.color) ~= "string" then
          argerror(fname, n, fmt("series %d: color must be a string", i))
        end
        return s
      end
      return {values = numbers(fname, n, v, i == 0 and "values" or fmt("series %d", i))}
    end
    local list
    if ntk.is_matrix(arg) or (type(arg) == "table" and (type(arg[1]) == "number" or arg.values ~= nil)) then
      list = {one(arg, 0)}
    elseif type(arg) == "table" and #arg > 0 then
      list = {}
      for i = 1, #arg do list[i] = one(arg[i], i) end
    elseif type(arg) == "table" then
      argerror(fname, n, "no values to plot (empty table)")
    else
      argerror(fname, n, "expected a matrix, a list of numbers or a list of series, got " .. type(arg))
    end
    if labels ~= nil then
      if type(labels) ~= "table" then argerror(fname, 3, "option 'labels' must be a list of strings") end
      for i, s in ipairs(list) do
        if labels[i] ~= nil then s.label = labels[i] end
      end
    end
    for i, s in ipairs(list) do
      if #s.values == 0 then
        argerror(fname, n, #list == 1 and "no values to plot (empty)" or fmt("series %d is empty", i))
      end
      s.label = s.label ~= nil and tostring(s.label) or nil
      s.color = s.color or PALETTE[(i - 1) % #PALETTE + 1]
    end
    return list
  end

  local function check_path(fname, n, path)
    if type(path) ~= "string" or path == "" then
      argerror(fname, n, "path must be a file name (string), got " .. type(path))
    end
  end

  ---------------------------------------------------------------------------
  -- Numbers and ticks
  ---------------------------------------------------------------------------

  local function xml(s)
    return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
                                         ['"'] = "&quot;"}))
  end

  -- stroke-dasharray for a series' dash: true gives "5,3", a string is the pattern.
  local function dash_attr(dash)
    if not dash then return "" end
    return fmt(' stroke-dasharray="%s"', xml(dash == true and "5,3" or dash))
  end

  -- Short labels: 0, 0.25, 1500, 2.5e-04 -> 2.5e-4
  local function label_num(v)
    if v == 0 then return "0" end
    local a = math.abs(v)
    local s
    if a >= 1e-3 and a < 1e5 then
      s = fmt("%.4g", v)
    else
      s = fmt("%.3e", v):gsub("%.?0+e", "e")
      s = s:gsub("e%+?(%-?)0*(%d)", "e%1%2")
    end
    return s
  end

  local function nice(x, round)
    local e = floor(log10(x))
    local f = x / 10 ^ e
    local nf
    if round then
      nf = f < 1.5 and 1 or f < 3 and 2 or f < 7 and 5 or 10
    else
      nf = f <= 1 and 1 or f <= 2 and 2 or f <= 5 and 5 or 10
    end
    return nf * 10 ^ e
  end

  -- About n round-numbered ticks covering [lo, hi].
  local function linear_ticks(lo, hi, n)
    if not (hi > lo) then return {lo} end
    local step = nice(nice(hi - lo, false) / math.max(1, n - 1), true)
    local ticks = {}
    local t = ceil(lo / step - 1e-9) * step
    while t <= hi + step * 1e-9 do
      ticks[#ticks + 1] = math.abs(t) < step * 1e-9 and 0 or t
      t = t + step
    end
    return ticks
  end

  -- An axis maps data values to pixels between p0 and p1.
  local Axis = {}
  Axis.__index = Axis

  -- Linear axis over the data [lo, hi], padded unless exact.
  local function linear_axis(lo, hi, p0, p1, pad)
    if hi - lo == math.huge or (pad and (hi - lo) * 1.1 == math.huge) then
      error("values too large to plot: their range overflows a double", 0)
    end
    if lo == hi then
      local d = lo == 0 and 1 or math.abs(lo) * 0.1
      lo, hi = lo - d, hi + d
    elseif pad then
      local d = (hi - lo) * 0.04
      lo, hi = lo - d, hi + d
    end
    local a = setmetatable({lo = lo, hi = hi, p0 = p0, p1 = p1, log = false}, Axis)
    a.ticks = {}
    for _, t in ipairs(linear_ticks(lo, hi, 6)) do
      a.ticks[#a.ticks + 1] = {value = t, label = label_num(t)}
    end
    return a
  end

  -- Log axis over positive data [lo, hi] (padded by 3% of its span when
  -- pad): decade ticks, and 2 and 5 labelled when it spans little.
  local function log_axis(lo, hi, p0, p1, pad)
    local l0, l1 = log10(lo), log10(hi)
    if l1 - l0 < 1e-9 then l0, l1 = l0 - 0.5, l1 + 0.5 end
    if pad then
      local d = (l1 - l0) * 0.03
      l0, l1 = l0 - d, l1 + d
    end
    local a = setmetatable({lo = l0, hi = l1, p0 = p0, p1 = p1, log = true}, Axis)
    a.ticks, a.minor = {}, {}
    local span = l1 - l0
    local d0, d1 = floor(l0), ceil(l1)
    local every = d1 - d0 > 10 and ceil((d1 - d0) / 8) or 1
    local function inside(lv) return lv >= l0 - 1e-9 and lv <= l1 + 1e-9 end
    for k = d0, d1 do
      if inside(k) and k % every == 0 then a.ticks[#a.ticks + 1] = {value = 10 ^ k, exp = k} end
      if span <= 6 then
        for m = 2, 9 do
          local v = m * 10 ^ k
          if inside(log10(v)) then
            if span <= 2.1 and (m == 2 or m == 5) then
              a.ticks[#a.ticks + 1] = {value = v, label = label_num(v)}
            else
              a.minor[#a.minor + 1] = v
            end
          end
        end
      end
    end
    return a
  end

  function Axis:map(v)
    local t = self.log and log10(v) or v
    return self.p0 + (t - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)
  end

  -- The SVG markup of a tick label: 10^k as a superscript.
  local function tick_text(t)
    if t.exp == nil then return xml(t.label) end
    if t.exp == 0 then return "1" end
    if t.exp == 1 then return "10" end
    return fmt('10<tspan dy="-5" font-size="9">%d</tspan>', t.exp)
  end

  ---------------------------------------------------------------------------
  -- Figures
  ---------------------------------------------------------------------------

  local Fig = {}
  Fig.__index = Fig

  -- Width of the legend box for these entries (labels at about 7 px a character).
  local function legend_width(entries)
    local width = 0
    for _, e in ipairs(entries) do width = math.max(width, utf8.len(e.label) or #e.label) end
    return 40 + 7 * width
  end

  local function figure(opts, right, entries)
    if opts.legend == "outside" and entries and #entries > 0 then
      right = (right or 24) + legend_width(entries) + 12
    end
    local w = opts.width or 720
    local h = opts.height or 450
    local f = setmetatable({w = w, h = h, out = {}}, Fig)
    f.left, f.right, f.top, f.bottom = 78, right or 24, opts.title and 44 or 22, 56
    f.x0, f.x1 = f.left, w - f.right
    f.y0, f.y1 = h - f.bottom, f.top -- y grows upwards
    return f
  end

  function Fig:add(s) self.out[#self.out + 1] = s end

  function Fig:text(x, y, s, attrs)
    self:add(fmt('<text x="%.1f" y="%.1f"%s>%s</text>', x, y, attrs and " " .. attrs or "", s))
  end

  -- Frame, grid, ticks and labels of the plotting area.
  function Fig:axes(xa, ya, opts)
    self:add('<g class="grid" stroke="#e6e6e6" stroke-width="1">')
    for _, t in ipairs(ya.ticks) do
      local y = ya:map(t.value)
      self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', self.x0, y, self.x1, y))
    end
    for _, t in ipairs(xa.ticks) do
      local x = xa:map(t.value)
      self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', x, self.y0, x, self.y1))
    end
    self:add("</g>")
    self:add(fmt('<rect class="frame" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>',
                 self.x0, self.y1, self.x1 - self.x0, self.y0 - self.y1))
    self:add('<g class="ticks" stroke="#333">')
    for _, v in ipairs(ya.minor or {}) do
      local y = ya:map(v)
      self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', self.x0, y, self.x0 + 3, y))
    end
    for _, v in ipairs(xa.minor or {}) do
      local x = xa:map(v)
      self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', x, self.y0, x, self.y0 - 3))
    end
    for _, t in ipairs(ya.ticks) do
      local y = ya:map(t.value)
      self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', self.x0 - 5, y, self.x0, y))
    end
    for _, t in ipairs(xa.ticks) do
      local x = xa:map(t.value)
      self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>', x, self.y0, x, self.y0 + 5))
    end
    self:add("</g>")
    self:add('<g class="tick-labels" fill="#333">')
    for _, t in ipairs(ya.ticks) do
      self:text(self.x0 - 8, ya:map(t.value) + 4, tick_text(t), 'text-anchor="end"')
    end
    for _, t in ipairs(xa.ticks) do
      self:text(xa:map(t.value), self.y0 + 19, tick_text(t), 'text-anchor="middle"')
    end
    self:add("</g>")
    self:labels(opts)
  end

  function Fig:labels(opts)
    if opts.title then
      self:text(self.w / 2, 26, xml(opts.title), 'class="title" text-anchor="middle" font-size="16" font-weight="bold"')
    end
    if opts.xlabel then
      self:text((self.x0 + self.x1) / 2, self.h - 14, xml(opts.xlabel), 'class="xlabel" text-anchor="middle"')
    end
    if opts.ylabel then
      local x, y = math.max(18, self.x0 - 58), (self.y0 + self.y1) / 2
      self:text(x, y, xml(opts.ylabel),
                fmt('class="ylabel" text-anchor="middle" transform="rotate(-90 %.1f %.1f)"', x, y))
    end
  end

  -- Legend box in a corner of the plotting area.
  function Fig:legend(entries, where, kind)
    if #entries == 0 then return end
    local bw, bh = legend_width(entries), 8 + 18 * #entries
    local x = where:find("left") and self.x0 + 10 or self.x1 - 10 - bw
    local y = where:find("bottom") and self.y0 - 10 - bh or self.y1 + 10
    if where == "outside" then x, y = self.x1 + 12, self.y1 end
    self:add('<g class="legend">')
    self:add(fmt('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="white" fill-opacity="0.85" stroke="#bbb"/>',
                 x, y, bw, bh))
    for i, e in ipairs(entries) do
      local yy = y + 4 + 18 * (i - 1) + 9
      if kind == "box" then
        self:add(fmt('<rect x="%.1f" y="%.1f" width="18" height="10" fill="%s" fill-opacity="0.6" stroke="%s"/>',
                     x + 8, yy - 5, xml(e.color), xml(e.color)))
      else
        self:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>',
                     x + 8, yy, x + 28, yy, xml(e.color), dash_attr(e.dash)))
      end
      self:text(x + 34, yy + 4, xml(e.label), 'class="legend-label"')
    end
    self:add("</g>")
  end

  -- Write the figure; an unwritable path is an expected failure: nil, message.
  function Fig:write(path, title)
    local head = fmt('<?xml version="1.0" encoding="UTF-8"?>\n' ..
                     '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" ' ..
                     'font-family="Helvetica, Arial, sans-serif" font-size="12">\n<title>%s</title>\n' ..
                     '<rect width="100%%" height="100%%" fill="white"/>\n',
                     self.w, self.h, self.w, self.h, xml(title or "ntk plot"))
    local f, err = io.open(path, "w")
    if not f then return nil, "cannot write plot: " .. tostring(err) end
    local ok, werr = f:write(head, table.concat(self.out, "\n"), "\n</svg>\n")
    local cok, cerr = f:close()
    if not ok or not cok then return nil, "cannot write plot " .. path .. ": " .. tostring(werr or cerr) end
    return path
  end

  local function common_opts(fname, n, opts, extra)
    local known = {"title", "xlabel", "ylabel", "width", "height", "legend", "labels"}
    for _, k in ipairs(extra) do known[#known + 1] = k end
    opts = check_options(fname, n, opts, known)
    for _, k in ipairs{"title", "xlabel", "ylabel"} do
      local v = opts[k]
      if v ~= nil and type(v) ~= "string" and type(v) ~= "number" then
        argerror(fname, n, fmt("option '%s' must be a string, got %s", k, type(v)))
      end
    end
    local o = setmetatable({}, {__index = opts})
    o.width = opt_positive(fname, n, opts, "width", 720, true)
    o.height = opt_positive(fname, n, opts, "height", 450, true)
    if o.width < 200 or o.height < 150 then argerror(fname, n, "width and height must be at least 200 x 150") end
    local lg = opts.legend
    if lg ~= nil and type(lg) ~= "boolean" and lg ~= "topright" and lg ~= "topleft"
       and lg ~= "bottomright" and lg ~= "bottomleft" and lg ~= "outside" then
      argerror(fname, n, "option 'legend' must be a boolean or topright, topleft, bottomright, bottomleft, outside")
    end
    return o
  end

  local function legend_entries(list, opts)
    if opts.legend == false then return {} end
    local out = {}
    for _, s in ipairs(list) do
      if s.label then out[#out + 1] = {label = s.label, color = s.color, dash = s.dash} end
    end
    return out
  end

  local function polyline(f, pts, color, class, dash)
    if #pts == 0 then return end
    local buf = {}
    for i, p in ipairs(pts) do buf[i] = fmt("%.2f,%.2f", p[1], p[2]) end
    f:add(fmt('<polyline class="%s" fill="none" stroke="%s" stroke-width="1.8"%s points="%s"/>',
              class, xml(color), dash_attr(dash), table.concat(buf, " ")))
  end

  local function markers(f, pts, color)
    f:add(fmt('<g class="markers" fill="%s">', xml(color)))
    for _, p in ipairs(pts) do f:add(fmt('<circle cx="%.2f" cy="%.2f" r="2.5"/>', p[1], p[2])) end
    f:add("</g>")
  end

  -- Clip the plotting area so nothing spills over the frame.
  local clip_count = 0
  local function clip_open(f)
    clip_count = clip_count + 1
    local id = "area" .. clip_count
    f:add(fmt('<clipPath id="%s"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/></clipPath>',
              id, f.x0, f.y1, f.x1 - f.x0, f.y0 - f.y1))
    f:add(fmt('<g clip-path="url(#%s)">', id))
  end

  -- Every series' points (s.pts) through the axes, clipped to the plotting
  -- area; markers on each point when opts.markers says so, or by default
  -- when a series has at most `few` points.
  -- A footnote counting what a log scale could not show.
  local function dropped_note(f, count, noun)
    if count > 0 then
      f:text(4, f.h - 4, fmt("%d non-positive %s%s not shown", count, noun, count == 1 and "" or "s"),
             'class="note" fill="#888" font-size="10"')
    end
  end

  local function draw_series(f, list, xa, ya, markers_opt, few)
    clip_open(f)
    for _, s in ipairs(list) do
      local px = {}
      for j, p in ipairs(s.pts) do px[j] = {xa:map(p[1]), ya:map(p[2])} end
      polyline(f, px, s.color, "series", s.dash)
      local mk = markers_opt
      if mk == nil then mk = #px <= few end
      if mk then markers(f, px, s.color) end
    end
    f:add("</g>")
  end

  ---------------------------------------------------------------------------
  -- spectrum
  ---------------------------------------------------------------------------

  --- ntk.plot.spectrum(ev, path[, opts]): eigenvalues against their index
  --- (descending), on a log scale by default; ev is one series or a list of
  --- series for comparisons. Returns path, and a table of what was dropped.
  function plot.spectrum(ev, path, opts)
    local F = "spectrum"
    check_path(F, 2, path)
    local o = common_opts(F, 3, opts, {"log", "logx", "normalize", "k", "markers", "sort"})
    local log = opt_type(F, 3, o, "log", "boolean")
    if log == nil then log = true end
    local logx = opt_type(F, 3, o, "logx", "boolean") or false
    local norm = o.normalize
    if norm ~= nil and norm ~= false and norm ~= "trace" and norm ~= "max" then
      argerror(F, 3, "option 'normalize' must be false, 'trace' or 'max'")
    end
    local k = o.k ~= nil and opt_positive(F, 3, o, "k", nil, true) or nil
    local list = series_list(F, 1, ev, o.labels)
    local dropped = {}
    local xmax, lo, hi = 1, math.huge, -math.huge
    for i, s in ipairs(list) do
      local v = s.values
      if o.sort ~= false then table.sort(v, function(a, b) return a > b end) end
      if norm then
        local d = 0
        if norm == "trace" then for _, x in ipairs(v) do d = d + x end
        else for _, x in ipairs(v) do d = math.max(d, x) end end
        if d <= 0 then argerror(F, 1, fmt("series %d cannot be normalized: its %s is not positive", i, norm)) end
        for j = 1, #v do v[j] = v[j] / d end
      end
      if k and #v > k then for j = #v, k + 1, -1 do v[j] = nil end end
      s.pts = {}
      dropped[i] = 0
      for j, x in ipairs(v) do
        if log and x <= 0 then
          dropped[i] = dropped[i] + 1
        else
          s.pts[#s.pts + 1] = {j, x}
          if x < lo then lo = x end
          if x > hi then hi = x end
        end
      end
      xmax = math.max(xmax, #v)
    end
    if lo > hi then
      argerror(F, 1, "no positive eigenvalues to show on a log scale (use log = false)")
    end
    local entries = legend_entries(list, o)
    local f = figure(o, nil, entries)
    local xa = logx and log_axis(1, xmax, f.x0, f.x1, false) or linear_axis(1, xmax, f.x0, f.x1, false)
    local ya = log and log_axis(lo, hi, f.y0, f.y1, true) or linear_axis(math.min(lo, 0), hi, f.y0, f.y1, true)
    local ol = setmetatable({xlabel = o.xlabel or "index (descending)",
                             ylabel = o.ylabel or (norm and "eigenvalue / " .. norm or "eigenvalue")},
                            {__index = o})
    f:axes(xa, ya, ol)
    draw_series(f, list, xa, ya, o.markers, 60)
    local nd = 0
    for _, d in ipairs(dropped) do nd = nd + d end
    dropped_note(f, nd, "value")
    -- a descending spectrum leaves its lower left corner empty
    f:legend(entries, type(o.legend) == "string" and o.legend or "bottomleft")
    local ok, err = f:write(path, o.title or "eigenvalue spectrum")
    if not ok then return nil, err end
    return path, {dropped = dropped}
  end

  ---------------------------------------------------------------------------
  -- histogram
  ---------------------------------------------------------------------------

  --- ntk.plot.histogram(values, path[, opts]): counts of values in bins;
  --- several series overlay. opts.logx bins positive values by decades.
  function plot.histogram(values, path, opts)
    local F = "histogram"
    check_path(F, 2, path)
    local o = common_opts(F, 3, opts, {"bins", "logx", "logy", "range", "density"})
    local logx = opt_type(F, 3, o, "logx", "boolean") or false
    local logy = opt_type(F, 3, o, "logy", "boolean") or false
    local density = opt_type(F, 3, o, "density", "boolean") or false
    local list = series_list(F, 1, values, o.labels)
    local lo, hi, count = math.huge, -math.huge, 0
    local dropped = 0
    for _, s in ipairs(list) do
      for _, x in ipairs(s.values) do
        if logx and x <= 0 then dropped = dropped + 1
        else
          lo, hi = math.min(lo, x), math.max(hi, x)
          count = count + 1
        end
      end
    end
    if o.range ~= nil then
      local r = o.range
      if type(r) ~= "table" or type(r[1]) ~= "number" or type(r[2]) ~= "number" or not (r[1] < r[2]) then
        argerror(F, 3, "option 'range' must be {lo, hi} with lo < hi")
      end
      if logx and r[1] <= 0 then argerror(F, 3, "option 'range' must be positive with logx") end
      lo, hi = r[1], r[2]
    end
    if count == 0 then argerror(F, 1, "no positive values to bin on a log scale (use logx = false)") end
    local tlo, thi = lo, hi
    if logx then tlo, thi = log10(lo), log10(hi) end
    if thi == tlo then
      local d = tlo == 0 and 0.5 or math.abs(tlo) * 0.05
      tlo, thi = tlo - d, thi + d
    end
    local bins = o.bins ~= nil and opt_positive(F, 3, o, "bins", nil, true)
    if not bins then -- Sturges' rule on the largest series, bounded
      local n = 0
      for _, s in ipairs(list) do n = math.max(n, #s.values) end
      bins = math.max(5, math.min(60, ceil(math.log(n, 2)) + 1))
    end
    if bins > 10000 then argerror(F, 3, "option 'bins' must be at most 10000") end
    local width = (thi - tlo) / bins
    local ymax = 0
    for _, s in ipairs(list) do
      s.counts = {}
      for b = 1, bins do s.counts[b] = 0 end
      local n = 0
      for _, x in ipairs(s.values) do
        if not (logx and x <= 0) then
          local t = logx and log10(x) or x
          if t >= tlo and t <= thi then
            local b = math.min(bins, floor((t - tlo) / width) + 1)
            s.counts[b] = s.counts[b] + 1
            n = n + 1
          end
        end
      end
      if density and n > 0 then
        for b = 1, bins do s.counts[b] = s.counts[b] / (n * width) end
      end
      for b = 1, bins do ymax = math.max(ymax, s.counts[b]) end
    end
    local entries = legend_entries(list, o)
    local f = figure(o, nil, entries)
    local xa = logx and log_axis(10 ^ tlo, 10 ^ thi, f.x0, f.x1, false) or linear_axis(tlo, thi, f.x0, f.x1, false)
    local ya
    if logy then
      local pos = math.huge
      for _, s in ipairs(list) do
        for _, c in ipairs(s.counts) do if c > 0 then pos = math.min(pos, c) end end
      end
      if pos == math.huge then pos, ymax = 1, 10 end
      ya = log_axis(pos * 0.5, ymax * 1.3, f.y0, f.y1, false)
    else
      ya = linear_axis(0, ymax > 0 and ymax or 1, f.y0, f.y1, false)
      ya.hi = ya.hi * 1.05
    end
    local ol = setmetatable({xlabel = o.xlabel or "value",
                             ylabel = o.ylabel or (density and "density" or "count")}, {__index = o})
    f:axes(xa, ya, ol)
    clip_open(f)
    local base = logy and f.y0 or ya:map(0)
    for _, s in ipairs(list) do
      f:add(fmt('<g class="bars" fill="%s" fill-opacity="%s" stroke="%s" stroke-width="0.5">',
                xml(s.color), #list > 1 and "0.45" or "0.75", xml(s.color)))
      for b = 1, bins do
        local c = s.counts[b]
        if c > 0 then
          local a, z = tlo + (b - 1) * width, tlo + b * width
          local xa0 = xa:map(logx and 10 ^ a or a)
          local xa1 = xa:map(logx and 10 ^ z or z)
          local y = ya:map(c)
          f:add(fmt('<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f"/>', xa0, y, math.max(0.5, xa1 - xa0), base - y))
        end
      end
      f:add("</g>")
    end
    f:add("</g>")
    dropped_note(f, dropped, "value")
    f:legend(entries, type(o.legend) == "string" and o.legend or "topright", "box")
    local ok, err = f:write(path, o.title or "histogram")
    if not ok then return nil, err end
    return path
  end

  ---------------------------------------------------------------------------
  -- lines
  ---------------------------------------------------------------------------

  -- Series for lines: y only (x = 1..n), {x = ..., y = ..., label = ...},
  -- or a list of those.
  local function line_series(F, arg, labels)
    local function one(v, i)
      local what = i == 0 and "series" or fmt("series %d", i)
      if type(v) == "table" and not ntk.is_matrix(v) and v.y ~= nil then
        local y = numbers(F, 1, v.y, what .. ".y")
        local x
        if v.x ~= nil then
          x = numbers(F, 1, v.x, what .. ".x")
          if #x ~= #y then
            argerror(F, 1, fmt("%s: x has %d values and y %d", what, #x, #y))
          end
        else
          x = {}
          for j = 1, #y do x[j] = j end
        end
        if v.label ~= nil and type(v.label) ~= "string" and type(v.label) ~= "number" then
          argerror(F, 1, what .. ": label must be a string")
        end
        return {x = x, y = y, label = v.label and tostring(v.label), color = v.color, dash = v.dash}
      end
      local y = numbers(F, 1, v, what)
      local x = {}
      for j = 1, #y do x[j] = j end
      return {x = x, y = y}
    end
    local list
    if ntk.is_matrix(arg) or (type(arg) == "table" and (type(arg[1]) == "number" or arg.y ~= nil)) then
      list = {one(arg, 0)}
    elseif type(arg) == "table" and #arg > 0 then
      list = {}
      for i = 1, #arg do list[i] = one(arg[i], i) end
    else
      argerror(F, 1, "expected y values, {x = ..., y = ...} or a list of series, got " ..
                     (type(arg) == "table" and "an empty table" or type(arg)))
    end
    for i, s in ipairs(list) do
      if #s.y == 0 then argerror(F, 1, fmt("series %d is empty", i)) end
      if labels and labels[i] ~= nil then s.label = tostring(labels[i]) end
      s.color = s.color or PALETTE[(i - 1) % #PALETTE + 1]
    end
    return list
  end

  --- ntk.plot.lines(series, path[, opts]): curves y(x), linear or log axes.
  function plot.lines(series, path, opts)
    local F = "lines"
    check_path(F, 2, path)
    local o = common_opts(F, 3, opts, {"logx", "logy", "markers"})
    local logx = opt_type(F, 3, o, "logx", "boolean") or false
    local logy = opt_type(F, 3, o, "logy", "boolean") or false
    if o.labels ~= nil and type(o.labels) ~= "table" then argerror(F, 3, "option 'labels' must be a list of strings") end
    local list = line_series(F, series, o.labels)
    local xlo, xhi, ylo, yhi = math.huge, -math.huge, math.huge, -math.huge
    local dropped = 0
    for _, s in ipairs(list) do
      s.pts = {}
      for j = 1, #s.y do
        local x, y = s.x[j], s.y[j]
        if (logx and x <= 0) or (logy and y <= 0) then
          dropped = dropped + 1
        else
          s.pts[#s.pts + 1] = {x, y}
          xlo, xhi = math.min(xlo, x), math.max(xhi, x)
          ylo, yhi = math.min(ylo, y), math.max(yhi, y)
        end
      end
    end
    if xlo > xhi then argerror(F, 1, "no positive values to show on a log scale") end
    local entries = legend_entries(list, o)
    local f = figure(o, nil, entries)
    local xa = logx and log_axis(xlo, xhi, f.x0, f.x1, false) or linear_axis(xlo, xhi, f.x0, f.x1, false)
    local ya = logy and log_axis(ylo, yhi, f.y0, f.y1, true) or linear_axis(ylo, yhi, f.y0, f.y1, true)
    f:axes(xa, ya, o)
    draw_series(f, list, xa, ya, o.markers, 30)
    dropped_note(f, dropped, "point")
    f:legend(entries, type(o.legend) == "string" and o.legend or "topright")
    local ok, err = f:write(path, o.title or "lines")
    if not ok then return nil, err end
    return path
  end

  ---------------------------------------------------------------------------
  -- heatmap
  ---------------------------------------------------------------------------

  local VIRIDIS = {
    {0.267, 0.005, 0.329}, {0.283, 0.141, 0.458}, {0.254, 0.265, 0.530},
    {0.207, 0.372, 0.553}, {0.164, 0.471, 0.558}, {0.128, 0.567, 0.551},
    {0.135, 0.659, 0.518}, {0.267, 0.749, 0.441}, {0.478, 0.821, 0.318},
    {0.741, 0.873, 0.150}, {0.993, 0.906, 0.144},
  }
  local RDBU = { -- blue (negative) through white to red (positive)
    {0.020, 0.188, 0.380}, {0.129, 0.400, 0.675}, {0.263, 0.576, 0.765},
    {0.573, 0.773, 0.871}, {0.820, 0.898, 0.941}, {0.969, 0.969, 0.969},
    {0.992, 0.859, 0.780}, {0.957, 0.647, 0.510}, {0.839, 0.376, 0.302},
    {0.698, 0.094, 0.169}, {0.404, 0.000, 0.122},
  }

  local function cmap(stops, t)
    if t ~= t then t = 0 end
    t = math.max(0, math.min(1, t))
    local x = t * (#stops - 1)
    local i = math.min(#stops - 2, floor(x))
    local u = x - i
    local a, b = stops[i + 1], stops[i + 2]
    return fmt("#%02x%02x%02x", floor(255 * (a[1] + u * (b[1] - a[1])) + 0.5),
               floor(255 * (a[2] + u * (b[2] - a[2])) + 0.5),
               floor(255 * (a[3] + u * (b[3] - a[3])) + 0.5))
  end

  -- Average-pooling matrix (cells x n): row i averages the entries of bin i.
  local function pooler(n, cells)
    local P = ntk.matrix(cells, n)
    for i = 1, cells do
      local a, b = floor((i - 1) * n / cells) + 1, floor(i * n / cells)
      for r = a, b do P:set(i, r, 1 / (b - a + 1)) end
    end
    return P
  end

  --- ntk.plot.heatmap(K, path[, opts]): a matrix as colours, with lines
  --- every opts.block rows and columns (the m x m blocks of an NTK).
  --- Matrices larger than opts.max_cells per side are average-pooled
  --- (through BLAS) to that size.
  function plot.heatmap(K, path, opts)
    local F = "heatmap"
    if not ntk.is_matrix(K) then argerror(F, 1, "K must be a matrix, got " .. type(K)) end
    check_path(F, 2, path)
    local o = common_opts(F, 3, opts, {"block", "max_cells", "colormap", "range", "colorbar"})
    local rows, cols = K:shape()
    if rows == 0 or cols == 0 then argerror(F, 1, fmt("K is empty (%dx%d)", rows, cols)) end
    local block = o.block ~= nil and opt_positive(F, 3, o, "block", nil, true) or nil
    local max_cells = opt_positive(F, 3, o, "max_cells", 200, true)
    if max_cells > 2000 then argerror(F, 3, "option 'max_cells' must be at most 2000") end
    local name = o.colormap or "auto"
    if name ~= "auto" and name ~= "viridis" and name ~= "diverging" then
      argerror(F, 3, "option 'colormap' must be 'auto', 'viridis' or 'diverging'")
    end
    local nan_r, nan_c
    do
      -- NaN and Inf show up in these cheaply (one of them at least, however
      -- max_abs treats NaN)
      local a, b = K:max_abs(), K:sum()
      if a ~= a or b ~= b or a == math.huge or math.abs(b) == math.huge then
        for i = 1, rows do
          for j = 1, cols do
            local v = K:get(i, j)
            if v ~= v or v == math.huge or v == -math.huge then nan_r, nan_c = i, j break end
          end
          if nan_r then break end
        end
        -- else every entry is finite and only the sum overflowed
        if nan_r then argerror(F, 1, fmt("K contains NaN or Inf at row %d, column %d", nan_r, nan_c)) end
      end
    end
    local cr, cc = math.min(rows, max_cells), math.min(cols, max_cells)
    local M = K
    if cr < rows or cc < cols then
      M = (cr < rows and pooler(rows, cr):mm(K) or K)
      if cc < cols then M = M:mm(pooler(cols, cc):T()) end
    end
    local vals = M:totable()
    local lo, hi = math.huge, -math.huge
    for i = 1, cr do
      local r = vals[i]
      for j = 1, cc do
        local v = r[j]
        if v < lo then lo = v end
        if v > hi then hi = v end
      end
    end
    if lo == -math.huge or hi == math.huge or hi - lo == math.huge then
      argerror(F, 1, "K's entries are too large to draw (their averages or range overflow)")
    end
    if o.range ~= nil then
      local r = o.range
      if type(r) ~= "table" or type(r[1]) ~= "number" or type(r[2]) ~= "number" or not (r[1] < r[2])
         or r[2] - r[1] == math.huge then
        argerror(F, 3, "option 'range' must be {lo, hi} with lo < hi, both finite")
      end
      lo, hi = r[1], r[2]
    end
    local stops
    if name == "diverging" or (name == "auto" and lo < 0 and hi > 0) then
      stops = RDBU
      if o.range == nil then
        local a = math.max(-lo, hi)
        lo, hi = -a, a
      end
    else
      stops = VIRIDIS
    end
    if hi == lo then hi = lo + (lo == 0 and 1 or math.abs(lo) * 1e-6) end

    -- Square cells, with room on the right for the colour bar.
    local colorbar = opt_type(F, 3, o, "colorbar", "boolean") ~= false
    local f = figure(o, colorbar and 96 or 24)
    local aw, ah = f.x1 - f.x0, f.y0 - f.y1
    local cell = math.min(aw / cc, ah / cr)
    -- whole pixels give crisp cells and short numbers, if that costs little room
    if floor(cell) >= 0.9 * cell then cell = floor(cell) end
    local pw, ph = cell * cc, cell * cr
    f.x0 = f.x0 + floor((aw - pw) / 2)
    f.x1, f.y1 = f.x0 + pw, f.y0 - ph
    local top = f.y1
    -- Colours are quantised to LEVELS + 1 steps; each step is one <path>
    -- of the runs of cells that have it, so files stay small.
    local LEVELS = 128
    local function level(v)
      local t = (v - lo) / (hi - lo)
      return floor(math.max(0, math.min(1, t)) * LEVELS + 0.5)
    end
    local function num(v) return (fmt("%.2f", v):gsub("%.?0+$", "")) end
    local runs = {}
    for i = 1, cr do
      local r = vals[i]
      local y = num(top + (i - 1) * cell)
      local j = 1
      while j <= cc do
        local lv = level(r[j])
        local k = j
        while k < cc and level(r[k + 1]) == lv do k = k + 1 end
        local w = num((k - j + 1) * cell)
        local list = runs[lv]
        if not list then list = {}; runs[lv] = list end
        list[#list + 1] = fmt("M%s %sh%sv%sh-%sz", num(f.x0 + (j - 1) * cell), y, w, num(cell), w)
        j = k + 1
      end
    end
    f:add('<g class="cells" shape-rendering="crispEdges">')
    for lv = 0, LEVELS do
      if runs[lv] then
        f:add(fmt('<path fill="%s" d="%s"/>', cmap(stops, lv / LEVELS), table.concat(runs[lv])))
      end
    end
    f:add("</g>")
    f:add(fmt('<rect class="frame" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>',
              f.x0, top, pw, ph))

    -- Block boundaries, in the original index space.
    local note
    if block then
      local nb_r, nb_c = ceil(rows / block), ceil(cols / block)
      local spacing = math.min(ph / (rows / block), pw / (cols / block))
      if spacing >= 3 then
        f:add('<g class="blocks" stroke="#222" stroke-width="0.8" stroke-opacity="0.7">')
        for b = 1, nb_r - 1 do
          local y = top + b * block / rows * ph
          f:add(fmt('<line x1="%.2f" y1="%.2f" x2="%.2f" y2="%.2f"/>', f.x0, y, f.x0 + pw, y))
        end
        for b = 1, nb_c - 1 do
          local x = f.x0 + b * block / cols * pw
          f:add(fmt('<line x1="%.2f" y1="%.2f" x2="%.2f" y2="%.2f"/>', x, top, x, top + ph))
        end
        f:add("</g>")
      else
        note = fmt("%d x %d blocks of %d: too dense to draw their boundaries", nb_r, nb_c, block)
      end
    end

    -- Ticks: sample numbers at block boundaries when blocks are given,
    -- else row and column indices.
    local function ticks(n, len, horizontal)
      local marks = {}
      if block then -- sample numbers at block boundaries
        local count = n / block
        for _, v in ipairs(linear_ticks(0, count, 6)) do
          if v == floor(v) and v <= count then marks[#marks + 1] = {v * block / n * len, floor(v)} end
        end
      else -- row or column indices at cell centres
        for _, v in ipairs(n > 1 and linear_ticks(1, n, 6) or {1}) do
          if v == floor(v) and v >= 1 and v <= n then marks[#marks + 1] = {(v - 0.5) / n * len, floor(v)} end
        end
      end
      f:add('<g class="tick-labels" fill="#333">')
      for _, m in ipairs(marks) do
        local pos, label = m[1], tostring(m[2])
        if horizontal then
          f:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>',
                    f.x0 + pos, top + ph, f.x0 + pos, top + ph + 5))
          f:text(f.x0 + pos, top + ph + 19, label, 'text-anchor="middle"')
        else
          f:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>',
                    f.x0 - 5, top + pos, f.x0, top + pos))
          f:text(f.x0 - 8, top + pos + 4, label, 'text-anchor="end"')
        end
      end
      f:add("</g>")
    end
    ticks(cols, pw, true)
    ticks(rows, ph, false)
    local default_label = block and fmt("sample (blocks of %d outputs)", block) or nil
    f.y0 = top + ph
    f:labels(setmetatable({xlabel = o.xlabel or (default_label or "column"),
                           ylabel = o.ylabel or (default_label or "row")}, {__index = o}))

    if colorbar then
      local bx, bw = f.x0 + pw + 24, 16
      f:add('<defs><linearGradient id="cbar" x1="0" y1="1" x2="0" y2="0">')
      for s = 0, 20 do
        f:add(fmt('<stop offset="%.3f" stop-color="%s"/>', s / 20, cmap(stops, s / 20)))
      end
      f:add("</linearGradient></defs>")
      f:add(fmt('<rect class="colorbar" x="%.1f" y="%.1f" width="%d" height="%.1f" fill="url(#cbar)" stroke="#333"/>',
                bx, top, bw, ph))
      f:add('<g class="tick-labels" fill="#333">')
      for _, v in ipairs(linear_ticks(lo, hi, 5)) do
        local y = top + ph - (v - lo) / (hi - lo) * ph
        f:add(fmt('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>', bx + bw, y, bx + bw + 4, y))
        f:text(bx + bw + 7, y + 4, xml(label_num(v)))
      end
      f:add("</g>")
    end
    local sub = {}
    if cr < rows or cc < cols then
      sub[#sub + 1] = fmt("%dx%d shown as %dx%d averages", rows, cols, cr, cc)
    end
    if note then sub[#sub + 1] = note end
    if #sub > 0 then
      f:text(4, f.h - 4, xml(table.concat(sub, "; ")), 'class="note" fill="#888" font-size="10"')
    end
    local ok, err = f:write(path, o.title or "heatmap")
    if not ok then return nil, err end
    return path
  end

  ---------------------------------------------------------------------------
  -- text charts
  ---------------------------------------------------------------------------

  local EIGHTHS = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"}
  local ASCII = {".", ".", ":", ":", "|", "|", "#", "#"}

  -- Resample to at most width columns, each the largest value of its bin
  -- (for a spectrum: the envelope, so the top eigenvalue shows).
  local function columns(v, width, log)
    local n = #v
    local out = {}
    local cols = math.min(n, width)
    for c = 1, cols do
      local a, b = floor((c - 1) * n / cols) + 1, floor(c * n / cols)
      local m = -math.huge
      for i = a, b do if v[i] > m then m = v[i] end end
      out[c] = log and log10(m) or m
    end
    return out
  end

  local function text_opts(F, opts, extra)
    local known = {"width", "log", "ascii"}
    for _, k in ipairs(extra or {}) do known[#known + 1] = k end
    opts = check_options(F, 2, opts, known)
    local log = opt_type(F, 2, opts, "log", "boolean")
    local ascii = opt_type(F, 2, opts, "ascii", "boolean") or false
    return opts, log, ascii
  end

  -- Values for a text chart, filtered for log scale; log == nil means
  -- "log when everything is positive and spans over two decades".
  local function text_values(F, values, log)
    local v = numbers(F, 1, values, "values")
    if #v == 0 then argerror(F, 1, "no values to plot (empty)") end
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(v) do lo, hi = math.min(lo, x), math.max(hi, x) end
    if log == nil then -- spectra: mostly positive, spanning decades
      local pos, plo = 0, math.huge
      for _, x in ipairs(v) do
        if x > 0 then pos, plo = pos + 1, math.min(plo, x) end
      end
      log = pos >= #v / 2 and hi / plo > 100
    end
    local dropped = 0
    if log then
      local kept = {}
      for _, x in ipairs(v) do
        if x > 0 then kept[#kept + 1] = x else dropped = dropped + 1 end
      end
      if #kept == 0 then argerror(F, 1, "no positive values to show on a log scale") end
      v = kept
    end
    return v, log, dropped
  end

  --- ntk.plot.sparkline(values[, opts]): one line of block characters.
  function plot.sparkline(values, opts)
    local F = "sparkline"
    local o, log, ascii = text_opts(F, opts)
    local width = opt_positive(F, 2, o, "width", 60, true)
    local v
    v, log = text_values(F, values, log)
    local c = columns(v, width, log)
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(c) do lo, hi = math.min(lo, x), math.max(hi, x) end
    local chars = ascii and ASCII or EIGHTHS
    local out = {}
    for i, x in ipairs(c) do
      local t = hi > lo and (x - lo) / (hi - lo) or 0.5
      out[i] = chars[math.min(8, floor(t * 7 + 0.5) + 1)]
    end
    return table.concat(out)
  end

  --- ntk.plot.text(values[, opts]): a small bar chart as a string (for the
  --- terminal): opts.width columns, opts.height rows, log scale when the
  --- values span decades (opts.log to force), an optional title.
  function plot.text(values, opts)
    local F = "text"
    local o, log, ascii = text_opts(F, opts, {"height", "title"})
    local width = opt_positive(F, 2, o, "width", 64, true)
    local height = opt_positive(F, 2, o, "height", 10, true)
    if width > 1000 or height > 200 then argerror(F, 2, "width must be at most 1000 and height 200") end
    local v, dropped
    v, log, dropped = text_values(F, values, log)
    local c = columns(v, width, log)
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(v) do lo, hi = math.min(lo, x), math.max(hi, x) end
    if log then lo, hi = log10(lo), log10(hi) end
    local span = hi > lo and hi - lo or 1
    local base = hi > lo and lo or lo - 0.5
    if not log and lo >= 0 then base, span = 0, hi > 0 and hi or 1 end -- bars from zero
    local chars = ascii and ASCII or EIGHTHS
    local full = ascii and "#" or "█"
    local function ylab(t) return label_num(log and 10 ^ t or t) end
    local top, bottom = ylab(base + span), ylab(base)
    local lw = math.max(#top, #bottom)
    local axis = ascii and "|" or "┤"
    local lines = {}
    if o.title then lines[1] = string.rep(" ", lw + 2) .. tostring(o.title) end
    for row = height, 1, -1 do
      local buf = {}
      for i, x in ipairs(c) do
        -- bar height in rows, at least an eighth so every column shows
        local h = math.max(1 / 8, (x - base) / span * height)
        local level = h - (row - 1)
        if level >= 1 then buf[i] = full
        elseif level > 0 then buf[i] = chars[math.max(1, math.min(8, ceil(level * 8)))]
        else buf[i] = " " end
      end
      local label = row == height and top or row == 1 and bottom or ""
      lines[#lines + 1] = string.rep(" ", lw - #label) .. label .. " " .. axis .. table.concat(buf):gsub("%s+$", "")
    end
    local n = #v
    local last = tostring(n)
    local pad = math.max(1, #c - 1 - #last)
    lines[#lines + 1] = string.rep(" ", lw + 2) .. "1" .. string.rep(" ", pad) .. last
    local foot = {}
    if log then foot[#foot + 1] = "log scale" end
    if n > width then foot[#foot + 1] = fmt("%d values in %d columns", n, #c) end
    if dropped > 0 then foot[#foot + 1] = fmt("%d non-positive not shown", dropped) end
    if #foot > 0 then lines[#lines + 1] = string.rep(" ", lw + 2) .. "(" .. table.concat(foot, ", ") .. ")" end
    return table.concat(lines, "\n")
  end
end
