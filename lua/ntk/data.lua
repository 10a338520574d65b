-- ntk.data: datasets (Fashion-MNIST, synthetic), shuffling and splitting.
-- The loaders and the numeric primitives (load_*, save_npy, permutation,
-- take_rows, standardize, one_hot) live in the native core; this layer
-- composes them. init.lua calls the returned function with the module
-- table and ntk.core.
return function(ntk, core)
  local datasets = {}
  ntk.datasets = datasets

  -- Argument checking in the style of the core: errors name the argument.
  local function argerror(fname, i, msg)
    error(string.format("bad argument #%d to '%s' (%s)", i, fname, msg), 3)
  end

  local function options(fname, opts, known)
    if opts == nil then return {} end
    if type(opts) ~= "table" then argerror(fname, 1, "options table expected, got " .. type(opts)) end
    for k in pairs(opts) do
      if type(k) ~= "string" or not known[k] then
        local names = {}
        for name in pairs(known) do names[#names + 1] = name end
        table.sort(names)
        argerror(fname, 1, "unknown option '" .. tostring(k) .. "' (expected one of: "
          .. table.concat(names, " ") .. ")")
      end
    end
    return opts
  end

  local function int_opt(fname, opts, key, default, min)
    local v = opts[key]
    if v == nil then return default end
    if math.type(v) ~= "integer" then
      argerror(fname, 1, string.format("option '%s' must be an integer, got %s", key, tostring(v)))
    end
    if min and v < min then
      argerror(fname, 1, string.format("option '%s' must be >= %d, got %d", key, min, v))
    end
    return v
  end

  local function num_opt(fname, opts, key, default, min)
    local v = opts[key]
    if v == nil then return default end
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      argerror(fname, 1, string.format("option '%s' must be a finite number, got %s", key, tostring(v)))
    end
    if min and v < min then
      argerror(fname, 1, string.format("option '%s' must be >= %g, got %g", key, min, v))
    end
    return v
  end

  local function bool_opt(fname, opts, key, default)
    local v = opts[key]
    if v == nil then return default end
    if type(v) ~= "boolean" then
      argerror(fname, 1, string.format("option '%s' must be a boolean, got %s", key, type(v)))
    end
    return v
  end

  -- Seeds for independent streams derived from one user seed.
  local function subseed(seed, k) return seed + k * 0x9E3779B97F4A7C15 end

  ---------------------------------------------------------------- Fashion-MNIST

  datasets.fashion_mnist_dir = "/usr/share/datasets/fashion-mnist"
  datasets.fashion_mnist_classes = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
  }

  --- ntk.datasets.fashion_mnist{split = "train" | "test", n = ..., seed = 0,
  ---   normalize = true, one_hot = false, dir = ...} -> X, labels[, Y]
  function datasets.fashion_mnist(opts)
    local F = "fashion_mnist"
    opts = options(F, opts, {split = true, n = true, seed = true, normalize = true,
                             one_hot = true, dir = true, progress = true})
    local split = opts.split or "train"
    if split ~= "train" and split ~= "test" then
      argerror(F, 1, "option 'split' must be \"train\" or \"test\", got " .. tostring(split))
    end
    local seed = int_opt(F, opts, "seed", 0)
    local n = int_opt(F, opts, "n", nil, 0)
    local normalize = bool_opt(F, opts, "normalize", true)
    local one_hot = bool_opt(F, opts, "one_hot", false)
    local progress = opts.progress
    if progress ~= nil and type(progress) ~= "boolean" and type(progress) ~= "function" then
      argerror(F, 1, "option 'progress' must be a boolean or a function, got " .. type(progress))
    end
    local dir = opts.dir or datasets.fashion_mnist_dir
    if type(dir) ~= "string" then argerror(F, 1, "option 'dir' must be a string") end
    local prefix = split == "train" and "train" or "t10k"
    local images = dir .. "/" .. prefix .. "-images-idx3-ubyte.gz"
    local labels = dir .. "/" .. prefix .. "-labels-idx1-ubyte.gz"
    local f = io.open(images, "rb")
    if not f then
      return nil, string.format("Fashion-MNIST is not installed: '%s' is missing (install the "
        .. "Debian package dataset-fashion-mnist: apt-get install dataset-fashion-mnist)", images)
    end
    f:close()
    local info, err = core.idx_info(images)
    if not info then return nil, err end
    local linfo
    linfo, err = core.idx_info(labels)
    if not linfo then return nil, err end
    if linfo.rows ~= info.rows then
      return nil, string.format("'%s' has %d labels for %d images", labels, linfo.rows, info.rows)
    end
    local rows
    if n then
      if n > info.rows then
        argerror(F, 1, string.format("option 'n' is %d, the %s split has %d images", n, split, info.rows))
      end
      -- A seeded random subset, in the permutation's order.
      local perm = core.permutation(info.rows, seed)
      rows = table.move(perm, 1, n, 1, {})
    end
    local X
    X, err = core.load_idx(images, {rows = rows, scale = normalize and 1 / 255 or 1,
                                    progress = opts.progress})
    if not X then return nil, err end
    local y
    y, err = core.load_idx(labels, {rows = rows, progress = false})
    if not y then return nil, err end
    if one_hot then return X, y, core.one_hot(y, 10) end
    return X, y
  end

  -------------------------------------------------------------------- synthetic

  -- n values linspace(a, b) (n >= 1).
  local function linspace(a, b, n)
    local t = {}
    for i = 1, n do t[i] = n == 1 and a or a + (b - a) * (i - 1) / (n - 1) end
    return t
  end

  -- Rows (tables) and labels into shuffled X, labels[, Y].
  local function finish(rows, labels, k, seed, one_hot)
    local n = #rows
    local perm = core.permutation(n, subseed(seed, 7))
    local xs, ls = {}, {}
    for i = 1, n do
      xs[i] = rows[perm[i]]
      ls[i] = labels[perm[i]]
    end
    local X = n > 0 and core.matrix(xs) or core.zeros(0, 2)
    local y = ntk.vector(ls)
    if one_hot then return X, y, core.one_hot(y, k) end
    return X, y
  end

  --- ntk.datasets.two_moons{n = 200, noise = 0.1, seed = 0, one_hot = false}
  function datasets.two_moons(opts)
    local F = "two_moons"
    opts = options(F, opts, {n = true, noise = true, seed = true, one_hot = true})
    local n = int_opt(F, opts, "n", 200, 2)
    local noise = num_opt(F, opts, "noise", 0.1, 0)
    local seed = int_opt(F, opts, "seed", 0)
    local n_out = n - n // 2
    local n_in = n // 2
    local E = core.randn(n, 2, subseed(seed, 1))
    local rows, labels = {}, {}
    for i, t in ipairs(linspace(0, math.pi, n_out)) do
      rows[i] = {math.cos(t) + noise * E:get(i, 1), math.sin(t) + noise * E:get(i, 2)}
      labels[i] = 0
    end
    for j, t in ipairs(linspace(0, math.pi, n_in)) do
      local i = n_out + j
      rows[i] = {1 - math.cos(t) + noise * E:get(i, 1), 0.5 - math.sin(t) + noise * E:get(i, 2)}
      labels[i] = 1
    end
    return finish(rows, labels, 2, seed, bool_opt(F, opts, "one_hot", false))
  end

  --- ntk.datasets.spirals{n = 200, classes = 2, turns = 1.5, noise = 0.05, seed = 0, one_hot = false}
  function datasets.spirals(opts)
    local F = "spirals"
    opts = options(F, opts, {n = true, classes = true, turns = true, noise = true, seed = true,
                             one_hot = true})
    local k = int_opt(F, opts, "classes", 2, 1)
    local n = int_opt(F, opts, "n", 200, k)
    local turns = num_opt(F, opts, "turns", 1.5, 0)
    local noise = num_opt(F, opts, "noise", 0.05, 0)
    local seed = int_opt(F, opts, "seed", 0)
    local E = core.randn(n, 2, subseed(seed, 1))
    local rows, labels = {}, {}
    local i = 0
    for c = 0, k - 1 do
      local m = n // k + (c < n % k and 1 or 0)
      -- Radius grows from near the centre to 1 while the angle turns.
      for _, t in ipairs(linspace(0.05, 1, m)) do
        i = i + 1
        local a = 2 * math.pi * (turns * t + c / k)
        rows[i] = {t * math.cos(a) + noise * E:get(i, 1), t * math.sin(a) + noise * E:get(i, 2)}
        labels[i] = c
      end
    end
    return finish(rows, labels, k, seed, bool_opt(F, opts, "one_hot", false))
  end

  --- ntk.datasets.blobs{n = 300, centers = 3 (or a k x d matrix), dim = 2,
  ---   std = 1, box = 10, seed = 0, one_hot = false}
  function datasets.blobs(opts)
    local F = "blobs"
    opts = options(F, opts, {n = true, centers = true, dim = true, std = true, box = true,
                             seed = true, one_hot = true})
    local seed = int_opt(F, opts, "seed", 0)
    local std = num_opt(F, opts, "std", 1.0, 0)
    local C
    if core.is_matrix(opts.centers) then
      C = opts.centers
      if not pcall(C.rows, C) then argerror(F, 1, "option 'centers' is a closed matrix") end
      local big = C:max_abs() -- NaN if any entry is, else Inf if any is
      if big ~= big or big == math.huge then
        argerror(F, 1, "option 'centers' contains NaN or Inf")
      end
      if C:rows() < 1 or C:cols() < 1 then argerror(F, 1, "option 'centers' must have a row per centre") end
      if opts.dim ~= nil and opts.dim ~= C:cols() then
        argerror(F, 1, "option 'dim' disagrees with the centres' columns")
      end
    else
      local k = int_opt(F, opts, "centers", 3, 1)
      local d = int_opt(F, opts, "dim", 2, 1)
      local box = num_opt(F, opts, "box", 10, 0)
      C = core.rand(k, d, subseed(seed, 2)) * (2 * box) - box
    end
    local k, d = C:rows(), C:cols()
    local n = int_opt(F, opts, "n", 300, k)
    local E = core.randn(n, d, subseed(seed, 1))
    local rows, labels = {}, {}
    local i = 0
    for c = 0, k - 1 do
      local m = n // k + (c < n % k and 1 or 0)
      for _ = 1, m do
        i = i + 1
        local r = {}
        for j = 1, d do r[j] = C:get(c + 1, j) + std * E:get(i, j) end
        rows[i] = r
        labels[i] = c
      end
    end
    local X, y, Y = finish(rows, labels, k, seed, bool_opt(F, opts, "one_hot", false))
    return X, y, Y
  end

  --- ntk.datasets.sine{n = 100, noise = 0.1, low = -pi, high = pi, freq = 1, seed = 0}
  --- -> X (n x 1, uniform in [low, high)), Y = sin(freq X) + noise N(0, 1)
  function datasets.sine(opts)
    local F = "sine"
    opts = options(F, opts, {n = true, noise = true, low = true, high = true, freq = true,
                             seed = true})
    local n = int_opt(F, opts, "n", 100, 0)
    local noise = num_opt(F, opts, "noise", 0.1, 0)
    local low = num_opt(F, opts, "low", -math.pi)
    local high = num_opt(F, opts, "high", math.pi)
    local freq = num_opt(F, opts, "freq", 1)
    local seed = int_opt(F, opts, "seed", 0)
    if not (high > low) then argerror(F, 1, "option 'high' must be above 'low'") end
    local X = core.rand(n, 1, subseed(seed, 3)) * (high - low) + low
    local E = core.randn(n, 1, subseed(seed, 1))
    local Y = core.matrix(n, 1)
    for i = 1, n do Y:set(i, 1, math.sin(freq * X:get(i, 1)) + noise * E:get(i, 1)) end
    return X, Y
  end

  ------------------------------------------------------------------ preparation

  -- The matrices listed in t[1..], all with the same row count.
  local function matrices(fname, t)
    if type(t) ~= "table" then argerror(fname, 1, "table of matrices expected, got " .. type(t)) end
    local n = #t
    if n == 0 then argerror(fname, 1, "no matrices given (write {X, Y, seed = ...})") end
    for i = 1, n do
      if not core.is_matrix(t[i]) then
        argerror(fname, 1, string.format("entry %d must be an ntk.Matrix, got %s", i, type(t[i])))
      end
      if not pcall(t[i].rows, t[i]) then argerror(fname, 1, string.format("entry %d is closed", i)) end
      if t[i]:rows() ~= t[1]:rows() then
        argerror(fname, 1, string.format("entry %d has %d rows, entry 1 has %d", i, t[i]:rows(), t[1]:rows()))
      end
    end
    return n, t[1]:rows()
  end

  local function check_keys(fname, t, known)
    for k in pairs(t) do
      if math.type(k) ~= "integer" and not known[k] then
        argerror(fname, 1, "unknown option '" .. tostring(k) .. "'")
      end
    end
  end

  --- ntk.shuffle{X, Y, ..., seed = 0} -> X', Y', ... (rows permuted alike)
  function ntk.shuffle(t)
    local count, rows = matrices("shuffle", t)
    check_keys("shuffle", t, {seed = true})
    local perm = core.permutation(rows, int_opt("shuffle", t, "seed", 0))
    local out = {}
    for i = 1, count do out[i] = core.take_rows(t[i], perm) end
    return table.unpack(out, 1, count)
  end

  --- ntk.train_test_split{X, Y, ..., test = 0.25, seed = 0, shuffle = true}
  --- -> X_train, X_test, Y_train, Y_test, ... (sklearn's order)
  function ntk.train_test_split(t)
    local F = "train_test_split"
    local count, rows = matrices(F, t)
    check_keys(F, t, {test = true, seed = true, shuffle = true})
    local test = t.test or 0.25
    local ntest
    if math.type(test) == "integer" then
      ntest = test
    elseif type(test) == "number" and test > 0 and test < 1 then
      ntest = math.ceil(test * rows)
    else
      argerror(F, 1, "option 'test' must be a fraction in (0, 1) or a row count")
    end
    if ntest < 0 or ntest > rows then
      argerror(F, 1, string.format("option 'test' asks for %d test rows of %d", ntest, rows))
    end
    local order
    if bool_opt(F, t, "shuffle", true) then
      order = core.permutation(rows, int_opt(F, t, "seed", 0))
    else
      order = {}
      for i = 1, rows do order[i] = i end
    end
    local train_idx = table.move(order, 1, rows - ntest, 1, {})
    local test_idx = table.move(order, rows - ntest + 1, rows, 1, {})
    local out = {}
    for i = 1, count do
      out[2 * i - 1] = core.take_rows(t[i], train_idx)
      out[2 * i] = core.take_rows(t[i], test_idx)
    end
    return table.unpack(out, 1, 2 * count)
  end
end
