#!/usr/bin/python3
"""onnxq eval and onnxq gate against independent numpy computations.

The bundled LeNet (fp32) and int8 versions made by `onnxq quantize` (QDQ and
QOperator) are evaluated on the bundled Fashion-MNIST test images. References:
the images decoded by PIL and normalised in numpy, run through `onnxq run`
as one .npy batch; top-1/top-5 accuracy, agreement and output SQNR computed
in numpy from those outputs; per-layer SQNR from `onnxq run` outputs of
copies of the models with the compared tensors exposed as graph outputs,
dequantized in numpy with the scales and zero points the onnx package reads
from the model; weight SQNR against BatchNorm folded in numpy. The fp32
accuracy must be the 0.9192 recorded in models/lenet.json (measured by torch
and by a numpy implementation of the model when it was trained).

File sizes against the files, latency against its definition (timed
batches, ratios) and physical bounds.

Then onnxq gate passes on the good int8 model and fails (exit 1) on a copy
whose activation scale was made 100x too small; the JUnit XML (xml.etree),
JSON and Markdown reports are checked; and bad input exits 2 with a message
naming the problem.

usage: test_eval.py ONNXQ WORKDIR MODELS_DIR"""
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ONNXQ, WORK, MODELS = sys.argv[1], sys.argv[2], sys.argv[3]
LENET = os.path.join(MODELS, "lenet.onnx")
TEST = os.path.join(MODELS, "data", "fashion-test")
CALIB = os.path.join(MODELS, "data", "fashion-calib")
LABELS = os.path.join(MODELS, "data", "fashion-test-labels.txt")
META = json.load(open(os.path.join(MODELS, "lenet.json")))
MEAN, STD = META["normalisation"]["mean"], META["normalisation"]["std"]
NORM = ["--mean", repr(MEAN), "--std", repr(STD)]
passed = failed = 0
TIMES = []


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok  ", what)
    else:
        failed += 1
        print("FAIL", what, ("- " + detail) if detail else "")
    return cond


def w(*parts):
    return os.path.join(WORK, *parts)


