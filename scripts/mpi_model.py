#!/usr/bin/env python3
"""Worked model of time and memory per rank for a distributed NTK job.

    python3 scripts/mpi_model.py [--nodes 64] [--samples 20000] [--outputs 10]
        [--widths 784,512,512,10] [--node-flops 2e12] [--node-bw 200e9]
        [--net-bw 12.5e9] [--fs-bw 20e9] [--test 10000]

Counts follow from the sizes alone (flops, bytes, ScaLAPACK's local sizes
and workspaces, computed exactly as src/mpi/ does); times divide them by
the node rates given, which are assumptions to replace with your machine's.
docs/distributed.md quotes the default run. Plain Python, no packages.
"""
import argparse
import math

INT32_MAX = 2**31 - 1


def numroc(n, nb, p, np_):
    blocks, extra = divmod(n, nb)
    mine = (blocks // np_) * nb
    rem = blocks % np_
    if p < rem:
        mine += nb
    elif p == rem:
        mine += extra
    return mine


def grid_shape(size):
    p = 1
    q = 1
    while q * q <= size:
        if size % q == 0:
            p = q
        q += 1
    return p, size // p


def evr_count(n, nb, nprow, npcol, k):
    """Eigenvectors asked of pdsyevr for the top k (src/mpi/dist_linalg.c)."""
    np0 = numroc(n, nb, 0, nprow)
    mz = k
    while True:
        mq0 = numroc(mz, nb, 0, npcol)
        have = max(18.0 * n, np0 * mq0 + 2.0 * nb * nb)
        need = max(nb * (nb - 1) / 2.0, (mq0 + np0) * nb) + nb * nb
        if have >= need or mz >= n:
            return mz
        mz = min(mz + nb, n)


def fmt_bytes(b):
    for unit, s in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= s:
            return "%.3g %s" % (b / s, unit)
    return "%d B" % b


def fmt_time(t):
    if t >= 3600:
        return "%.2g h" % (t / 3600)
    if t >= 60:
        return "%.3g min" % (t / 60)
    return "%.2g s" % t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument("--ranks-per-node", type=int, default=1)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--test", type=int, default=10000)
    ap.add_argument("--widths", default="784,512,512,10")
    ap.add_argument("--node-flops", type=float, default=2e12, help="dgemm FLOP/s per node")
    ap.add_argument("--node-bw", type=float, default=200e9, help="memory bytes/s per node")
    ap.add_argument("--net-bw", type=float, default=12.5e9, help="network bytes/s per node")
    ap.add_argument("--fs-bw", type=float, default=20e9, help="file system bytes/s, all nodes")
    ap.add_argument("--memory", type=float, default=2**30, help="opts.memory, bytes")
    a = ap.parse_args()

    w = [int(x) for x in a.widths.split(",")]
    m, N = w[-1], a.samples
    n = N * m
    P = sum(w[k + 1] * w[k] + w[k + 1] for k in range(len(w) - 1))
    ranks = a.nodes * a.ranks_per_node
    nprow, npcol = grid_shape(ranks)
    s = min(-(-64 // m), -(-N // (2 * max(nprow, npcol))))
    nb = max(s, 1) * m
    NP, NQ = numroc(n, nb, 0, nprow), numroc(n, nb, 0, npcol)
    rank_flops = a.node_flops / a.ranks_per_node
    rank_bw = a.node_bw / a.ranks_per_node
    local = NP * NQ
    print("# %s" % " ".join("%s=%s" % kv for kv in sorted(vars(a).items())))
    print("N m = %d (N = %d samples, m = %d), MLP %s, P = %d" % (n, N, m, a.widths, P))
    print("kernel %d x %d = %s in all" % (n, n, fmt_bytes(8.0 * n * n)))
    print("%d ranks on a %d x %d grid, blocks %d rows (%d samples)" % (ranks, nprow, npcol,
                                                                      nb, nb // m))
    print("largest local part %d x %d = %.4g doubles = %s (32-bit limit %d: %s)" % (
        NP, NQ, local, fmt_bytes(8.0 * local), INT32_MAX,
        "ok" if local <= INT32_MAX else "REFUSED, use more ranks"))

    rows = []

    # Kernel: lower triangle of blocks, structured method. Per entry, per
    # hidden layer: a length-n_l dot product of cotangent rows (2 n_l
    # flops); the output layer's cotangent is the identity (no product).
    entries = (NP * NQ) / 2.0 + NP * nb / 2.0
    hidden = sum(w[1:-1])
    f_pairs = entries * 2.0 * hidden
    # Gram matrices of layer inputs, per sample pair.
    f_gram = entries / (m * m) * 2.0 * sum(w[:-1])
    # Forward and cotangent passes: each row sample takes part in about
    # log2(column blocks) + 1 calls (the recursive halving), each column
    # sample in one.
    cb = -(-NQ // nb)
    passes = (NP / m) * (math.log2(max(cb, 1)) + 1) + NQ / m
    per_pass = 2.0 * P + 2.0 * m * sum(w[k + 1] * w[k] for k in range(1, len(w) - 1))
    f_prep = passes * per_pass
    f_kernel = f_pairs + f_gram + f_prep
    rows.append(("ntk (structured)", f_kernel, f_kernel / rank_flops,
                 8.0 * local + a.memory, "none (hash checks only)"))
    f_jac = entries * 2.0 * P
    rows.append(("ntk (Jacobian method)", f_jac, f_jac / rank_flops, 8.0 * local + a.memory,
                 "none"))

    # Tridiagonal reduction (pdsytrd): 4/3 n^3 flops, half in symmetric
    # matrix-vector products that stream the trailing matrix from memory.
    f_trd = 4.0 / 3.0 * n**3 / ranks
    bytes_trd = 8.0 * n**3 / (3.0 * ranks)
    t_trd = bytes_trd / rank_bw + (f_trd / 2) / rank_flops
    # Per column: vectors of n/sqrt(p) words along process rows and columns.
    words_trd = 4.0 * n * n / math.sqrt(ranks)
    t_trd_net = 8.0 * words_trd / (a.net_bw / a.ranks_per_node)
    lw_evr_n = 2 + 5 * n + max(12 * n, nb * (NP + 1))
    rows.append(("eigvalsh (pdsyevr, values)", f_trd, t_trd + t_trd_net,
                 2 * 8.0 * local + 8.0 * lw_evr_n, "%s (tridiagonal reduction)" %
                 fmt_bytes(8 * words_trd)))

    f_dc = 4.0 / 3.0 * n**3 / ranks  # worst case; deflation makes it less
    f_back = 2.0 * n**3 / ranks
    lw_evd = max(1 + 6 * n + 2 * NP * NQ, 3 * n + max(nb * (NP + 1), 3 * nb)) + 2 * n
    rows.append(("eigh (pdsyevd, all pairs)", f_trd + f_dc + f_back,
                 t_trd + t_trd_net + (f_dc + f_back) / rank_flops,
                 3 * 8.0 * local + 8.0 * lw_evd, "+ back-transformation, D&C merges"))

    k = 10
    kk = evr_count(n, nb, nprow, npcol, k)
    zloc = NP * numroc(kk, nb, 0, npcol)
    f_top = f_trd + 2.0 * n * n * kk / ranks
    rows.append(("eigh{k = %d} (pdsyevr, %d asked)" % (k, kk), f_top,
                 t_trd + t_trd_net + 2.0 * n * n * kk / ranks / rank_flops,
                 2 * 8.0 * local + 8.0 * zloc + 8.0 * (2 + 5 * n + max(18 * n, NP * kk + 2 * nb * nb)
                                                      + (2 + math.ceil(kk / ranks)) * n),
                 "as eigvalsh"))

    f_chol = n**3 / 3.0 / ranks
    rows.append(("solve (pdposv)", f_chol, f_chol / (0.6 * rank_flops), 2 * 8.0 * local,
                 "%s (panels)" % fmt_bytes(8.0 * n * n / math.sqrt(ranks))))

    Nt = a.test
    tr = Nt * m
    per = max(1, int(a.memory / 2 / 8 / tr / m))
    mine = N / ranks
    chunks = math.ceil(mine / per)
    f_pred = tr * mine * m * 2.0 * hidden + (chunks * Nt + mine) * per_pass
    rows.append(("predict (%d test samples)" % Nt, f_pred, f_pred / rank_flops,
                 a.memory + 8.0 * tr * 2, "allreduce of %s" % fmt_bytes(8.0 * tr)))

    file_bytes = 8.0 * n * n
    rows.append(("save_npy", 0, file_bytes / a.fs_bw, 8.0 * local + 64 * 2**20,
                 "%s written in all" % fmt_bytes(file_bytes)))

    print()
    print("| step | flops per rank | time per rank | memory per rank | communication |")
    print("|---|---|---|---|---|")
    for name, f, t, mem, comm in rows:
        print("| %s | %.2g | %s | %s | %s |" % (name, f, fmt_time(t), fmt_bytes(mem), comm))

    print()
    print("ScaLAPACK's 32-bit workspace (pdsyevd asks 2 n_p n_q + ...): %d, %s" % (
        lw_evd, "ok" if lw_evd <= INT32_MAX else "REFUSED"))
    print()
    print("| nodes (1 rank each) | grid | local part | local elements < 2^31 | pdsyevd workspace < 2^31 |")
    print("|---|---|---|---|---|")
    for nodes in (16, 32, 64, 128, 256):
        p, q = grid_shape(nodes)
        s2 = min(-(-64 // m), -(-N // (2 * max(p, q))))
        b = max(s2, 1) * m
        lp, lq = numroc(n, b, 0, p), numroc(n, b, 0, q)
        lw = max(1 + 6 * n + 2 * lp * lq, 3 * n + max(b * (lp + 1), 3 * b)) + 2 * n
        print("| %d | %dx%d | %dx%d (%s) | %s | %s |" % (
            nodes, p, q, lp, lq, fmt_bytes(8.0 * lp * lq),
            "yes" if lp * lq <= INT32_MAX else "no", "yes" if lw <= INT32_MAX else "no"))


if __name__ == "__main__":
    main()
