-- ntk.linalg: the Lua side of the spectra and kernel-methods section.
-- The native functions (ntk.eigvalsh, ntk.eigh, ntk.eigs, net:ntk_eigs,
-- ntk.spectrum_stats, ...) tag their result tables with the metatables
-- ntk.SpectrumStats and ntk.EigsInfo; this file makes them printable.
local function g(x) return string.format("%.4g", x) end

return function(ntk, core)
  --- print(ntk.spectrum_stats(ev)): a three-line report.
  core.SpectrumStats.__tostring = function(s)
    local lines = {
      string.format("spectrum of %d eigenvalues: trace %s, largest %s, smallest %s, condition %s",
                    s.n, g(s.trace), g(s.max), g(s.min), g(s.condition)),
      string.format("effective rank %s ((sum l)^2 / sum l^2), %s (entropy); top %d hold %.1f%% of the trace",
                    g(s.effective_rank), g(s.entropy_rank), s.top_k, 100 * s.top_fraction),
    }
    local p = s.power_law
    if p then
      lines[3] = string.format("power law l_i ~ %s i^-%s over ranks %d..%d (R^2 %.3f)",
                               g(p.coef), g(p.alpha), p.first, p.last, p.r2)
    else
      lines[3] = "power law: too few positive eigenvalues to fit"
    end
    return table.concat(lines, "\n")
  end

  --- print(info) for the info table of ntk.eigs and net:ntk_eigs.
  core.EigsInfo.__tostring = function(i)
    return string.format("%s: %d of %d eigenpairs within tol %s after %d iterations "
                         .. "(%d products, %d restarts%s); largest residual %s = %s x |l_1|",
                         i.converged and "converged" or "NOT converged", i.nconverged,
                         #i.residuals, g(i.tol), i.iterations, i.matvecs, i.restarts,
                         i.dense and ", formed densely" or "", g(i.residual),
                         g(i.scale > 0 and i.residual / i.scale or 0))
  end
end