def onnxq(*args, check_rc=None, threads=True):
    """Runs onnxq; eval, gate, run and quantize with one worker thread unless
    threads is False (the results do not depend on it; a busy machine slows
    OpenMP's thread teams down)."""
    args = list(map(str, args))
    if threads and args[0] in ("eval", "gate", "run", "quantize") and "--threads" not in args \
            and "--help" not in args:
        args.append("--threads=1")
    t0 = time.time()
    r = subprocess.run([ONNXQ, *args], capture_output=True, text=True)
    TIMES.append((time.time() - t0, " ".join(args[:2])))
    if check_rc is not None and r.returncode != check_rc:
        print(f"command {' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r


def close(a, b, rtol):
    return a is not None and b is not None and abs(a - b) <= rtol * max(abs(a), abs(b))


# ---- references ----

def load_images():
    """The test images in name order, normalised as lenet.json says, in float32."""
    from PIL import Image
    names = sorted(f for f in os.listdir(TEST) if f.endswith(".png"))
    x = np.empty((len(names), 1, 28, 28), np.float32)
    for i, f in enumerate(names):
        with Image.open(os.path.join(TEST, f)) as im:
            p = np.asarray(im.convert("L"), dtype=np.float32)
        x[i, 0] = (p / np.float32(255) - np.float32(MEAN)) / np.float32(STD)
    return x


def run_model(model, x_path, outdir):
    """Every output of `onnxq run` on x_path, by name."""
    shutil.rmtree(outdir, ignore_errors=True)
    r = onnxq("run", model, "-i", x_path, "-o", outdir, check_rc=0)
    if r.returncode != 0:
        return {}
    m = onnx.load(model)
    res = {}
    for o in m.graph.output:
        fn = "".join(c if c.isalnum() or c in "._-" else "_" for c in o.name)
        res[o.name] = np.load(os.path.join(outdir, fn + ".npy"))
    return res


def rank_of_label(s, labels):
    """Classes ranked above each label: higher score, or equal score and lower index."""
    ls = s[np.arange(len(labels)), labels][:, None]
    idx = np.arange(s.shape[1])[None, :]
    above = (s > ls) | ((s == ls) & (idx < labels[:, None]))
    return above.sum(axis=1)


def sqnr(ref, test):
    ref = ref.astype(np.float64)
    noise = np.sum((ref - test.astype(np.float64)) ** 2)
    sig = np.sum(ref ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(sig / noise)


def expose(model, names, path):
    m = onnx.load(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None))
    onnx.save(m, path)


def inits(model):
    return {i.name: numpy_helper.to_array(i) for i in onnx.load(model).graph.initializer}


def dequant(q, scale, zp):
    return (q.astype(np.int32) - np.int32(zp)).astype(np.float32) * np.float32(scale)


def eval_json(*args, rc=0, threads=True):
    out = w("r.json")
    if os.path.exists(out):
        os.remove(out)
    r = onnxq("eval", *args, "--json", out, check_rc=rc, threads=threads)
    if r.returncode != 0:
        return None, r
    return json.load(open(out)), r


def layer(js, tensor):
    for l in js.get("layers", []):
        if l["tensor"] == tensor:
            return l
    return None


# ---- the parts ----

def make_models():
    q = w("lenet.int8.onnx")
    qop = w("lenet.qop.onnx")
    onnxq("quantize", LENET, "-o", q, "--data", CALIB, *NORM, check_rc=0)
    onnxq("quantize", LENET, "-o", qop, "--data", CALIB, *NORM, "--format", "qop", check_rc=0)
    # The broken copy: the scale of the QuantizeLinear after the second Conv
    # (its Relu output) 100x too small, so that activation saturates.
    m = onnx.load(q)
    prod = {o: n for n in m.graph.node for o in n.output}
    qs = [n for n in m.graph.node if n.op_type == "QuantizeLinear"
          and n.input[0] in prod and prod[n.input[0]].op_type == "Conv"]
    target = qs[-1]
    for i in m.graph.initializer:
        if i.name == target.input[1]:
            a = numpy_helper.to_array(i) * np.float32(0.01)
            i.CopyFrom(numpy_helper.from_array(a.astype(np.float32), i.name))
    bad = w("lenet.broken.onnx")
    onnx.save(m, bad)
    return q, qop, bad, target.input[0]


def test_accuracy(x_path, labels, q):
    # fp32 alone, default batch size and threads: the recorded accuracy.
    js, r = eval_json(LENET, "--data", TEST, "--labels", LABELS, *NORM, threads=False)
    if not check(js is not None, "eval fp32 runs", r.stderr):
        return None
    fp = js["models"][0]
    check(fp["top1"] == META["fp32_test_accuracy_torch"] and fp["correct_top1"] == 9192,
          f"fp32 top-1 {fp['top1']} is the recorded 0.9192")
    check(js["samples"] == 10000 and js["classes"] == 10, "10000 samples, 10 classes")
    check("top-1" in r.stdout and "91.92%" in r.stdout, "the table shows 91.92%", r.stdout)

    outs32 = run_model(LENET, x_path, w("run32"))
    outs8 = run_model(q, x_path, w("run8"))
    s32, s8 = outs32.get("logits"), outs8.get("logits")
    if not check(s32 is not None and s8 is not None, "onnxq run on the numpy-preprocessed data"):
        return None
    r32, r8 = rank_of_label(s32, labels), rank_of_label(s8, labels)
    ref = {
        "c1": [int((r32 < 1).sum()), int((r8 < 1).sum())],
        "c5": [int((r32 < 5).sum()), int((r8 < 5).sum())],
        "agree": int((s32.argmax(1) == s8.argmax(1)).sum()),
        "sqnr": sqnr(s32, s8),
    }
    check(ref["c1"][0] == 9192, f"numpy: fp32 correct {ref['c1'][0]} == 9192")
    check(ref["c1"][0] == int((s32.argmax(1) == labels).sum()), "rank 0 is numpy's argmax")

    # Two models, one batch of 10000 (as `onnxq run` saw it): identical numbers.
    js, r = eval_json(LENET, q, "--data", TEST, "--labels", LABELS, *NORM, "--batch-size", "10000")
    if not check(js is not None, "eval fp32 + int8 runs", r.stderr):
        return None
    m = js["models"]
    check([m[0]["correct_top1"], m[1]["correct_top1"]] == ref["c1"],
          f"top-1 counts {[m[0]['correct_top1'], m[1]['correct_top1']]} == numpy {ref['c1']}")
    check([m[0]["correct_top5"], m[1]["correct_top5"]] == ref["c5"],
          f"top-5 counts {[m[0]['correct_top5'], m[1]['correct_top5']]} == numpy {ref['c5']}")
    check(js["agreement_count"] == ref["agree"] and js["agreement"] == ref["agree"] / 10000,
          f"agreement {js['agreement_count']} == numpy {ref['agree']}")
    check(close(js["output_sqnr_db"], ref["sqnr"], 1e-9),
          f"output SQNR {js['output_sqnr_db']} == numpy {ref['sqnr']}")
    check(abs(js["accuracy_drop_pp"] - (ref["c1"][0] - ref["c1"][1]) / 100) < 1e-12,
          f"accuracy drop {js['accuracy_drop_pp']} pp")
    print(f"     fp32 top-1 {m[0]['top1']:.4f} top-5 {m[0]['top5']:.4f}; int8 top-1 "
          f"{m[1]['top1']:.4f} top-5 {m[1]['top5']:.4f}; agreement {js['agreement']:.4f}; "
          f"output SQNR {js['output_sqnr_db']:.2f} dB")

    # The default batch size (32), on the first 2500 images: the same counts
    # as numpy's on those; SQNR within float rounding of the fp32 run.
    k = 2500
    part = {"c1": [int((r32[:k] < 1).sum()), int((r8[:k] < 1).sum())],
            "agree": int((s32[:k].argmax(1) == s8[:k].argmax(1)).sum()),
            "sqnr": sqnr(s32[:k], s8[:k])}
    js, r = eval_json(LENET, q, "--data", TEST, "--labels", LABELS, *NORM, "--samples", k)
    if check(js is not None, "eval with batches of 32", r.stderr):
        m = js["models"]
        check([m[0]["correct_top1"], m[1]["correct_top1"]] == part["c1"] and
              js["agreement_count"] == part["agree"], "batches of 32: same counts as numpy")
        check(close(js["output_sqnr_db"], part["sqnr"], 1e-4), "batches of 32: same SQNR")
        check("agreement:" in r.stdout and "output SQNR:" in r.stdout and "accuracy drop" in
              r.stdout, "the table has drop, agreement and SQNR")

    # Labels as .npy int64 and int32 give the same result; no labels: agreement only.
    np.save(w("labels64.npy"), labels.astype(np.int64))
    np.save(w("labels32.npy"), labels.astype(np.int32))
    for f in ("labels64.npy", "labels32.npy"):
        js, r = eval_json(LENET, q, "--data", x_path, "--labels", w(f), "--samples", k)
        check(js is not None and [x["correct_top1"] for x in js["models"]] == part["c1"],
              f"labels from {f} (data from .npy)", r.stderr)
    js, r = eval_json(LENET, q, "--data", x_path, "--samples", k)
    check(js is not None and js["models"][0]["top1"] is None and
          js["agreement_count"] == part["agree"] and js["accuracy_drop_pp"] is None,
          "without labels: agreement and SQNR only", r.stderr)
    # --samples: the first N samples (labels may be longer).
    js, r = eval_json(LENET, q, "--data", x_path, "--labels", LABELS, "--samples", "1234")
    n1 = int((r32[:1234] < 1).sum())
    check(js is not None and js["samples"] == 1234 and js["models"][0]["correct_top1"] == n1,
          "--samples 1234", r.stderr)
    return ref


def test_per_layer(x_path, q, qop):
    n = 2000
    xs = np.load(x_path)[:n]
    np.save(w("x2000.npy"), xs)
    js, r = eval_json(LENET, q, "--data", w("x2000.npy"), "--per-layer", "--threads", "1")
    if not check(js is not None and js.get("layers"), "eval --per-layer runs", r.stderr):
        return
    layers = js["layers"]
    dbs = [l["sqnr_db"] for l in layers]
    check(dbs == sorted(dbs), "layers sorted worst first")
    check(js["not_compared"] == [], f"every quantized tensor compared: {js['not_compared']}")
    kinds = {l["kind"] for l in layers}
    check(kinds == {"activation", "weight", "bias"}, f"kinds {kinds}")
    check("per-layer SQNR" in r.stdout, "the table lists layers")

    # Activations: the 8-bit values, exposed as outputs of the int8 model,
    # dequantized here; the fp32 tensors exposed in the fp32 model.
    m8 = onnx.load(q)
    init8 = inits(q)
    qnodes = {n.output[0]: n for n in m8.graph.node if n.op_type == "QuantizeLinear"}
    acts = [l for l in layers if l["kind"] == "activation"]
    check(len(acts) == len(qnodes), f"{len(acts)} activations == {len(qnodes)} QuantizeLinear")
    expose(LENET, [l["tensor"] for l in acts], w("fp32.exposed.onnx"))
    expose(q, [l["quantized"] for l in acts], w("int8.exposed.onnx"))
    o32 = run_model(w("fp32.exposed.onnx"), w("x2000.npy"), w("run32x"))
    o8 = run_model(w("int8.exposed.onnx"), w("x2000.npy"), w("run8x"))
    for l in acts:
        qn = qnodes.get(l["quantized"])
        if not check(qn is not None and l["tensor"] in o32 and l["quantized"] in o8,
                     f"{l['tensor']}: exposed"):
            continue
        deq = dequant(o8[l["quantized"]], init8[qn.input[1]], init8[qn.input[2]])
        ref = sqnr(o32[l["tensor"]], deq)
        check(close(l["sqnr_db"], ref, 1e-6) and l["elements"] == o32[l["tensor"]].size,
              f"per-layer {l['tensor']}: {l['sqnr_db']:.4f} dB == numpy {ref:.4f}")
    # The score output is a graph output, which onnxq quantize leaves float
    # (its Gemm writes float): not a quantized tensor, so not a layer.
    producer = {o: n for n in m8.graph.node for o in n.output}
    check(layer(js, "logits") is None and producer["logits"].op_type == "Gemm",
          "logits: not a per-layer tensor, written float by the Gemm (graph outputs stay float)")

    # Weights: BatchNorm folded in numpy, then compared with the dequantized
    # int8 weight (per output channel).
    f = inits(LENET)
    eps = [a.f for n in onnx.load(LENET).graph.node if n.op_type == "BatchNormalization"
           for a in n.attribute if a.name == "epsilon"]
    eps = eps[0] if eps else 1e-5
    s = f["bn1.weight"].astype(np.float64) / np.sqrt(f["bn1.running_var"].astype(np.float64) + eps)
    folded = (f["conv1.weight"].astype(np.float64) * s[:, None, None, None]).astype(np.float32)
    for name, ref_w in (("conv1.weight", folded), ("fc1.weight", f["fc1.weight"])):
        l = layer(js, name)
        wq = init8[name + "_quantized"]
        sc = init8[name + "_scale"]
        # symmetric int8 weights store no zero point (DequantizeLinear's default 0)
        zp = init8.get(name + "_zero_point", np.zeros(sc.shape, np.int8))
        shape = (-1,) + (1,) * (wq.ndim - 1)
        deq = (wq.astype(np.int32) - zp.reshape(shape).astype(np.int32)).astype(np.float32) * \
            sc.reshape(shape)
        ref = sqnr(ref_w, deq)
        check(l is not None and l["kind"] == "weight" and close(l["sqnr_db"], ref, 1e-6),
              f"weight {name}: {l and l['sqnr_db']} dB == numpy {ref:.4f} (BatchNorm folded)")
    unfolded = sqnr(f["conv1.weight"], (init8["conv1.weight_quantized"].astype(np.float32) *
                                        init8["conv1.weight_scale"].reshape(-1, 1, 1, 1)))
    check(unfolded < 20, f"(the unfolded weight would give {unfolded:.1f} dB: the fold matters)")

    # --qdq-float: the same pairs (the DequantizeLinear outputs exist too).
    js2, r = eval_json(LENET, q, "--data", w("x2000.npy"), "--per-layer", "--qdq-float",
                       "--threads", "1")
    check(js2 is not None and {l["tensor"] for l in js2["layers"]} ==
          {l["tensor"] for l in layers}, "--qdq-float: same tensors compared", r.stderr)

    # QOperator form: outputs of QLinearConv/QGemm and of MaxPool/Flatten on
    # uint8 (the scale of their input).
    js3, r = eval_json(LENET, qop, "--data", w("x2000.npy"), "--per-layer", "--threads", "1")
    if not check(js3 is not None, "--per-layer on the QOperator model", r.stderr):
        return
    check({l["tensor"] for l in js3["layers"]} == {l["tensor"] for l in layers},
          "QOperator: the same fp32 tensors compared as in QDQ form",
          str(sorted({l['tensor'] for l in js3['layers']} ^ {l['tensor'] for l in layers})))
    mq = onnx.load(qop)
    initq = inits(qop)
    # a MaxPool on 8-bit data and the operator that wrote its input: a
    # QLinearConv (y_scale at input 6) or a QuantizeLinear (scale at 1)
    prod = {o: n for n in mq.graph.node for o in n.output}
    mp = [n for n in mq.graph.node if n.op_type == "MaxPool" and
          prod[n.input[0]].op_type in ("QLinearConv", "QuantizeLinear")][0]
    src = prod[mp.input[0]]
    si = 6 if src.op_type == "QLinearConv" else 1
    expose(qop, [mp.output[0]], w("qop.exposed.onnx"))
    oq = run_model(w("qop.exposed.onnx"), w("x2000.npy"), w("runqx"))
    lq = [l for l in js3["layers"] if l["quantized"] == mp.output[0]]
    if check(len(lq) == 1 and lq[0]["tensor"] in o32 and mp.output[0] in oq,
             f"QOperator MaxPool output {mp.output[0]} compared"):
        deq = dequant(oq[mp.output[0]], initq[src.input[si]], initq[src.input[si + 1]])
        ref = sqnr(o32[lq[0]["tensor"]], deq)
        check(close(lq[0]["sqnr_db"], ref, 1e-6), f"QOperator MaxPool: {lq[0]['sqnr_db']:.4f} dB "
              f"== numpy {ref:.4f}")


def xml_cases(path):
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    return root, [c for s in suites for c in s.findall("testcase")]


def test_gate(q, bad, broken_tensor):
    bounds = ["--max-drop", "0.5", "--min-agreement", "99", "--min-sqnr", "25"]
    rep = [f"--junit={w('g.xml')}", "--json", w("g.json"), "--markdown", w("g.md")]
    for f in ("g.xml", "g.json", "g.md"):
        if os.path.exists(w(f)):
            os.remove(w(f))
    r = onnxq("gate", "--fp32", LENET, "--int8", q, "--data", TEST, "--labels", LABELS, *NORM,
              *bounds, *rep)
    check(r.returncode == 0, f"gate passes on the good int8 model (exit {r.returncode})",
          r.stderr)
    check("PASSED" in r.stdout and r.stdout.count("pass") >= 3, "gate prints the table",
          r.stdout)
    root, cases = xml_cases(w("g.xml"))
    check(len(cases) == 3 and not any(c.find("failure") is not None for c in cases) and
          root.get("failures") == "0" and root.get("tests") == "3",
          "JUnit: 3 test cases, none failed")
    names = [c.get("name") for c in cases]
    check(any("max-drop" in n for n in names) and any("min-agreement" in n for n in names) and
          any("min-sqnr" in n for n in names), f"JUnit: one case per bound {names}")
    js = json.load(open(w("g.json")))
    check(js["gate"]["passed"] is True and js["passed"] is True and
          [b["option"] for b in js["gate"]["bounds"]] == ["max-drop", "min-agreement", "min-sqnr"]
          and all(b["passed"] for b in js["gate"]["bounds"]), "JSON: passed, 3 bounds")
    check(js["gate"]["bounds"][0]["measured"] == js["accuracy_drop_pp"] and
          js["gate"]["bounds"][1]["measured"] == js["agreement"] * 100,
          "JSON: measured values are the results")
    md = open(w("g.md")).read()
    rows = [ln for ln in md.splitlines() if ln.startswith("| `--")]
    check("| bound | metric | limit | measured | result |" in md and len(rows) == 3 and
          "passed" in md.splitlines()[0], "Markdown: verdict and the bounds table", md)

    # The broken model fails every bound: exit 1, failures marked.
    r = onnxq("gate", "--fp32", LENET, "--int8", bad, "--data", TEST, "--labels", LABELS, *NORM,
              *bounds, *rep, "--per-layer", "--samples", "2000")
    check(r.returncode == 1, f"gate fails on the broken model (exit {r.returncode})", r.stderr)
    check("FAILED" in r.stdout and "FAIL" in r.stdout, "the table says FAIL")
    root, cases = xml_cases(w("g.xml"))
    check(len(cases) == 3 and all(c.find("failure") is not None for c in cases) and
          root.get("failures") == "3", "JUnit: 3 failures")
    js = json.load(open(w("g.json")))
    check(js["passed"] is False and not any(b["passed"] for b in js["gate"]["bounds"]),
          "JSON: failed")
    check(js["accuracy_drop_pp"] > 5, f"broken: drop {js['accuracy_drop_pp']:.2f} pp")
    md = open(w("g.md")).read()
    check("failed" in md.splitlines()[0] and md.count("FAIL") == 3, "Markdown: failed, 3 FAIL")
    # The per-layer diagnosis: the broken tensor has a low SQNR while the
    # tensors before it are fine; it names the node to exclude.
    lb = layer(js, broken_tensor)
    first = layer(js, "/Relu_output_0")
    check(lb is not None and lb["sqnr_db"] < 5 and first is not None and first["sqnr_db"] > 25 and
          lb["node"] == "/conv2/Conv",
          f"per layer: {broken_tensor} {lb and lb['sqnr_db']} dB (node {lb and lb['node']}), "
          f"upstream /Relu_output_0 {first and first['sqnr_db']} dB")

    # Mixed: a bound that holds and one that does not; only the second is marked.
    r = onnxq("gate", "--fp32", LENET, "--int8", bad, "--data", TEST, "--labels", LABELS, *NORM,
              "--min-sqnr", "-10", "--max-drop", "0.5", "--samples", "2000",
              "--junit", w("g2.xml"))
    root, cases = xml_cases(w("g2.xml"))
    marked = {c.get("name").split(":")[0]: c.find("failure") is not None for c in cases}
    check(r.returncode == 1 and marked == {"min-sqnr": False, "max-drop": True},
          f"JUnit marks only the failed bound {marked}")
    # A bound at its limit: agreement measured exactly.
    r = onnxq("gate", "--fp32", LENET, "--int8", q, "--data", TEST, "--samples", "1000", *NORM,
              "--min-agreement", "100", "--json", w("g3.json"))
    js3 = json.load(open(w("g3.json")))
    expect = 0 if js3["agreement_count"] == 1000 else 1
    check(r.returncode == expect, f"--min-agreement 100 with {js3['agreement_count']}/1000 "
          f"agreeing exits {expect}")
    # The same model twice: identical outputs, infinite SQNR.
    r = onnxq("gate", "--fp32", LENET, "--int8", LENET, "--data", TEST, "--samples", "300", *NORM,
              "--min-sqnr", "200", "--min-agreement", "100", "--json", w("g4.json"))
    js4 = json.load(open(w("g4.json")))
    check(r.returncode == 0 and js4["output_identical"] is True and js4["output_sqnr_db"] is None
          and js4["agreement"] == 1.0, "a model against itself: SQNR inf (null), passes")


def test_ranking():
    """Ties, fewer than 10 classes, [N, C, 1, 1] scores: an Identity model on
    small integers."""
    rng = np.random.default_rng(3)
    for c, shape in ((5, "nc"), (12, "nc"), (12, "nc11")):
        dims = ["N", c] + ([1, 1] if shape == "nc11" else [])
        g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
        path = w(f"id{c}{shape}.onnx")
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
        x = rng.integers(0, 3, size=(500, c)).astype(np.float32)
        lab = rng.integers(0, c, size=500)
        np.save(w("idx.npy"), x.reshape([500] + dims[1:]))
        np.save(w("idl.npy"), lab)
        js, r = eval_json(path, "--data", w("idx.npy"), "--labels", w("idl.npy"),
                          "--batch-size", "7")
        if not check(js is not None, f"identity {c} classes {shape}", r.stderr):
            continue
        rk = rank_of_label(x, lab)
        m = js["models"][0]
        check(m["correct_top1"] == int((x.argmax(1) == lab).sum()),
              f"{c} classes {shape}: top-1 with ties == numpy argmax ({m['correct_top1']})")
        if c >= 10:
            check(m["correct_top5"] == int((rk < 5).sum()),
                  f"{c} classes: top-5 with ties == stable ranking ({m['correct_top5']})")
        else:
            check(m["top5"] is None and "top-5" not in r.stdout, f"{c} classes: no top-5")


def peak_rss_kb(args):
    """Peak resident memory of one onnxq run, measured by a small Python that
    starts it (the child of a fork of this big process would count its
    pages)."""
    code = ("import resource, subprocess, sys; "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); "
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, ONNXQ, *map(str, args)],
                         capture_output=True, text=True).stdout.split()
    return int(out[1]), int(out[0])


