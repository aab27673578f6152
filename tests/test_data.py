#!/usr/bin/python3
"""Calibration data readers (include/onnxq/data.h) on .npy and .pb data, through
tests/data_driver.c.

Usage: /usr/bin/python3 test_data.py DATA_DRIVER WORKDIR TESTDATA

The driver opens a data source for a model's inputs and saves every batch as .npy.
The models are built with onnx.helper, the data with numpy and onnx.numpy_helper,
and the expected batches are numpy slices and concatenations of what was written,
compared bit for bit (dtype, shape, values): single .npy/.pb files sliced into
batches, folders of sample and batch files, per-input and per-sample sub-folders,
the ONNX backend test data (TESTDATA, read with onnx.numpy_helper), batches that
end where a symbolic dimension changes, --samples, fixed batch dimensions. A 96 MiB
.npy must stream through with a peak resident size under 40 MiB. Every bad input
must fail with exit code 1 and a message naming the file, the input, the expected
and the actual shape or dtype (or the index of a NaN/Inf); bad option values name
the option.

Prints one line per check (with the message for error cases) and "N passed,
N failed"; exits 1 if any failed.
"""
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data_testlib as T  # noqa: E402
from data_testlib import (F, RNG, check, expect_batches, expect_error, fresh,  # noqa: E402
                          make_model, run, save_pb, split)

# ---------------------------------------------------------------- .npy files


def npy_file_cases():
    d = fresh("npy")
    m = make_model("x_N345", [("x", F, ["N", 3, 4, 5])])
    a = RNG.standard_normal((10, 3, 4, 5)).astype(np.float32)
    p = os.path.join(d, "a.npy")
    np.save(p, a)
    expect_batches("npy file, batch 4", m, p, ["--batch-size", "4"], split(a, 4), total=10)
    expect_batches("npy file, default batch 1", m, p, [], split(a, 1), total=10)
    expect_batches("npy file, --samples 7", m, p, ["--batch-size", "4", "--samples", "7"],
                   split(a[:7], 4), total=7)
    expect_batches("npy file, batch larger than the data", m, p, ["--batch-size", "64"],
                   [[a]], total=10)
    one = os.path.join(d, "one.npy")
    np.save(one, a[3])
    expect_batches("npy file holding one sample", m, one, ["--batch-size", "4"], [[a[3:4]]],
                   total=1)
    m1 = make_model("x_1345", [("x", F, [1, 3, 4, 5])])
    expect_batches("fixed batch 1: batches of 1", m1, p, [], split(a, 1), total=10)
    expect_error("fixed batch 1, --batch-size 4", m1, p, ["--batch-size", "4"],
                 "batch size 4", "'x'", "[1,3,4,5]", "fixed")
    m4 = make_model("x_4345", [("x", F, [4, 3, 4, 5])])
    expect_batches("fixed batch 4, --samples 8", m4, p, ["--samples", "8"], split(a[:8], 4))
    expect_error("fixed batch 4, 10 samples", m4, p, [], p, "2 samples", "fixed at 4",
                 "--samples")

    p64 = os.path.join(d, "f64.npy")
    np.save(p64, a.astype(np.float64))
    expect_error("float64 data for a float input", m, p64, [], p64, "'x'", "float data",
                 "double", "astype")
    bad = os.path.join(d, "bad.npy")
    np.save(bad, a[:, :, :, :4].copy())
    expect_error("wrong shape", m, bad, [], bad, "'x'", "[N,3,4,5]", "[3,4,5]", "[10,3,4,4]")
    np.save(bad, a[0, 0])
    expect_error("wrong rank", m, bad, [], bad, "[N,3,4,5]", "[4,5]")
    nan = a.copy()
    nan[7, 1, 2, 3] = np.nan
    pn = os.path.join(d, "nan.npy")
    np.save(pn, nan)
    expect_error("NaN in .npy", m, pn, ["--batch-size", "4"], pn, "NaN at index [7,1,2,3]",
                 "'x'")
    expect_batches("NaN beyond --samples is never read", m, pn,
                   ["--batch-size", "4", "--samples", "7"], split(a[:7], 4))
    inf = a[2].copy()
    inf[0, 3, 1] = np.inf
    pi = os.path.join(d, "inf_sample.npy")
    np.save(pi, inf)
    expect_error("+Inf in a one-sample .npy", m, pi, [], pi, "+Inf at index [0,3,1]")
    h = a.astype(np.float16)
    h[9, 2, 3, 4] = -np.inf
    mh = make_model("h", [("x", TensorProto.FLOAT16, ["N", 3, 4, 5])])
    ph = os.path.join(d, "h.npy")
    np.save(ph, h)
    expect_error("-Inf in float16 data", mh, ph, [], ph, "-Inf at index [9,2,3,4]")
    expect_batches("float16 data before the Inf", mh, ph, ["--samples", "9", "--batch-size", "3"],
                   split(h[:9], 3))
    ints = RNG.integers(-2**40, 2**40, (7, 6)).astype(np.int64)
    mi = make_model("i64", [("ids", TensorProto.INT64, ["batch", 6])])
    pint = os.path.join(d, "ids.npy")
    np.save(pint, ints)
    expect_batches("int64 data", mi, pint, ["--batch-size", "3"], split(ints, 3), total=7)
    u8 = RNG.integers(0, 256, (5, 2, 2)).astype(np.uint8)
    mu = make_model("u8", [("u", TensorProto.UINT8, [None, 2, 2])])
    pu = os.path.join(d, "u8.npy")
    np.save(pu, u8)
    expect_batches("uint8 data, unnamed batch dim", mu, pu, ["--batch-size", "2"],
                   split(u8, 2))
    expect_error("uint8 data for a float input", m, pu, [], pu, "float data", "uint8")
    return m, a


