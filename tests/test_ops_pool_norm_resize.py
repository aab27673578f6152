#!/usr/bin/python3
"""Tests of the pool, norm and resize operator families beyond the ONNX
backend cases: MaxPool/AveragePool in 1-D, 2-D and 3-D with pads, strides,
dilations, ceil_mode, auto_pad, count_include_pad and the Indices output
(both storage orders), on float, uint8 and int8; the global pools;
BatchNormalization (per channel and per activation), InstanceNormalization,
LayerNormalization (every axis, broadcast Scale/B, the Mean and InvStdDev
outputs), LpNormalization (p 1 and 2, zero vectors); Resize in every mode,
coordinate transform and nearest mode, with scales or sizes, axes and
keep_aspect_ratio_policy (opset 18), half_pixel_symmetric (opset 19), the
opset-10 form and Upsample (opsets 7 and 9), parameters as initializers and
as graph inputs.

Usage: test_ops_pool_norm_resize.py PATH_TO_ONNXQ

Models are built with onnx.helper and run with `onnxq run`; expected values
come from the straightforward numpy implementations below (written from the
ONNX spec; their semantics were checked against onnxruntime when they were
written), never from onnxq's own output.
"""
import itertools
import os
import sys

import numpy as np
from onnx import helper

from optestlib import run_graph

EXE = os.path.abspath(sys.argv[1])
rng = np.random.default_rng(4321)
passed = 0
failed = 0
f32 = np.float32


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s" % what + ("\n      %s" % detail if detail else ""), file=sys.stderr)
    return cond


def rand(shape, dt=np.float32):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return rng.standard_normal(size=shape).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dt)


def run(op, inputs, attrs, inits=None, opset=13, n_out=1, in_names=None):
    """One node; inputs/inits map names to arrays; in_names gives the node's
    input list ('' for omitted ones). Returns a list of outputs or the error."""
    inits = inits or {}
    outs = ["y%d" % i for i in range(n_out)]
    node = helper.make_node(op, in_names or list(inputs) + list(inits), outs, **attrs)
    res = run_graph(EXE, [node], inputs, inits, opset, outs)
    return res if isinstance(res, str) else [res[o] for o in outs]


def expect(what, res, refs, exact=False):
    if isinstance(res, str):
        return check(False, what, res)
    for k, (got, ref) in enumerate(zip(res, refs)):
        if got.dtype != ref.dtype or got.shape != ref.shape:
            return check(False, "%s: output %d" % (what, k), "got %s %s, expected %s %s" % (
                got.dtype, got.shape, ref.dtype, ref.shape))
        if exact or ref.dtype.kind != "f":
            ok = np.array_equal(got, ref)
        else:
            ok = np.allclose(got, ref, rtol=1e-4, atol=1e-5, equal_nan=True)
        if not check(ok, "%s: output %d" % (what, k), "got %s\n      expected %s" % (
                got.ravel()[:12], ref.ravel()[:12])):
            return False
    return True


# ---- pools ----

