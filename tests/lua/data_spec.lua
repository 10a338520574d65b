-- Datasets and data preparation: Fashion-MNIST from Debian's package,
-- the seeded synthetic sets against their defining formulas, and the
-- preparation helpers against hand-computed results.
local ntk = require "ntk"

local FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
local function have_fmnist()
  local f = io.open(FMNIST, "rb")
  if f then f:close() end
  return f ~= nil
end

describe("ntk.datasets.fashion_mnist", function()
  it("reads the test split with labels that follow the published class counts", function()
    if not have_fmnist() then pending("dataset-fashion-mnist is not installed") return end
    local X, y, Y = assert(ntk.datasets.fashion_mnist{split = "test", one_hot = true})
    assert.same({10000, 784}, {X:shape()})
    assert.same({10000, 1}, {y:shape()})
    assert.same({10000, 10}, {Y:shape()})
    assert.equal(0, X:min())
    assert.equal(1, X:max())
    -- 1000 images per class in the test split; the first is an ankle boot.
    local counts = Y:T():mm(ntk.ones(10000, 1))
    assert.same({{1000}, {1000}, {1000}, {1000}, {1000}, {1000}, {1000}, {1000}, {1000}, {1000}},
                counts:totable())
    assert.equal(9, y:get(1, 1))
    assert.equal("Ankle boot", ntk.datasets.fashion_mnist_classes[y:get(1, 1) + 1])
    for i = 1, 50 do
      assert.equal(1, Y:get(i, y:get(i, 1) + 1))
      assert.equal(1, Y:row(i):sum())
    end
    -- Raw pixels are integers 0..255; normalize = false keeps them.
    local R = assert(ntk.datasets.fashion_mnist{split = "test", n = 3, seed = 1, normalize = false})
    local S = assert(ntk.datasets.fashion_mnist{split = "test", n = 3, seed = 1})
    assert.equal(0, (R / 255 - S):max_abs())
    for j = 1, 784 do assert.equal(math.floor(R:get(1, j)), R:get(1, j)) end
  end)

  it("picks seeded subsets that are the same rows as the full set's", function()
    if not have_fmnist() then pending("dataset-fashion-mnist is not installed") return end
    local X, y = assert(ntk.datasets.fashion_mnist{split = "test"})
    local A, ya = assert(ntk.datasets.fashion_mnist{split = "test", n = 200, seed = 4})
    local B = assert(ntk.datasets.fashion_mnist{split = "test", n = 200, seed = 4})
    local C = assert(ntk.datasets.fashion_mnist{split = "test", n = 200, seed = 5})
    assert.equal(0, (A - B):max_abs())
    assert.is_true((A - C):max_abs() > 0)
    local perm = ntk.permutation(10000, 4)
    local idx = table.move(perm, 1, 200, 1, {})
    assert.equal(0, (X:take_rows(idx) - A):max_abs())
    assert.equal(0, (y:take_rows(idx) - ya):max_abs())
  end)

  it("reads the training split", function()
    if not have_fmnist() then pending("dataset-fashion-mnist is not installed") return end
    local X, y = assert(ntk.datasets.fashion_mnist{n = 10, seed = 2})
    assert.same({10, 784}, {X:shape()})
    assert.same({10, 1}, {y:shape()})
    local info = assert(ntk.idx_info(FMNIST))
    assert.same({60000, 28, 28}, info.shape)
  end)

  it("names the package when the files are missing", function()
    local X, msg = ntk.datasets.fashion_mnist{dir = "/nonexistent"}
    assert.is_nil(X)
    assert.matches("dataset%-fashion%-mnist", msg)
    assert.matches("/nonexistent/train%-images%-idx3%-ubyte.gz", msg)
  end)

  it("raises on bad options", function()
    assert.has_error(function() ntk.datasets.fashion_mnist{split = "val"} end)
    assert.has_error(function() ntk.datasets.fashion_mnist{n = -1} end)
    assert.has_error(function() ntk.datasets.fashion_mnist{n = 1.5} end)
    assert.has_error(function() ntk.datasets.fashion_mnist{normalise = true} end)
    assert.has_error(function() ntk.datasets.fashion_mnist{one_hot = 1} end)
    if have_fmnist() then
      assert.has_error(function() ntk.datasets.fashion_mnist{split = "test", n = 10001} end)
    end
  end)
end)

