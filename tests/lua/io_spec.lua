-- Loaders and persistence: .npy, IDX, CSV and network files, checked
-- against numpy-written fixtures (scripts/make_fixtures.py), numpy itself
-- at run time, hand-built files and every kind of broken file.
local ntk = require "ntk"
local H = require "helpers"

local DATA = "tests/fixtures/data/"
local EXPECTED = dofile(DATA .. "expected.lua")
local TMP = os.tmpname()
os.remove(TMP)
local tmp_count = 0

local function tmpfile(ext)
  tmp_count = tmp_count + 1
  return TMP .. "_" .. tmp_count .. (ext or "")
end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
  return path
end

local read = H.read

-- Bitwise equality with the fixture's values (0x1p-1074 would show).
local function same_bits(M, name)
  local e = EXPECTED[name]
  assert(e, "no expected values for " .. name)
  assert.equal(e[1], M:rows(), name .. " rows")
  assert.equal(e[2], M:cols(), name .. " cols")
  local vals = e[3]
  local k = 0
  for i = 1, e[1] do
    for j = 1, e[2] do
      k = k + 1
      local got, want = M:get(i, j), vals[k]
      if string.pack("<d", got) ~= string.pack("<d", want) then
        error(string.format("%s (%d, %d): got %a, want %a", name, i, j, got, want), 2)
      end
    end
  end
end

local function fails(pattern, ...)
  local r, msg = ...
  assert.is_nil(r)
  assert.is_string(msg)
  if pattern then assert.matches(pattern, msg) end
  return msg
end

-- Python with numpy, if this machine has it (scripts/setup installs it).
local function have_numpy()
  local ok = os.execute("/usr/bin/python3 -c 'import numpy' 2>/dev/null")
  return ok == true or ok == 0
end