def npy_streaming_case(m):
    """A 96 MiB .npy read a sample at a time: peak memory well below its size."""
    d = fresh("big")
    p = os.path.join(d, "big.npy")
    rows = 96 * 1024 * 1024 // (60 * 4)
    big = np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(rows, 3, 4, 5))
    big[:] = 0.5
    big[rows - 1, 2, 3, 4] = 7.0
    del big
    rc, info, _, err = run(m, p, ["--batch-size", "16"], save=False)
    check(rc == 0 and info.get("end") == rows, "96 MiB .npy streams through", err)
    check(rc == 0 and 0 < info["maxrss"] < 40 * 1024, "96 MiB .npy: peak RSS < 40 MiB",
          f"{info.get('maxrss')} KiB", f" ({info.get('maxrss')} KiB)")
    os.remove(p)


# ------------------------------------------------------- folders of tensors


def folder_cases(m, a):
    d = fresh("flat")
    np.save(os.path.join(d, "000.npy"), a[0])          # one sample
    np.save(os.path.join(d, "001.npy"), a[1:3])        # a batch of 2
    np.save(os.path.join(d, "002.npy"), a[3:4])        # a batch of 1
    np.save(os.path.join(d, "010.npy"), a[4:7])        # a batch of 3
    np.save(os.path.join(d, ".hidden.npy"), a[0, :1])  # ignored: hidden
    with open(os.path.join(d, "README.txt"), "w") as f:
        f.write("ignored\n")
    expect_batches("folder of .npy (samples and batches), batch 3", m, d,
                   ["--batch-size", "3"], split(a[:7], 3), total=7)
    expect_batches("folder of .npy, --samples 5", m, d, ["--batch-size", "2", "--samples", "5"],
                   split(a[:5], 2), total=5)
    rc, info, _, _ = run(m, d, ["--batch-size", "3"], save=False)
    check(rc == 0 and info["files"] == [os.path.join(d, "001.npy"), os.path.join(d, "010.npy"),
                                        os.path.join(d, "010.npy")],
          "current file: the file of each batch's last sample", str(info["files"]))

    d = fresh("pbs")
    save_pb(os.path.join(d, "a.pb"), a[0:2], "x")
    save_pb(os.path.join(d, "b.pb"), a[2])
    save_pb(os.path.join(d, "c.pb"), a[3:6])
    expect_batches("folder of .pb, batch 4 (total unknown: 0)", m, d, ["--batch-size", "4"],
                   split(a[:6], 4), total=0)
    expect_batches("single .pb file", m, os.path.join(d, "c.pb"), ["--batch-size", "2"],
                   split(a[3:6], 2), total=0)
    bad = a[0:2].copy()
    bad[1, 2, 0, 4] = -np.inf
    save_pb(os.path.join(d, "d.pb"), bad)
    expect_error("-Inf in a .pb batch", m, d, ["--batch-size", "4"], os.path.join(d, "d.pb"),
                 "-Inf at index [1,2,0,4]", "'x'")
    os.remove(os.path.join(d, "d.pb"))
    save_pb(os.path.join(d, "d.pb"), a[0:2, :2])
    expect_error("wrong shape in a .pb", m, d, [], os.path.join(d, "d.pb"), "[N,3,4,5]",
                 "[2,2,4,5]")

    # symbolic length: batches end early where the sample shape changes
    ms = make_model("seq", [("tok", F, ["batch", "len"])])
    d = fresh("seq")
    s5 = RNG.standard_normal((5, 5)).astype(np.float32)
    s7 = RNG.standard_normal((5, 7)).astype(np.float32)
    np.save(os.path.join(d, "a.npy"), s5[:2])
    np.save(os.path.join(d, "b.npy"), s5[2:])
    np.save(os.path.join(d, "c.npy"), s7[0])
    np.save(os.path.join(d, "d.npy"), s7[1:])
    expect_batches("symbolic dim: a batch ends where the shape changes", ms, d,
                   ["--batch-size", "4"], [[s5[:4]], [s5[4:]], [s7[:4]], [s7[4:]]], total=10)
    np.save(os.path.join(d, "e.npy"), s7[None])
    expect_error("symbolic dims shown in the message", ms, d, [], os.path.join(d, "e.npy"),
                 "[batch,len] (a batch) or [len] (one sample)", "[1,5,7]")

    d = fresh("empty")
    expect_error("empty folder", m, d, [], d, "empty")
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("x")
    expect_error("folder without data files", m, d, [], d, "no .npy, .pb, .png")
    np.save(os.path.join(d, "a.npy"), a[0])
    os.makedirs(os.path.join(d, "sub"))
    expect_error("files and sub-folders: ambiguous", m, d, [], d, "ambiguous")
    expect_error("missing path", m, os.path.join(d, "nope"), [], "nope", "No such file")
    expect_error("not a data file", m, os.path.join(d, "notes.txt"), [], "notes.txt",
                 "not a .npy")
    trunc = os.path.join(d, "trunc.npy")
    np.save(trunc, a)
    with open(trunc, "r+b") as f:
        f.truncate(os.path.getsize(trunc) - 7)
    expect_error("truncated .npy (found at open)", m, trunc, [], trunc, "truncated")