def pool_geometry(sp, kernel, strides, pads, dil, auto_pad, ceil):
    nd = len(kernel)
    out, pb, pe = [], [], []
    for i in range(nd):
        dk = (kernel[i] - 1) * dil[i] + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-sp[i] // strides[i])
            tot = max(0, (o - 1) * strides[i] + dk - sp[i])
            b = tot // 2 if auto_pad == "SAME_UPPER" else tot - tot // 2
            e = tot - b
        else:
            b, e = (pads[i], pads[i + nd]) if auto_pad == "NOTSET" else (0, 0)
            span = sp[i] + b + e - dk
            o = (-(-span // strides[i]) if ceil else span // strides[i]) + 1
            if ceil and (o - 1) * strides[i] >= sp[i] + b:
                o -= 1  # the last window must start inside the input or its left pad
        out.append(o)
        pb.append(b)
        pe.append(e)
    return out, pb, pe


def pool_ref(x, kind, kernel, strides=None, pads=None, dil=None, auto_pad="NOTSET", ceil=0,
             cip=0, order=0):
    nd = len(kernel)
    sp = x.shape[2:]
    strides, dil, pads = strides or [1] * nd, dil or [1] * nd, pads or [0] * (2 * nd)
    out, pb, pe = pool_geometry(sp, kernel, strides, pads, dil, auto_pad, ceil)
    y = np.zeros(x.shape[:2] + tuple(out), x.dtype)
    ind = np.zeros(y.shape, np.int64)
    plane = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2]) * int(np.prod(sp))
    for pos in itertools.product(*[range(o) for o in out]):
        taps, count_pad = [], 1
        for i in range(nd):
            t = [pos[i] * strides[i] - pb[i] + k * dil[i] for k in range(kernel[i])]
            taps.append([v for v in t if 0 <= v < sp[i]])
            count_pad *= sum(1 for v in t if v < sp[i] + pe[i])
        combos = list(itertools.product(*taps))
        vals = np.stack([x[(slice(None), slice(None)) + c] for c in combos], -1)
        at = (slice(None), slice(None)) + pos
        if kind == "max":
            y[at] = vals.max(-1)
            best = vals.argmax(-1)  # the first maximum in window order
            flat = np.array([np.ravel_multi_index(c, sp, order="F" if order else "C")
                             for c in combos])
            ind[at] = plane + flat[best]
        else:
            y[at] = (vals.astype(np.float64).sum(-1) / (count_pad if cip else len(combos)))
    return y, ind


def test_pools():
    k = 0
    for sp, kern in [((11,), [3]), ((9, 10), [3, 2]), ((6, 7, 8), [2, 3, 2])]:
        nd = len(sp)
        variants = [dict(), dict(strides=[2] * nd), dict(strides=[2] * nd, pads=[1] * 2 * nd),
                    dict(strides=[3] + [2] * (nd - 1), pads=[0] * nd + [1] * nd, ceil=1),
                    dict(strides=[2] * nd, pads=[1] * nd + [0] * nd, ceil=1),
                    dict(strides=[2] * nd, auto_pad="SAME_UPPER"),
                    dict(strides=[2] * nd, auto_pad="SAME_LOWER"),
                    dict(strides=[2] * nd, auto_pad="VALID", ceil=1),
                    dict(dil=[2] * nd, pads=[1] * 2 * nd, ceil=1)]
        for v in variants:
            for kind, extra in [("max", {}), ("avg", {}), ("avg", {"cip": 1})]:
                if kind == "avg" and "dil" in v:
                    continue
                k += 1
                x = rand((2, 3) + sp)
                a = dict(kernel_shape=kern, strides=v.get("strides", [1] * nd),
                         auto_pad=v.get("auto_pad", "NOTSET"), ceil_mode=v.get("ceil", 0))
                if "pads" in v:
                    a["pads"] = v["pads"]
                if "dil" in v:
                    a["dilations"] = v["dil"]
                if extra:
                    a["count_include_pad"] = 1
                y, _ = pool_ref(x, kind, kern, v.get("strides"), v.get("pads"), v.get("dil"),
                                v.get("auto_pad", "NOTSET"), v.get("ceil", 0), extra.get("cip", 0))
                op = "MaxPool" if kind == "max" else "AveragePool"
                expect("%s %s %s %s" % (op, sp, v, extra), run(op, {"x": x}, a, opset=12), [y],
                       exact=kind == "max")
    # Indices, both storage orders, every element type max pool takes
    for dt in [np.float32, np.uint8, np.int8]:
        for sp, kern in [((11,), [3]), ((9, 10), [3, 2]), ((6, 7, 8), [2, 3, 2])]:
            nd = len(sp)
            for order in [0, 1]:
                x = rand((2, 3) + sp, dt)
                a = dict(kernel_shape=kern, strides=[2] * nd, pads=[1] * 2 * nd,
                         storage_order=order, dilations=[1 + order] * nd)
                y, ind = pool_ref(x, "max", kern, [2] * nd, [1] * 2 * nd, [1 + order] * nd,
                                  order=order)
                expect("MaxPool+Indices %s %s order %d" % (dt.__name__, sp, order),
                       run("MaxPool", {"x": x}, a, opset=12, n_out=2), [y, ind])
                y, _ = pool_ref(x, "max", kern, [2] * nd, [1] * 2 * nd)
                expect("MaxPool %s %s" % (dt.__name__, sp),
                       run("MaxPool", {"x": x}, dict(kernel_shape=kern, strides=[2] * nd,
                                                     pads=[1] * 2 * nd), opset=12), [y])
    # AveragePool dilations (opset 19); older opsets; a large threaded case
    for cip in [0, 1]:
        x = rand((2, 3, 11, 12))
        y, _ = pool_ref(x, "avg", [3, 2], [2, 2], [1, 1, 1, 1], [2, 3], ceil=1, cip=cip)
        expect("AveragePool-19 dilations cip %d" % cip,
               run("AveragePool", {"x": x}, dict(kernel_shape=[3, 2], strides=[2, 2],
                                                 pads=[1, 1, 1, 1], dilations=[2, 3],
                                                 ceil_mode=1, count_include_pad=cip),
                   opset=19), [y])
    x = rand((2, 3, 9, 9))
    y, _ = pool_ref(x, "avg", [3, 3], [2, 2], [1, 1, 1, 1])
    expect("AveragePool-1", run("AveragePool", {"x": x}, dict(kernel_shape=[3, 3], strides=[2, 2],
                                                               pads=[1, 1, 1, 1]), opset=1), [y])
    y, _ = pool_ref(x, "max", [3, 3], [2, 2], [1, 1, 1, 1])
    expect("MaxPool-1", run("MaxPool", {"x": x}, dict(kernel_shape=[3, 3], strides=[2, 2],
                                                       pads=[1, 1, 1, 1]), opset=1), [y])
    x = rand((3, 40, 30, 30))
    for kind, op in [("max", "MaxPool"), ("avg", "AveragePool")]:
        y, _ = pool_ref(x, kind, [3, 3], [2, 2], [1, 1, 1, 1])
        expect("%s large" % op, run(op, {"x": x}, dict(kernel_shape=[3, 3], strides=[2, 2],
                                                         pads=[1, 1, 1, 1])), [y])
    for shape in [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 5), (2, 70, 33, 33)]:
        x = rand(shape)
        axes = tuple(range(2, len(shape)))
        expect("GlobalAveragePool %s" % (shape,), run("GlobalAveragePool", {"x": x}, {}),
               [x.mean(axis=axes, keepdims=True)])
        expect("GlobalMaxPool %s" % (shape,), run("GlobalMaxPool", {"x": x}, {}),
               [x.max(axis=axes, keepdims=True)], exact=True)
    x = rand((2, 3, 5))
    check(isinstance(run("MaxPool", {"x": x}, dict(kernel_shape=[7])), str),
          "MaxPool with a kernel larger than the input is refused")