describe("synthetic datasets", function()
  it("two moons lie on their two half circles without noise", function()
    local X, y, Y = ntk.datasets.two_moons{n = 101, noise = 0, one_hot = true}
    assert.same({101, 2}, {X:shape()})
    assert.same({101, 2}, {Y:shape()})
    local ones = 0
    for i = 1, 101 do
      local a, b, c = X:get(i, 1), X:get(i, 2), y:get(i, 1)
      if c == 0 then
        assert.is_true(math.abs(a * a + b * b - 1) < 1e-12 and b >= -1e-12)
      else
        ones = ones + 1
        assert.is_true(math.abs((a - 1) ^ 2 + (b - 0.5) ^ 2 - 1) < 1e-12 and b <= 0.5 + 1e-12)
      end
      assert.equal(1, Y:get(i, c + 1))
    end
    assert.equal(50, ones)
  end)

  it("spirals follow r = t, angle = 2 pi (turns t + c / k) without noise", function()
    local X, y = ntk.datasets.spirals{n = 90, classes = 3, turns = 2, noise = 0}
    local per = {0, 0, 0}
    for i = 1, 90 do
      local a, b, c = X:get(i, 1), X:get(i, 2), y:get(i, 1)
      per[c + 1] = per[c + 1] + 1
      local r = math.sqrt(a * a + b * b)
      assert.is_true(r >= 0.05 - 1e-12 and r <= 1 + 1e-12)
      local want = 2 * math.pi * (2 * r + c / 3)
      assert.is_true(math.abs(math.cos(want) - a / r) < 1e-9 and math.abs(math.sin(want) - b / r) < 1e-9)
    end
    assert.same({30, 30, 30}, per)
  end)

  it("blobs sit on their centres, with the requested spread", function()
    local C = ntk.matrix{{0, 0, 0}, {10, -5, 2}}
    local X, y = ntk.datasets.blobs{n = 7, centers = C, std = 0}
    for i = 1, 7 do
      assert.equal(0, (X:row(i) - C:row(y:get(i, 1) + 1)):max_abs())
    end
    X, y = ntk.datasets.blobs{n = 20000, centers = 1, dim = 2, std = 3, box = 0, seed = 2}
    local Z, mean, std = ntk.standardize(X)
    assert.is_true(math.abs(std:get(1, 1) - 3) < 0.1 and math.abs(std:get(1, 2) - 3) < 0.1)
    assert.is_true(math.abs(mean:get(1, 1)) < 0.1)
    assert.equal(0, y:max())
    assert.has_error(function() ntk.datasets.blobs{centers = C, dim = 2} end)
  end)

  it("sine regression is sin(freq x) without noise, on [low, high)", function()
    local X, Y = ntk.datasets.sine{n = 50, noise = 0, low = -1, high = 3, freq = 2}
    for i = 1, 50 do
      local x = X:get(i, 1)
      assert.is_true(x >= -1 and x < 3)
      assert.equal(math.sin(2 * x), Y:get(i, 1))
    end
    local _, Yn = ntk.datasets.sine{n = 4000, noise = 0.5, seed = 3}
    local Xn = ntk.datasets.sine{n = 4000, noise = 0.5, seed = 3}
    local resid = ntk.matrix(4000, 1)
    for i = 1, 4000 do resid:set(i, 1, Yn:get(i, 1) - math.sin(Xn:get(i, 1))) end
    local _, _, sd = ntk.standardize(resid)
    assert.is_true(math.abs(sd:get(1, 1) - 0.5) < 0.03, sd:get(1, 1))
  end)

  it("is seeded", function()
    for _, make in ipairs{ntk.datasets.two_moons, ntk.datasets.spirals, ntk.datasets.blobs,
                          ntk.datasets.sine} do
      local A = make{seed = 5}
      local B = make{seed = 5}
      local C = make{seed = 6}
      assert.equal(0, (A - B):max_abs())
      assert.is_true((A - C):max_abs() > 0)
    end
  end)

  it("raises on bad options", function()
    assert.has_error(function() ntk.datasets.two_moons{n = 1} end)
    assert.has_error(function() ntk.datasets.two_moons{noise = -1} end)
    assert.has_error(function() ntk.datasets.two_moons{noise = 0 / 0} end)
    assert.has_error(function() ntk.datasets.spirals{classes = 0} end)
    assert.has_error(function() ntk.datasets.sine{low = 1, high = 1} end)
    assert.has_error(function() ntk.datasets.blobs{bogus = 1} end)
    assert.has_error(function() ntk.datasets.blobs("x") end)
  end)
end)