def multi_input_cases():
    mm = make_model("xy", [("x", F, ["N", 3]), ("y", TensorProto.INT64, ["N", 2, 2])])
    x = RNG.standard_normal((6, 3)).astype(np.float32)
    y = RNG.integers(0, 100, (6, 2, 2)).astype(np.int64)
    exp = [[x[i:i + 4], y[i:i + 4]] for i in (0, 4)]

    d = fresh("per_input")
    os.makedirs(os.path.join(d, "x"))
    os.makedirs(os.path.join(d, "y"))
    np.save(os.path.join(d, "x", "0.npy"), x[0])
    np.save(os.path.join(d, "x", "1.npy"), x[1:4])
    np.save(os.path.join(d, "x", "2.npy"), x[4:])
    np.save(os.path.join(d, "y", "a.npy"), y[0:1])
    save_pb(os.path.join(d, "y", "b.pb"), y[1:4])
    np.save(os.path.join(d, "y", "c.npy"), y[4:])
    expect_batches("per-input sub-folders (npy and pb)", mm, d, ["--batch-size", "4"], exp,
                   total=0)
    np.save(os.path.join(d, "y", "c.npy"), y[4:5])
    expect_error("per-input: paired files hold different sample counts", mm, d, [],
                 os.path.join(d, "x", "2.npy"), os.path.join(d, "y", "c.npy"), "2 samples",
                 "has 1")
    np.save(os.path.join(d, "y", "d.npy"), y[5:])
    expect_error("per-input: different file counts", mm, d, [], "'x' has 3 files",
                 "'y' has 4")
    shutil.rmtree(os.path.join(d, "y"))
    expect_error("per-input: a sub-folder is missing", mm, d, [], "no sub-folder for input 'y'")
    os.makedirs(os.path.join(d, "y"))
    os.makedirs(os.path.join(d, "z"))
    expect_error("per-input: a sub-folder names no input", mm, d, [],
                 os.path.join(d, "z"), "names no model input")

    d = fresh("per_sample")
    for i in range(3):
        s = os.path.join(d, f"test_data_set_{i}")
        os.makedirs(s)
        sl = slice(2 * i, 2 * i + 2)
        save_pb(os.path.join(s, "input_0.pb"), x[sl], "x")
        save_pb(os.path.join(s, "input_1.pb"), y[sl], "y")
        save_pb(os.path.join(s, "output_0.pb"), x[sl])
    expect_batches("ONNX test data layout (input_K.pb, output_K.pb ignored)", mm, d,
                   ["--batch-size", "4"], exp)
    expect_batches("one test_data_set_N folder given directly: one sample folder", mm,
                   os.path.join(d, "test_data_set_1"), ["--batch-size", "4"], [[x[2:4], y[2:4]]])
    os.remove(os.path.join(d, "test_data_set_1", "input_1.pb"))
    expect_error("a test_data_set_N folder without input_1", mm,
                 os.path.join(d, "test_data_set_1"), [], "no file for input 'y'")
    d = fresh("per_sample_names")
    for i in range(6):
        s = os.path.join(d, f"s{i:02d}")
        os.makedirs(s)
        np.save(os.path.join(s, "y.npy"), y[i])
        np.save(os.path.join(s, "x.npy"), x[i])
    expect_batches("per-sample folders with NAME.npy", mm, d, ["--batch-size", "4"], exp,
                   total=6)
    np.save(os.path.join(d, "s03", "input_0.npy"), x[3])
    expect_error("per-sample: two files for one input", mm, d, [], os.path.join(d, "s03"),
                 "x.npy", "input_0.npy", "'x'")
    os.remove(os.path.join(d, "s03", "input_0.npy"))
    np.save(os.path.join(d, "s04", "zz.npy"), x[3])
    expect_error("per-sample: a file naming no input", mm, d, [],
                 os.path.join(d, "s04", "zz.npy"), "names no model input")
    os.remove(os.path.join(d, "s04", "zz.npy"))
    os.remove(os.path.join(d, "s05", "y.npy"))
    expect_error("per-sample: an input's file is missing", mm, d, [], os.path.join(d, "s05"),
                 "no file for input 'y'")
    np.save(os.path.join(d, "s05", "y.npy"), y[5].astype(np.int32))
    expect_error("per-sample: wrong dtype", mm, d, [], os.path.join(d, "s05", "y.npy"),
                 "'y'", "int64", "int32")
    expect_error("one file for a two-input model", mm, os.path.join(d, "s00", "x.npy"), [],
                 "feeds one model input", "'x', 'y'")

    for rel in ("node/test_add", "pytorch-converted/test_Conv2d"):
        base = os.path.join(T.TESTDATA, rel)
        model = onnx.load(os.path.join(base, "model.onnx"))
        inits = {t.name for t in model.graph.initializer}
        names = [i.name for i in model.graph.input if i.name not in inits]
        ref = [numpy_helper.to_array(onnx.load_tensor(
            os.path.join(base, "test_data_set_0", f"input_{k}.pb"))) for k in range(len(names))]
        got = expect_batches(f"ONNX backend test data {rel}", os.path.join(base, "model.onnx"),
                             base, [], [ref])
        got = expect_batches(f"ONNX backend test data {rel}/test_data_set_0",
                             os.path.join(base, "model.onnx"),
                             os.path.join(base, "test_data_set_0"), [], [ref])
        del got