local function python(code)
  local script = write(tmpfile(".py"), code)
  local p = io.popen("/usr/bin/python3 " .. script .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  os.remove(script)
  return ok, out
end

describe("ntk.load_npy", function()
  it("reads every numpy dtype, byte order, order and version exactly", function()
    local n = 0
    for name in pairs(EXPECTED) do
      if name:match("^npy_") then
        local M = assert(ntk.load_npy(DATA .. name .. ".npy"))
        same_bits(M, name)
        n = n + 1
      end
    end
    assert.is_true(n >= 24)
  end)

  it("reports the header through npy_info", function()
    local info = assert(ntk.npy_info(DATA .. "npy_3d_fortran_i8.npy"))
    assert.same({2, 3, 4}, info.shape)
    assert.equal(2, info.rows)
    assert.equal(12, info.cols)
    assert.equal("<i8", info.dtype)
    assert.is_true(info.fortran_order)
    assert.equal(1, info.version)
    assert.equal(0, info.data_offset % 64)
    assert.equal(3, assert(ntk.npy_info(DATA .. "npy_v3.npy")).version)
    assert.same({}, assert(ntk.npy_info(DATA .. "npy_0d.npy")).shape)
  end)

  it("accepts headers written by other writers (16-byte alignment, key order, Python 2 longs)", function()
    local data = string.pack("<d<d<d<d<d<d", 1, 2, 3, 4, 5, 6)
    local function npy(dict, version)
      local hdr = dict .. "\n"
      if version == 1 then
        return "\x93NUMPY\1\0" .. string.pack("<I2", #hdr) .. hdr .. data
      end
      return "\x93NUMPY\2\0" .. string.pack("<I4", #hdr) .. hdr .. data
    end
    local cases = {
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 1, {{1, 2, 3}, {4, 5, 6}}},
      {"{'shape':(3,2),'fortran_order':False,'descr':'<f8'}", 2, {{1, 2}, {3, 4}, {5, 6}}},
      {"{\"descr\": \"<f8\", \"fortran_order\": True, \"shape\": (2L, 3L)}", 1, {{1, 3, 5}, {2, 4, 6}}},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (6,)}   ", 1, {{1}, {2}, {3}, {4}, {5}, {6}}},
    }
    for _, c in ipairs(cases) do
      local M = assert(ntk.load_npy(write(tmpfile(".npy"), npy(c[1], c[2]))))
      assert.same(c[3], M:totable())
    end
  end)

  it("refuses broken files with a message naming the file", function()
    local good = read(DATA .. "npy_le_f8.npy")
    local hdr = good:sub(11, 10 + string.unpack("<I2", good, 9))
    local data = good:sub(11 + #hdr)
    local function with_header(h, d, version)
      h = h .. string.rep(" ", (64 - (10 + #h + 1) % 64) % 64) .. "\n"
      return "\x93NUMPY" .. string.char(version or 1, 0) .. string.pack("<I2", #h) .. h .. (d or data)
    end
    local cases = {
      {"", "is empty"},
      {"PK\3\4 not numpy at all", "not a .npy file"},
      {"\x93NUMPY\4\0" .. good:sub(9), "unsupported .npy format version 4.0"},
      {"\x93NUMPY\1\0\255\255{", "truncated"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 4), }"), "is truncated.*shape %(4, 4%)"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 4), }"), "trailing data"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }"), "overflows"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999999, 1), }"), "overflows"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 100000000), }"), "is truncated"},
      {with_header("{'descr': '<c16', 'fortran_order': False, 'shape': (3, 2), }"), "unsupported dtype '<c16'"},
      {with_header("{'descr': '|O', 'fortran_order': False, 'shape': (3, 4), }"), "unsupported dtype '|O'"},
      {with_header("{'descr': '|f8', 'fortran_order': False, 'shape': (3, 4), }"), "unsupported dtype"},
      {with_header("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (3, 4), }"), "structured dtypes"},
      {with_header("{'descr': '<f8', 'fortran_order': Maybe, 'shape': (3, 4), }"), "fortran_order"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), 'extra': 1, }"), "unknown header key 'extra'"},
      {with_header("{'descr': '<f8', 'shape': (3, 4), }"), "lacks 'fortran_order'"},
      {with_header("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"), "twice"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, -4), }"), "shape"},
      {with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), } junk"), "after the header"},
      {with_header("{'descr': '\xff\xfe\xc3', 'fortran_order': False, 'shape': (3, 4), }"), "unsupported dtype"},
      {with_header("[1, 2, 3]"), "not a dict"},
    }
    for i, c in ipairs(cases) do
      local path = write(tmpfile(".npy"), c[1])
      local msg = fails(nil, ntk.load_npy(path))
      assert.matches(c[2], msg, 1, false, "case " .. i)
      assert.is_truthy(msg:find(path, 1, true), "case " .. i .. ": " .. msg)
      assert.is_nil(msg:find("[\128-\255]"), "case " .. i .. ": bytes of the file in the message")
    end
    fails("cannot open '.*nonexistent.npy'", ntk.load_npy(DATA .. "nonexistent.npy"))
    fails("is a directory", ntk.load_npy(DATA))
  end)

  it("fails cleanly at every truncation of a good file", function()
    for _, name in ipairs{"npy_le_f8", "npy_fortran_be_i4", "npy_v3", "npy_na_b1"} do
      local good = read(DATA .. name .. ".npy")
      for len = 0, #good - 1 do
        fails(nil, ntk.load_npy(write(tmpfile(".npy"), good:sub(1, len))))
      end
    end
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() ntk.load_npy(42) end)
    assert.has_error(function() ntk.load_npy() end)
    assert.has_error(function() ntk.load_npy("a\0b") end, "bad argument #1 to 'load_npy' (path contains a zero byte)")
    assert.has_error(function() ntk.load_npy("x.npy", {bogus = true}) end)
    assert.has_error(function() ntk.save_npy("not a matrix", "x.npy") end)
    assert.has_error(function() ntk.zeros(2, 2):save_npy() end)
  end)
end)

