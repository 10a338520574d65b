-- The distributed kernel at one rank against the single symmetric call, runs
-- interleaved so that the machine's load hits both alike:
--   OPENBLAS_NUM_THREADS=2 mpirun --bind-to none -np 1 lua5.4 scripts/bench_mpi_kernel.lua [N] [reps]
-- (LUA_PATH/LUA_CPATH as in scripts/bench_mpi). Prints each run and the
-- median ratios distributed / plain for the default budget (1 GiB), a 2 GiB
-- budget, and blocks of 7 and 50 samples.
local ntk = require "ntk"
local mpi = ntk.mpi
local N, reps = tonumber(arg[1] or 200), tonumber(arg[2] or 3)
local net = ntk.mlp{sizes = {64, 256, 256, 10}, activation = "relu", seed = 1}
local X = ntk.randn(N, 64, 7)
local configs = {
  {"plain", {}},
  {"dist", {distributed = true}},
  {"dist 2GiB", {distributed = true, memory = 2 ^ 31}},
  {"dist block 50", {distributed = true, block = 50}},
}
local ratios = {}
for r = 1, reps do
  local times = {}
  for _, c in ipairs(configs) do
    local opts = {progress = false}
    for k, v in pairs(c[2]) do opts[k] = v end
    collectgarbage()
    local t = mpi.wtime()
    net:ntk(X, opts)
    times[c[1]] = mpi.wtime() - t
  end
  local load = io.open("/proc/loadavg"):read("l"):match("^(%S+)")
  print(string.format("run %d: plain %.2f s, dist %.2f, dist 2GiB %.2f, dist block 50 %.2f (load %s)",
                      r, times.plain, times.dist, times["dist 2GiB"], times["dist block 50"], load))
  for _, c in ipairs(configs) do
    ratios[c[1]] = ratios[c[1]] or {}
    table.insert(ratios[c[1]], times[c[1]] / times.plain)
  end
end
for _, c in ipairs(configs) do
  local t = ratios[c[1]]
  table.sort(t)
  print(string.format("median ratio %-14s %.2f", c[1], t[(#t + 1) // 2]))
end
