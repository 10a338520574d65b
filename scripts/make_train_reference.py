#!/usr/bin/python3
"""Reference values for training and the infinite-width kernels, computed
independently of ntk.

Run with Debian's interpreter (python3-torch, python3-numpy, python3-scipy):
    /usr/bin/python3 scripts/make_train_reference.py
It rewrites tests/fixtures/train_reference.lua:
  - losses and gradients (torch autograd) for mse and cross_entropy (class
    indices and soft targets);
  - short training runs with torch.optim.SGD (with and without momentum) and
    torch.optim.Adam, minibatches shuffled by a Python re-implementation of
    ntk's generator and Fisher-Yates loop (the same permutations ntk draws);
  - infinite-width NNGP and NTK from a numpy transcription of the layer
    recursion whose Gaussian expectations come from closed forms (relu,
    erf) or from scipy's adaptive dblquad (everything else, sin included,
    so ntk's sin closed form is checked too).
"""
import math
import os
import sys

import numpy as np
import torch
from scipy import integrate

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_reference as ref  # noqa: E402  (mlp, inputs, theta_for, Xoshiro)

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


lua_matrix, lua_list = ref.lua_matrix, ref.lua_list


# ---- losses, gradients and training ---------------------------------------

def targets(n, m, shift):
    # y_ia = 0.8 sin(0.9 i + 1.7 a + shift), i, a from 1.
    return torch.tensor([[0.8 * math.sin(0.9 * i + 1.7 * a + shift) for a in range(1, m + 1)]
                         for i in range(1, n + 1)])


def classes(n, m):
    # 1-based class of sample i: ((3 i + 1) mod m) + 1
    return [((3 * i + 1) % m) + 1 for i in range(1, n + 1)]


def soft(n, m):
    # rows of softmax(cos(i + 2 a)): soft targets summing to 1
    t = torch.tensor([[math.cos(i + 2.0 * a) for a in range(1, m + 1)] for i in range(1, n + 1)])
    return torch.softmax(t, dim=1)


def loss_fn(kind, f, y):
    if kind == "mse":
        return 0.5 * ((f - y) ** 2).sum(dim=1).mean()
    if kind == "ce_index":
        return torch.nn.functional.cross_entropy(f, y)
    return (-(y * torch.log_softmax(f, dim=1)).sum(dim=1)).mean()


def permutation_stream(seed, n):
    """ntk's shuffle: one generator, Fisher-Yates on a persistent array."""
    g = ref.Xoshiro(seed)
    perm = list(range(n))
    while True:
        for i in range(n, 1, -1):
            j = int(g.uniform() * i)
            if j >= i:
                j = i - 1
            perm[i - 1], perm[j] = perm[j], perm[i - 1]
        yield list(perm)


def run_training(c, x, y, kind, run):
    sizes, acts = c["sizes"], c["acts"]
    theta = ref.theta_for(ref.num_params(sizes)).clone().requires_grad_(True)

    def f(t, xx):
        return ref.mlp(t, xx, sizes, acts, c["param"], c["wstd"], c["bstd"])

    if run["optimizer"] == "sgd":
        opt = torch.optim.SGD([theta], lr=run["lr"])
    elif run["optimizer"] == "momentum":
        opt = torch.optim.SGD([theta], lr=run["lr"], momentum=run.get("momentum", 0.9))
    else:
        opt = torch.optim.Adam([theta], lr=run["lr"], betas=(run.get("beta1", 0.9),
                                                             run.get("beta2", 0.999)),
                               eps=run.get("eps", 1e-8))
    n = x.shape[0]
    batch = run.get("batch_size", 0) or n
    batch = min(batch, n)
    shuffle = run.get("shuffle", True) and batch < n
    perms = permutation_stream(run.get("seed", 0), n) if shuffle else None
    history = []
    for _ in range(run["epochs"]):
        order = next(perms) if shuffle else list(range(n))
        for b0 in range(0, n, batch):
            idx = order[b0:b0 + batch]
            opt.zero_grad()
            loss = loss_fn(kind, f(theta, x[idx]), y[idx])
            loss.backward()
            opt.step()
        with torch.no_grad():
            history.append(float(loss_fn(kind, f(theta, x), y)))
    return history, theta.detach()


