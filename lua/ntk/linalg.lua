-- ntk.linalg: the Lua side of the spectra and kernel-methods section. Its
-- functions (ntk.eigvalsh, ntk.eigh, ntk.eigs, net:ntk_matvec,
-- net:ntk_eigs, ntk.spectrum_stats, ntk.alignment, ntk.kernel_regression,
-- ntk.kernel_predict, ntk.gd_dynamics) are native, in src/lua/llinalg.c;
-- docs/spectra.md describes them. Nothing to add here yet.
return function(ntk, core) -- luacheck: ignore
end
