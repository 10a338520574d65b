-- net:ntk's `distributed` option and ntk.mpi outside mpirun, in any build.
-- The distributed work itself is tested under mpirun in tests/mpi/.
local ntk = require "ntk"

describe("the distributed option", function()
  local net = ntk.mlp{sizes = {3, 4, 2}, seed = 2}
  local X = ntk.randn(5, 3, 1)

  it("leaves the ordinary kernel alone when false", function()
    local K = net:ntk(X, {distributed = false, mode = "trace"})
    assert.is_true(ntk.is_matrix(K))
    assert.equal(0, (K - net:ntk(X, {mode = "trace"})):max_abs())
    assert.equal(0, (net:ntk(X, X, {distributed = false}) - net:ntk(X, X)):max_abs())
    assert.equal(0, (net:ntk(X, nil, {distributed = false}) - net:ntk(X)):max_abs())
  end)

  it("is checked like any option", function()
    assert.error_matches(function() net:ntk(X, {distributed = 1}) end,
                         "bad argument #2 to 'ntk' %(option 'distributed' must be a boolean%)")
    assert.error_matches(function() net:ntk(X, {distributed = false, colour = 1}) end,
                         "unknown option 'colour'")
    -- The ordinary method's messages are unchanged by the wrapper.
    assert.error_matches(function() net:ntk("x") end,
                         "bad argument #1 to 'ntk' %(ntk.Matrix expected, got string%)")
    assert.error_matches(function() net:ntk(ntk.randn(2, 2)) end, "X1 must be N x 3")
  end)

  if ntk.mpi.available then
    it("does not start MPI until ntk.mpi is used", function()
      assert.is_false(ntk.mpi.initialized())
    end)
    pending("distributed kernels run under mpirun: tests/mpi/dist_spec.lua")
  else
    it("says how to get a build with MPI", function()
      assert.error_matches(function() net:ntk(X, {distributed = true}) end,
                           "needs a build with MPI %(cmake %-DNTK_MPI=ON")
      assert.is_false(ntk.mpi.available)
      assert.error_matches(function() return ntk.mpi.rank() end,
                           "ntk.mpi.rank: this build has no MPI")
    end)
  end
end)