TRAIN_CASES = [
    dict(name="tanh_mse", sizes=[3, 7, 5, 2], acts=["tanh", "tanh"], param="ntk", wstd=1.3,
         bstd=0.2, n=6, kind="mse",
         runs=[dict(optimizer="sgd", lr=0.3, epochs=3),
               dict(optimizer="momentum", lr=0.1, momentum=0.8, epochs=3, batch_size=4, seed=7),
               dict(optimizer="adam", lr=0.05, epochs=3, batch_size=2, seed=3),
               dict(optimizer="adam", lr=0.02, beta1=0.5, beta2=0.9, eps=1e-6, epochs=2,
                    batch_size=4, shuffle=False)]),
    dict(name="mixed_ce_index", sizes=[4, 6, 6, 3], acts=["relu", "gelu"], param="standard",
         wstd=1.0, bstd=0.1, n=7, kind="ce_index",
         runs=[dict(optimizer="adam", lr=0.01, epochs=3),
               dict(optimizer="sgd", lr=0.5, epochs=2, batch_size=3, seed=11)]),
    dict(name="softplus_ce_soft", sizes=[2, 5, 4], acts=["softplus"], param="ntk", wstd=1.5,
         bstd=0.5, n=5, kind="ce_soft",
         runs=[dict(optimizer="momentum", lr=0.2, epochs=3)]),
]


def write_training(out):
    out.append("  train = {")
    for c in TRAIN_CASES:
        sizes, acts = c["sizes"], c["acts"]
        n, m = c["n"], sizes[-1]
        x = ref.inputs(n, sizes[0], 0.0)
        if c["kind"] == "mse":
            y, ylua = targets(n, m, 0.4), None
        elif c["kind"] == "ce_index":
            cls = classes(n, m)
            y, ylua = torch.tensor([k - 1 for k in cls]), cls
        else:
            y, ylua = soft(n, m), None
        theta = ref.theta_for(ref.num_params(sizes)).clone().requires_grad_(True)
        loss = loss_fn(c["kind"], ref.mlp(theta, x, sizes, acts, c["param"], c["wstd"],
                                          c["bstd"]), y)
        loss.backward()
        out.append("    {")
        out += ref.lua_net(c, 6)
        out.append('      n = %d, num_params = %d, kind = "%s",' % (
            n, ref.num_params(sizes), c["kind"]))
        if ylua is not None:
            out.append("      Y = %s," % lua_matrix([[k] for k in ylua]))
        else:
            out.append("      Y = %s," % lua_matrix(y))
        out.append("      loss = %.17g," % float(loss))
        out.append("      grad = %s," % lua_list(theta.grad.tolist()))
        out.append("      runs = {")
        for run in c["runs"]:
            history, final = run_training(c, x, y, c["kind"], run)
            opts = ", ".join("%s = %s" % (k, ('"%s"' % v) if isinstance(v, str) else
                                          ("true" if v is True else "false" if v is False
                                           else "%.17g" % v if isinstance(v, float) else v))
                             for k, v in run.items())
            out.append("        {opts = {%s}," % opts)
            out.append("         history = %s," % lua_list(history))
            out.append("         params = %s}," % lua_list(final.tolist()))
        out.append("      },")
        out.append("    },")
    out.append("  },")


# ---- infinite-width kernels ------------------------------------------------

def phi(name):
    return {
        "tanh": (np.tanh, lambda u: 1 - np.tanh(u) ** 2),
        "sigmoid": (lambda u: 1 / (1 + np.exp(-u)),
                    lambda u: np.exp(-u) / (1 + np.exp(-u)) ** 2),
        "gelu": (lambda u: u * 0.5 * math.erfc(-u / math.sqrt(2)),
                 lambda u: 0.5 * math.erfc(-u / math.sqrt(2)) + u * math.exp(-u * u / 2)
                 / math.sqrt(2 * math.pi)),
        "softplus": (lambda u: np.logaddexp(0, u), lambda u: 1 / (1 + np.exp(-u))),
        "sin": (np.sin, np.cos),
    }[name]


def expect_numeric(name, q1, q2, c):
    """E[phi(u)phi(v)], E[phi'(u)phi'(v)] by scipy's adaptive dblquad over
    standard normals: u = s1 z1, v = s2 (r z1 + sqrt(1 - r^2) z2)."""
    f, df = phi(name)
    s1, s2 = math.sqrt(q1), math.sqrt(q2)
    r = max(-1.0, min(1.0, c / (s1 * s2)))
    rc = math.sqrt(max(0.0, 1 - r * r))
    dens = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    res = []
    for g in (f, df):
        if rc < 1e-12:
            val, _ = integrate.quad(lambda z: g(s1 * z) * g(s2 * z) * dens(z), -12, 12,
                                    epsabs=1e-14, epsrel=1e-13, limit=400)
        else:
            val, _ = integrate.dblquad(
                lambda z2, z1: g(s1 * z1) * g(s2 * (r * z1 + rc * z2)) * dens(z1) * dens(z2),
                -12, 12, -12, 12, epsabs=1e-14, epsrel=1e-12)
        res.append(val)
    return res[0], res[1]


