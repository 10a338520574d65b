-- ntk.mpi under mpirun at 1, 2 and 4 ranks: every rank runs every test, and
-- every collective is reached in the same order on all of them. Results are
-- checked against the single-process engine and against PyTorch/numpy values
-- (tests/fixtures/mpi_reference.lua, from scripts/make_mpi_reference.py).
local ntk = require "ntk"
local H = require "helpers"
local mpi = ntk.mpi

local root = os.getenv("NTK_SOURCE_DIR") or "."
local build = os.getenv("NTK_BUILD_DIR") or "."
local cases = dofile(root .. "/tests/fixtures/mpi_reference.lua")
local rank, size = mpi.rank(), mpi.size()

local inputs = H.inputs

local function targets(n, m)
  local y = ntk.matrix(n, m)
  for i = 1, n do
    for a = 1, m do y:set(i, a, math.sin(0.9 * i + 0.4 * a)) end
  end
  return y
end

local function setup(c)
  local net = H.fixture_net(c)
  return net, inputs(c.n, c.sizes[1], 0), inputs(c.ntest, c.sizes[1], 0.25),
         targets(c.n, c.sizes[#c.sizes])
end

local function read_npy(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  assert.equal("\147NUMPY", s:sub(1, 6))
  assert.equal(1, s:byte(7))
  local hlen = string.unpack("<I2", s, 9)
  local header = s:sub(11, 10 + hlen)
  local r, c = header:match("'shape': %((%d+), (%d+)%)")
  r, c = tonumber(r), tonumber(c)
  assert.equal(10 + hlen + 8 * r * c, #s)
  local M = ntk.matrix(r, c)
  local pos = 11 + hlen
  for i = 1, r do
    for j = 1, c do
      local v
      v, pos = string.unpack("<d", s, pos)
      M:set(i, j, v)
    end
  end
  return M, header, hlen
end

-- An n x n orthogonal matrix: Gram-Schmidt, in plain Lua, of ntk.randn(n, n, seed).
local function orthogonal(n, seed)
  local A = ntk.randn(n, n, seed)
  local Q = ntk.matrix(n, n)
  for j = 1, n do
    local v = A:col(j)
    for k = 1, j - 1 do
      local q = Q:col(k)
      v = v - q * (q:T():mm(v)):get(1, 1)
    end
    v = v / v:norm()
    for i = 1, n do Q:set(i, j, v:get(i, 1)) end
  end
  return Q
end

local function diag(v)
  local n = v:rows()
  local D = ntk.matrix(n, n)
  for i = 1, n do D:set(i, i, v:get(i, 1)) end
  return D
end

describe("ntk.mpi helpers", function()
  it("knows the job", function()
    assert.is_true(mpi.available)
    assert.is_true(mpi.initialized())
    assert.equal(tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or "1"), size)
    assert.is_true(rank >= 0 and rank < size)
    assert.is_string(mpi.processor_name())
    assert.is_number(mpi.wtime())
    mpi.barrier()
  end)

  it("shapes grids as squarely as the rank count allows", function()
    assert.same({1, 1}, {mpi.grid_shape(1)})
    assert.same({1, 2}, {mpi.grid_shape(2)})
    assert.same({2, 2}, {mpi.grid_shape(4)})
    assert.same({2, 3}, {mpi.grid_shape(6)})
    assert.same({1, 7}, {mpi.grid_shape(7)})
    assert.same({4, 4}, {mpi.grid_shape(16)})
    assert.error_matches(function() mpi.grid_shape(0) end, "positive")
  end)

  it("broadcasts a matrix from any root", function()
    for r = 0, size - 1 do
      local M = rank == r and ntk.matrix{{1, 2, r}, {4, 5, 6}} or nil
      local B = mpi.bcast(M, r)
      assert.same({{1, 2, r}, {4, 5, 6}}, B:totable())
      if rank == r then assert.equal(M, B) end
    end
    assert.error_matches(function() mpi.bcast(ntk.matrix(1, 1), size) end, "root must be a rank")
    -- A root without a matrix is an error on every rank.
    assert.error_matches(function() mpi.bcast(nil, 0) end, "ntk.Matrix expected")
  end)

  it("gathers rows in rank order", function()
    local M = ntk.matrix(rank + 1, 2, rank)
    local G = mpi.gather(M, 0)
    local A = mpi.allgather(M)
    local want = {}
    for r = 0, size - 1 do
      for _ = 1, r + 1 do want[#want + 1] = {r, r} end
    end
    assert.same(want, A:totable())
    if rank == 0 then assert.same(want, G:totable()) else assert.is_nil(G) end
    if size > 1 then
      assert.error_matches(function() mpi.allgather(ntk.matrix(1, rank == 0 and 2 or 3)) end,
                           "same number of columns")
    end
  end)

  it("reduces elementwise", function()
    local M = ntk.matrix{{rank, -rank, 1}}
    assert.same({{size * (size - 1) / 2, -size * (size - 1) / 2, size}},
                mpi.allreduce(M):totable())
    assert.same({{size - 1, 0, 1}}, mpi.allreduce(M, "max"):totable())
    assert.same({{0, -(size - 1), 1}}, mpi.allreduce(M, "min"):totable())
    assert.error_matches(function() mpi.allreduce(M, "prod") end, "invalid option")
  end)
end)

describe("distributed kernels", function()
  for _, c in ipairs(cases) do
    describe(c.name, function()
      local net, X, Xt, Y = setup(c)
      local mode = c.mode
      local K0 = net:ntk(X, {mode = mode})

      it("equal the single-process kernel and PyTorch's for any blocks and grids", function()
        assert.is_true(H.rel(K0, ntk.matrix(c.K)) < 1e-10)
        local grids = {false, {1, size}, {size, 1}}
        for _, block in ipairs{false, 1, 2, 3, c.n} do
          for _, grid in ipairs(grids) do
            local D = net:ntk(X, {distributed = true, mode = mode, block = block or nil,
                                  grid = grid or nil, progress = false})
            assert.is_true(mpi.is_distributed(D))
            assert.is_true(D:is_symmetric())
            assert.same({K0:rows(), K0:cols()}, {D:shape()})
            local K = D:allgather()
            assert.is_true(H.rel(K, K0) < 1e-12, tostring(D))
            assert.is_true(H.is_symmetric(K))
            local N, r = D:samples()
            assert.equal(c.n, N)
            assert.equal(mode == "full" and c.sizes[#c.sizes] or 1, r)
            local mb, nb = D:block()
            assert.equal(mb, nb)
            assert.equal(0, mb % r)
          end
        end
      end)

      it("holds this rank's blocks as ScaLAPACK lays them out", function()
        local D = net:ntk(X, {distributed = true, mode = mode, block = 2})
        local K = D:allgather()
        local nprow, npcol, myrow, mycol = D:grid()
        assert.equal(size, nprow * npcol)
        local desc = D:descriptor()
        local mb = select(1, D:block())
        assert.equal(1, desc[1])
        assert.same({K:rows(), K:cols(), mb, mb, 0, 0}, {desc[3], desc[4], desc[5], desc[6],
                                                         desc[7], desc[8]})
        local L = D:local_matrix()
        local lr, lc = D:local_shape()
        assert.same({lr, lc}, {L:rows(), L:cols()})
        -- Local (i, j) is global (block-cyclic), checked in the lower triangle.
        local function global(l, p, np)
          local b, o = (l - 1) // mb, (l - 1) % mb
          return (b * np + p) * mb + o + 1
        end
        for i = 1, lr do
          for j = 1, lc do
            local gi, gj = global(i, myrow, nprow), global(j, mycol, npcol)
            if (gi - 1) // mb >= (gj - 1) // mb then
              assert.equal(K:get(gi, gj), L:get(i, j))
            end
          end
        end
      end)

      it("stays the same kernel in a tiny memory budget", function()
        local D = net:ntk(X, {distributed = true, mode = mode, block = 1, memory = 2048})
        assert.is_true(H.rel(D:allgather(), K0) < 1e-12)
      end)

      it("computes cross kernels", function()
        local D = net:ntk(X, Xt, {distributed = true, mode = mode, block = 2})
        assert.is_false(D:is_symmetric())
        assert.is_true(H.rel(D:allgather(), net:ntk(X, Xt, {mode = mode})) < 1e-12)
        local E = net:ntk(Xt, X, {distributed = true, mode = mode, grid = {size, 1}})
        local G = E:gather(0)
        if rank == 0 then
          assert.is_true(H.rel(G, net:ntk(Xt, X, {mode = mode})) < 1e-12)
        else
          assert.is_nil(G)
        end
      end)

      it("has the eigenvalues numpy finds", function()
        local ev = ntk.matrix(c.eigenvalues)
        local scale = ev:get(1, 1)
        local D = net:ntk(X, {distributed = true, mode = mode, block = 2})
        for _, driver in ipairs{"evr", "evd"} do
          local w = D:eigvalsh{driver = driver}
          assert.is_true((w - ev):max_abs() / scale < 1e-10, driver)
          for i = 2, w:rows() do assert.is_true(w:get(i, 1) <= w:get(i - 1, 1)) end
          assert.is_true(math.abs(w:sum() - D:trace()) < 1e-10 * w:sum())
        end
        local top = D:eigvalsh{k = 3}
        assert.equal(3, top:rows())
        assert.is_true((top - ev:sub(1, 3)):max_abs() / scale < 1e-10)
        -- The kernel was copied, not destroyed.
        assert.is_true(H.rel(D:allgather(), K0) < 1e-12)
      end)

      it("has orthonormal eigenvectors that reconstruct the kernel", function()
        local ev = ntk.matrix(c.eigenvalues)
        local scale = ev:get(1, 1)
        for _, block in ipairs{1, 5} do
          local D = net:ntk(X, {distributed = true, mode = mode, block = block})
          local w, V = D:eigh{k = 4}
          assert.equal(4, V:cols())
          assert.is_true((w - ev:sub(1, 4)):max_abs() / scale < 1e-10)
          assert.is_true((V:T():mm(V) - ntk.eye(4)):max_abs() < 1e-10)
          assert.is_true((K0:mm(V) - V:mm(diag(w))):max_abs() / scale < 1e-10)
          local wa, Z = D:eigh()
          assert.is_true(mpi.is_distributed(Z))
          assert.is_true((wa - ev):max_abs() / scale < 1e-10)
          local Q = Z:allgather()
          local n = Q:rows()
          assert.is_true((Q:T():mm(Q) - ntk.eye(n)):max_abs() < 1e-10)
          assert.is_true((Q:mm(diag(wa)):mm(Q:T()) - K0):max_abs() / scale < 1e-10)
        end
      end)

      it("predicts what numpy's kernel regression predicts", function()
        local P = ntk.matrix(c.predictions)
        local scale = P:max_abs()
        local pred, info = mpi.kernel_regression(net, X, Y, Xt, {mode = mode, ridge = c.ridge,
                                                                  block = 2})
        assert.equal(c.ridge, info.ridge)
        assert.equal(0, info.jitter)
        assert.is_true((pred - P):max_abs() / scale < 1e-9)
        local pf0 = mpi.kernel_regression(net, X, Y, Xt, {mode = mode, ridge = c.ridge, f0 = true,
                                                          jitter = false})
        local F = ntk.matrix(c.predictions_f0)
        assert.is_true((pf0 - F):max_abs() / F:max_abs() < 1e-9)
        -- The solve itself: (K + ridge I) alpha = y.
        local D = net:ntk(X, {distributed = true, mode = mode})
        local alpha = D:solve(Y, {ridge = c.ridge})
        assert.same({Y:rows(), Y:cols()}, {alpha:rows(), alpha:cols()})
        local n = K0:rows()
        local a = alpha:reshape(n, mode == "full" and 1 or Y:cols())
        local y = Y:reshape(n, mode == "full" and 1 or Y:cols())
        local resid = (K0 + ntk.eye(n) * c.ridge):mm(a) - y
        assert.is_true(resid:max_abs() < 1e-9 * y:max_abs())
        -- Predictions from alpha directly, and in a small memory budget.
        local p2 = mpi.predict(net, Xt, X, alpha, {mode = mode, memory = 4096})
        assert.is_true((p2 - P):max_abs() / scale < 1e-9)
      end)

      it("writes one .npy file without gathering", function()
        local D = net:ntk(X, {distributed = true, mode = mode, block = 2})
        local path = build .. "/mpi_" .. c.name .. "_np" .. size .. ".npy"
        assert.is_true(D:save_npy(path))
        mpi.barrier()
        local M, header, hlen = read_npy(path)
        assert.equal(0, (10 + hlen) % 64)
        assert.truthy(header:find("'descr': '<f8'", 1, true))
        assert.truthy(header:find("'fortran_order': False", 1, true))
        assert.equal("\n", header:sub(-1))
        assert.same(D:allgather():totable(), M:totable())
        -- A general (cross) matrix too, written over a longer file.
        local E = net:ntk(X, Xt, {distributed = true, mode = mode, block = 1})
        assert.is_true(E:save_npy(path))
        mpi.barrier()
        assert.same(E:allgather():totable(), (read_npy(path)):totable())
        mpi.barrier()
        if rank == 0 then os.remove(path) end
      end)
    end)
  end
end)

describe("distributed linear algebra on constructed matrices", function()
  it("finds the eigenvalues of Q D Q^T", function()
    local n = 23
    local Q = orthogonal(n, 11)
    local d = ntk.matrix(n, 1)
    for i = 1, n do d:set(i, 1, (i % 2 == 0 and -1 or 1) * i * 0.5) end
    local M = Q:mm(diag(d)):mm(Q:T())
    M = (M + M:T()) * 0.5
    local D = mpi.distribute(M, {symmetric = true, block = 3})
    assert.is_true(D:is_symmetric())
    assert.is_true(H.rel(D:allgather(), M) < 1e-15)
    local want = {}
    for i = 1, n do want[i] = d:get(i, 1) end
    table.sort(want, function(x, y) return x > y end)
    for _, driver in ipairs{"evr", "evd"} do
      local w = D:eigvalsh{driver = driver}
      for i = 1, n do assert.is_true(math.abs(w:get(i, 1) - want[i]) < 1e-12, driver) end
    end
    local w = D:eigvalsh{k = 5, overwrite = true}
    for i = 1, 5 do assert.is_true(math.abs(w:get(i, 1) - want[i]) < 1e-12) end
    assert.error_matches(function() D:trace() end, "overwritten by eigvalsh")
    assert.error_matches(function() mpi.distribute(ntk.matrix{{1, 2}, {3, 4}}, {symmetric = true}) end,
                         "not symmetric")
  end)

  it("solves an indefinite matrix with jitter, or says why not", function()
    local n = 12
    local Q = orthogonal(n, 21)
    local function sym(d)
      local M = Q:mm(diag(ntk.matrix(d))):mm(Q:T())
      return (M + M:T()) * 0.5
    end
    local d = {}
    for i = 1, n do d[i] = i end
    d[n] = -1e-9 -- slightly indefinite: the third jitter (1e-8 mean diagonal) lifts it
    local D = mpi.distribute(sym(d), {symmetric = true, block = 2})
    local mean = D:trace() / n
    local Y = ntk.randn(n, 2, 5)
    local alpha, info = D:solve(Y)
    assert.is_not_nil(alpha, info)
    assert.is_true(math.abs(info.jitter - 1e-8 * mean) < 1e-20 * mean)
    local M = D:allgather()
    local resid = (M + ntk.eye(n) * info.jitter):mm(alpha) - Y
    assert.is_true(resid:max_abs() < 1e-10 * alpha:max_abs())
    local ok, msg = D:solve(Y, {jitter = false})
    assert.is_nil(ok)
    assert.matches("not positive definite", msg)
    d[n] = -3 -- no jitter up to 1e-4 helps
    local B = mpi.distribute(sym(d), {symmetric = true})
    ok, msg = B:solve(Y)
    assert.is_nil(ok)
    assert.matches("leading minor", msg)
    assert.is_not_nil(B:solve(Y, {ridge = 4}))
    ok = B:solve(Y, {jitter = false, overwrite = true})
    assert.is_nil(ok)
    assert.error_matches(function() B:trace() end, "overwritten by solve")
  end)
end)

describe("errors", function()
  local net = ntk.mlp{sizes = {3, 5, 2}, seed = 1}
  local X = ntk.randn(6, 3, 1)

  it("are raised on every rank with the same message", function()
    assert.error_matches(function() net:ntk(X, {distributed = true, mode = "outputs"}) end,
                         "mode must be 'full' or 'trace'")
    assert.error_matches(function() net:ntk(X, {distributed = "yes"}) end,
                         "'distributed' must be a boolean")
    assert.error_matches(function() net:ntk(X, {distributed = true, colour = 1}) end,
                         "unknown option 'colour'")
    assert.error_matches(function() net:ntk(X, {distributed = true, grid = {3, 5}}) end,
                         "must use all")
    assert.error_matches(function() net:ntk(X, {distributed = true, grid = {0, 1}}) end,
                         "option 'grid'")
    local bad = X:copy():set(2, 2, 0 / 0)
    assert.error_matches(function() net:ntk(bad, {distributed = true}) end, "NaN at row 2")
    assert.error_matches(function() net:ntk(ntk.randn(4, 2), {distributed = true}) end,
                         "must be N x 3")
    local E = net:ntk(X, ntk.randn(3, 3, 2), {distributed = true})
    assert.error_matches(function() E:eigvalsh() end, "needs a symmetric distributed matrix")
    local D = net:ntk(X, {distributed = true})
    assert.error_matches(function() D:eigvalsh{k = 13} end, "k must be between 1 and 12")
    assert.error_matches(function() D:eigvalsh{k = 0} end, "k must be between 1 and 12")
    assert.error_matches(function() D:eigvalsh{driver = "evd", k = 2} end, "drop k")
    assert.error_matches(function() D:solve(ntk.matrix(5, 1)) end, "Y must have 12 rows")
    assert.error_matches(function() D:solve(ntk.matrix(12, 1), {ridge = -1}) end, "ridge")
    assert.error_matches(function() D:gather(size) end, "root must be a rank")
    assert.error_matches(function() mpi.predict(net, X, X, ntk.matrix(5, 1)) end,
                         "alpha must be 12x c")
    local ok, msg = D:save_npy(build .. "/no/such/dir/K.npy")
    assert.is_nil(ok)
    assert.matches("cannot open", msg)
    D:close()
    assert.error_matches(function() D:shape() end, "closed")
    D:close() -- idempotent
  end)

  it("refuses inputs that differ between ranks", function()
    local Xr = ntk.randn(6, 3, rank)
    if size > 1 then
      assert.error_matches(function() net:ntk(Xr, {distributed = true}) end,
                           "X differs between ranks")
      assert.error_matches(function() mpi.distribute(Xr) end, "M differs between ranks")
      local D = net:ntk(X, {distributed = true})
      assert.error_matches(function() D:solve(ntk.randn(12, 1, rank)) end, "Y differs")
      local other = ntk.mlp{sizes = {3, 5, 2}, seed = rank}
      assert.error_matches(function() other:ntk(X, {distributed = true}) end,
                           "network differs between ranks")
    else
      assert.is_true(mpi.is_distributed(net:ntk(Xr, {distributed = true})))
    end
  end)

  it("leave the ordinary kernel alone", function()
    local K = net:ntk(X, {distributed = false, mode = "trace"})
    assert.is_true(ntk.is_matrix(K))
    assert.is_true(H.rel(K, net:ntk(X, {mode = "trace"})) == 0)
    assert.is_true(H.rel(net:ntk(X, X, {distributed = false}), net:ntk(X, X)) == 0)
    assert.error_matches(function() net:ntk("x") end, "bad argument #1 to 'ntk'")
    assert.error_matches(function() net:ntk(X, {distributed = false, colour = 1}) end,
                         "unknown option 'colour'")
  end)

  it("report progress and stop everywhere when asked", function()
    local calls, last = 0, -1
    net:ntk(X, {distributed = true, block = 1, progress = function(task, done, total)
      assert.equal("ntk", task)
      assert.is_true(done >= last - 1e-9 and done <= total + 1e-9)
      last = done
      calls = calls + 1
    end})
    assert.is_true(calls >= 2)
    local base = ntk.bytes_in_use()
    -- Rank 0 alone asks to stop: every rank must see the interruption.
    assert.error_matches(function()
      net:ntk(X, {distributed = true, block = 1, progress = function()
        return rank ~= 0
      end})
    end, "interrupted")
    assert.equal(base, ntk.bytes_in_use())
  end)

  it("return the engine's memory after work and after failures", function()
    collectgarbage()
    local base = ntk.bytes_in_use()
    local D = net:ntk(X, {distributed = true, block = 1})
    D:eigvalsh()
    D:eigh{k = 2}
    D:solve(ntk.randn(6, 2, 1), {ridge = 0.1})
    pcall(D.eigvalsh, D, {k = 99})
    pcall(function() net:ntk(X, {distributed = true, mode = "blocks"}) end)
    assert.equal(base, ntk.bytes_in_use())
  end)
end)

describe("a progress function", function()
  it("may close the network and its inputs without harm", function()
    local net = ntk.mlp{sizes = {3, 5, 2}, seed = 1}
    local X = ntk.randn(8, 3, 1)
    local K0 = net:ntk(X)
    local victim = net:copy()
    local D = victim:ntk(X, {distributed = true, block = 1, progress = function()
      local v <close> = victim -- __close on the network mid-computation
    end})
    assert.is_true(H.rel(D:allgather(), K0) < 1e-12)
    assert.error_matches(function() victim:ntk(X) end, "closed")
    local alpha = D:solve(ntk.randn(8, 2, 3), {ridge = 0.1})
    local v2 = net:copy()
    local p = mpi.predict(v2, X, X, alpha, {progress = function()
      local v <close> = v2
    end})
    assert.is_true((p - mpi.predict(net, X, X, alpha)):max_abs() < 1e-12)
  end)
end)

describe("bad input to every ntk.mpi function and DistMatrix method", function()
  -- Every rank makes the same bad call, so each is refused alike everywhere
  -- before any communication: a hang here would be a failure (timeout).
  local net = ntk.mlp{sizes = {3, 4, 2}, seed = 2}
  local X = ntk.randn(6, 3, 1)
  local D = net:ntk(X, {distributed = true, block = 1})
  local Y = ntk.randn(6, 2, 4)
  local alpha = D:solve(Y, {ridge = 0.1})
  local closed_m = (function()
    local m <close> = ntk.randn(2, 2)
    return m
  end)()
  local closed_d = net:ntk(X, {distributed = true})
  closed_d:close()
  local nan = ntk.randn(6, 3, 1):set(1, 1, 0 / 0)
  local bad = {true, {}, print, 1.5, -1, 2 ^ 31, 0 / 0, closed_m, closed_d, nan, net}
  local calls = {
    {"bcast", mpi.bcast, {X, 0}},
    {"gather", mpi.gather, {X, 0}},
    {"allgather", mpi.allgather, {X}},
    {"allreduce", mpi.allreduce, {X, "sum"}},
    {"grid_shape", mpi.grid_shape, {4}},
    {"distribute", mpi.distribute, {X, {block = 2}}},
    {"predict", mpi.predict, {net, X, X, alpha, {mode = "full"}}},
    {"ntk", mpi.ntk, {net, X, {block = 1}}},
    {"kernel_regression", mpi.kernel_regression, {net, X, Y, X, {ridge = 0.1}}},
    {"D:gather", D.gather, {D, 0}},
    {"D:eigvalsh", D.eigvalsh, {D, {k = 2}}},
    {"D:eigh", D.eigh, {D, {k = 2}}},
    {"D:solve", D.solve, {D, Y, {ridge = 0.1}}},
    {"D:save_npy", D.save_npy, {D, build .. "/mpi_badinput.npy"}},
    {"D:trace", D.trace, {D}},
    {"D:local_matrix", D.local_matrix, {D}},
  }
  it("is refused with a message, never a crash or a hang", function()
    collectgarbage()
    local before = ntk.bytes_in_use()
    for _, c in ipairs(calls) do
      local name, fn, args = c[1], c[2], c[3]
      assert.is_true(pcall(fn, table.unpack(args)), name .. " with valid arguments")
      for i = 1, #args do
        for _, v in ipairs(bad) do
          local a = {table.unpack(args)}
          a[i] = v
          local ok, err = pcall(fn, table.unpack(a, 1, #args))
          if not ok then
            assert.is_string(err, name)
            assert.truthy(err:find("bad argument", 1, true) or err:find("differ", 1, true)
                          or err:find("must", 1, true) or err:find("closed", 1, true)
                          or err:find("expected", 1, true), name .. ": " .. err)
          end
        end
        -- A missing argument too.
        local a = {table.unpack(args)}
        a[i] = nil
        pcall(fn, table.unpack(a, 1, #args))
      end
    end
    mpi.barrier()
    if rank == 0 then os.remove(build .. "/mpi_badinput.npy") end
    -- No bad value became a file name.
    for _, v in ipairs(bad) do
      if type(v) == "number" then assert.is_nil(io.open(tostring(v)), tostring(v)) end
    end
    collectgarbage()
    assert.equal(before, ntk.bytes_in_use())
  end)
end)