describe("preparation", function()
  it("permutation is a seeded, unbiased permutation", function()
    local p = ntk.permutation(10, 3)
    local seen = {}
    for _, v in ipairs(p) do seen[v] = true end
    for i = 1, 10 do assert.is_true(seen[i]) end
    assert.same(p, ntk.permutation(10, 3))
    assert.are_not.same(p, ntk.permutation(10, 4))
    assert.same({}, ntk.permutation(0))
    -- Where element 1 lands, over 6000 seeds, is uniform over 6 places:
    -- chi-square with 5 degrees of freedom stays below 20.5 (p = 0.001).
    local counts = {0, 0, 0, 0, 0, 0}
    for s = 1, 6000 do
      local q = ntk.permutation(6, s)
      for k = 1, 6 do if q[k] == 1 then counts[k] = counts[k] + 1 end end
    end
    local chi = 0
    for k = 1, 6 do chi = chi + (counts[k] - 1000) ^ 2 / 1000 end
    assert.is_true(chi < 20.5, chi)
    assert.has_error(function() ntk.permutation(-1) end)
    assert.has_error(function() ntk.permutation(3, 1.5) end)
  end)

  it("take_rows gathers rows, repeats allowed", function()
    local X = ntk.matrix{{1, 2}, {3, 4}, {5, 6}}
    assert.same({{5, 6}, {1, 2}, {5, 6}}, X:take_rows{3, 1, 3}:totable())
    assert.same({{3, 4}}, ntk.take_rows(X, ntk.vector{2}):totable())
    assert.same({0, 2}, {X:take_rows{}:shape()})
    assert.has_error(function() X:take_rows{4} end, "bad argument #1 to 'take_rows' (index[1] = 4 is out of range 1..3)")
    assert.has_error(function() X:take_rows{0} end)
    assert.has_error(function() X:take_rows{1.5} end)
    assert.has_error(function() X:take_rows("x") end)
  end)

  it("standardize centres and scales columns, or applies given statistics", function()
    local X = ntk.matrix{{1, 10, 7}, {3, 20, 7}, {5, 60, 7}}
    local Z, mean, std = ntk.standardize(X)
    assert.same({{3, 30, 7}}, mean:totable())
    local s2 = math.sqrt(1400 / 3)
    assert.is_true(math.abs(std:get(1, 1) - math.sqrt(8 / 3)) < 1e-15)
    assert.is_true(math.abs(std:get(1, 2) - s2) < 1e-13)
    assert.equal(0, std:get(1, 3))
    assert.is_true(math.abs(Z:get(1, 2) - (-20 / s2)) < 1e-15)
    assert.equal(0, Z:get(2, 3)) -- a constant column is centred, not divided by 0
    for j = 1, 2 do
      local col = Z:col(j)
      assert.is_true(math.abs(col:mean()) < 1e-15)
      assert.is_true(math.abs(col:norm() ^ 2 / 3 - 1) < 1e-14)
    end
    local T = ntk.standardize(ntk.matrix{{5, 30, 8}}, mean, std)
    assert.is_true(math.abs(T:get(1, 1) - 2 / math.sqrt(8 / 3)) < 1e-15)
    assert.equal(0, T:get(1, 2))
    assert.equal(1, T:get(1, 3))
    assert.has_error(function() ntk.standardize(ntk.zeros(0, 3)) end)
    assert.has_error(function() ntk.standardize(X, ntk.zeros(1, 2), std) end)
    assert.has_error(function() ntk.standardize(X, mean, -std) end)
    assert.has_error(function() ntk.standardize(ntk.matrix{{0 / 0}}) end)
  end)

  it("one_hot encodes class numbers 0..k-1", function()
    assert.same({{0, 1, 0}, {1, 0, 0}, {0, 0, 1}}, ntk.one_hot(ntk.vector{1, 0, 2}):totable())
    assert.same({{0, 0, 1, 0}}, ntk.one_hot({2}, 4):totable())
    assert.has_error(function() ntk.one_hot({3}, 3) end)
    assert.has_error(function() ntk.one_hot({-1}) end)
    assert.has_error(function() ntk.one_hot({0.5}) end)
    assert.has_error(function() ntk.one_hot({"a"}) end)
    assert.has_error(function() ntk.one_hot(ntk.zeros(2, 2)) end)
  end)

  it("shuffle keeps rows paired; train_test_split partitions them", function()
    local n = 50
    local X, Y = ntk.matrix(n, 2), ntk.matrix(n, 1)
    for i = 1, n do
      X:set(i, 1, i)
      X:set(i, 2, -i)
      Y:set(i, 1, 10 * i)
    end
    local Xs, Ys = ntk.shuffle{X, Y, seed = 3}
    local moved = false
    for i = 1, n do
      assert.equal(10 * Xs:get(i, 1), Ys:get(i, 1))
      assert.equal(-Xs:get(i, 1), Xs:get(i, 2))
      if Xs:get(i, 1) ~= i then moved = true end
    end
    assert.is_true(moved)
    local Xtr, Xte, Ytr, Yte = ntk.train_test_split{X, Y, test = 0.2, seed = 1}
    assert.equal(40, Xtr:rows())
    assert.equal(10, Xte:rows())
    local seen = {}
    for _, pair in ipairs{{Xtr, Ytr}, {Xte, Yte}} do
      for i = 1, pair[1]:rows() do
        local v = pair[1]:get(i, 1)
        assert.is_nil(seen[v])
        seen[v] = true
        assert.equal(10 * v, pair[2]:get(i, 1))
      end
    end
    local count = 0
    for _ in pairs(seen) do count = count + 1 end
    assert.equal(n, count)
    local A, B = ntk.train_test_split{X, test = 5, shuffle = false}
    assert.same({1, 45}, {A:get(1, 1), A:get(45, 1)})
    assert.same({46, 50}, {B:get(1, 1), B:get(5, 1)})
    assert.has_error(function() ntk.train_test_split{X, test = 1.5} end)
    assert.has_error(function() ntk.train_test_split{X, test = 51} end)
    assert.has_error(function() ntk.train_test_split{X, ntk.zeros(3, 1)} end)
    assert.has_error(function() ntk.shuffle{} end)
    assert.has_error(function() ntk.shuffle{X, sed = 1} end)
  end)
end)
