#!/usr/bin/python3
"""The PyTorch peer of scripts/bench_ntk: the functorch NTK recipe.

    /usr/bin/python3 scripts/bench_ntk_torch.py --sizes 64,256,256,10 --n 100 \
        --data FILE [--reps R] [--warmup 0|1] [--threads T] [--kernel FILE --check N]

Reads theta and X (raw float64, as bench_ntk_run --data writes them), builds
the same network as ntk.mlp{sizes = ..., seed = 1} (relu, ntk
parameterization, weight_std 1, bias_std 0.1) and times the recipe of the
PyTorch tutorial on float64: J = vmap(jacrev(f))(theta, X) (N x m x P), then
K = einsum("iap,jbp->iajb", J, J) reshaped to (N m) x (N m). Prints
`time SECONDS` per repetition; --kernel writes the kernel of the first N
samples for the agreement check.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
from functorch import jacrev, vmap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=-1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--kernel")
    ap.add_argument("--check", type=int, default=0)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    threads = a.threads or os.cpu_count()
    torch.set_num_threads(threads)
    torch.set_default_dtype(torch.float64)
    warmup = a.warmup if a.warmup >= 0 else int(a.reps > 1)

    depth = len(sizes) - 1
    P = sum(sizes[k + 1] * sizes[k] + sizes[k + 1] for k in range(depth))
    raw = np.fromfile(a.data, dtype=np.float64)
    if raw.size < P + a.n * sizes[0]:
        sys.exit("bench_ntk_torch: %s is too short" % a.data)
    theta = torch.from_numpy(raw[:P].copy())
    x = torch.from_numpy(raw[P:P + a.n * sizes[0]].reshape(a.n, sizes[0]).copy())

    def f(theta, xi):
        off, h = 0, xi
        for k in range(depth):
            nin, nout = sizes[k], sizes[k + 1]
            w = theta[off:off + nout * nin].reshape(nout, nin)
            off += nout * nin
            b = theta[off:off + nout]
            off += nout
            z = (1.0 / math.sqrt(nin)) * (w @ h) + 0.1 * b
            h = torch.relu(z) if k < depth - 1 else z
        return h

    def ntk(xs):
        j = vmap(jacrev(f), in_dims=(None, 0))(theta, xs)  # N x m x P
        k = torch.einsum("iap,jbp->iajb", j, j)
        n, m = j.shape[0], j.shape[1]
        return k.reshape(n * m, n * m)

    print("plan torch %s threads %d" % (torch.__version__, torch.get_num_threads()))
    for r in range(-warmup, a.reps):
        t0 = time.perf_counter()
        k = ntk(x)
        t = time.perf_counter() - t0
        del k
        if r >= 0:
            print("time %.6f" % t, flush=True)
    if a.kernel and a.check > 0:
        ntk(x[:a.check]).numpy().tofile(a.kernel)


if __name__ == "__main__":
    main()