# ---- normalisations ----

def test_norms():
    for shape in [(2, 3), (2, 3, 5), (2, 3, 4, 5), (1, 4, 2, 3, 4), (2, 16, 40, 40)]:
        c = shape[1]
        p = {"s": rand(c), "b": rand(c), "m": rand(c), "v": np.abs(rand(c)) + 0.1}
        bshape = (1, c) + (1,) * (len(shape) - 2)
        x = rand(shape)
        ref = ((x - p["m"].reshape(bshape)) / np.sqrt(p["v"].reshape(bshape) + f32(1e-3))
               * p["s"].reshape(bshape) + p["b"].reshape(bshape))
        for opset in [6, 7, 9, 15]:
            a = {"epsilon": 1e-3}
            expect("BatchNormalization-%d %s (initializers)" % (opset, shape),
                   run("BatchNormalization", {"x": x}, a, inits=p, opset=opset), [ref])
        expect("BatchNormalization %s (inputs)" % (shape,),
               run("BatchNormalization", dict(x=x, **p), {"epsilon": 1e-3}, opset=15), [ref])
        # InstanceNormalization
        axes = tuple(range(2, len(shape)))
        if axes:
            xm = x.astype(np.float64)
            mean = xm.mean(axis=axes, keepdims=True)
            var = ((xm - mean) ** 2).mean(axis=axes, keepdims=True)
            ref = ((xm - mean) / np.sqrt(var + 1e-4) * p["s"].reshape(bshape)
                   + p["b"].reshape(bshape)).astype(f32)
            for opset in [1, 6]:
                expect("InstanceNormalization-%d %s" % (opset, shape),
                       run("InstanceNormalization", {"x": x}, {"epsilon": 1e-4},
                           inits={"s": p["s"], "b": p["b"]}, opset=opset), [ref])
    # per-activation parameters (spatial = 0, opset 7)
    x = rand((2, 3, 4, 5))
    p = {"s": rand((3, 4, 5)), "b": rand((3, 4, 5)), "m": rand((3, 4, 5)),
         "v": np.abs(rand((3, 4, 5))) + 0.1}
    ref = (x - p["m"]) / np.sqrt(p["v"] + f32(1e-5)) * p["s"] + p["b"]
    expect("BatchNormalization-7 spatial 0", run("BatchNormalization", {"x": x}, {"spatial": 0},
                                                  inits=p, opset=7), [ref])
    check(isinstance(run("BatchNormalization", {"x": x}, {"training_mode": 1},
                         inits={k: rand(3) for k in "sbmv"}, opset=15), str),
          "BatchNormalization training mode is refused")
    # LayerNormalization
    for shape in [(6,), (2, 7), (2, 3, 5), (2, 3, 4, 5)]:
        r = len(shape)
        for axis in range(-r, r):
            a = axis % r
            norm = shape[a:]
            for sshape in [norm, norm[-1:], (1,) * len(norm)]:
                for with_b in [True, False]:
                    x = rand(shape) * 2 + 0.5
                    w = rand(sshape)
                    inits = {"w": w}
                    if with_b:
                        inits["b"] = rand(sshape)
                    xm = x.astype(np.float64)
                    ax = tuple(range(a, r))
                    mean = xm.mean(axis=ax, keepdims=True)
                    inv = 1 / np.sqrt(((xm - mean) ** 2).mean(axis=ax, keepdims=True) + 1e-3)
                    y = (xm - mean) * inv * w + (inits["b"] if with_b else 0)
                    expect("LayerNormalization %s axis %d scale %s bias %d" % (
                        shape, axis, sshape, with_b),
                        run("LayerNormalization", {"x": x}, {"axis": axis, "epsilon": 1e-3},
                            inits=inits, opset=17, n_out=3),
                        [y.astype(f32), mean.astype(f32), inv.astype(f32)])
    # LpNormalization (a zero vector gives zeros, as onnxruntime)
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]:
        r = len(shape)
        for axis in range(-r, r):
            for p in [1, 2]:
                x = rand(shape)
                if r >= 2:
                    x[0] = 0
                xm = x.astype(np.float64)
                n = (np.abs(xm).sum(axis=axis, keepdims=True) if p == 1 else
                     np.sqrt((xm * xm).sum(axis=axis, keepdims=True)))
                y = np.where(n == 0, 0, xm / np.where(n == 0, 1, n)).astype(f32)
                expect("LpNormalization %s axis %d p %d" % (shape, axis, p),
                       run("LpNormalization", {"x": x}, {"axis": axis, "p": p}, opset=1), [y])


