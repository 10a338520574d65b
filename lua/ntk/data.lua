-- ntk.data: Lua-side part of the data section (filled in by its issue).
-- init.lua calls the returned function with the module table and ntk.core.
return function(ntk, core)
end