def test_streaming():
    """Memory does not grow with the number of samples: 1,000 and 10,000
    samples of 1,000 class scores (keeping every output of two models would
    take 80 MB more)."""
    c = 1000
    for name, k in (("sa", 1.0), ("sb", 1.01)):
        g = helper.make_graph(
            [helper.make_node("Constant", [], ["k"], value=helper.make_tensor(
                "k", TensorProto.FLOAT, [], [k])),
             helper.make_node("Mul", ["x", "k"], ["y"])], name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", c])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", c])])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                  w(name + ".onnx"))
    rng = np.random.default_rng(5)
    np.save(w("big.npy"), rng.standard_normal((10000, c)).astype(np.float32))
    np.save(w("biglab.npy"), rng.integers(0, c, 10000))
    rss = {}
    for n in (1000, 10000):
        rss[n], rc = peak_rss_kb(["eval", w("sa.onnx"), w("sb.onnx"), "--data", w("big.npy"),
                                  "--labels", w("biglab.npy"), "--samples", n, "--threads", "1"])
        check(rc == 0, f"streaming: {n} samples of {c} classes")
    check(rss[10000] - rss[1000] < 16 * 1024,
          f"peak memory {rss[1000] // 1024} MB at 1,000 samples, {rss[10000] // 1024} MB at "
          f"10,000")