# ---- resize ----

def coord(o, n_in, n_out, scale, length, ctm, roi=(0.0, 1.0)):
    """The spec's coordinate transforms, in float32 arithmetic (as onnxruntime;
    it decides the nearest pixel at exact ties). length: input * scale."""
    x, sc, lin, ln = f32(o), f32(scale), f32(n_in), f32(length)
    h = f32(0.5)
    if ctm == "half_pixel":
        return (x + h) / sc - h
    if ctm == "pytorch_half_pixel":
        return (x + h) / sc - h if n_out > 1 else f32(0)
    if ctm == "align_corners":
        return f32(0) if ln == 1 else x * (lin - f32(1)) / (ln - f32(1))
    if ctm == "asymmetric":
        return x / sc
    if ctm == "tf_half_pixel_for_nn":
        return (x + h) / sc
    if ctm == "tf_crop_and_resize":
        r0, r1 = f32(roi[0]), f32(roi[1])
        if ln > 1:
            return r0 * (lin - f32(1)) + x * (r1 - r0) * (lin - f32(1)) / (ln - f32(1))
        return f32(0.5 * float(r0 + r1) * float(lin - f32(1)))
    if ctm == "half_pixel_symmetric":
        off = lin / f32(2) * (f32(1) - f32(n_out) / ln)
        return f32(float(off) + (o + 0.5) / float(sc) - 0.5)
    raise ValueError(ctm)