describe("save_npy", function()
  it("writes exactly the bytes numpy writes", function()
    local A = ntk.matrix(3, 4)
    for i = 1, 3 do for j = 1, 4 do A:set(i, j, (i - 1) * 4 + j - 1) end end
    local path = tmpfile(".npy")
    assert.is_true(A:save_npy(path))
    assert.equal(read(DATA .. "numpy_saved_arange_3x4.npy"), read(path))
    local C = ntk.matrix(5, 1)
    for i = 1, 5 do C:set(i, 1, (i - 1) / 3) end
    assert.is_true(ntk.save_npy(C, path))
    assert.equal(read(DATA .. "numpy_saved_col_5x1.npy"), read(path))
  end)

  it("round-trips any shape bit for bit, with 64-byte alignment", function()
    local specials = ntk.matrix{{0 / 0, math.huge, -math.huge, -0.0, 5e-324, 1.7976931348623157e308}}
    for _, M in ipairs{ntk.zeros(0, 0), ntk.zeros(0, 5), ntk.zeros(7, 0), ntk.randn(1, 1, 3),
                       ntk.randn(33, 17, 4), ntk.randn(1000, 1, 5), specials} do
      local path = tmpfile(".npy")
      assert.is_true(M:save_npy(path))
      local info = assert(ntk.npy_info(path))
      assert.equal(0, info.data_offset % 64)
      local B = assert(ntk.load_npy(path))
      assert.same({M:shape()}, {B:shape()})
      for i = 1, M:rows() do
        for j = 1, M:cols() do
          assert.equal(string.pack("<d", M:get(i, j)), string.pack("<d", B:get(i, j)))
        end
      end
    end
  end)

  it("returns nil and a message when the file cannot be written", function()
    fails("cannot open '/nonexistent/dir/x.npy' for writing", ntk.save_npy(ntk.zeros(2, 2), "/nonexistent/dir/x.npy"))
    -- A full disk shows when the data is flushed.
    if io.open("/dev/full", "wb") then
      fails("error writing '/dev/full'", ntk.randn(300, 300, 1):save_npy("/dev/full"))
    end
  end)

  it("reports progress and can be interrupted", function()
    local M = ntk.randn(1200, 1000, 1) -- 9.6 MB: several chunks
    local path = tmpfile(".npy")
    local calls = 0
    assert.is_true(M:save_npy(path, {progress = function(task, done, total)
      calls = calls + 1
      assert.equal("save", task)
      assert.is_true(done <= total)
    end}))
    assert.is_true(calls >= 3)
    local before = ntk.bytes_in_use()
    assert.has_error(function()
      ntk.load_npy(path, {progress = function(_, done) return done == 0 end})
    end, "interrupted during load")
    assert.equal(before, ntk.bytes_in_use())
  end)

  it("round-trips with numpy in both directions", function()
    if not have_numpy() then pending("no numpy for /usr/bin/python3") return end
    local M = ntk.randn(37, 11, 9)
    local ours = tmpfile(".npy")
    assert.is_true(M:save_npy(ours))
    local theirs = tmpfile(".npy")
    local text = tmpfile(".txt")
    local f = assert(io.open(text, "w"))
    for i = 1, M:rows() do
      local row = {}
      for j = 1, M:cols() do row[j] = string.format("%a", M:get(i, j)) end
      f:write(table.concat(row, " "), "\n")
    end
    f:close()
    local ok, out = python(string.format([[
import numpy as np
a = np.load(%q)
want = np.array([[float.fromhex(v) for v in line.split()] for line in open(%q)])
assert a.dtype == np.float64 and a.flags.c_contiguous and a.shape == (37, 11), (a.dtype, a.shape)
assert (a.view(np.uint64) == want.view(np.uint64)).all()
b = np.asfortranarray(want[:, ::-1].astype('>f4'))
np.save(%q, b)
print("ok")
]], ours, text, theirs))
    assert.is_true(ok, out)
    local B = assert(ntk.load_npy(theirs))
    for i = 1, 37 do
      for j = 1, 11 do
        local want = string.unpack(">f", string.pack(">f", M:get(i, 12 - j)))
        assert.equal(want, B:get(i, j))
      end
    end
  end)
end)

