-- One side of scripts/bench_mpi: run under mpirun, times the distributed
-- operations on one configuration and prints, from rank 0, one line per
-- operation: "op median_s min_s peak_rss_MB(max over ranks) ranks threads".
--   bench_mpi.lua N reps [single]
-- With "single" it times the single-process peers instead (net:ntk, and the
-- kernel written to a .npy file for numpy's peers).
local ntk = require "ntk"
local N, reps, single = tonumber(arg[1] or 400), tonumber(arg[2] or 3), arg[3] == "single"
local mpi = ntk.mpi
local net = ntk.mlp{sizes = {64, 256, 256, 10}, activation = "relu", seed = 1}
local X = ntk.randn(N, 64, 7)
local Y = ntk.randn(N, 10, 8)

local function peak_mb()
  local f = io.open("/proc/self/status")
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2, t[1]
end

local clock = single and os.clock or mpi.wtime
if single then
  -- Wall time without MPI: os.time is too coarse, os.clock counts threads.
  local posix_ok, socket = pcall(require, "socket")
  clock = posix_ok and socket.gettime or function()
    local p = io.popen("date +%s.%N")
    local t = tonumber(p:read("a"))
    p:close()
    return t
  end
end

local function bench(name, fn)
  local times = {}
  for _ = 1, reps do
    collectgarbage()
    if not single then mpi.barrier() end
    local t0 = clock()
    fn()
    if not single then mpi.barrier() end
    times[#times + 1] = clock() - t0
  end
  local med, min = median(times)
  local rss = peak_mb()
  if not single then rss = mpi.allreduce(ntk.matrix{{rss}}, "max"):get(1, 1) end
  local ranks = single and 1 or mpi.size()
  if single or mpi.rank() == 0 then
    print(string.format("%-12s %10.4f %10.4f %8.0f %3d %3d", name, med, min, rss, ranks,
                        ntk.get_threads()))
  end
end

if single then
  local K
  bench("ntk", function() K = net:ntk(X, {progress = false}) end)
  return
end

local D
bench("ntk", function() D = net:ntk(X, {distributed = true, progress = false}) end)
bench("eigvalsh", function() D:eigvalsh{progress = false} end)
bench("eigvalsh_evd", function() D:eigvalsh{driver = "evd", progress = false} end)
bench("eigh_top10", function() D:eigh{k = 10, progress = false} end)
bench("eigh", function() D:eigh{progress = false} end)
bench("solve", function() D:solve(Y, {ridge = 1e-6, progress = false}) end)
local path = os.getenv("NTK_BENCH_NPY") or "bench_mpi_K.npy"
bench("save_npy", function() assert(D:save_npy(path)) end)
