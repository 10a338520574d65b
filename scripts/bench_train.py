#!/usr/bin/python3
"""Peers for scripts/bench_train: PyTorch (float64, autograd, torch.optim) for
gradients and training, numpy (vectorised arc-cosine and erf recursions)
for the closed-form analytic kernels. Prints "task<TAB>median seconds"."""
import math
import statistics
import sys
import time

import numpy as np
import torch

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
torch.set_num_threads(threads)
torch.set_default_dtype(torch.float64)


def timed(name, setup, run):
    state = setup()
    run(state)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(state)
        ts.append(time.perf_counter() - t0)
    print("%s\t%.6f" % (name, statistics.median(ts)), flush=True)


def data(n, d):
    i = np.arange(1, n + 1)[:, None]
    j = np.arange(1, d + 1)[None, :]
    x = np.sin(0.37 * i + 0.11 * j)
    y = (np.arange(n) % 10)
    return x, y


class MLP(torch.nn.Module):
    """ntk parameterization: z = (1/sqrt(n_in)) W a + 0.1 b, W, b ~ N(0, 1)."""

    def __init__(self, sizes):
        super().__init__()
        self.ws = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(o, i))
                                          for i, o in zip(sizes[:-1], sizes[1:])])
        self.bs = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(o)) for o in sizes[1:]])

    def forward(self, x):
        for k, (w, b) in enumerate(zip(self.ws, self.bs)):
            x = (x @ w.T) / math.sqrt(w.shape[1]) + 0.1 * b
            if k < len(self.ws) - 1:
                x = torch.relu(x)
        return x


SIZES = [784, 512, 512, 10]


def setup_net(n):
    torch.manual_seed(1)
    x, y = data(n, 784)
    return {"net": MLP(SIZES), "x": torch.tensor(x), "y": torch.tensor(y)}


def grad(s):
    s["net"].zero_grad()
    torch.nn.functional.cross_entropy(s["net"](s["x"]), s["y"]).backward()


def epoch(s, opt_name):
    net, x, y = s["net"], s["x"], s["y"]
    opt = (torch.optim.Adam(net.parameters(), lr=1e-3) if opt_name == "adam"
           else torch.optim.SGD(net.parameters(), lr=0.01))
    for b in range(0, x.shape[0], 128):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x[b:b + 128]), y[b:b + 128]).backward()
        opt.step()
    with torch.no_grad():  # ntk reports the full training-set loss per epoch
        torch.nn.functional.cross_entropy(net(x), y)


def analytic(x, act, depth, w=1.4, b=0.1):
    n0 = x.shape[1]
    sq = np.einsum("ij,ij->i", x, x)
    S = w * w * (x @ x.T) / n0 + b * b
    q = w * w * sq / n0 + b * b
    T = S.copy()
    for _ in range(depth - 1):
        if act == "relu":
            s = np.sqrt(np.outer(q, q))
            rho = np.clip(S / s, -1, 1)
            th = np.arccos(rho)
            e = s / (2 * np.pi) * (np.sin(th) + (np.pi - th) * np.cos(th))
            ed = (np.pi - th) / (2 * np.pi)
            qe = q / 2
        else:
            a = 1 + 2 * q
            ab = np.outer(a, a)
            e = 2 / np.pi * np.arcsin(np.clip(2 * S / np.sqrt(ab), -1, 1))
            ed = 4 / np.pi / np.sqrt(ab - 4 * S * S)
            qe = 2 / np.pi * np.arcsin(2 * q / a)
        S = w * w * e + b * b
        T = S + w * w * ed * T
        q = w * w * qe + b * b
    return T


timed("grad  784-512-512-10 relu, N=1024, cross-entropy", lambda: setup_net(1024), grad)
timed("train 784-512-512-10 relu, N=4096, 1 epoch, batch 128, sgd", lambda: setup_net(4096),
      lambda s: epoch(s, "sgd"))
timed("train 784-512-512-10 relu, N=4096, 1 epoch, batch 128, adam", lambda: setup_net(4096),
      lambda s: epoch(s, "adam"))
timed("analytic NTK relu depth 3, N=2000 x 2000, n0=784", lambda: data(2000, 784)[0],
      lambda x: analytic(x, "relu", 3))
timed("analytic NTK erf depth 3, N=2000 x 2000, n0=784", lambda: data(2000, 784)[0],
      lambda x: analytic(x, "erf", 3))
