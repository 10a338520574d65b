local ntk = require "ntk"

describe("ntk.Matrix", function()
  it("is built from sizes, fills, nested tables, flat lists and generators", function()
    local z = ntk.matrix(2, 3)
    assert.same({2, 3}, {z:shape()})
    assert.equal(0, z:max_abs())
    local f = ntk.matrix(2, 2, 1.5)
    assert.equal(6, f:sum())
    local m = ntk.matrix{{1, 2, 3}, {4, 5, 6}}
    assert.equal(2, m:rows())
    assert.equal(3, m:cols())
    assert.equal(6, m:get(2, 3))
    assert.equal(2, #m)
    local v = ntk.matrix{1, 2, 3}
    assert.same({3, 1}, {v:shape()})
    assert.same({3, 1}, {ntk.vector{4, 5, 6}:shape()})
    local e = ntk.eye(3)
    assert.equal(3, e:trace())
    assert.equal(3, e:sum())
    assert.equal(0, ntk.zeros(0, 4):rows())
    assert.equal(8, ntk.ones(2, 4):sum())
    assert.is_true(ntk.is_matrix(m))
    assert.is_false(ntk.is_matrix({}))
  end)

  it("draws reproducible normals from a seed", function()
    local a, b, c = ntk.randn(50, 40, 3), ntk.randn(50, 40, 3), ntk.randn(50, 40, 4)
    assert.equal(0, (a - b):max_abs())
    assert.is_true((a - c):max_abs() > 0)
    -- 2000 standard normals: mean and variance within 5 sigma.
    local mean = a:mean()
    assert.is_true(math.abs(mean) < 5 / math.sqrt(2000))
    local var = a:cmul(a):mean() - mean * mean
    assert.is_true(math.abs(var - 1) < 5 * math.sqrt(2 / 2000))
    local u = ntk.rand(100, 10, 1)
    local lo, hi = u:min(), u:max()
    assert.is_true(lo >= 0 and hi < 1)
  end)

  it("gets, sets, copies, transposes and slices", function()
    local m = ntk.matrix{{1, 2, 3}, {4, 5, 6}}
    assert.same({{1, 2, 3}, {4, 5, 6}}, m:totable())
    local c = m:copy()
    c:set(1, 1, 10)
    assert.equal(1, m:get(1, 1))
    assert.equal(10, c:get(1, 1))
    assert.same({{1, 4}, {2, 5}, {3, 6}}, m:T():totable())
    assert.same({{5, 6}}, m:sub(2, 2, 2, 3):totable())
    assert.same({{2}, {5}}, m:sub(1, 2, 2, 2):totable())
    assert.same({0, 3}, {m:sub(1, 0, 1, 3):shape()})
    assert.same({{4, 5, 6}}, m:row(2):totable())
    assert.same({{3}, {6}}, m:col(3):totable())
    assert.same({{1}, {5}}, m:diag():totable())
    assert.same({{1, 2}, {3, 4}, {5, 6}}, m:reshape(3, 2):totable())
    assert.equal(21, m:sum())
    assert.equal(3.5, m:mean())
    assert.equal(6, m:max_abs())
    assert.equal(6, (-m):max_abs())
    local v, i, j = m:max()
    assert.same({6, 2, 3}, {v, i, j})
    v, i, j = m:min()
    assert.same({1, 1, 1}, {v, i, j})
    assert.near(math.sqrt(91), m:norm(), 1e-14)
    assert.equal(7, ntk.matrix(3, 3):fill(7):get(3, 3))
  end)

  it("does arithmetic and BLAS products", function()
    local a = ntk.matrix{{1, 2}, {3, 4}}
    local b = ntk.matrix{{5, 6}, {7, 8}}
    assert.same({{6, 8}, {10, 12}}, (a + b):totable())
    assert.same({{-4, -4}, {-4, -4}}, (a - b):totable())
    assert.same({{2, 4}, {6, 8}}, (2 * a):totable())
    assert.same({{2, 4}, {6, 8}}, (a * 2):totable())
    assert.same({{0.5, 1}, {1.5, 2}}, (a / 2):totable())
    assert.same({{-1, -2}, {-3, -4}}, (-a):totable())
    assert.same({{2, 3}, {4, 5}}, (a + 1):totable())
    assert.same({{19, 22}, {43, 50}}, a:mm(b):totable())
    assert.same({{5, 12}, {21, 32}}, a:cmul(b):totable())
    -- A product against loops on a random rectangular case.
    local x, y = ntk.randn(7, 5, 1), ntk.randn(5, 3, 2)
    local p = x:mm(y)
    local worst = 0
    for i = 1, 7 do
      for j = 1, 3 do
        local s = 0
        for k = 1, 5 do s = s + x:get(i, k) * y:get(k, j) end
        worst = math.max(worst, math.abs(s - p:get(i, j)))
      end
    end
    assert.is_true(worst < 1e-14)
    assert.same({0, 0}, {ntk.zeros(0, 3):mm(ntk.zeros(3, 0)):shape()})
    assert.equal(0, ntk.ones(2, 0):mm(ntk.ones(0, 2)):max_abs())
  end)

  it("reports shape errors with both shapes", function()
    local a, b = ntk.matrix(2, 3), ntk.matrix(3, 2)
    assert.error_matches(function() return a + b end, "2x3 and 3x2")
    assert.error_matches(function() return a - b end, "2x3 and 3x2")
    assert.error_matches(function() return a:mm(a) end, "A is 2x3, B is 2x3")
    assert.error_matches(function() return a:cmul(b) end, "2x3 and 3x2")
    assert.error_matches(function() return a * b end, "mm")
    assert.error_matches(function() return a:trace() end, "square")
    assert.error_matches(function() return a:reshape(4, 2) end, "cannot reshape 2x3 into 4x2")
  end)

  it("rejects bad arguments with messages naming them", function()
    assert.error_matches(function() ntk.matrix(-1, 2) end, "rows must be >= 0")
    assert.error_matches(function() ntk.matrix(2, 1.5) end, "cols must be an integer")
    assert.error_matches(function() ntk.matrix("a", 2) end, "bad argument #1")
    assert.error_matches(function() ntk.matrix(2 ^ 40, 2) end, "below 2%^31")
    assert.error_matches(function() ntk.matrix(2 ^ 31 - 1, 2 ^ 31 - 1) end, "too large")
    assert.error_matches(function() ntk.matrix{{1, 2}, {3}} end, "row 2 has 1 entries, row 1 has 2")
    assert.error_matches(function() ntk.matrix{{1, "x"}} end, "entry %(1, 2%) must be a number")
    assert.error_matches(function() ntk.matrix{1, {}} end, "entry 2 must be a number")
    local m = ntk.matrix(2, 2)
    assert.error_matches(function() m:get(3, 1) end, "row index 3 out of range 1..2")
    assert.error_matches(function() m:get(1, 0) end, "column index 0 out of range")
    assert.error_matches(function() m:set(1, 1, "x") end, "number expected")
    assert.error_matches(function() m:sub(1, 3, 1, 2) end, "row range end 3 out of range")
    assert.error_matches(function() m.get({}, 1, 1) end, "ntk.Matrix expected")
    assert.error_matches(function() ntk.randn(2, 2, 1.5) end, "integer seed")
  end)

  it("prints a truncated body and a shape footer", function()
    local s = tostring(ntk.matrix{{1, 2.5}, {3, 4}})
    assert.matches("%[ntk.Matrix 2x2%]$", s)
    assert.matches("2.5", s)
    local big = tostring(ntk.randn(100, 50, 1))
    assert.matches("%.%.%.", big)
    assert.matches("%[ntk.Matrix 100x50%]$", big)
    local lines = select(2, big:gsub("\n", "\n"))
    assert.is_true(lines <= 12)
    assert.equal("[ntk.Matrix 0x0]", tostring(ntk.matrix(0, 0)))
  end)

  it("shares one idempotent release for __gc and __close", function()
    local mt = getmetatable(ntk.matrix(1, 1))
    assert.equal(mt.__gc, mt.__close)
    assert.equal("ntk.Matrix", mt.__name)
    local m = ntk.matrix(3, 3)
    do
      local c <close> = m
    end
    assert.error_matches(function() m:rows() end, "matrix is closed")
    assert.equal("[ntk.Matrix (closed)]", tostring(m))
    mt.__close(m)
    mt.__gc(m)
    assert.error_matches(function() return m + m end, "closed")
  end)

  it("keeps memory bounded in a loop of big matrices", function()
    collectgarbage()
    local base = collectgarbage("count")
    local peak = 0
    for _ = 1, 60 do
      local k = ntk.matrix(1000, 1000) -- 8 MB each, 480 MB in all
      k:set(1, 1, 1)
      peak = math.max(peak, collectgarbage("count") - base)
    end
    -- The collector sees each matrix's 8 MB, so it never holds many.
    assert.is_true(peak < 200 * 1024, "peak " .. peak .. " KB")
  end)
end)