def test_bad_input(x_path, q):
    def bad(args, words, what, cmd="eval", rc=2):
        r = onnxq(cmd, *args)
        ok = r.returncode == rc and all(s in r.stderr for s in words) and \
            r.stderr.startswith(f"onnxq {cmd}: ")
        check(ok, f"{what}: exit {rc}, message", f"exit {r.returncode}: {r.stderr.strip()}")

    labels = [ln.strip() for ln in open(LABELS)]
    open(w("short.txt"), "w").write("\n".join(labels[:9999]) + "\n")
    open(w("long.txt"), "w").write("\n".join(labels + ["1"]) + "\n")
    open(w("junk.txt"), "w").write("\n".join(labels[:3] + ["cat"] + labels[4:]) + "\n")
    open(w("gap.txt"), "w").write("\n".join(labels[:3] + [""] + labels[4:]) + "\n")
    open(w("range.txt"), "w").write("\n".join(labels[:7] + ["10"] + labels[8:]) + "\n")
    np.save(w("labf.npy"), np.zeros(10000, np.float32))
    np.save(w("lab2d.npy"), np.zeros((100, 10), np.int64))
    d = ["--data", TEST, *NORM]
    bad([LENET, *d, "--labels", w("short.txt")], ["short.txt", "9999 labels", "10000 samples"],
        "9999 labels for 10000 images")
    bad([LENET, "--data", x_path, "--labels", w("long.txt")], ["10001 labels", "10000 samples"],
        "10001 labels for a .npy of 10000")
    r = onnxq("eval", LENET, "--data", x_path, "--labels", w("short.txt"), "--samples", "100")
    check(r.returncode == 0, "9999 labels, --samples 100: fine", r.stderr)
    bad([LENET, *d, "--labels", w("junk.txt")], ["junk.txt", "line 4", "cat"], "a word as label")
    bad([LENET, *d, "--labels", w("gap.txt")], ["gap.txt", "line 4", "empty"], "an empty line")
    bad([LENET, *d, "--labels", w("range.txt")], ["range.txt", "sample 7", "10 classes"],
        "label 10 of 10 classes")
    bad([LENET, *d, "--labels", w("labf.npy")], ["labf.npy", "integers", "float"], "float labels")
    bad([LENET, *d, "--labels", w("lab2d.npy")], ["lab2d.npy", "1-D"], "2-D labels")
    bad([LENET, *d, "--labels", w("missing.txt")], ["missing.txt"], "missing labels file")

    # Outputs: several without --output, one that is not class scores, a wrong name.
    m = onnx.load(LENET)
    m.graph.output.append(helper.make_tensor_value_info("/Relu_output_0", TensorProto.FLOAT, None))
    onnx.save(m, w("two.onnx"))
    m = onnx.load(LENET)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("/Relu_2_output_0", TensorProto.FLOAT,
                                                        ["N", 128, 1]))
    onnx.save(m, w("feat.onnx"))
    m = onnx.load(LENET)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info("/Relu_output_0", TensorProto.FLOAT, None))
    onnx.save(m, w("feat2.onnx"))
    s = ["--samples", "64", "--labels", LABELS]
    bad([w("two.onnx"), *d, *s], ["2 outputs", "logits", "/Relu_output_0", "--output"],
        "two outputs, no --output")
    r = onnxq("eval", w("two.onnx"), *d, *s, "--output", "logits")
    check(r.returncode == 0, "--output logits selects the scores", r.stderr)
    bad([w("two.onnx"), *d, *s, "--output", "/Relu_output_0"],
        ["/Relu_output_0", "float[32,16,28,28]", "not class scores"], "--output of a feature map")
    bad([w("two.onnx"), *d, *s, "--output", "nope"], ["no output named 'nope'"], "--output nope")
    bad([w("feat.onnx"), *d, *s], ["/Relu_2_output_0", "not class scores"],
        "declared [N,128,1] output")
    bad([w("feat2.onnx"), *d, *s], ["not class scores"], "undeclared feature-map output")
    bad(["--fp32", LENET, "--int8", w("feat2.onnx"), *d, *s, "--min-sqnr", "10"],
        ["feat2.onnx", "not class scores"], "gate: int8 output not scores", cmd="gate")

    # Data of the wrong shape or type.
    np.save(w("x32.npy"), np.zeros((8, 1, 32, 32), np.float32))
    np.save(w("x64.npy"), np.zeros((8, 1, 28, 28), np.float64))
    bad([LENET, "--data", w("x32.npy"), "--labels", w("short.txt"), "--samples", "8"],
        ["x32.npy", "[8,1,32,32]"], "a .npy of 32x32 images")
    bad([LENET, "--data", w("x64.npy"), "--labels", w("short.txt"), "--samples", "8"],
        ["x64.npy", "double"], "a float64 .npy")
    bad([LENET, *d, *s, "--resize", "32"], ["32x32", "input"], "images resized to 32x32")
    bad([LENET, "--data", w("nothere"), *s], ["nothere"], "missing data")

    # Usage errors.
    bad([LENET, "--labels", LABELS], ["no data"], "no --data")
    bad([LENET, *d], ["needs labels"], "one model without labels")
    bad([LENET, *d, *s, "--per-layer"], ["--per-layer"], "--per-layer with one model")
    bad([LENET, q, LENET, *d], ["extra"], "three models")
    bad([LENET, *d, *s, "--json", LABELS], ["refusing to overwrite"], "--json over the labels")
    bad(["--fp32", LENET, "--int8", q, *d], ["no bound"], "gate without a bound", cmd="gate")
    bad(["--fp32", LENET, "--int8", q, *d, "--max-drop", "1"], ["--max-drop needs labels"],
        "gate --max-drop without labels", cmd="gate")
    bad(["--fp32", LENET, *d, *s, "--max-drop", "1"], ["--int8"], "gate without --int8",
        cmd="gate")
    bad(["--fp32", LENET, "--int8", q, *d, *s, "--max-drop", "x"], ["--max-drop", "'x'"],
        "gate --max-drop x", cmd="gate")
    bad(["--fp32", LENET, "--int8", q, *d, *s, "--min-sqnr", "1", "--min-sqnr", "2"],
        ["twice"], "gate bound twice", cmd="gate")
    bad(["--fp32", LENET, "--int8", q, *d, *s, "--min-sqnr", "1", "--json", w("a.out"),
         "--markdown", w("a.out")], ["same file"], "two reports to one file", cmd="gate")
    for cmd in ("eval", "gate"):
        r = onnxq(cmd, "--help")
        check(r.returncode == 0 and "Exit status" in r.stdout and "--per-layer" in r.stdout,
              f"{cmd} --help")
    r = onnxq("--help")
    check(" eval " in r.stdout and " gate " in r.stdout, "onnxq --help lists eval and gate")


