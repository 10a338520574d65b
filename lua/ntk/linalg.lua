-- ntk.linalg: Lua-side part of the linalg section (filled in by its issue).
-- init.lua calls the returned function with the module table and ntk.core.
return function(ntk, core)
end
