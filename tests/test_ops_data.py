#!/usr/bin/python3
"""Tests of the shape and data-movement operators (Transpose, Slice, Pad,
Tile, Expand, Gather, GatherElements, Concat, Split, DepthToSpace,
SpaceToDepth, Reshape, Squeeze, Unsqueeze, Flatten, Shape, Size, Cast,
ConstantOfShape, Range) beyond the ONNX backend cases: every fixed-size
dtype, random shapes, negative steps and pads, shapes large enough for the
tiled and multi-threaded paths, and parameters given both as initializers
(known when the plan is built) and as graph inputs (known only at run time).

Usage: test_ops_data.py PATH_TO_ONNXQ

Models are built with onnx.helper and run with `onnxq run`; expected values
come from numpy (np.transpose, slicing, np.pad, np.tile, np.take...), never
from onnxq's own output.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from optestlib import NP2ONNX, run_graph

EXE = os.path.abspath(sys.argv[1])
rng = np.random.default_rng(1234)
passed = 0
failed = 0

DTYPES = list(NP2ONNX)


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s" % what + ("\n      %s" % detail if detail else ""), file=sys.stderr)
    return cond


def rand(shape, dt):
    dt = np.dtype(dt)
    if dt == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dt.kind == "f":
        return rng.standard_normal(size=shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, dtype=dt)


def run(nodes, inputs, inits=None, opset=13, out_names=None):
    """Runs one graph; inputs and inits map names to arrays. Returns the
    outputs (dict) or the error text."""
    out_names = out_names or [o for n in nodes for o in n.output if o]
    return run_graph(EXE, nodes, inputs, inits or {}, opset, out_names)


def expect(what, res, refs):
    """refs: output name -> expected array (dtype and shape must match)."""
    if isinstance(res, str):
        return check(False, what, res)
    for k, ref in refs.items():
        got = res[k]
        ok = got.dtype == ref.dtype and got.shape == ref.shape and np.array_equal(
            got, ref, equal_nan=ref.dtype.kind == "f")
        if not check(ok, "%s: output %s" % (what, k),
                     "got %s %s, expected %s %s\n%s\n%s" % (got.dtype, got.shape, ref.dtype,
                                                           ref.shape, got.ravel()[:16],
                                                           ref.ravel()[:16])):
            return False
    return True


def i64(v):
    return np.array(v, dtype=np.int64)


# ---- Transpose ----

def test_transpose():
    cases = [((2, 3), None), ((1, 64, 56, 56), (0, 2, 3, 1)), ((1, 56, 56, 64), (0, 3, 1, 2)),
             ((3, 1000, 37), (1, 0, 2)), ((5, 7, 9, 11, 2), (4, 2, 0, 3, 1)),
             ((33, 65), (1, 0)), ((2, 1, 3, 1), (3, 1, 0, 2)), ((0, 3), (1, 0))]
    for _ in range(12):
        r = int(rng.integers(1, 6))
        cases.append((tuple(int(d) for d in rng.integers(1, 6, size=r)),
                      tuple(int(p) for p in rng.permutation(r))))
    for k, (shape, perm) in enumerate(cases):
        dt = DTYPES[k % len(DTYPES)]
        x = rand(shape, dt)
        attrs = {} if perm is None else {"perm": list(perm)}
        res = run([helper.make_node("Transpose", ["x"], ["y"], **attrs)], {"x": x})
        expect("Transpose %s perm %s %s" % (shape, perm, dt), res, {"y": np.transpose(x, perm)})


# ---- Slice ----

def slice_case(x, starts, ends, axes, steps, dynamic):
    names = ["x", "starts", "ends"] + (["axes"] if axes is not None else [""]) + \
            (["steps"] if steps is not None else [])
    while names and names[-1] == "":
        names.pop()
    params = {"starts": i64(starts), "ends": i64(ends)}
    if axes is not None:
        params["axes"] = i64(axes)
    if steps is not None:
        params["steps"] = i64(steps)
    inputs = {"x": x}
    inits = {}
    (inputs if dynamic else inits).update(params)
    return run([helper.make_node("Slice", names, ["y"])], inputs, inits)


def test_slice():
    big = np.iinfo(np.int64).max
    for k in range(40):
        dt = DTYPES[k % len(DTYPES)]
        r = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(1, 7, size=r))
        x = rand(shape, dt)
        n = int(rng.integers(1, r + 1))
        axes = [int(a) for a in rng.permutation(r)[:n]]
        axes = [a - r if rng.integers(0, 2) else a for a in axes]
        starts, ends, steps, sl = [], [], [], [slice(None)] * r
        for a in axes:
            d = shape[a]
            step = int(rng.choice([1, 2, 3, -1, -2]))
            s = int(rng.integers(-d - 3, d + 3))
            e = int(rng.choice([rng.integers(-d - 3, d + 3), big, -big - 1]))
            starts.append(s)
            ends.append(e)
            steps.append(step)
            # The spec clamps a start before the beginning to 0 when stepping
            # backwards (numpy would select nothing): element 0 is selected.
            sl[a] = slice(0 if step < 0 and s < -d else s, e, step)
        ref = x[tuple(sl)]
        res = slice_case(x, starts, ends, axes, steps, dynamic=bool(k % 2))
        expect("Slice %s starts %s ends %s axes %s steps %s" % (shape, starts, ends, axes, steps),
               res, {"y": np.ascontiguousarray(ref)})
    x = rand((4, 300, 200), np.float32)
    expect("Slice big", slice_case(x, [1, 3], [4, -2], [1, 2], [1, 1], False),
           {"y": np.ascontiguousarray(x[:, 1:4, 3:-2])})
    x = rand((3, 4), np.int64)
    res = run([helper.make_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[1000, 3])],
              {"x": x}, opset=9)
    expect("Slice-1 attributes", res, {"y": x[1:1000, -3:3]})


# ---- Pad ----

def pad_ref(x, pads, mode, value):
    r = x.ndim
    pos = [(max(pads[i], 0), max(pads[i + r], 0)) for i in range(r)]
    kw = {"constant_values": value} if mode == "constant" else {}
    y = np.pad(x, pos, mode=mode, **kw)
    sl = tuple(slice(-min(pads[i], 0), y.shape[i] + min(pads[i + r], 0)) for i in range(r))
    return np.ascontiguousarray(y[sl])


def test_pad():
    for k in range(36):
        dt = DTYPES[k % len(DTYPES)]
        mode = ["constant", "reflect", "edge", "wrap"][k % 4]
        r = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(2 if mode == "reflect" else 1, 6, size=r))
        x = rand(shape, dt)
        lim = [d - 1 if mode == "reflect" else d for d in shape] * 2
        pads = [int(rng.integers(-1 if shape[i % r] > 1 else 0, lim[i] + 1)) for i in range(2 * r)]
        value = rand((), dt)
        inputs, inits = {"x": x}, {}
        (inputs if k % 3 == 0 else inits)["pads"] = i64(pads)
        names = ["x", "pads"]
        if mode == "constant":
            inits["value"] = value
            names.append("value")
        opset = 19 if mode == "wrap" else 13
        res = run([helper.make_node("Pad", names, ["y"], mode=mode)], inputs, inits, opset=opset)
        ref = pad_ref(x, pads, mode, value if mode == "constant" else 0)
        expect("Pad %s %s pads %s %s" % (mode, shape, pads, dt), res, {"y": ref})
    x = rand((2, 3, 4), np.float32)
    res = run([helper.make_node("Pad", ["x", "pads", "", "axes"], ["y"], mode="reflect")],
              {"x": x}, {"pads": i64([1, 2, 0, 1]), "axes": i64([-1, 1])}, opset=18)
    expect("Pad-18 axes", res, {"y": np.pad(x, [(0, 0), (2, 1), (1, 0)], mode="reflect")})
    res = run([helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 1, 0, 0, 2], value=1.5)],
              {"x": x}, opset=2)
    expect("Pad-2 attributes", res,
           {"y": np.pad(x, [(0, 0), (1, 0), (1, 2)], constant_values=1.5)})
    x = rand((1, 32, 64, 64), np.float32)
    res = run([helper.make_node("Pad", ["x", "pads"], ["y"], mode="edge")], {"x": x},
              {"pads": i64([0, 0, 3, 2, 0, 0, 1, 4])})
    expect("Pad big edge", res, {"y": np.pad(x, [(0, 0), (0, 0), (3, 1), (2, 4)], mode="edge")})


# ---- Tile / Expand ----

def test_tile_expand():
    for k in range(16):
        dt = DTYPES[k % len(DTYPES)]
        r = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(1, 5, size=r))
        reps = [int(v) for v in rng.integers(0 if k == 3 else 1, 4, size=r)]
        x = rand(shape, dt)
        inputs, inits = {"x": x}, {}
        (inputs if k % 2 else inits)["reps"] = i64(reps)
        res = run([helper.make_node("Tile", ["x", "reps"], ["y"])], inputs, inits)
        expect("Tile %s reps %s %s" % (shape, reps, dt), res, {"y": np.tile(x, reps)})
    for k in range(16):
        dt = DTYPES[k % len(DTYPES)]
        r = int(rng.integers(1, 5))
        shape = [int(d) for d in rng.integers(1, 4, size=r)]
        target = [int(rng.integers(1, 4)) if d == 1 else d for d in shape]
        target = [int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 2)))] + target
        x_shape = [1 if rng.integers(0, 3) == 0 else d for d in shape]
        tgt = [1 if (i >= len(target) - len(shape) and rng.integers(0, 4) == 0) else d
               for i, d in enumerate(target)]
        x = rand(x_shape, dt)
        inputs, inits = {"x": x}, {}
        (inputs if k % 2 else inits)["shape"] = i64(tgt)
        res = run([helper.make_node("Expand", ["x", "shape"], ["y"])], inputs, inits)
        ref = np.ascontiguousarray(np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(tgt))))
        expect("Expand %s to %s %s" % (x_shape, tgt, dt), res, {"y": ref})


# ---- Gather / GatherElements ----

def test_gather():
    for k in range(16):
        dt = DTYPES[k % len(DTYPES)]
        r = int(rng.integers(1, 4))
        shape = tuple(int(d) for d in rng.integers(1, 6, size=r))
        axis = int(rng.integers(-r, r))
        d = shape[axis]
        ishape = tuple(int(v) for v in rng.integers(1, 4, size=int(rng.integers(0, 3))))
        idx = rng.integers(-d, d, size=ishape).astype(np.int64 if k % 2 else np.int32)
        x = rand(shape, dt)
        res = run([helper.make_node("Gather", ["x", "i"], ["y"], axis=axis)], {"x": x, "i": idx})
        expect("Gather %s axis %d idx %s %s" % (shape, axis, ishape, dt), res,
               {"y": np.take(x, idx, axis=axis)})
        ishape = [int(rng.integers(1, v + 1)) for v in shape]
        ishape[axis] = int(rng.integers(1, 5))
        idx = rng.integers(-d, d, size=ishape).astype(np.int64)
        res = run([helper.make_node("GatherElements", ["x", "i"], ["y"], axis=axis)],
                  {"x": x, "i": idx})
        sub = x[tuple(slice(None) if i == axis % r else slice(0, ishape[i]) for i in range(r))]
        ref = np.take_along_axis(sub, np.where(idx < 0, idx + d, idx), axis=axis)
        expect("GatherElements %s axis %d idx %s %s" % (shape, axis, ishape, dt), res, {"y": ref})
    x = rand((3, 4), np.float32)
    res = run([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], {"x": x},
              {"i": i64([0, 4])})
    check(isinstance(res, str) and "out of range" in res, "Gather rejects index 4 of 4", str(res))


# ---- Concat / Split ----

def test_concat_split():
    for k in range(16):
        dt = DTYPES[k % len(DTYPES)]
        r = int(rng.integers(1, 5))
        shape = [int(d) for d in rng.integers(1, 5, size=r)]
        axis = int(rng.integers(-r, r))
        xs = []
        for j in range(int(rng.integers(1, 5))):
            s = list(shape)
            s[axis] = int(rng.integers(0, 4))
            xs.append(rand(s, dt))
        names = ["x%d" % j for j in range(len(xs))]
        res = run([helper.make_node("Concat", names, ["y"], axis=axis)], dict(zip(names, xs)))
        expect("Concat axis %d of %s %s" % (axis, [a.shape for a in xs], dt), res,
               {"y": np.concatenate(xs, axis=axis)})
        x = np.concatenate(xs, axis=axis)
        sizes = [a.shape[axis] for a in xs]
        outs = ["y%d" % j for j in range(len(xs))]
        inputs, inits = {"x": x}, {"split": i64(sizes)}
        res = run([helper.make_node("Split", ["x", "split"], outs, axis=axis)], inputs, inits)
        expect("Split axis %d into %s %s" % (axis, sizes, dt), res, dict(zip(outs, xs)))
    x = rand((2, 7, 3), np.float32)
    res = run([helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3)],
              {"x": x}, opset=18)
    expect("Split-18 num_outputs 7 into 3", res,
           {"a": x[:, 0:3], "b": x[:, 3:6], "c": x[:, 6:7]})
    res = run([helper.make_node("Split", ["x"], ["a", "b"], axis=1, split=[2, 5])],
              {"x": x}, opset=11)
    expect("Split-11 attribute", res, {"a": x[:, :2], "b": x[:, 2:]})
    x = rand((4, 1000, 64), np.float32)
    res = run([helper.make_node("Concat", ["x", "x"], ["y"], axis=1)], {"x": x})
    expect("Concat big", res, {"y": np.concatenate([x, x], axis=1)})


# ---- DepthToSpace / SpaceToDepth ----

def test_depth_space():
    for k, dt in enumerate(DTYPES):
        b = 2 + k % 2
        n, c, h, w = 2, 3 * b * b, 3, 4
        x = rand((n, c, h, w), dt)
        dcr = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        crd = x.reshape(n, c // (b * b), b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        shape = (n, c // (b * b), h * b, w * b)
        res = run([helper.make_node("DepthToSpace", ["x"], ["d"], blocksize=b, mode="DCR"),
                   helper.make_node("DepthToSpace", ["x"], ["c"], blocksize=b, mode="CRD")],
                  {"x": x})
        expect("DepthToSpace b=%d %s" % (b, dt), res,
               {"d": dcr.reshape(shape), "c": crd.reshape(shape)})
        y = rand((n, 3, h * b, w * b), dt)
        ref = y.reshape(n, 3, h, b, w, b).transpose(0, 3, 5, 1, 2, 4).reshape(n, 3 * b * b, h, w)
        res = run([helper.make_node("SpaceToDepth", ["y"], ["s"], blocksize=b)], {"y": y})
        expect("SpaceToDepth b=%d %s" % (b, dt), res, {"s": ref})


# ---- views: Reshape, Squeeze, Unsqueeze, Flatten; Shape, Size ----

def test_views():
    x = rand((2, 3, 1, 4), np.float32)
    cases = [([0, -1], False, (2, 12)), ([4, 0, -1], False, (4, 3, 2)),
             ([-1], False, (24,)), ([2, 3, 4], False, (2, 3, 4))]
    for shape, allowzero, ref_shape in cases:
        for dynamic in (False, True):
            inputs, inits = {"x": x}, {}
            (inputs if dynamic else inits)["s"] = i64(shape)
            res = run([helper.make_node("Reshape", ["x", "s"], ["y"])], inputs, inits, opset=14)
            expect("Reshape to %s dynamic=%s" % (shape, dynamic), res,
                   {"y": x.reshape(ref_shape)})
    z = rand((0, 3), np.float32)
    res = run([helper.make_node("Reshape", ["z", "s"], ["y"], allowzero=1)], {"z": z},
              {"s": i64([3, 0])}, opset=14)
    expect("Reshape allowzero", res, {"y": z.reshape(3, 0)})
    nodes = [helper.make_node("Squeeze", ["x", "a2"], ["sq"]),
             helper.make_node("Squeeze", ["x"], ["sq_all"]),
             helper.make_node("Unsqueeze", ["x", "au"], ["uq"]),
             helper.make_node("Flatten", ["x"], ["fl"], axis=-2),
             helper.make_node("Flatten", ["x"], ["fl0"], axis=0),
             helper.make_node("Shape", ["x"], ["sh"], start=-3, end=-1),
             helper.make_node("Shape", ["x"], ["sh_all"]),
             helper.make_node("Size", ["x"], ["sz"])]
    res = run(nodes, {"x": x}, {"a2": i64([-2]), "au": i64([0, -1, 3])}, opset=15)
    expect("views", res, {"sq": x.reshape(2, 3, 4), "sq_all": x.reshape(2, 3, 4),
                          "uq": x.reshape(1, 2, 3, 1, 1, 4, 1), "fl": x.reshape(6, 4),
                          "fl0": x.reshape(1, 24), "sh": i64([3, 1]),
                          "sh_all": i64([2, 3, 1, 4]), "sz": np.array(24, dtype=np.int64)})


def test_dynamic_alias():
    """A Reshape whose shape is known only at run time (a graph input) aliases
    an arena buffer; later steps must not overwrite it while it is read."""
    x = rand((4, 6), np.float32)
    t = rand((6, 4), np.float32)
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Reshape", ["a", "s"], ["r"]),
             helper.make_node("Neg", ["t"], ["b"]),
             helper.make_node("Neg", ["b"], ["c"]),
             helper.make_node("Add", ["r", "c"], ["y"])]
    res = run(nodes, {"x": x, "t": t, "s": i64([6, 4])}, out_names=["y"])
    expect("dynamic Reshape alias stays live", res,
           {"y": np.maximum(x, 0).reshape(6, 4) + t})
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Shape", ["t"], ["s"]),
             helper.make_node("Reshape", ["a", "s"], ["r"]),
             helper.make_node("Neg", ["t"], ["b"]),
             helper.make_node("Neg", ["b"], ["c"]),
             helper.make_node("Add", ["r", "c"], ["y"])]
    res = run(nodes, {"x": x, "t": t}, out_names=["y"])
    expect("Reshape to Shape(t)", res, {"y": np.maximum(x, 0).reshape(6, 4) + t})


# ---- Cast, ConstantOfShape, Range ----

def test_cast():
    vals = np.array([0, 1, -1, 2.75, -2.75, 100.5, -100.5, 127, -128, 200, 0.25], np.float64)
    for src in DTYPES:
        for dst in DTYPES:
            if np.dtype(src).kind in "ub" or np.dtype(dst).kind in "ub":
                v = np.abs(vals)
            else:
                v = vals
            x = v.astype(src)
            if np.dtype(dst).kind in "iu":
                info = np.iinfo(dst)
                x = x[(x.astype(np.float64) >= info.min) & (x.astype(np.float64) <= info.max)]
            res = run([helper.make_node("Cast", ["x"], ["y"], to=NP2ONNX[np.dtype(dst)])],
                      {"x": x})
            expect("Cast %s -> %s" % (np.dtype(src), np.dtype(dst)), res, {"y": x.astype(dst)})
    # Saturation and NaN (the documented choice; the spec leaves them undefined).
    x = np.array([300.7, -300.7, np.nan, 1e30, -1e30], np.float32)
    res = run([helper.make_node("Cast", ["x"], ["a"], to=TensorProto.INT8),
               helper.make_node("Cast", ["x"], ["b"], to=TensorProto.UINT8),
               helper.make_node("Cast", ["x"], ["c"], to=TensorProto.INT64)], {"x": x})
    i64max, i64min = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    expect("Cast saturates", res, {"a": np.array([127, -128, 0, 127, -128], np.int8),
                                   "b": np.array([255, 0, 0, 255, 0], np.uint8),
                                   "c": np.array([300, -300, 0, i64max, i64min], np.int64)})
    x = rng.standard_normal(5000).astype(np.float64) * 1000
    res = run([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT16)], {"x": x})
    expect("Cast double -> float16 (single rounding)", res, {"y": x.astype(np.float16)})
    x = np.array([1.2, -3.5], np.float32)
    res = run([helper.make_node("Cast", ["x"], ["y"], to="INT32")], {"x": x}, opset=5)
    expect("Cast-1 type name", res, {"y": np.array([1, -3], np.int32)})


def test_generators():
    for dt, val in [(np.float32, 1.5), (np.int64, 7), (np.int8, -3), (np.bool_, True)]:
        value = numpy_helper.from_array(np.array([val], dtype=dt), "v")
        for dynamic in (False, True):
            inputs, inits = {}, {}
            (inputs if dynamic else inits)["s"] = i64([2, 3])
            if not inputs:
                inputs["dummy"] = np.zeros(1, np.float32)
            res = run([helper.make_node("ConstantOfShape", ["s"], ["y"], value=value)], inputs,
                      inits, out_names=["y"])
            expect("ConstantOfShape %s dynamic=%s" % (np.dtype(dt), dynamic), res,
                   {"y": np.full((2, 3), val, dtype=dt)})
    for dt, (s, l, d) in [(np.int32, (10, -7, -3)), (np.int64, (0, 10, 3)),
                          (np.int16, (5, 5, 1)), (np.float32, (0.5, 3.0, 0.75)),
                          (np.float64, (3.0, -1.0, -0.5))]:
        res = run([helper.make_node("Range", ["s", "l", "d"], ["y"])],
                  {"s": np.array(s, dt), "l": np.array(l, dt), "d": np.array(d, dt)})
        expect("Range %s %s" % (np.dtype(dt), (s, l, d)), res,
               {"y": np.arange(s, l, d, dtype=dt)})


for t in [test_transpose, test_slice, test_pad, test_tile_expand, test_gather,
          test_concat_split, test_depth_space, test_views, test_dynamic_alias, test_cast,
          test_generators]:
    t()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
