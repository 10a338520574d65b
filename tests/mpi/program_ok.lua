-- Run by ctest as `mpirun -np 2 ntk program_ok.lua`: the program starts MPI
-- through ntk.mpi, computes a distributed kernel and finalises at exit.
local ntk = require "ntk"
local mpi = ntk.mpi
assert(mpi.size() == 2, "expected 2 ranks")
local net = ntk.mlp{sizes = {3, 8, 2}, seed = 1}
local X = ntk.randn(10, 3, 2)
local K = net:ntk(X, {distributed = true})
local ref = net:ntk(X)
local err = (K:allgather() - ref):max_abs() / ref:max_abs()
assert(err < 1e-12, "kernel differs: " .. err)
mpi.print("program_ok: kernel equal on " .. mpi.size() .. " ranks")
