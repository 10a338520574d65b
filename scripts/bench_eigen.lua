-- The ntk side of scripts/bench_eigen.py (run it through that script).
--
--   lua5.4 scripts/bench_eigen.lua dense N k out.npy
--       builds the NTK of N samples of the benchmark MLP (N m = N * 10
--       rows), saves it to out.npy for the numpy peers, then times on
--       command (one per stdin line):
--       eigvalsh (ntk.eigvalsh), topk (ntk.eigvalsh{k = k}: dsyevr with an
--       index range), eigs (block Lanczos on the dense matrix), free
--       (net:ntk_eigs, matrix-free); values prints the results; quit.
--   lua5.4 scripts/bench_eigen.lua matfree N k
--       times net:ntk_eigs(X, k) on N samples without forming K and reports
--       the process's peak resident memory.
--
-- Output: one "key value..." line per figure, parsed by bench_eigen.py.
local ntk = require "ntk"

local SIZES = {64, 256, 256, 10} -- the benchmark MLP: P = 85002
local mode = arg[1]

local function now()
  -- os.clock is CPU time summed over threads; wall time is what users see.
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("l"))
  p:close()
  return t
end

local function timed(fn)
  local t0 = now()
  local a, b, c = fn()
  return now() - t0, a, b, c
end

local function emit(key, ...)
  local parts = {key}
  for _, v in ipairs{...} do parts[#parts + 1] = string.format("%.17g", v) end
  print(table.concat(parts, " "))
  io.stdout:flush()
end

local function peak_rss_bytes()
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  for line in f:lines() do
    local kb = line:match("^VmHWM:%s+(%d+) kB")
    if kb then f:close() return tonumber(kb) * 1024 end
  end
  f:close()
  return 0
end

local function setup(N)
  local net = ntk.mlp{sizes = SIZES, activation = "relu", seed = 1}
  local X = ntk.randn(N, SIZES[1], 7)
  return net, X
end

if mode == "dense" then
  -- Driven over stdin by bench_eigen.py so that ntk's and the peers' runs
  -- interleave (the machine's load then biases neither side).
  local N, k, out = tonumber(arg[2]), tonumber(arg[3]), arg[4]
  local net, X = setup(N)
  local tk, K = timed(function() return net:ntk(X, {progress = false}) end)
  assert(K:save_npy(out, {progress = false}))
  emit("form_kernel", tk)
  print("ready")
  io.stdout:flush()
  local no = {progress = false}
  local last = {}
  local commands = {
    eigvalsh = function() last.all = ntk.eigvalsh(K, no) end,
    topk = function() last.top = ntk.eigvalsh(K, {k = k, progress = false}) end,
    eigs = function() last.lanczos = ntk.eigs(K, k, no) end,
    free = function()
      local _, info = net:ntk_eigs(X, k, no)
      last.info = info
    end,
  }
  for line in io.lines() do
    if line == "quit" then break end
    if line == "values" then
      local vals, d_top, d_lz = {}, 0, 0
      for i = 1, k do vals[i] = last.all:get(i, 1) end
      for i = 1, k do
        d_top = math.max(d_top, math.abs(last.top:get(i, 1) - vals[i]) / vals[1])
        d_lz = math.max(d_lz, math.abs(last.lanczos:get(i, 1) - vals[i]) / vals[i])
      end
      emit("top_values", table.unpack(vals))
      emit("agreement", d_top, d_lz)
      emit("matrix_free_iterations", last.info.iterations, last.info.matvecs)
    else
      local fn = assert(commands[line], "unknown command " .. line)
      emit(line, (timed(fn)))
      collectgarbage()
    end
  end
elseif mode == "matfree" then
  local N, k = tonumber(arg[2]), tonumber(arg[3])
  local net, X = setup(N)
  local V = ntk.randn(N * SIZES[#SIZES], k, 3)
  local tmv = timed(function() return net:ntk_matvec(X, V, {progress = false}) end)
  emit("matvec_block", tmv)
  local t, ev, info = timed(function() return net:ntk_eigs(X, k, {progress = false}) end)
  assert(ev, info)
  emit("ntk_eigs_matrix_free", t)
  emit("matrix_free_iterations", info.iterations, info.matvecs, info.restarts)
  emit("residual", info.residual, info.scale)
  local vals = {}
  for i = 1, k do vals[i] = ev:get(i, 1) end
  emit("top_values", table.unpack(vals))
  emit("peak_rss", peak_rss_bytes())
else
  io.stderr:write("usage: see the header of scripts/bench_eigen.lua\n")
  os.exit(2)
end
