-- ntk.mpi: the Lua side of the distributed extension (docs/distributed.md).
-- In a build without MPI, ntk.mpi.available is false and any other field
-- raises an error saying how to get one.
return function(ntk, core)
  local mpi = core.mpi
  if not mpi then
    ntk.mpi = setmetatable({available = false}, {
      __index = function(_, key)
        error("ntk.mpi." .. tostring(key) ..
              ": this build has no MPI (configure with cmake -DNTK_MPI=ON)", 2)
      end,
    })
    return
  end
  ntk.mpi = mpi

  --- print on rank 0 only.
  function mpi.print(...)
    if mpi.rank() == 0 then print(...) end
  end

  --- Run fn(...) and end every rank if it raises on any one: an error on
  --- one rank would otherwise leave the others waiting in a collective.
  function mpi.run(fn, ...)
    -- Misuse raises here, on every rank alike, instead of ending the job.
    local mt = getmetatable(fn)
    if type(fn) ~= "function" and not (type(mt) == "table" and mt.__call) then
      error("bad argument #1 to 'run' (function expected, got " .. type(fn) .. ")", 2)
    end
    local args = table.pack(...)
    local ok, err = xpcall(function() return fn(table.unpack(args, 1, args.n)) end,
                           debug.traceback)
    if not ok then mpi.abort(tostring(err), 1) end
  end

  local kernel_keys = {mode = true, normalize = true, method = true, memory = true,
                       chunk = true, progress = true, block = true, grid = true}
  local solve_keys = {ridge = true, jitter = true}

  --- Kernel regression on the distributed kernel: predictions at Xtest of
  --- the kernel interpolant (K + ridge I)^-1 Y, or, with f0 = true, of the
  --- linearised network trained to convergence on the squared loss,
  --- f0(Xtest) + K(Xtest, X) K^-1 (Y - f0(X)). Returns predictions (on every
  --- rank) and a table {ridge =, jitter =}.
  local function argerror(i, msg)
    error(("bad argument #%d to 'kernel_regression' (%s)"):format(i, msg), 3)
  end

  -- The results of a pcall of an inner function, or its error raised again;
  -- an argument error of the inner function names our argument map[k].
  -- (Errors raised by Lua code, progress functions included, carry a
  -- position prefix and pass unchanged.)
  local function renamed(map, ok, ...)
    if ok then return ... end
    local err = ...
    if type(err) == "string" then
      local k, msg = err:match("^bad argument #(%d+) to '[^']*' %((.*)%)$")
      if k and map[tonumber(k)] then argerror(map[tonumber(k)], msg) end
    end
    error(err, 0)
  end

  function mpi.kernel_regression(net, X, Y, Xtest, opts)
    local open, err = pcall(core.Net.num_params, net)
    if not open then
      argerror(1, tostring(err):find("closed", 1, true) and "network is closed"
                  or "open ntk.Net expected, got " .. type(net))
    end
    local args = {net, X, Y, Xtest}
    for i = 2, 4 do
      if not ntk.is_matrix(args[i]) then
        argerror(i, "ntk.Matrix expected, got " .. type(args[i]))
      end
      if not pcall(args[i].rows, args[i]) then argerror(i, "matrix is closed") end
    end
    opts = opts or {}
    if type(opts) ~= "table" then argerror(5, "options table expected, got " .. type(opts)) end
    if opts.f0 ~= nil and type(opts.f0) ~= "boolean" then
      argerror(5, "option 'f0' must be a boolean")
    end
    if opts.f0 and not (Y:rows() == X:rows() and Y:cols() == net:output_dim()) then
      argerror(3, ("with f0, Y must be N x m (%d x %d), got %dx%d"):format(
        X:rows(), net:output_dim(), Y:rows(), Y:cols()))
    end
    local n, m = net:input_dim(), net:output_dim()
    for _, i in ipairs{2, 4} do
      if args[i]:cols() ~= n then
        argerror(i, ("%s must be N x %d (one sample per row), got %dx%d"):format(
          i == 2 and "X" or "Xtest", n, args[i]:rows(), args[i]:cols()))
      end
    end
    for i = 2, 4 do
      local big = args[i]:max_abs() -- NaN if an entry is, else Inf if one is
      if big ~= big or big == math.huge then
        argerror(i, ({"", "X", "Y", "Xtest"})[i] .. " contains " .. (big ~= big and "NaN" or "Inf"))
      end
    end
    if opts.mode ~= nil and opts.mode ~= "full" and opts.mode ~= "trace" then
      argerror(5, "option 'mode' must be 'full' or 'trace' for a distributed kernel, got " ..
                  tostring(opts.mode))
    end
    local rps = (opts.mode == nil or opts.mode == "full") and m or 1
    if not opts.f0 and Y:rows() ~= X:rows() * rps
       and not (rps > 1 and Y:rows() == X:rows() and Y:cols() == m) then
      argerror(3, ("Y must have %d rows (one per kernel row)%s, got %dx%d"):format(
        X:rows() * rps, rps > 1 and " or be N x m" or "", Y:rows(), Y:cols()))
    end
    local kopts, sopts = {distributed = true}, {overwrite = false}
    for k, v in pairs(opts) do
      if kernel_keys[k] then kopts[k] = v
      elseif solve_keys[k] then sopts[k] = v
      elseif k ~= "f0" then
        argerror(5, "unknown option '" .. tostring(k) .. "' (expected one of: mode normalize " ..
                 "method memory chunk progress block grid ridge jitter f0)")
      end
    end
    local target = Y
    if opts.f0 then target = Y - net:forward(X) end
    local K = renamed({[2] = 2, [3] = 5}, pcall(mpi.ntk, net, X, kopts))
    if sopts.jitter == false then sopts.overwrite = true end
    local alpha, info = renamed({[2] = 3, [3] = 5}, pcall(K.solve, K, target, sopts))
    K:close()
    if not alpha then return nil, info end
    local popts = {}
    for k, v in pairs(kopts) do
      if k ~= "distributed" and k ~= "block" and k ~= "grid" then popts[k] = v end
    end
    local pred = renamed({[5] = 5}, pcall(mpi.predict, net, Xtest, X, alpha, popts))
    if opts.f0 then pred = pred + net:forward(Xtest) end
    return pred, info
  end
end
