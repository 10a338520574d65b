-- ntk.args: key=value script arguments over defaults, each converted like
-- its default; every error message checked word for word.
local ntk = require "ntk"

local function fails(want, ...)
  local args = table.pack(...)
  local ok, err = pcall(ntk.args, table.unpack(args, 1, args.n))
  assert.is_false(ok)
  assert.equal(want, err)
end

describe("ntk.args", function()
  local defaults = {n = 100, lr = 0.5, name = "relu", plot = true, widths = {16, 32},
                    rates = {0.1, 1}, acts = {"relu", "tanh"}}

  it("returns the defaults when no argument is given, in a new table", function()
    local o = ntk.args(defaults)
    assert.same(defaults, o)
    assert.are_not.equal(defaults, o)
    assert.are_not.equal(defaults.widths, o.widths)
    o.widths[1] = 7
    assert.equal(16, defaults.widths[1])
  end)

  it("converts each value like its default", function()
    local o = ntk.args(defaults, "n=12", "lr=1e-3", "name=erf", "plot=false", "widths=8,64,256",
                       "rates=2,0.25", "acts=sin")
    assert.equal(12, o.n)
    assert.equal("integer", math.type(o.n))
    assert.equal(1e-3, o.lr)
    assert.equal("erf", o.name)
    assert.is_false(o.plot)
    assert.same({8, 64, 256}, o.widths)
    assert.equal("integer", math.type(o.widths[3]))
    assert.same({2, 0.25}, o.rates)
    assert.same({"sin"}, o.acts)
    assert.is_true(ntk.args(defaults, "plot=true").plot)
    -- an integer written as a float is still an integer; the last value wins
    o = ntk.args(defaults, "n=3.0", "n=5")
    assert.equal(5, o.n)
    assert.equal("integer", math.type(ntk.args(defaults, "n=3.0").n))
    -- a string value is taken whole, '=' and all
    assert.equal("a=b,c", ntk.args(defaults, "name=a=b,c").name)
    assert.equal("", ntk.args(defaults, "name=").name)
  end)

  it("leaves the defaults untouched", function()
    ntk.args(defaults, "n=1", "widths=1")
    assert.equal(100, defaults.n)
    assert.same({16, 32}, defaults.widths)
  end)

  it("names the known keys for an unknown or malformed argument", function()
    local known = "(expected key=value with key one of: acts, lr, n, name, plot, rates, widths)"
    fails("unknown argument 'bogus=1' " .. known, defaults, "bogus=1")
    fails("unknown argument 'n' " .. known, defaults, "n")
    fails("unknown argument '=3' " .. known, defaults, "=3")
    fails("unknown argument 'n-x=3' " .. known, defaults, "n-x=3")
    fails("unknown argument '5' " .. known, defaults, 5)
    fails("unknown argument 'n = 3' " .. known, defaults, "n = 3")
  end)

  it("says what a value must be", function()
    fails("n must be an integer, got '2.5'", defaults, "n=2.5")
    fails("n must be an integer, got 'ten'", defaults, "n=ten")
    fails("n must be an integer, got ''", defaults, "n=")
    fails("lr must be a number, got 'fast'", defaults, "lr=fast")
    fails("plot must be true or false, got 'yes'", defaults, "plot=yes")
    fails("widths must be a comma-separated list of integers, got '8,x'", defaults, "widths=8,x")
    fails("widths must be a comma-separated list of integers, got '8,,16'", defaults, "widths=8,,16")
    fails("widths must be a comma-separated list of integers, got '8,'", defaults, "widths=8,")
    fails("widths must be a comma-separated list of integers, got '1.5'", defaults, "widths=1.5")
    fails("widths must be a comma-separated list of integers, got ''", defaults, "widths=")
    fails("rates must be a comma-separated list of numbers, got 'a'", defaults, "rates=a")
    fails("acts must be a comma-separated list of strings, got ''", defaults, "acts=")
  end)

  it("checks its defaults", function()
    assert.error_matches(function() ntk.args() end,
                         "bad argument #1 to 'args' %(table of defaults expected, got nil%)")
    assert.error_matches(function() ntk.args("n=1") end, "table of defaults expected, got string")
    assert.error_matches(function() ntk.args({n = print}) end,
                         "defaults must map names to numbers, strings, booleans or lists, got n = function")
    assert.error_matches(function() ntk.args({[1] = 5}) end, "got 1 = 5")
    for _, bad in ipairs{{w = {a = 1}}, {w = {1, "x"}}, {w = {"x", 1}}, {w = {1, true}}, {w = {1, nil, 3}}} do
      assert.error_matches(function() ntk.args(bad) end, "defaults must map names to numbers, strings, "
                           .. "booleans or lists, got w = table")
    end
    -- a list of integers and floats takes numbers
    assert.same({2.5, 3}, ntk.args({w = {1, 0.5}}, "w=2.5,3").w)
  end)
end)
