-- ntk.plot: Lua-side part of the plot section (filled in by its issue).
-- init.lua calls the returned function with the module table and ntk.core.
return function(ntk, core)
end
