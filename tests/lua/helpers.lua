-- Shared helpers for the specs (independent of the engine's own routines).
local ntk = require "ntk"
local H = {}

--- max |a - b| / max |b|
function H.rel(a, b)
  local scale = b:max_abs()
  local d = (a - b):max_abs()
  return scale > 0 and d / scale or d
end

--- Central-difference Jacobian, (N m) x P, built one parameter at a time.
function H.fd_jacobian(net, X)
  local theta = net:params()
  local P = theta:rows()
  local N, m = X:rows(), net:output_dim()
  local J = ntk.matrix(N * m, P)
  for p = 1, P do
    local t = theta:get(p, 1)
    local h = 1e-6 * math.max(1, math.abs(t))
    theta:set(p, 1, t + h)
    net:set_params(theta)
    local yp = net:forward(X)
    theta:set(p, 1, t - h)
    net:set_params(theta)
    local ym = net:forward(X)
    theta:set(p, 1, t)
    for i = 1, N do
      for a = 1, m do
        J:set((i - 1) * m + a, p, (yp:get(i, a) - ym:get(i, a)) / (2 * h))
      end
    end
  end
  net:set_params(theta)
  return J
end

--- Cholesky of A + jitter I in plain Lua; true if it succeeds (A is PSD
--- up to the jitter).
function H.is_psd(A, jitter)
  local n = A:rows()
  local L = {}
  for i = 1, n do
    L[i] = {}
    for j = 1, i do
      local s = A:get(i, j) + (i == j and jitter or 0)
      for k = 1, j - 1 do s = s - L[i][k] * L[j][k] end
      if i == j then
        if s <= 0 then return false end
        L[i][i] = math.sqrt(s)
      else
        L[i][j] = s / L[j][j]
      end
    end
  end
  return true
end

function H.is_symmetric(A)
  for i = 1, A:rows() do
    for j = 1, i - 1 do
      if A:get(i, j) ~= A:get(j, i) then return false end
    end
  end
  return true
end

--- The parameters the reference scripts (scripts/make_*reference.py) set:
--- theta_k = 0.5 sin(0.7 k + 0.3), k = 1..P, as a P x 1 matrix.
function H.theta_for(P)
  local t = ntk.matrix(P, 1)
  for k = 1, P do t:set(k, 1, 0.5 * math.sin(0.7 * k + 0.3)) end
  return t
end

--- The reference scripts' inputs: x_ij = cos(1.3 i + 0.7 j + shift), n x d.
function H.inputs(n, d, shift)
  local x = ntk.matrix(n, d)
  for i = 1, n do
    for j = 1, d do x:set(i, j, math.cos(1.3 * i + 0.7 * j + shift)) end
  end
  return x
end

--- The network of a fixture record (sizes, activation, parameterization,
--- weight_std, bias_std, num_params) with H.theta_for's parameters; an
--- error if the record's num_params is not the network's.
function H.fixture_net(c)
  local net = ntk.mlp{sizes = c.sizes, activation = c.activation,
                      parameterization = c.parameterization,
                      weight_std = c.weight_std, bias_std = c.bias_std}
  local P = net:num_params()
  if c.num_params and c.num_params ~= P then
    error(("the fixture says P = %d, the network has %d"):format(c.num_params, P), 2)
  end
  net:set_params(H.theta_for(P))
  return net
end

--- A file's bytes; an error naming it if it cannot be read.
function H.read(path)
  local f, err = io.open(path, "rb")
  if not f then error("cannot read " .. tostring(err), 2) end
  local s = f:read("a")
  f:close()
  return s
end

--- Whether a file can be opened for reading.
function H.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

function H.shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Whether xmllint parses the file (SVG output).
function H.xmllint_ok(path)
  local ok = os.execute("xmllint --noout " .. H.shell_quote(path) .. " 2>/dev/null")
  return ok == true or ok == 0
end

return H