def npy_header_cases(m, a):
    """.npy headers are read (and checked) without the data, at open."""
    d = fresh("npy_headers")
    p = os.path.join(d, "bad.npy")
    with open(p, "wb") as f:
        f.write(b"not an npy file at all")
    expect_error(".npy with a bad magic", m, p, [], p, "not a .npy file")
    np.save(p, a)
    with open(p, "ab") as f:
        f.write(b"xyz")
    expect_error(".npy with trailing bytes", m, p, [], p, "3 trailing bytes")
    np.save(p, a)
    with open(p, "rb") as f:
        raw = f.read()
    with open(p, "wb") as f:
        f.write(raw[:8] + struct.pack("<H", 60000) + raw[10:])
    expect_error(".npy header longer than the file", m, p, [], p, "goes past the end")
    np.save(p, np.asfortranarray(a[:2]))
    expect_error("fortran-order .npy", m, p, [], p, "fortran_order")


def option_cases():
    m = make_model("opt", [("x", F, ["N", 3])])
    p = os.path.join(T.WORK, "models", "opt.npy")
    np.save(p, np.zeros((2, 3), np.float32))
    for key, value, part in [("resize", "0", "--resize 0"), ("resize", "10x", "--resize 10x"),
                             ("crop", "-3", "--crop -3"), ("mean", "1,2", "--mean 1,2"),
                             ("std", "0", "greater than 0"), ("std", "1,0,1", "greater than 0"),
                             ("layout", "chw", "nchw"), ("color", "rgba", "gray"),
                             ("batch-size", "0", "positive"), ("samples", "-1", "--samples -1"),
                             ("scale", "-1", "positive"), ("scale", "1/0", "1/N"),
                             ("mean", "nan", "--mean nan"), ("colour", "rgb", "unknown")]:
        expect_error(f"option --{key} {value}", m, p, [f"--{key}", value], part)


def main():
    T.init(sys.argv)
    m, a = npy_file_cases()
    npy_header_cases(m, a)
    npy_streaming_case(m)
    folder_cases(m, a)
    multi_input_cases()
    option_cases()
    return T.summary()


if __name__ == "__main__":
    sys.exit(main())