describe("ntk.load_idx", function()
  it("reads every element type, raw and gzip, exactly", function()
    for _, t in ipairs{"u8", "i8", "i16", "i32", "f32", "f64"} do
      same_bits(assert(ntk.load_idx(DATA .. "idx_" .. t .. ".idx")), "idx_" .. t)
      same_bits(assert(ntk.load_idx(DATA .. "idx_" .. t .. ".idx.gz")), "idx_" .. t)
      local info = assert(ntk.idx_info(DATA .. "idx_" .. t .. ".idx.gz"))
      assert.same({2, 3, 4}, info.shape)
      assert.equal(t, info.dtype)
      assert.is_true(info.compressed)
    end
    same_bits(assert(ntk.load_idx(DATA .. "idx_labels.idx")), "idx_labels")
    same_bits(assert(ntk.load_idx(DATA .. "idx_two_members.idx.gz")), "idx_two_members")
    same_bits(assert(ntk.load_idx(DATA .. "idx_images.idx.gz")), "idx_images")
  end)

  it("reads chosen items in any order, scaled", function()
    local all = assert(ntk.load_idx(DATA .. "idx_images.idx.gz"))
    local some = assert(ntk.load_idx(DATA .. "idx_images.idx.gz", {rows = {5, 1, 5, 3}, scale = 0.5}))
    assert.same({4, 12}, {some:shape()})
    for k, r in ipairs{5, 1, 5, 3} do
      assert.equal(0, (some:row(k) - all:row(r) * 0.5):max_abs())
    end
    assert.equal(0, assert(ntk.load_idx(DATA .. "idx_images.idx.gz", {rows = {}})):rows())
    assert.has_error(function() ntk.load_idx(DATA .. "idx_images.idx.gz", {rows = {6}}) end)
    assert.has_error(function() ntk.load_idx(DATA .. "idx_images.idx.gz", {rows = {0}}) end)
    assert.has_error(function() ntk.load_idx(DATA .. "idx_images.idx.gz", {rows = {1.5}}) end)
    assert.has_error(function() ntk.load_idx(DATA .. "idx_images.idx.gz", {bogus = 1}) end)
  end)

  it("refuses broken files", function()
    local raw = read(DATA .. "idx_i16.idx")
    local function hdr(code, dims)
      local s = "\0\0" .. string.char(code, #dims)
      for _, d in ipairs(dims) do s = s .. string.pack(">I4", d) end
      return s
    end
    local gz = read(DATA .. "idx_u8.idx.gz")
    local corrupt = gz:sub(1, 20) .. string.char((gz:byte(21) + 1) % 256) .. gz:sub(22)
    local cases = {
      {"", "is empty"},
      {"\1\0\8\1", "not an IDX file"},
      {"\0\0\7\1\0\0\0\1x", "unknown IDX element type 0x07"},
      {hdr(0x0B, {2, 3, 4}) .. raw:sub(17, -3), "is truncated"},
      {raw .. "\0", "trailing data"},
      {hdr(0x08, {4294967295, 4294967295, 4294967295}), "overflows"},
      {hdr(0x0E, {65536, 65536}) .. "12345678", "is truncated"},
      {"\0\0\8\33", "33 dimensions"},
      {gz:sub(1, #gz - 12), "truncated"},
      {corrupt, "corrupt gzip data"},
      {gz .. "garbage!", "corrupt gzip data"},
    }
    for i, c in ipairs(cases) do
      local path = write(tmpfile(".idx"), c[1])
      local msg = fails(nil, ntk.load_idx(path))
      assert.matches(c[2], msg, 1, false, "case " .. i)
      assert.is_truthy(msg:find(path, 1, true), msg)
    end
  end)

  it("refuses a gzip file whose header claims more than it can hold, before allocating", function()
    -- 100 items of 65536 x 65536 bytes in a file of a few dozen bytes.
    local p = io.popen("/usr/bin/python3 -c \"import gzip,sys,struct; sys.stdout.buffer.write(gzip.compress(b'\\0\\0\\x08\\x03' + struct.pack('>III', 100, 65536, 65536)))\"")
    local bytes = p:read("a")
    p:close()
    if #bytes == 0 then pending("no python3") return end
    fails("more than a gzip file of %d+ bytes can hold", ntk.load_idx(write(tmpfile(".idx.gz"), bytes)))
  end)

  it("fails cleanly at every truncation", function()
    for _, name in ipairs{"idx_f64.idx", "idx_i32.idx.gz", "idx_two_members.idx.gz"} do
      local good = read(DATA .. name)
      for len = 0, #good - 1 do
        fails(nil, ntk.load_idx(write(tmpfile(".idx"), good:sub(1, len))))
      end
    end
  end)
end)

describe("ntk.load_csv", function()
  local function csv(text, opts)
    return ntk.load_csv(write(tmpfile(".csv"), text), opts)
  end

  it("reads numpy's savetxt output exactly (correct rounding of 19-digit numbers)", function()
    local X, y, names = assert(ntk.load_csv(DATA .. "csv_savetxt.csv"))
    same_bits(X, "csv_savetxt")
    assert.is_nil(y)
    assert.same({"a", "b", "c", "label"}, names)
    same_bits(assert(ntk.load_csv(DATA .. "csv_semicolon.csv", {delimiter = ";"})), "csv_semicolon")
  end)

  it("splits off a label column, counting from either end", function()
    local text = "x1,x2,y\n1,2,0\n3,4,1\n5,6,2\n"
    local X, y, names = assert(csv(text, {label = -1}))
    assert.same({{1, 2}, {3, 4}, {5, 6}}, X:totable())
    assert.same({{0}, {1}, {2}}, y:totable())
    assert.same({"x1", "x2", "y"}, names)
    X, y = assert(csv(text, {label = 1}))
    assert.same({{2, 0}, {4, 1}, {6, 2}}, X:totable())
    assert.same({{1}, {3}, {5}}, y:totable())
    fails("label column 4 is out of range %(the file has 3 columns%)", csv(text, {label = 4}))
    fails("out of range", csv(text, {label = -4}))
  end)

  it("decides about a header as told", function()
    assert.same({{1, 2}, {3, 4}}, assert(csv("1,2\n3,4\n")):totable())
    local X, _, names = assert(csv("1,2\n3,4\n", {header = true}))
    assert.same({{3, 4}}, X:totable())
    assert.same({"1", "2"}, names)
    fails("line 1, column 1: 'a' is not a number", csv("a,b\n1,2\n", {header = false}))
    X, _, names = assert(csv("a,b\n", {header = "auto"}))
    assert.same({0, 2}, {X:shape()})
    assert.same({"a", "b"}, names)
  end)

  it("follows RFC 4180 quoting, line endings and blank lines", function()
    local X, _, names = assert(csv('"name, with comma","say ""hi""","multi\nline"\r\n"1",2 , 3\r\n\r\n  \n4,"5","6"'))
    assert.same({"name, with comma", 'say "hi"', "multi\nline"}, names)
    assert.same({{1, 2, 3}, {4, 5, 6}}, X:totable())
    -- A UTF-8 byte order mark, tabs, no final newline.
    X = assert(csv("\xEF\xBB\xBF1\t2\n3\t4", {delimiter = "\t"}))
    assert.same({{1, 2}, {3, 4}}, X:totable())
    X = assert(csv("nan,inf,-Infinity,+1e3,.5,5.,-0\n"))
    local r = X:totable()[1]
    assert.is_true(r[1] ~= r[1])
    assert.same({math.huge, -math.huge, 1000, 0.5, 5}, {r[2], r[3], r[4], r[5], r[6]})
    assert.equal(string.pack("<d", -0.0), string.pack("<d", r[7]))
  end)

  it("names the line and column of a bad field", function()
    local cases = {
      {"a,b\n1,2\n3,x4\n", "line 3, column 2: 'x4' is not a number"},
      {"1,2\n3,4,5\n", "line 2, column 3: more fields than the 2 of line 1"},
      {"1,2,3\n4,5\n", "line 2, column 3: the row ends after 2 fields"},
      {"1,2\n\n\n3,\n", "line 4, column 2: empty field"},
      {'"h\n1","h2"\n1,2\n3,"4\n', "line 4, column 2: unterminated quoted field"},
      {'1,"2"x\n', "line 1, column 2: unexpected text after a closing quote"},
      {"1,2\n3,\xff\xfe\n", "line 2, column 2: '\\xFF\\xFE' is not a number"},
      {"1,2\n3,1e\n", "'1e' is not a number"},
      {"1,2\n3,0x10\n", "'0x10' is not a number"},
      {"1,2\n3,1.2.3\n", "'1.2.3' is not a number"},
      {"", "is empty"},
      {"\n \n", "is empty"},
    }
    for i, c in ipairs(cases) do
      local msg = fails(nil, csv(c[1]))
      assert.is_truthy(msg:find(c[2], 1, true), "case " .. i .. ": " .. msg)
    end
    local path = tmpfile(".csv")
    fails("cannot open", ntk.load_csv(path))
  end)

  it("is linear in the file size and handles records across read chunks", function()
    -- 4 MB read chunks: a 12 MB file with long lines crosses several.
    local rows, cols = 3000, 400
    local line = {}
    for j = 1, cols do line[j] = string.format("%.17g", j / 7) end
    local body = table.concat(line, ",") .. "\n"
    local path = write(tmpfile(".csv"), string.rep(body, rows))
    local X = assert(ntk.load_csv(path))
    assert.same({rows, cols}, {X:shape()})
    assert.equal(string.pack("<d", 123 / 7), string.pack("<d", X:get(rows, 123)))
    assert.equal(string.pack("<d", 400 / 7), string.pack("<d", X:get(1777, 400)))
  end)

  it("reads gzip-compressed CSV", function()
    local p = io.popen("printf 'a,b\\n1,2\\n3,4\\n' | gzip -c")
    local gz = p:read("a")
    p:close()
    if #gz == 0 then pending("no gzip") return end
    assert.same({{1, 2}, {3, 4}}, assert(ntk.load_csv(write(tmpfile(".csv.gz"), gz))):totable())
  end)

  it("raises on bad options", function()
    local path = write(tmpfile(".csv"), "1,2\n")
    assert.has_error(function() ntk.load_csv(path, {header = "yes"}) end)
    assert.has_error(function() ntk.load_csv(path, {delimiter = ",,"}) end)
    assert.has_error(function() ntk.load_csv(path, {delimiter = '"'}) end)
    assert.has_error(function() ntk.load_csv(path, {label = 0}) end)
    assert.has_error(function() ntk.load_csv(path, {label = 1.5}) end)
    assert.has_error(function() ntk.load_csv(path, {labels = 1}) end, "bad argument #2 to 'load_csv' (unknown option 'labels' (expected one of: header label delimiter progress))")
    assert.has_error(function() ntk.load_csv({}) end)
  end)
end)

describe("net:save and ntk.load_net", function()
  local function bits(M)
    local t = {}
    for i = 1, M:rows() do t[i] = string.pack("<d", M:get(i, 1)) end
    return table.concat(t)
  end

  it("round-trip every architecture bit for bit", function()
    local nets = {
      ntk.mlp{sizes = {3, 1}, seed = 1},
      ntk.mlp{sizes = {5, 8, 7, 2}, activation = {"tanh", "gelu"}, seed = 2, weight_std = 0.1 + 0.2,
              bias_std = 0},
      ntk.mlp{sizes = {4, 6, 6, 6, 3}, activation = "softplus", parameterization = "standard",
              weight_std = 1.4142135623730951, bias_std = 5e-324, seed = 3},
    }
    for _, act in ipairs{"identity", "relu", "sigmoid", "erf", "sin"} do
      nets[#nets + 1] = ntk.mlp{sizes = {2, 3, 2}, activation = act, seed = 4}
    end
    for _, net in ipairs(nets) do
      local path = tmpfile(".ntk")
      assert.is_true(net:save(path))
      local back = assert(ntk.load_net(path))
      assert.same(net:sizes(), back:sizes())
      assert.same(net:activations(), back:activations())
      assert.equal(net:parameterization(), back:parameterization())
      assert.equal(string.pack("<d", net:weight_std()), string.pack("<d", back:weight_std()))
      assert.equal(string.pack("<d", net:bias_std()), string.pack("<d", back:bias_std()))
      assert.equal(bits(net:params()), bits(back:params()))
      local X = ntk.randn(4, net:input_dim(), 5)
      assert.equal(0, (net:forward(X) - back:forward(X)):max_abs())
      -- The header is text that says what the file holds.
      local text = read(path)
      assert.matches("^ntk%-net 1\nkind mlp\ndepth %d+\nsizes [%d ]+\n", text)
      local offset = text:find("\nend *\n") + #text:match("\n(end *\n)")
      assert.equal(0, offset % 64)
      assert.equal(net:num_params() * 8, #text - offset)
    end
  end)

  it("refuses corrupt, truncated and foreign files", function()
    local net = ntk.mlp{sizes = {3, 4, 2}, activation = "tanh", seed = 7}
    local path = tmpfile(".ntk")
    assert.is_true(net:save(path))
    local good = read(path)
    local hlen = good:find("\nend *\n")
    local function edit(from, to) return (good:gsub(from, to, 1)) end
    local cases = {
      {"", "not an ntk network file %(it is empty%)"},
      {"\x93NUMPY\1\0", "not an ntk network file"},
      {edit("ntk%-net 1", "ntk-net 2"), "unsupported network file version '2'"},
      {edit("ntk%-net 1", "ntk-net \xff"), "unsupported network file version '%?'"},
      {good:sub(1, #good - 1), "is truncated"},
      {good .. "x", "trailing data"},
      {good:sub(1, #good - 8) .. string.pack("<d", 0.5), "do not match their CRC%-32"},
      {edit("kind mlp", "kind cnn"), "unknown kind"},
      {edit("activations tanh", "activations swish"), "unknown activation"},
      {edit("depth 2", "depth 0"), "depth must be a positive integer"},
      {edit("sizes 3 4 2", "sizes 3 5 2"), "'params' says 26 but the sizes give 32"},
      {edit("sizes 3 4 2", "sizes 3 4"), "sizes"},
      {edit("weight_std 0x1p%+0", "weight_std 1.0"), "hex float"},
      {edit("weight_std 0x1p%+0", "weight_std -0x1p+0"), "non%-negative"},
      {edit("bias_std [^\n]*\n", ""), "lacks a key %(bias_std%)"},
      {edit("kind mlp\n", "kind mlp\ncolour blue\n"), "header line 3: unknown key"},
      {edit("float64%-le", "float32-le"), "unknown parameter encoding"},
      {good:sub(1, hlen), "the header ends without an 'end' line"},
    }
    for i, c in ipairs(cases) do
      local p = write(tmpfile(".ntk"), c[1])
      local msg = fails(nil, ntk.load_net(p))
      assert.matches(c[2], msg, 1, false, "case " .. i)
      assert.is_nil(msg:find("[\128-\255]"), "case " .. i)
    end
    for len = 0, #good - 1, 7 do fails(nil, ntk.load_net(write(tmpfile(".ntk"), good:sub(1, len)))) end
    -- NaN parameters with a matching CRC are still refused.
    local function crc32(s)
      local crc = 0xFFFFFFFF
      for i = 1, #s do
        crc = crc ~ s:byte(i)
        for _ = 1, 8 do crc = (crc >> 1) ~ (0xEDB88320 & -(crc & 1)) end
      end
      return crc ~ 0xFFFFFFFF
    end
    local one = ntk.mlp{sizes = {1, 1}, seed = 1}
    local onefile = tmpfile(".ntk")
    assert.is_true(one:save(onefile))
    local text = read(onefile)
    local head = text:sub(1, #text - 16)
    -- Our CRC agrees with the file's (an independent implementation).
    assert.equal(string.format("%08x", crc32(text:sub(-16))), head:match("crc32 (%x+)"))
    local body = string.pack("<d<d", 0 / 0, 1)
    local forged = head:gsub("crc32 %x+", "crc32 " .. string.format("%08x", crc32(body))) .. body
    fails("contains NaN", ntk.load_net(write(tmpfile(".ntk"), forged)))
  end)

  it("writes a header numpy can skip to read the parameters", function()
    if not have_numpy() then pending("no numpy for /usr/bin/python3") return end
    local net = ntk.mlp{sizes = {6, 5, 4}, seed = 12}
    local path = tmpfile(".ntk")
    assert.is_true(net:save(path))
    local ok, out = python(string.format([[
import numpy as np, zlib
raw = open(%q, 'rb').read()
end = raw.index(b'\nend') + 1
offset = raw.index(b'\n', end) + 1
hdr = dict(l.split(' ', 1) for l in raw[:end - 1].decode().split('\n')[1:])
theta = np.frombuffer(raw, dtype='<f8', offset=offset)
count, enc, _, crc = hdr['params'].split()
assert len(theta) == int(count) == 6 * 5 + 5 + 5 * 4 + 4
assert int(crc, 16) == zlib.crc32(raw[offset:])
assert float.fromhex(hdr['weight_std']) == 1.0 and float.fromhex(hdr['bias_std']) == 0.1
print(' '.join(v.hex() for v in theta))
]], path))
    assert.is_true(ok, out)
    local theta = net:params()
    local k = 0
    for hex in out:gmatch("%S+") do
      k = k + 1
      assert.equal(theta:get(k, 1), tonumber(hex))
    end
    assert.equal(theta:rows(), k)
  end)

  it("raises on bad arguments and returns nil, message for bad paths", function()
    local net = ntk.mlp{sizes = {2, 1}}
    assert.has_error(function() net.save(ntk.zeros(1, 1), "x") end)
    assert.has_error(function() net:save() end)
    assert.has_error(function() ntk.load_net(nil) end)
    fails("cannot open '/nonexistent/x.ntk' for writing", net:save("/nonexistent/x.ntk"))
    fails("cannot open", ntk.load_net("/nonexistent/x.ntk"))
  end)
end)

describe("weights trained elsewhere", function()
  it("load from numpy files and reproduce numpy's forward pass", function()
    local dir = DATA .. "weights/"
    local W1 = assert(ntk.load_npy(dir .. "W1.npy"))
    assert.same({6, 4}, {W1:shape()}) -- n_out x n_in, nn.Linear.weight's orientation
    local net = ntk.mlp{sizes = {4, 6, 5, 3}, activation = "tanh", parameterization = "standard"}
    for l = 1, 3 do
      net:set_layer(l, assert(ntk.load_npy(dir .. "W" .. l .. ".npy")),
                    assert(ntk.load_npy(dir .. "b" .. l .. ".npy")))
    end
    local Y = net:forward(assert(ntk.load_npy(dir .. "X.npy")))
    local want = assert(ntk.load_npy(dir .. "Y_numpy.npy"))
    assert.is_true((Y - want):max_abs() <= 1e-14 * want:max_abs())
  end)
end)
