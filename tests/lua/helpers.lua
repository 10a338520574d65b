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

return H