def expect_closed(name, q1, q2, c):
    if name == "relu":
        s = math.sqrt(q1 * q2)
        r = max(-1.0, min(1.0, c / s))
        th = math.acos(r)
        return s / (2 * math.pi) * (math.sin(th) + (math.pi - th) * math.cos(th)), \
            (math.pi - th) / (2 * math.pi)
    if name == "erf":
        a, b = 1 + 2 * q1, 1 + 2 * q2
        return 2 / math.pi * math.asin(2 * c / math.sqrt(a * b)), \
            4 / math.pi / math.sqrt(a * b - 4 * c * c)
    if name == "identity":
        return c, 1.0
    return expect_numeric(name, q1, q2, c)


def analytic(x1, x2, sizes, acts, param, wstd, bstd):
    """Sigma_L and Theta_L entry by entry (plain loops, no sharing with ntk)."""
    n0 = x1.shape[1]
    depth = len(sizes) - 1
    sw2, sb2 = wstd ** 2, bstd ** 2

    def var_chain(x):
        q = [sw2 * float(x @ x) / n0 + sb2]
        for k in range(1, depth):
            e, _ = expect_closed(acts[k - 1], q[-1], q[-1], q[-1])
            q.append(sw2 * e + sb2)
        return q

    v1 = [var_chain(x) for x in x1]
    v2 = [var_chain(x) for x in x2]
    nngp = np.zeros((len(x1), len(x2)))
    ntk = np.zeros_like(nngp)
    for i, a in enumerate(x1):
        for j, b in enumerate(x2):
            dot = float(a @ b)
            S = sw2 * dot / n0 + sb2
            T = dot + 1 if param == "standard" else S
            for k in range(1, depth):
                e, ed = expect_closed(acts[k - 1], v1[i][k - 1], v2[j][k - 1], S)
                nxt = sw2 * e + sb2
                fresh = sizes[k] * e + 1 if param == "standard" else nxt
                T = fresh + sw2 * ed * T
                S = nxt
            nngp[i, j], ntk[i, j] = S, T
    return nngp, ntk


ANALYTIC_CASES = [
    dict(name="relu_ntk", sizes=[3, 1, 1, 2], acts=["relu", "relu"], param="ntk", wstd=1.4,
         bstd=0.3),
    dict(name="erf_ntk", sizes=[3, 1, 1, 1], acts=["erf", "erf"], param="ntk", wstd=1.2,
         bstd=0.5),
    dict(name="relu_standard", sizes=[3, 50, 40, 2], acts=["relu", "relu"], param="standard",
         wstd=1.3, bstd=0.2),
    dict(name="tanh_ntk", sizes=[3, 1, 1], acts=["tanh"], param="ntk", wstd=1.5, bstd=0.2),
    dict(name="sigmoid_ntk", sizes=[3, 1, 1], acts=["sigmoid"], param="ntk", wstd=2.0,
         bstd=0.4),
    dict(name="gelu_standard", sizes=[3, 30, 1], acts=["gelu"], param="standard", wstd=1.0,
         bstd=0.1),
    dict(name="softplus_ntk", sizes=[3, 1, 1], acts=["softplus"], param="ntk", wstd=1.1,
         bstd=0.0),
    dict(name="sin_ntk", sizes=[3, 1, 1], acts=["sin"], param="ntk", wstd=1.7, bstd=0.3),
    dict(name="mixed_ntk", sizes=[3, 1, 1, 1], acts=["tanh", "relu"], param="ntk", wstd=1.3,
         bstd=0.1),
]


def write_analytic(out):
    out.append("  analytic = {")
    for c in ANALYTIC_CASES:
        x1 = ref.inputs(4, c["sizes"][0], 0.0).numpy()
        x2 = ref.inputs(3, c["sizes"][0], 0.25).numpy()
        k11 = analytic(x1, x1, c["sizes"], c["acts"], c["param"], c["wstd"], c["bstd"])
        k12 = analytic(x1, x2, c["sizes"], c["acts"], c["param"], c["wstd"], c["bstd"])
        out.append("    {")
        out += ref.lua_net(c, 6)
        out.append("      nngp = %s," % lua_matrix(k11[0]))
        out.append("      ntk = %s," % lua_matrix(k11[1]))
        out.append("      nngp12 = %s," % lua_matrix(k12[0]))
        out.append("      ntk12 = %s," % lua_matrix(k12[1]))
        out.append("    },")
        print("analytic", c["name"], "done", flush=True)
    out.append("  },")


if __name__ == "__main__":
    out = ["-- Generated by scripts/make_train_reference.py (PyTorch %s autograd and"
           " torch.optim; numpy %s and scipy dblquad for the analytic kernels). Do not edit."
           % (torch.__version__, np.__version__),
           "-- theta_k = 0.5 sin(0.7 k + 0.3); x_ij = cos(1.3 i + 0.7 j + shift) (shift 0 for"
           " X1, 0.25 for X2); see the script for the targets.",
           "return {"]
    write_training(out)
    write_analytic(out)
    out.append("}")
    ref.write_lines(os.path.join(ROOT, "tests", "fixtures", "train_reference.lua"), out)
