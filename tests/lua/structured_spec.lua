-- The structured NTK method against the Jacobian method, finite
-- differences and its own plan.
local ntk = require "ntk"
local H = require "helpers"

local ACTS = {"identity", "relu", "tanh", "sigmoid", "erf", "gelu", "softplus", "sin"}
local MODES = {"full", "trace", "outputs", "blocks"}

-- max relative difference over a result (a matrix, or a table of them)
local function rel(a, b)
  if ntk.is_matrix(a) then return H.rel(a, b) end
  assert.equal(#b, #a)
  local worst = 0
  for i = 1, #a do worst = math.max(worst, H.rel(a[i], b[i])) end
  return worst
end

describe("the structured method", function()
  for _, param in ipairs{"ntk", "standard"} do
    for _, act in ipairs(ACTS) do
      it("equals the Jacobian method within 1e-12 for " .. act .. " (" .. param .. ")", function()
        -- widths, outputs and samples of 1 included
        for _, sizes in ipairs{{3, 5, 4, 2}, {1, 1, 1}, {2, 1, 3}, {4, 3}, {2, 4, 1, 3, 1}} do
          local net = ntk.mlp{sizes = sizes, activation = act, parameterization = param,
                              weight_std = 1.2, bias_std = 0.3, seed = #act + #sizes}
          for _, N in ipairs{1, 4} do
            local X = ntk.randn(N, sizes[1], N)
            local X2 = ntk.randn(3, sizes[1], 99)
            for _, mode in ipairs(MODES) do
              local want = net:ntk(X, {mode = mode, method = "jacobian", progress = false})
              local wantx = mode ~= "blocks"
                and net:ntk(X, X2, {mode = mode, method = "jacobian", progress = false})
              for _, chunk in ipairs{0, 1, 3} do
                local o = {mode = mode, method = "structured", progress = false}
                if chunk > 0 then o.chunk = chunk end
                local err = rel(net:ntk(X, o), want)
                assert.is_true(err < 1e-12, ("%s N=%d chunk %d: %g"):format(mode, N, chunk, err))
                if wantx then
                  err = rel(net:ntk(X, X2, o), wantx)
                  assert.is_true(err < 1e-12, ("cross %s N=%d chunk %d: %g"):format(mode, N, chunk, err))
                end
              end
            end
          end
        end
      end)
    end
  end

  it("matches the kernel of a finite-difference Jacobian", function()
    local net = ntk.mlp{sizes = {3, 6, 5, 2}, activation = {"tanh", "softplus"}, seed = 4}
    local X = ntk.randn(4, 3, 5)
    local J = H.fd_jacobian(net, X)
    local K = net:ntk(X, {method = "structured"})
    assert.is_true(H.rel(K, J:mm(J:T())) < 1e-6)
  end)

  it("is exactly symmetric and positive semi-definite", function()
    local net = ntk.mlp{sizes = {5, 9, 7, 3}, activation = "relu", seed = 2}
    local X = ntk.randn(12, 5, 3)
    for _, o in ipairs{{}, {chunk = 5}, {memory = 1}} do
      o.method = "structured"
      local K = net:ntk(X, o)
      assert.is_true(H.is_symmetric(K))
      assert.is_true(H.is_psd(K, 1e-10 * K:max_abs()))
      o.mode = "trace"
      local T = net:ntk(X, o)
      assert.is_true(H.is_symmetric(T))
      assert.is_true(H.is_psd(T, 1e-10 * T:max_abs()))
    end
  end)

  it("gives the same kernel under a tiny memory budget, chunked or not", function()
    local net = ntk.mlp{sizes = {6, 10, 8, 4}, activation = "gelu", seed = 9}
    local X, X2 = ntk.randn(23, 6, 1), ntk.randn(11, 6, 2)
    for _, mode in ipairs(MODES) do
      local K = net:ntk(X, {mode = mode, method = "jacobian"})
      for _, o in ipairs{{memory = 1}, {memory = 5000}, {chunk = 1}, {chunk = 7}, {chunk = 1000}} do
        o.mode, o.method = mode, "structured"
        assert.is_true(rel(net:ntk(X, o), K) < 1e-12, mode)
        o.method = "auto"
        assert.is_true(rel(net:ntk(X, o), K) < 1e-12, mode)
      end
      if mode ~= "blocks" then
        local Kx = net:ntk(X, X2, {mode = mode, method = "jacobian"})
        assert.is_true(rel(net:ntk(X, X2, {mode = mode, memory = 1}), Kx) < 1e-12)
        assert.is_true(rel(net:ntk(X, X2, {mode = mode, chunk = 4}), Kx) < 1e-12)
      end
    end
  end)

  it("returns a table for outputs mode, also with one output", function()
    local net = ntk.mlp{sizes = {2, 3, 1}, seed = 1}
    local O = net:ntk(ntk.randn(3, 2, 1), {mode = "outputs"})
    assert.equal("table", type(O))
    assert.equal(1, #O)
    assert.same({3, 3}, {O[1]:shape()})
  end)

  it("reports progress, stops when asked and frees what it held", function()
    local net = ntk.mlp{sizes = {4, 9, 7, 3}, activation = "erf", seed = 5}
    local X = ntk.randn(30, 4, 7)
    local K = net:ntk(X, {method = "structured"})
    -- networks of earlier tests, once collected, would lower the count
    collectgarbage()
    collectgarbage()
    local base = ntk.bytes_in_use()
    for _, mode in ipairs(MODES) do
      local calls, last = 0, -1
      net:ntk(X, {method = "structured", mode = mode, chunk = 7, progress = function(task, done, total)
        calls = calls + 1
        assert.equal("ntk", task)
        assert.is_true(done >= last and done <= total)
        last = done
      end})
      assert.is_true(calls >= 3, mode)
      assert.equal(last, mode == "blocks" and 30 or 30 * 31 / 2)
      for stop = 1, 3 do
        local n = 0
        assert.error_matches(function()
          net:ntk(X, {method = "structured", mode = mode, chunk = 7,
                      progress = function() n = n + 1; return n <= stop end})
        end, "interrupted during ntk")
        assert.equal(base, ntk.bytes_in_use())
      end
      assert.error_matches(function()
        net:ntk(X, {method = "structured", mode = mode, chunk = 7,
                    progress = function(_, done) if done > 0 then error("boom") end end})
      end, "boom")
      assert.equal(base, ntk.bytes_in_use())
    end
    assert.is_true(H.rel(net:ntk(X, {method = "structured"}), K) == 0)
  end)

  it("gives the same kernel on one thread and on several", function()
    local net = ntk.mlp{sizes = {4, 16, 16, 3}, activation = "sin", seed = 3}
    local X = ntk.randn(200, 4, 6)
    ntk.set_threads(1)
    local K1 = net:ntk(X, {method = "structured"})
    ntk.set_threads(2)
    local K2 = net:ntk(X, {method = "structured"})
    ntk.set_threads(0)
    assert.is_true(H.rel(K2, K1) < 1e-13)
  end)
end)

describe("net:ntk_plan", function()
  local net = ntk.mlp{sizes = {20, 30, 25, 4}, activation = "tanh", seed = 1}
  local X = ntk.randn(40, 20, 2)

  it("reports a method, flops, memory and chunk, and auto picks structured here", function()
    local p = net:ntk_plan(X)
    assert.equal("structured", p.method)
    assert.equal(p.flops_structured, p.flops)
    assert.is_true(p.flops_structured < p.flops_jacobian)
    assert.equal(40, p.chunk)
    assert.is_true(p.memory > 0 and p.memory <= 1 << 30)
    assert.equal(160 * 160 * 8, p.output_bytes)
    -- numbers of samples work as well as matrices
    assert.same(p, net:ntk_plan(40))
    local pj = net:ntk_plan(40, 7, {method = "jacobian", mode = "trace"})
    assert.equal("jacobian", pj.method)
    assert.equal(pj.flops_jacobian, pj.flops)
    assert.equal(40 * 7 * 8, pj.output_bytes)
  end)

  it("names the method that runs and bounds the memory it holds", function()
    -- bytes_in_use seen from the progress callback is what the engine holds
    for _, method in ipairs{"structured", "jacobian", "auto"} do
      for _, o in ipairs{{}, {memory = 20000}, {chunk = 3}, {mode = "trace", memory = 1}} do
        o.method = method
        local plan = net:ntk_plan(X, o)
        collectgarbage()
        collectgarbage()
        local base = ntk.bytes_in_use()
        local peak = 0
        o.progress = function() peak = math.max(peak, ntk.bytes_in_use() - base) end
        net:ntk(X, o)
        -- the plan's figure is what the method holds, not just a bound
        assert.is_true(peak <= plan.memory, method .. ": " .. peak .. " > " .. plan.memory)
        assert.is_true(peak >= 0.95 * plan.memory, method .. ": " .. peak .. " << " .. plan.memory)
        if plan.method == "structured" and (o.memory or 0) >= 20000 then
          assert.is_true(plan.memory <= o.memory)
        end
        if method ~= "auto" then assert.equal(method, plan.method) end
      end
    end
    -- the two methods hold very different amounts: which one ran is visible
    local pj = net:ntk_plan(X, {method = "jacobian"})
    local ps = net:ntk_plan(X, {method = "structured"})
    assert.is_true(pj.memory > 2 * ps.memory)
    collectgarbage()
    collectgarbage()
    local base, peak = ntk.bytes_in_use(), 0
    net:ntk(X, {progress = function() peak = math.max(peak, ntk.bytes_in_use() - base) end})
    assert.is_true(peak <= ps.memory)
  end)

  it("never picks the Jacobian method where it cannot run (m * P >= 2^31)", function()
    local big = ntk.mlp{sizes = {2000, 1000, 1100}, seed = 1}
    assert.is_true(big:output_dim() * big:num_params() > 2 ^ 31)
    local X = ntk.randn(2, 2000, 1)
    local p = big:ntk_plan(X, {mode = "trace"})
    assert.equal("structured", p.method)
    local T = big:ntk(X, {mode = "trace"})
    assert.same({2, 2}, {T:shape()})
    assert.is_true(T:get(1, 1) > 0 and math.abs(T:get(1, 2) - T:get(2, 1)) == 0)
    assert.error_matches(function() big:ntk(X, {mode = "trace", method = "jacobian"}) end,
                         "m %* P below 2%^31")
  end)

  it("rejects bad arguments", function()
    assert.error_matches(function() net:ntk_plan(X, {method = "fast"}) end, "method must be")
    assert.error_matches(function() net:ntk_plan(-1) end, "X1 must be >= 0")
    assert.error_matches(function() net:ntk_plan(X, 0) end, "at least one row")
    assert.error_matches(function() net:ntk_plan(X, {memory = -5}) end, "memory")
    assert.error_matches(function() net:ntk_plan(2 ^ 40) end, "below 2%^31")
    assert.error_matches(function() net:ntk_plan(X, "trace") end, "table expected")
  end)
end)
