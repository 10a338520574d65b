#!/usr/bin/python3
"""Fixtures for the io tests, written with numpy independently of ntk.

Run with Debian's interpreter (python3-numpy):
    /usr/bin/python3 scripts/make_fixtures.py
It rewrites tests/fixtures/data/: .npy files in every supported dtype,
order and format version; IDX files (raw and gzip) of every element type;
CSV files; the per-layer weights of a small network with numpy's forward
pass on it (examples/load_numpy_weights.lua); and expected.lua, the values
each file must load as (hex floats, exact).
"""
import gzip
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "data")
expected = {}


def record(name, arr):
    """What ntk loads: 1-D a column, N-D one row per item (C order)."""
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 0:
        rows, cols = 1, 1
    elif a.ndim == 1:
        rows, cols = a.shape[0], 1
    else:
        rows = a.shape[0]
        cols = int(np.prod(a.shape[1:]))
    expected[name] = (rows, cols, a.reshape(-1).tolist())


def base_values(dtype):
    """A 3 x 4 array that exercises the range of dtype."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        v = [0.0, -0.0, 1.5, -2.25, 1e-3, 3.0e7, -7.0, 0.1, 2.0**-20, 12345.678, -1e-5, 65504.0]
        if dt.itemsize == 8:
            v[4], v[5], v[9] = 1e-300, -1.7976931348623157e308, np.pi
    elif dt.kind == "b":
        v = [True, False, True, True, False, False, True, False, True, True, True, False]
    else:
        info = np.iinfo(dt)
        v = [0, 1, 2, 3, info.max, info.min, 7, info.max - 1, 5, 6, info.min + 1, 11]
    return np.array(v, dtype=dt).reshape(3, 4)


def npy_fixtures():
    for descr in ["<f8", ">f8", "<f4", ">f4", "<i4", ">i4", "<i8", ">i8", "<i2", ">u2",
                  "<u4", "<u8", "|u1", "|i1", "|b1"]:
        a = base_values(descr)
        name = "npy_%s_%s" % ({"<": "le", ">": "be", "|": "na"}[descr[0]], descr[1:])
        np.save(os.path.join(OUT, name + ".npy"), a)
        record(name, a)
    # Fortran order, 2-D and 3-D.
    a = np.asfortranarray(base_values("<f8"))
    np.save(os.path.join(OUT, "npy_fortran_f8.npy"), a)
    record("npy_fortran_f8", a)
    a = np.asfortranarray(base_values(">i4"))
    np.save(os.path.join(OUT, "npy_fortran_be_i4.npy"), a)
    record("npy_fortran_be_i4", a)
    c3 = (np.arange(24, dtype="<f4").reshape(2, 3, 4) - 11.5) / 4
    np.save(os.path.join(OUT, "npy_3d_f4.npy"), c3)
    record("npy_3d_f4", c3)
    f3 = np.asfortranarray(np.arange(24, dtype="<i8").reshape(2, 3, 4) * 1000 - 7)
    np.save(os.path.join(OUT, "npy_3d_fortran_i8.npy"), f3)
    record("npy_3d_fortran_i8", f3)
    # Ranks 0 and 1, empty arrays.
    np.save(os.path.join(OUT, "npy_1d.npy"), np.array([3.5, -1.0, 0.25, 8.0, 1e10]))
    record("npy_1d", np.array([3.5, -1.0, 0.25, 8.0, 1e10]))
    np.save(os.path.join(OUT, "npy_0d.npy"), np.array(42.5))
    record("npy_0d", np.array(42.5))
    np.save(os.path.join(OUT, "npy_empty_0x3.npy"), np.zeros((0, 3)))
    record("npy_empty_0x3", np.zeros((0, 3)))
    # Format versions 2 and 3 (numpy writes them on request).
    a = base_values("<f8")
    for ver in [(2, 0), (3, 0)]:
        name = "npy_v%d" % ver[0]
        with open(os.path.join(OUT, name + ".npy"), "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
        record(name, a)
    # What ntk's save_npy must reproduce byte for byte.
    np.save(os.path.join(OUT, "numpy_saved_arange_3x4.npy"), np.arange(12.0).reshape(3, 4))
    np.save(os.path.join(OUT, "numpy_saved_col_5x1.npy"), np.arange(5.0).reshape(5, 1) / 3)


IDX_TYPES = {"u8": (0x08, ">u1"), "i8": (0x09, ">i1"), "i16": (0x0B, ">i2"),
             "i32": (0x0C, ">i4"), "f32": (0x0D, ">f4"), "f64": (0x0E, ">f8")}


def idx_bytes(arr, code):
    head = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return head + arr.tobytes()


def idx_fixtures():
    for name, (code, dt) in IDX_TYPES.items():
        dt = np.dtype(dt)
        if dt.kind == "f":
            vals = (np.arange(24) - 11.5) * 0.75
            vals[5] = 1e-3
        else:
            info = np.iinfo(dt)
            vals = np.arange(24) % 7 + (0 if dt.kind == "u" else -3)
            vals[0], vals[1] = info.max, info.min
        a = vals.astype(dt).reshape(2, 3, 4)
        data = idx_bytes(a, code)
        with open(os.path.join(OUT, "idx_%s.idx" % name), "wb") as f:
            f.write(data)
        with gzip.GzipFile(os.path.join(OUT, "idx_%s.idx.gz" % name), "wb", mtime=0) as f:
            f.write(data)
        record("idx_" + name, a)
    # Rank 1 (labels) and a gzip file made of two members.
    lab = np.array([9, 0, 0, 3, 0, 2, 7, 2, 5, 5], dtype=">u1")
    data = idx_bytes(lab, 0x08)
    with open(os.path.join(OUT, "idx_labels.idx"), "wb") as f:
        f.write(data)
    record("idx_labels", lab)
    with open(os.path.join(OUT, "idx_two_members.idx.gz"), "wb") as f:
        f.write(gzip.compress(data[:7], mtime=0) + gzip.compress(data[7:], mtime=0))
    record("idx_two_members", lab)
    # Images like Fashion-MNIST's, small: 5 items of 4 x 3.
    img = (np.arange(60) * 37 % 256).astype(">u1").reshape(5, 4, 3)
    with gzip.GzipFile(os.path.join(OUT, "idx_images.idx.gz"), "wb", mtime=0) as f:
        f.write(idx_bytes(img, 0x08))
    record("idx_images", img)


def csv_fixtures():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((6, 4))
    a[2, 1] = 1e-310  # a subnormal
    a[4, 3] = -123456789.125
    # numpy's default format, '%.18e': 19 significant digits.
    np.savetxt(os.path.join(OUT, "csv_savetxt.csv"), a, delimiter=",",
               header="a,b,c,label", comments="")
    record("csv_savetxt", a)
    np.savetxt(os.path.join(OUT, "csv_semicolon.csv"), a, delimiter=";", fmt="%.17g")
    record("csv_semicolon", a)


# The per-layer weights of a 4 -> 6 -> 5 -> 3 tanh network, in PyTorch's
# nn.Linear orientation (W is n_out x n_in), and numpy's forward pass.
def weights_fixture():
    d = os.path.join(OUT, "weights")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(11)
    sizes = [4, 6, 5, 3]
    a = X = rng.standard_normal((7, 4))
    for l in range(1, len(sizes)):
        W = rng.standard_normal((sizes[l], sizes[l - 1])) / np.sqrt(sizes[l - 1])
        b = rng.standard_normal(sizes[l]) * 0.1
        np.save(os.path.join(d, "W%d.npy" % l), W)
        np.save(os.path.join(d, "b%d.npy" % l), b)
        z = a @ W.T + b
        a = np.tanh(z) if l < len(sizes) - 1 else z
    np.save(os.path.join(d, "X.npy"), X)
    np.save(os.path.join(d, "Y_numpy.npy"), a)


def lua_number(x):
    if x != x:
        return "0/0"
    if x in (float("inf"), float("-inf")):
        return "math.huge" if x > 0 else "-math.huge"
    if x == 0:
        return "-0.0" if np.signbit(x) else "0.0"
    return float(x).hex()


def write_expected():
    lines = ["-- Generated by scripts/make_fixtures.py (numpy %s). Do not edit." % np.__version__,
             "-- name = {rows, cols, values in row-major order as exact hex floats}",
             "return {"]
    for name in sorted(expected):
        rows, cols, vals = expected[name]
        body = ", ".join(lua_number(v) for v in vals)
        lines.append("  %s = {%d, %d, {%s}}," % (name, rows, cols, body))
    lines.append("}")
    with open(os.path.join(OUT, "expected.lua"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    npy_fixtures()
    idx_fixtures()
    csv_fixtures()
    weights_fixture()
    write_expected()
