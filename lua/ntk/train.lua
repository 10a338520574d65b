-- ntk.train: the Lua side of training and the infinite-width kernels.
-- init.lua calls the returned function with the module table and ntk.core;
-- the native part (net:train, net:loss, net:grad, net:vjp,
-- ntk.kernel_distance, ntk.analytic, ntk.gaussian_expect) is in
-- src/lua/ltrain.c.
return function(ntk, core)
  local Net = core.Net

  --- The infinite-width counterpart of this network: ntk.analytic with its
  --- sizes, activations, parameterization and stds. `opts` may add the
  --- quadrature settings (quad_points, quad_tol, force_quadrature).
  function Net.analytic(net, opts)
    -- Number arguments as the C functions do: self is #0 in a method call.
    local method = debug.getinfo(1, "n").namewhat == "method"
    local function argerror(pos, msg)
      error(string.format("bad argument #%d to 'analytic' (%s)", method and pos - 1 or pos, msg), 3)
    end
    local ok, err = pcall(Net.num_params, net)
    if not ok then
      if method then error((tostring(err):gsub("bad argument #1 to '[^']*'", "calling 'analytic' on bad self")), 2) end
      error((tostring(err):gsub("to '[^']*'", "to 'analytic'")), 2)
    end
    if opts ~= nil and type(opts) ~= "table" then
      argerror(2, "options table expected, got " .. type(opts))
    end
    local spec = {
      sizes = net:sizes(),
      parameterization = net:parameterization(),
      weight_std = net:weight_std(),
      bias_std = net:bias_std(),
    }
    local acts = net:activations()
    if #acts > 0 then spec.activation = acts end
    for k, v in pairs(opts or {}) do
      if spec[k] ~= nil or k == "activation" then
        argerror(2, "option '" .. tostring(k) .. "' comes from the network and cannot be overridden")
      end
      spec[k] = v
    end
    local made, res = pcall(core.analytic, spec)
    if not made then
      -- The options are this function's argument #2, not analytic's #1.
      local msg = tostring(res):match("^bad argument #1 to '[^']*' %((.*)%)$")
      if msg then argerror(2, msg) end
      error(res, 2)
    end
    return res
  end
end
