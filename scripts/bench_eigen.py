#!/usr/bin/python3
"""Benchmark: ntk's eigen routines against numpy and scipy on the same
kernels, and the matrix-free top-k on an NTK far too large to form.

    scripts/setup --bench                       # python3-scipy, among others
    /usr/bin/python3 scripts/bench_eigen.py     # all figures (heavy: ~15 min)
    /usr/bin/python3 scripts/bench_eigen.py --sizes 2000 --reps 3 --matfree 0

For each size n, scripts/bench_eigen.lua builds the full NTK (n = N m,
m = 10) of the MLP 64-256-256-10 (relu, seed 1) on N standard-normal
inputs and saves it (.npy) for this script to load. Run by run, and
interleaved so that the machine's load biases neither side, it then times
ntk.eigvalsh (dsyevd) against numpy.linalg.eigvalsh, ntk.eigvalsh{k = 10}
(dsyevr with an index range) against scipy.linalg.eigh(subset_by_index,
driver="evr"), and also ntk.eigs (block Lanczos on the dense matrix) and
net:ntk_eigs (matrix-free), all on that same matrix; it checks that the
eigenvalues agree and prints medians and ratios (peer time / ntk time:
above 1 means ntk is faster).
The matrix-free run reports its time and the process's peak resident memory.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy
import scipy.linalg

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
K_TOP = 10


def lua_env():
    env = dict(os.environ)
    env["LUA_PATH_5_4"] = "%s/lua/?.lua;%s/lua/?/init.lua;;" % (ROOT, ROOT)
    env["LUA_CPATH_5_4"] = "%s/build/?.so;;" % ROOT
    return env


def run_lua(*args):
    cmd = ["lua5.4", os.path.join(ROOT, "scripts", "bench_eigen.lua")] + [str(a) for a in args]
    out = subprocess.run(cmd, env=lua_env(), check=True, capture_output=True, text=True).stdout
    return parse(out.splitlines())


def parse(lines):
    res = {}
    for line in lines:
        parts = line.split()
        res[parts[0]] = [float(x) for x in parts[1:]]
    return res


class LuaSide:
    """bench_eigen.lua in dense mode, driven one command at a time."""

    def __init__(self, N, path):
        cmd = ["lua5.4", os.path.join(ROOT, "scripts", "bench_eigen.lua"), "dense", str(N),
               str(K_TOP), path]
        self.p = subprocess.Popen(cmd, env=lua_env(), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        head = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("bench_eigen.lua stopped before it was ready")
            if line.strip() == "ready":
                break
            head.append(line)
        self.head = parse(head)

    def ask(self, command, lines=1):
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        return parse([self.p.stdout.readline() for _ in range(lines)])

    def close(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        self.p.wait()


def once(fn):
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def med(ts):
    return statistics.median(ts)


def dense(n, reps):
    """ntk and its peers on the same K, interleaved run by run."""
    N = n // 10
    t = {key: [] for key in ("eigvalsh", "topk", "eigs", "free", "numpy", "scipy")}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "K.npy")
        lua = LuaSide(N, path)
        K = np.load(path)
    for _ in range(reps):
        t["eigvalsh"].append(lua.ask("eigvalsh")["eigvalsh"][0])
        dt, ev = once(lambda: np.linalg.eigvalsh(K))
        t["numpy"].append(dt)
        t["topk"].append(lua.ask("topk")["topk"][0])
        dt, top = once(lambda: scipy.linalg.eigh(K, eigvals_only=True, driver="evr",
                                                 subset_by_index=[n - K_TOP, n - 1]))
        t["scipy"].append(dt)
        t["eigs"].append(lua.ask("eigs")["eigs"][0])
        t["free"].append(lua.ask("free")["free"][0])
    r = lua.ask("values", 3)
    lua.close()
    del K
    ours = np.array(r["top_values"])
    theirs = ev[::-1][:K_TOP]
    agree = max(np.max(np.abs(ours - theirs) / theirs[0]),
                np.max(np.abs(top[::-1] - theirs) / theirs[0]))
    return dict(n=n, N=N, reps=reps, form=lua.head["form_kernel"][0],
                ntk_all=med(t["eigvalsh"]), np_all=med(t["numpy"]),
                ntk_top=med(t["topk"]), sp_top=med(t["scipy"]),
                ntk_lanczos=med(t["eigs"]), ntk_free=med(t["free"]),
                free_iters=r["matrix_free_iterations"], agree=agree,
                agree_ntk=r["agreement"])


def matfree(n):
    N = n // 10
    t0 = time.perf_counter()
    r = run_lua("matfree", N, K_TOP)
    wall = time.perf_counter() - t0
    return dict(n=n, N=N, time=r["ntk_eigs_matrix_free"][0], wall=wall,
                matvec=r["matvec_block"][0], iters=r["matrix_free_iterations"],
                residual=r["residual"], rss=r["peak_rss"][0], top=r["top_values"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2000,5000,10000",
                    help="kernel orders n = N m for the dense comparison")
    ap.add_argument("--reps", type=int, default=3, help="runs per figure (medians)")
    ap.add_argument("--big-reps", type=int, default=1,
                    help="runs per figure for n >= 10000 (heavy)")
    ap.add_argument("--matfree", type=int, default=100000,
                    help="order of the matrix-free run (0: skip)")
    a = ap.parse_args()
    print("numpy %s, scipy %s, %s; OPENBLAS_NUM_THREADS=%s" % (
        np.__version__, scipy.__version__, sys.version.split()[0],
        os.environ.get("OPENBLAS_NUM_THREADS", "(all cores)")))
    sizes = [int(s) for s in a.sizes.split(",") if s]
    if sizes:
        print("\n| n | runs | ntk eigvalsh | numpy eigvalsh | ratio | ntk top-%d (dsyevr) "
              "| scipy top-%d (evr) | ratio | ntk.eigs dense | net:ntk_eigs matrix-free "
              "| forming K | max rel. diff vs numpy |" % (K_TOP, K_TOP))
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        reps = a.big_reps if n >= 10000 else a.reps
        d = dense(n, reps)
        print("| %d | %d | %.2f s | %.2f s | %.2f | %.2f s | %.2f s | %.2f | %.3f s | %.3f s "
              "(%d it.) | %.2f s | %.1e |" % (
                  n, reps, d["ntk_all"], d["np_all"], d["np_all"] / d["ntk_all"],
                  d["ntk_top"], d["sp_top"], d["sp_top"] / d["ntk_top"], d["ntk_lanczos"],
                  d["ntk_free"], d["free_iters"][0], d["form"], d["agree"]))
        sys.stdout.flush()
    if a.matfree:
        m = matfree(a.matfree)
        dense_bytes = a.matfree ** 2 * 8
        print("\nmatrix-free top-%d of the %d x %d NTK (N = %d, MLP 64-256-256-10): "
              "%.1f s (%d iterations, %d products of K with a vector; one 10-column "
              "product %.2f s), peak RSS %.0f MiB (the dense K alone would be %.0f GiB); "
              "largest residual %.2e x l_1; top eigenvalues %s" % (
                  K_TOP, m["n"], m["n"], m["N"], m["time"], m["iters"][0], m["iters"][1],
                  m["matvec"], m["rss"] / 2**20, dense_bytes / 2**30,
                  m["residual"][0] / m["residual"][1],
                  ", ".join("%.6g" % v for v in m["top"][:3])))


if __name__ == "__main__":
    main()