def nearest(x, nm, scale):
    f = np.floor(x)
    if nm == "round_prefer_floor":
        return int(f) if x - f == 0.5 else int(np.floor(x + f32(0.5)))
    if nm == "round_prefer_ceil":
        return int(np.floor(x + f32(0.5)))
    if nm == "floor":
        return int(f)
    if nm == "ceil":
        return int(np.ceil(x))
    return int(np.ceil(x)) if scale < 1 else int(f)  # "simple": Resize-10, Upsample


def axis_matrix(n_in, n_out, scale, length, mode, ctm, nm, a, excl, roi):
    """Weights (n_out x n_in) and the outputs to extrapolate (tf_crop_and_resize)."""
    m = np.zeros((n_out, n_in))
    outside = np.zeros(n_out, bool)
    for o in range(n_out):
        x = coord(o, n_in, n_out, scale, length, ctm, roi)
        if ctm == "tf_crop_and_resize" and (x < 0 or x > n_in - 1):
            outside[o] = True
            continue
        if mode == "nearest":
            taps = [(nearest(x, nm, scale), 1.0)]
        else:
            f = float(np.floor(x))
            r = float(x) - f
            if mode == "linear":
                taps = [(int(f), 1 - r), (int(f) + 1, r)]
            else:
                c = [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
                     ((a + 2) * r - (a + 3)) * r * r + 1,
                     ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
                     ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a]
                taps = [(int(f) - 1 + t, c[t]) for t in range(4)]
                if excl:
                    taps = [(i, w if 0 <= i < n_in else 0.0) for i, w in taps]
                    s = sum(w for _, w in taps)
                    taps = [(i, w / s) for i, w in taps]
        for i, w in taps:
            m[o, min(max(i, 0), n_in - 1)] += w
    return m, outside


def resize_ref(x, mode="nearest", ctm="half_pixel", nm="round_prefer_floor", a=-0.75, excl=0,
               scales=None, sizes=None, axes=None, keep="stretch", roi=None, extrap=0.0):
    r = x.ndim
    axes = list(range(r)) if axes is None else [d % r for d in axes]
    info = {}
    if scales is not None:
        for d, s in zip(axes, scales):
            s = f32(s)
            info[d] = (int(np.floor(s * f32(x.shape[d]))), float(s), float(s * f32(x.shape[d])))
    else:
        ratios = [f32(z) / f32(x.shape[d]) for d, z in zip(axes, sizes)]
        common = min(ratios) if keep == "not_larger" else max(ratios)
        for d, z in zip(axes, sizes):
            if keep == "stretch":
                info[d] = (z, float(f32(z) / f32(x.shape[d])), float(z))
            else:
                info[d] = (int(np.floor(common * f32(x.shape[d]) + f32(0.5))), float(common),
                           float(common * f32(x.shape[d])))
    y = x.astype(np.float64) if mode != "nearest" else x
    mask = np.zeros(1, bool)
    for d in axes:
        n_out, scale, length = info[d]
        rr = (0.0, 1.0) if not roi else (roi[axes.index(d)], roi[len(axes) + axes.index(d)])
        m, outside = axis_matrix(x.shape[d], n_out, scale, length, mode, ctm, nm, a, excl, rr)
        if mode == "nearest":
            y = np.take(y, m.argmax(1), axis=d)
        else:
            y = np.moveaxis(np.tensordot(m, np.moveaxis(y, d, 0), axes=(1, 0)), 0, d)
        shape = [1] * r
        shape[d] = n_out
        mask = mask | outside.reshape(shape)
    y = y.astype(x.dtype)
    if ctm == "tf_crop_and_resize":
        y = np.where(np.broadcast_to(mask, y.shape), x.dtype.type(extrap), y)
    return y


