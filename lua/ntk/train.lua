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
    if opts ~= nil and type(opts) ~= "table" then
      error("bad argument #1 to 'analytic' (options table expected, got " .. type(opts) .. ")", 2)
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
        error("bad argument #1 to 'analytic' (option '" .. tostring(k) ..
              "' comes from the network and cannot be overridden)", 2)
      end
      spec[k] = v
    end
    local ok, res = pcall(core.analytic, spec)
    if not ok then error(res, 2) end
    return res
  end
end
