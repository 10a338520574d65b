#!/usr/bin/python3
"""Driver of scripts/bench_ntk (run that; it installs and builds first).

For each configuration it runs, in rounds and alternating so that a change
in the machine's load hits every contender alike:
  bound       dsyrk on an (N m) x w matrix (w the widest layer): the rate
              that gives the lower bound sum_l (N m)^2 n_l / rate;
  structured  our default path (bench_ntk_run), a fresh output per call as
              net:ntk gives in Lua;
  reused      the same into one output touched beforehand: the computation
              alone, timed as the bound is;
  jacobian    our Jacobian-contraction path;
  torch       PyTorch's functorch recipe (bench_ntk_torch.py), float64;
  none        a process that only loads everything: the memory baseline.
Each process runs under /usr/bin/time -v for its peak resident memory.
Where a peer cannot run the configuration (the large one needs N m P
doubles = 53 GB of Jacobian), it runs at two smaller N and its time is
extrapolated with t = a N + b N^2, and the output says so. All kernels are
compared on a common subset of samples before any time is printed.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
RUN = os.path.join(ROOT, "build", "bench_ntk_run")
TORCH = os.path.join(ROOT, "scripts", "bench_ntk_torch.py")
BUDGET = 1 << 30  # the engine's default working memory

# name: sizes, N, samples compared, and for each peer either None (runs at
# N) or the two smaller N it runs at for the extrapolation.
CONFIGS = {
    "small": dict(sizes=[64, 256, 256, 10], n=100, check=100, jacobian=None, torch=None),
    # PyTorch's peak is about 4x its N m P Jacobian: 2.6 GB for wide at N = 25,
    # 2.2 GB for large at N = 10; the full sizes would need 10 and 200+ GB.
    "large": dict(sizes=[784, 512, 512, 10], n=1000, check=5, jacobian=(50, 100),
                  torch=(5, 10)),
    "wide": dict(sizes=[64, 4096, 10], n=100, check=10, jacobian=None, torch=(10, 25)),
    "deep": dict(sizes=[64] + [64] * 8 + [10], n=100, check=100, jacobian=None, torch=None),
}


def timed(cmd, env):
    """Run cmd under /usr/bin/time -v: (stdout lines, peak RSS bytes)."""
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("bench_ntk: %s failed:\n%s%s" % (" ".join(cmd), p.stdout, p.stderr))
    rss = 0
    for line in p.stderr.splitlines():
        if "Maximum resident set size" in line:
            rss = int(line.split(":")[1]) * 1024
    return p.stdout.splitlines(), rss


def values(lines, key):
    return [float(l.split()[1]) for l in lines if l.startswith(key + " ")]


def num_params(sizes):
    return sum(sizes[k + 1] * sizes[k] + sizes[k + 1] for k in range(len(sizes) - 1))


def fmt_time(t):
    return "%.3g s" % t if t >= 1 else "%.3g ms" % (t * 1e3)


def fmt_bytes(b):
    return "%.0f MB" % (b / 1e6) if b < 1e9 else "%.2f GB" % (b / 1e9)


def main():
    ap = argparse.ArgumentParser(description="NTK benchmarks: ours against PyTorch")
    ap.add_argument("--configs", default="small,large,wide,deep")
    ap.add_argument("--rounds", type=int, default=3, help="processes per contender")
    ap.add_argument("--reps", type=int, default=3, help="timed calls per process")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--markdown", help="also write the results as a Markdown section here")
    a = ap.parse_args()
    names = a.configs.split(",")
    for n in names:
        if n not in CONFIGS:
            sys.exit("bench_ntk: unknown configuration %s (known: %s)" % (n, ", ".join(CONFIGS)))
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    tmp = tempfile.mkdtemp(prefix="bench_ntk.")
    report = []
    for name in names:
        c = CONFIGS[name]
        sizes, n = c["sizes"], c["n"]
        spec = ",".join(map(str, sizes))
        m = sizes[-1]
        data = os.path.join(tmp, name + ".data")
        kfile = lambda who: os.path.join(tmp, "%s.%s.k" % (name, who))
        # contenders: (label, command builder for a given N, N list)
        def reps(nn):
            # below full N a peer is slow by nature: one call per process
            return ["--reps", str(a.reps)] if nn == n else ["--reps", "1", "--warmup", "0"]

        def ours(method, nn, with_check, output="fresh"):
            cmd = [RUN, "--sizes", spec, "--n", str(nn), "--method", method,
                   "--threads", str(a.threads), "--output", output] + reps(nn)
            if with_check:
                cmd += ["--kernel", kfile(method), "--check", str(c["check"])]
                if method == "structured":  # the data the PyTorch peer reads
                    cmd += ["--data", data]
            return cmd

        def torch(nn, with_check):
            cmd = ["/usr/bin/python3", TORCH, "--sizes", spec, "--n", str(nn), "--data", data,
                   "--threads", str(a.threads)] + reps(nn)
            if with_check:
                cmd += ["--kernel", kfile("torch"), "--check", str(c["check"])]
            return cmd

        runs = [("none", [n], lambda nn, ck: ours("none", nn, False)),
                ("bound", [n], lambda nn, ck: ours("bound", nn, False)),
                ("structured", [n], lambda nn, ck: ours("structured", nn, ck)),
                ("reused", [n], lambda nn, ck: ours("structured", nn, False, "reused"))]
        runs.append(("jacobian", [n] if c["jacobian"] is None else list(c["jacobian"]),
                     lambda nn, ck: ours("jacobian", nn, ck)))
        runs.append(("torch", [n] if c["torch"] is None else list(c["torch"]), torch))
        # the data file must exist before torch reads it: structured writes it
        times = {}
        rss = {}
        print("== %s: sizes %s, N = %d, %d parameters, kernel %d x %d, %d threads" % (
            name, spec, n, num_params(sizes), n * m, n * m, a.threads), flush=True)
        for rnd in range(a.rounds):
            for label, ns, build in runs:
                for nn in ns:
                    first = rnd == 0 and nn == ns[-1]
                    lines, peak = timed(build(nn, first), env)
                    key = (label, nn)
                    times.setdefault(key, []).extend(
                        values(lines, "rate" if label == "bound" else "time"))
                    rss[key] = max(rss.get(key, 0), peak)
            print("   round %d of %d done" % (rnd + 1, a.rounds), flush=True)

        # Agreement first: every kernel on the first `check` samples.
        ref = np.fromfile(kfile("structured"))
        scale = np.abs(ref).max()
        agree = {}
        for who in ("jacobian", "torch"):
            other = np.fromfile(kfile(who))
            if other.shape != ref.shape:
                sys.exit("bench_ntk: %s kernel has the wrong size" % who)
            agree[who] = np.abs(other - ref).max() / scale
            if not agree[who] <= 1e-10:
                sys.exit("bench_ntk: %s: %s disagrees with structured (relative %g): no times"
                         % (name, who, agree[who]))

        rate = statistics.median(times[("bound", n)])
        flops = float(n * m) ** 2 * sum(sizes[1:])
        bound = flops / rate
        base = rss[("none", n)]
        output = 8.0 * (n * m) ** 2

        def med(label):
            ns = runs[[r[0] for r in runs].index(label)][1]
            if len(ns) == 1:
                return statistics.median(times[(label, ns[0])]), None
            (na, nb) = ns
            ta, tb = statistics.median(times[(label, na)]), statistics.median(times[(label, nb)])
            b2 = max((tb * na - ta * nb) / (na * nb * (nb - na)), 0.0)
            a1 = (tb - b2 * nb * nb) / nb
            est = a1 * n + b2 * n * n
            floor = tb * n / nb
            note = ("extrapolated from N = %d (%s) and N = %d (%s) by t = aN + bN^2; "
                    "scaling linearly in N instead (an underestimate: the contraction is "
                    "quadratic) gives %s, still %.3gx the structured time" % (
                        na, fmt_time(ta), nb, fmt_time(tb), fmt_time(floor),
                        floor / ts_fresh))
            return est, note

        ts_fresh = statistics.median(times[("structured", n)])
        ts, _ = med("structured")
        tr, _ = med("reused")
        tj, jnote = med("jacobian")
        tt, tnote = med("torch")
        lines = []
        lines.append("%s: inputs %d, widths %s, %d outputs, N = %d, P = %d, kernel %d x %d, "
                     "float64, %d threads" % (name, sizes[0], ", ".join(map(str, sizes[1:-1])),
                                              m, n, num_params(sizes), n * m, n * m, a.threads))
        lines.append("agreement on the first %d samples (max |diff| / max |K| against "
                     "structured): jacobian %.1e, torch %.1e" % (c["check"], agree["jacobian"],
                                                                  agree["torch"]))
        lines.append("dsyrk rate %.1f GFLOP/s (median of %d); lower bound (N m)^2 sum n_l / rate "
                     "= %s" % (rate / 1e9, len(times[("bound", n)]), fmt_time(bound)))
        jn = runs[[r[0] for r in runs].index("jacobian")][1][-1]
        tn = runs[[r[0] for r in runs].index("torch")][1][-1]
        rows = [("structured, fresh output", ts, None, ("structured", n)),
                ("structured, output reused", tr, None, ("reused", n)),
                ("jacobian, fresh output", tj, jnote, ("jacobian", jn)),
                ("torch (functorch)", tt, tnote, ("torch", tn))]
        lines.append("| path | median time | vs torch | vs jacobian | vs bound | peak RSS |")
        lines.append("|---|---|---|---|---|---|")
        for label, t, note, key in rows:
            peak = rss[key]
            peak_note = fmt_bytes(peak) + ("" if key[1] == n else " (at N = %d)" % key[1])
            lines.append("| %s | %s%s | %.3gx | %.3gx | %.2fx | %s |" % (
                label, fmt_time(t), " *" if note else "", tt / t, tj / t, t / bound, peak_note))
        for label, t, note, key in rows:
            if note:
                lines.append("* %s: %s" % (label, note))
        peak = max(rss[("structured", n)], rss[("reused", n)])
        limit = base + output + BUDGET
        lines.append("structured peak RSS %s = baseline %s + %s; limit baseline + output %s + "
                     "budget %s = %s: %s" % (
                         fmt_bytes(peak), fmt_bytes(base), fmt_bytes(peak - base),
                         fmt_bytes(output), fmt_bytes(BUDGET), fmt_bytes(limit),
                         "within" if peak <= limit else "EXCEEDED"))
        lines.append("samples: %s" % ", ".join(
            "%s %d" % (k[0] + ("@%d" % k[1] if k[1] != n else ""), len(v))
            for k, v in sorted(times.items()) if k[0] != "none"))
        print("\n".join(lines) + "\n", flush=True)
        report.append(lines)
    if a.markdown:
        with open(a.markdown, "w") as fh:
            for lines in report:
                fh.write("\n\n".join([lines[0], lines[1], lines[2]]) + "\n\n")
                fh.write("\n".join(l for l in lines[3:] if l.startswith("|")) + "\n\n")
                for l in lines[3:]:
                    if not l.startswith("|"):
                        fh.write(l + "\n\n")


if __name__ == "__main__":
    main()