def test_size_latency(q):
    """File sizes against os.path.getsize; latency: the counts of timed
    batches, the ratios, and physical bounds (the runs fit in the wall time
    of the whole evaluation; LeNet's 1.70 M multiply-adds per sample cannot
    run faster than 320 GFLOP/s fp32 or 640 G int8 multiply-adds/s on one
    thread), which catch a wrong unit either way."""
    md = w("size-latency.md")
    js, r = eval_json(LENET, q, "--data", TEST, "--labels", LABELS, *NORM, "--samples", 1000,
                      "--markdown", md)
    if not check(js is not None, "eval for size and latency", r.stderr):
        return
    m = js["models"]
    sizes = [os.path.getsize(LENET), os.path.getsize(q)]
    check([x["bytes"] for x in m] == sizes, f"bytes {[x['bytes'] for x in m]} == files {sizes}")
    # 1000 samples in batches of 32: 31 full and one of 8; the first is not timed
    check(js["batch_size"] == 32 and all(x["timed_batches"] == 30 for x in m),
          f"30 timed batches of 32: {js['batch_size']}, {[x['timed_batches'] for x in m]}")
    check(all(close(x["sample_ms"] * 32, x["batch_ms"], 1e-12) for x in m),
          "sample_ms = batch_ms / 32")
    check(close(js["size_ratio"], sizes[1] / sizes[0], 1e-12), "size_ratio == int8 / fp32 bytes")
    check(close(js["latency_ratio"], m[1]["batch_ms"] / m[0]["batch_ms"], 1e-12),
          "latency_ratio == int8 / fp32 batch_ms")
    run_s = (m[0]["batch_ms"] + m[1]["batch_ms"]) * 30 / 1000
    check(0 < run_s <= js["seconds"], f"timed runs {run_s:.3f} s within the evaluation's "
          f"{js['seconds']:.3f} s")
    macs = 32 * (16 * 25 * 28 * 28 + 32 * 16 * 25 * 10 * 10 + 800 * 128 + 128 * 10)
    check(m[0]["batch_ms"] >= 2 * macs / 320e9 * 1e3 and m[1]["batch_ms"] >= macs / 640e9 * 1e3,
          f"batch_ms {m[0]['batch_ms']:.3f} / {m[1]['batch_ms']:.3f} above the physical bound")
    row = [l for l in r.stdout.splitlines() if l.startswith("int8 ")]
    check("size" in r.stdout and "latency" in r.stdout and len(row) == 1 and
          f"{sizes[1]} B" in row[0] and f"{m[1]['batch_ms']:.3f} ms" in row[0],
          "the table shows size and latency", r.stdout)
    check(f"size (int8 / fp32):    {sizes[1] / sizes[0]:.3f}x" in r.stdout and
          f"latency (int8 / fp32): {js['latency_ratio']:.2f}x" in r.stdout,
          "the ratios are printed", r.stdout)
    text = open(md).read() if os.path.exists(md) else ""
    check(f"{sizes[0]} B" in text and f"{m[0]['batch_ms']:.3f} ms" in text and
          "latency int8/fp32" in text, "Markdown has size and latency", text)
    js, r = eval_json(LENET, "--data", TEST, "--labels", LABELS, *NORM, "--samples", 40)
    if check(js is not None, "one model", r.stderr):
        x = js["models"][0]
        # 40 samples: batches of 32 and 8; only the first is full, so it is timed
        check(x["bytes"] == sizes[0] and x["timed_batches"] == 1 and x["batch_ms"] > 0 and
              "size_ratio" not in js, f"one model: bytes, one timed batch ({x})")


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    labels = np.array([int(x) for x in open(LABELS).read().split()], np.int64)
    x = load_images()
    x_path = w("x.npy")
    np.save(x_path, x)
    q, qop, bad, broken_tensor = make_models()
    test_accuracy(x_path, labels, q)
    test_size_latency(q)
    test_per_layer(x_path, q, qop)
    test_gate(q, bad, broken_tensor)
    test_ranking()
    test_streaming()
    test_bad_input(x_path, q)
    print("slowest runs:", ", ".join(f"{t:.1f} s {c}" for t, c in sorted(TIMES)[::-1][:5]))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