def resize_case(what, x, opset=13, dynamic=False, **kw):
    attrs = {"mode": kw.get("mode", "nearest")}
    for key, name in [("ctm", "coordinate_transformation_mode"), ("nm", "nearest_mode"),
                      ("a", "cubic_coeff_a"), ("excl", "exclude_outside"), ("axes", "axes"),
                      ("keep", "keep_aspect_ratio_policy"), ("extrap", "extrapolation_value")]:
        if key in kw:
            attrs[name] = kw[key]
    params = {}
    if kw.get("roi") is not None:
        params["roi"] = np.array(kw["roi"], f32)
    if kw.get("scales") is not None:
        params["scales"] = np.array(kw["scales"], f32)
    else:
        params["sizes"] = np.array(kw["sizes"], np.int64)
    names = ["x", "roi" if "roi" in params else "", "scales" if "scales" in params else "",
             "sizes" if "sizes" in params else ""]
    while names[-1] == "":
        names.pop()
    inputs, inits = {"x": x}, {}
    (inputs if dynamic else inits).update(params)
    ref = resize_ref(x, **kw)
    expect(what, run("Resize", inputs, attrs, inits=inits, opset=opset, in_names=names), [ref],
           exact=kw.get("mode", "nearest") == "nearest")


def test_resize():
    ctms = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"]
    for shape in [(1, 2, 5, 7), (2, 3, 6)]:
        r = len(shape)
        pre = [1.0] * (r - 2)
        scale_sets = [pre + [2.0, 3.0], pre + [0.6, 0.8], pre + [1.7, 0.45]]
        size_sets = [list(shape[:-2]) + [shape[-2] * 2, shape[-1] + 3],
                     list(shape[:-2]) + [2, shape[-1] - 2], list(shape[:-2]) + [1, 1]]
        for ctm in ctms:
            for nm in ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]:
                for sc in scale_sets:
                    resize_case("Resize nearest %s %s scales %s" % (ctm, nm, sc),
                                rand(shape), mode="nearest", ctm=ctm, nm=nm, scales=sc)
                for sz in size_sets:
                    resize_case("Resize nearest %s %s sizes %s" % (ctm, nm, sz),
                                rand(shape), mode="nearest", ctm=ctm, nm=nm, sizes=sz)
            for mode, extra in [("linear", {}), ("cubic", {}), ("cubic", dict(a=-0.5, excl=1))]:
                for sc in scale_sets:
                    resize_case("Resize %s %s %s scales %s" % (mode, extra, ctm, sc),
                                rand(shape), mode=mode, ctm=ctm, scales=sc, **extra)
                for sz in size_sets:
                    resize_case("Resize %s %s %s sizes %s" % (mode, extra, ctm, sz),
                                rand(shape), mode=mode, ctm=ctm, sizes=sz, **extra)
    # every axis resized (rank 3 and 5), linear and cubic
    for shape in [(2, 3, 6), (1, 2, 3, 4, 5)]:
        for mode in ["linear", "cubic"]:
            resize_case("Resize %s all axes %s" % (mode, shape), rand(shape), mode=mode,
                        scales=[1.5] * len(shape))
    # tf_crop_and_resize
    for mode in ["nearest", "linear", "cubic"]:
        for roi, sz in [((0, 0, 0.2, 0.3, 1, 1, 0.8, 0.9), (1, 2, 4, 5)),
                        ((0, 0, -0.2, 0.1, 1, 1, 1.3, 0.9), (1, 2, 7, 3)),
                        ((0, 0, 0.4, 0.6, 1, 1, 0.4, 0.6), (1, 2, 1, 1))]:
            resize_case("Resize %s tf_crop_and_resize roi %s" % (mode, roi), rand((1, 2, 5, 7)),
                        mode=mode, ctm="tf_crop_and_resize", roi=roi, sizes=sz, extrap=-3.0)
        resize_case("Resize-11 %s tf_half_pixel_for_nn" % mode, rand((1, 2, 5, 7)), opset=11,
                    mode=mode, ctm="tf_half_pixel_for_nn", roi=(), scales=[1, 1, 0.6, 1.8])
    # other element types (nearest is a gather)
    for dt in [np.uint8, np.int8, np.int32, np.int64, np.float16, np.float64, np.bool_]:
        x = rand((1, 2, 5, 7), np.uint8).astype(dt)
        resize_case("Resize nearest %s" % np.dtype(dt).name, x, scales=[1, 1, 1.5, 0.7])
    # opset 18: axes and keep_aspect_ratio_policy; opset 19: half_pixel_symmetric
    for mode in ["nearest", "linear", "cubic"]:
        for keep in ["stretch", "not_larger", "not_smaller"]:
            for axes, sz in [([2, 3], [8, 4]), ([3, 2], [4, 8]), ([-1], [11]), ([1, 3], [3, 9])]:
                resize_case("Resize-18 %s axes %s sizes %s %s" % (mode, axes, sz, keep),
                            rand((1, 2, 5, 7)), opset=18, mode=mode, axes=axes, sizes=sz,
                            keep=keep)
        resize_case("Resize-18 %s axes scales" % mode, rand((1, 2, 5, 7)), opset=18, mode=mode,
                    axes=[3, 1], scales=[2.5, 1.5])
        for sc in [[1, 1, 1.5, 0.6], [1, 1, 2.3, 0.35], [1, 1, 2, 3]]:
            resize_case("Resize-19 %s half_pixel_symmetric %s" % (mode, sc), rand((1, 2, 5, 7)),
                        opset=19, mode=mode, ctm="half_pixel_symmetric", scales=sc)
    # parameters known only at run time
    resize_case("Resize linear, scales at run time", rand((1, 2, 5, 7)), dynamic=True,
                mode="linear", scales=[1, 1, 2, 0.5])
    resize_case("Resize cubic, sizes at run time", rand((1, 2, 5, 7)), dynamic=True,
                mode="cubic", sizes=[1, 2, 3, 11])
    # a large threaded case
    resize_case("Resize linear large", rand((2, 32, 48, 48)), mode="linear", scales=[1, 1, 2, 2])
    # Resize-10 and Upsample: asymmetric, nearest rounds down (up when shrinking)
    for mode in ["nearest", "linear"]:
        for sc in [[1, 1, 2, 3], [1, 1, 0.6, 0.8], [1, 1, 1.7, 0.45]]:
            x = rand((1, 2, 5, 7))
            ref = resize_ref(x, mode=mode, ctm="asymmetric", nm="simple", scales=sc)
            expect("Resize-10 %s %s" % (mode, sc),
                   run("Resize", {"x": x}, {"mode": mode}, inits={"s": np.array(sc, f32)},
                       opset=10), [ref], exact=mode == "nearest")
        for sc in [[1, 1, 2, 3], [1, 1, 1.5, 2.5]]:
            x = rand((1, 2, 5, 7))
            ref = resize_ref(x, mode=mode, ctm="asymmetric", nm="simple", scales=sc)
            expect("Upsample-7 %s %s" % (mode, sc),
                   run("Upsample", {"x": x}, {"mode": mode, "scales": [float(v) for v in sc]},
                       opset=7), [ref], exact=mode == "nearest")
            expect("Upsample-9 %s %s" % (mode, sc),
                   run("Upsample", {"x": x}, {"mode": mode}, inits={"s": np.array(sc, f32)},
                       opset=9), [ref], exact=mode == "nearest")
    # refused: both scales and sizes, antialias, linear on integers
    x = rand((1, 2, 5, 7))
    check(isinstance(run("Resize", {"x": x}, {}, inits={"s": np.ones(4, f32),
                                                     "z": np.array([1, 2, 5, 7], np.int64)},
                         in_names=["x", "", "s", "z"]), str), "Resize with scales and sizes")
    check(isinstance(run("Resize", {"x": x}, {"mode": "linear", "antialias": 1},
                         inits={"s": np.ones(4, f32)}, in_names=["x", "", "s"], opset=18), str),
          "Resize antialias is refused")


test_pools()
test_norms()
test_resize()
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
