-- Run by ctest under mpirun at 2 ranks: rank 1 fails while rank 0 waits in
-- a barrier. The job must end with a failure (the program aborts it, or
-- ntk.mpi.run does under lua5.4), never hang: ctest's timeout would say so.
local ntk = require "ntk"
local mpi = ntk.mpi
local function body()
  if mpi.rank() == 1 then error("rank 1 fails on purpose") end
  mpi.barrier()
end
if arg[1] == "run" then mpi.run(body) else body() end
