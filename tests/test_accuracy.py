#!/usr/bin/python3
"""Accuracy targets of onnxq's default settings on every bundled model.

Each model in MODELS_DIR (lenet, resnet, mobilenetv2, mixer) is quantized by
`onnxq quantize` with the defaults (QDQ, per-channel int8 weights, uint8
activations, the default calibration method, no per-model option) on the 500
bundled calibration images, and evaluated against its fp32 model by `onnxq
eval` on the 10,000 bundled test images. The targets (issue 8, item 4), each
with its margin:

  - drop (fp32 top-1 - int8 top-1) <= 0.10 percentage points;
  - agreement (same top class in both) >= 99.00 %;
  - int8 top-1 >= PyTorch's own int8 top-1 - 0.05 points, where PyTorch's is
    its FX-graph-mode post-training quantization (onednn backend, same 500
    calibration images), recorded in MODELS_DIR/ARCH.json by the training
    script (models/train_fashion.py) and measured with torch.

Independent references: the fp32 top-1 must be the one torch measured when the
model was trained (ARCH.json, fp32_test_accuracy_torch), so the data, labels
and preprocessing are right; and the int8 model's top-1 is measured a second
time by onnxruntime (tests/ort, from npm) on the same images, decoded by PIL
and normalised in numpy: the prediction counts must agree with onnxq's within
2 of 10,000 samples (the int8 scores are float outputs, which the two runtimes
compute in a different order: a near-tie can go either way).

usage: test_accuracy.py ONNXQ ORT_RUN_JS WORKDIR MODELS_DIR [MODEL ...]

Prints one line per model and "N passed, N failed"; exits 1 if a check failed,
77 (skipped) when node or tests/ort/node_modules is missing."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

ONNXQ, ORT_JS, WORK, MODELS = (os.path.abspath(a) for a in sys.argv[1:5])
NAMES = sys.argv[5:] or ["lenet", "resnet", "mobilenetv2", "mixer"]
CALIB = os.path.join(MODELS, "data", "fashion-calib")
TEST = os.path.join(MODELS, "data", "fashion-test")
LABELS = os.path.join(MODELS, "data", "fashion-test-labels.txt")

MAX_DROP_PP = 0.10        # fp32 - int8, percentage points
MIN_AGREEMENT = 0.99      # fraction of samples with the same top class
PYTORCH_MARGIN_PP = 0.05  # int8 >= PyTorch int8 - this, percentage points
ORT_MAX_DIFF = 2          # correct predictions, onnxq vs onnxruntime, of 10,000
ORT_CHUNK = 2000          # images per onnxruntime run

SKIP = 77
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("ok  ", what, flush=True)
    else:
        failed += 1
        print("FAIL", what, flush=True)
    return cond


def run(cmd):
    r = subprocess.run([str(a) for a in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}{r.stderr}")
    return r


def test_images(mean, std):
    """The test images in name order (as onnxq reads the folder), decoded by
    PIL and normalised in float32 as the training script did."""
    files = sorted(f for f in os.listdir(TEST) if f.endswith(".png"))
    x = np.stack([np.asarray(Image.open(os.path.join(TEST, f)), dtype=np.uint8)
                  for f in files])
    x = (x.astype(np.float32) / np.float32(255.0) - np.float32(mean)) / np.float32(std)
    return np.ascontiguousarray(x[:, None, :, :])


def ort_correct(model, chunks, labels, tag):
    """Correct top-1 predictions of onnxruntime's run of model (in chunks of
    images, to bound its memory)."""
    preds = []
    for i, x_npy in enumerate(chunks):
        out = os.path.join(WORK, f"ort-{tag}-{i}")
        if run(["node", ORT_JS, model, out, f"input={x_npy}"]).returncode != 0:
            return None
        preds.append(np.load(os.path.join(out, "logits.npy")).argmax(1))
    return int((np.concatenate(preds) == labels).sum())


def measure(name, norm, chunks, labels):
    meta = json.load(open(os.path.join(MODELS, name + ".json")))
    check(meta["normalisation"] == norm, f"{name}: the images' normalisation")
    norm = ["--mean", repr(meta["normalisation"]["mean"]),
            "--std", repr(meta["normalisation"]["std"])]
    fp32 = os.path.join(MODELS, name + ".onnx")
    int8 = os.path.join(WORK, name + ".int8.onnx")
    report = os.path.join(WORK, name + ".eval.json")
    if run([ONNXQ, "quantize", fp32, "-o", int8, "--data", CALIB, *norm]).returncode != 0:
        return check(False, f"{name}: onnxq quantize with the defaults")
    if run([ONNXQ, "eval", fp32, int8, "--data", TEST, "--labels", LABELS, *norm,
            "--json", report]).returncode != 0:
        return check(False, f"{name}: onnxq eval")
    js = json.load(open(report))
    m32, m8 = js["models"]
    n = js["samples"]
    check(n == 10000, f"{name}: all 10,000 test images evaluated ({n})")
    torch32 = meta["fp32_test_accuracy_torch"]
    check(m32["correct_top1"] == round(torch32 * n),
          f"{name}: fp32 top-1 {m32['correct_top1']} == {round(torch32 * n)} measured by torch")
    drop = 100.0 * (m32["correct_top1"] - m8["correct_top1"]) / n
    pt8 = 100.0 * meta["pytorch_ptq"]["int8_test_accuracy"]
    acc8 = 100.0 * m8["correct_top1"] / n
    print(f"{name}: fp32 {100 * m32['top1']:.2f}%  int8 {acc8:.2f}%  drop {drop:.2f} pp  "
          f"agreement {100 * js['agreement']:.2f}%  PyTorch int8 {pt8:.2f}%  "
          f"output SQNR {js['output_sqnr_db']:.1f} dB", flush=True)
    check(abs(js["accuracy_drop_pp"] - drop) < 1e-9, f"{name}: drop == counts' difference")
    check(drop <= MAX_DROP_PP + 1e-9, f"{name}: drop {drop:.2f} pp <= {MAX_DROP_PP} pp")
    check(js["agreement"] >= MIN_AGREEMENT,
          f"{name}: agreement {100 * js['agreement']:.2f}% >= {100 * MIN_AGREEMENT:.0f}%")
    check(acc8 >= pt8 - PYTORCH_MARGIN_PP - 1e-9,
          f"{name}: int8 {acc8:.2f}% >= PyTorch int8 {pt8:.2f}% - {PYTORCH_MARGIN_PP}")
    got = ort_correct(int8, chunks, labels, name)
    check(got is not None and abs(got - m8["correct_top1"]) <= ORT_MAX_DIFF,
          f"{name}: onnxruntime's int8 top-1 {got} within {ORT_MAX_DIFF} of onnxq's "
          f"{m8['correct_top1']}")


def main():
    if not shutil.which("node") or not os.path.isdir(
            os.path.join(os.path.dirname(ORT_JS), "node_modules", "onnxruntime-node")):
        print("skipped: node or tests/ort/node_modules missing (cd tests/ort && npm ci)")
        return SKIP
    os.makedirs(WORK, exist_ok=True)
    norm = json.load(open(os.path.join(MODELS, NAMES[0] + ".json")))["normalisation"]
    x = test_images(norm["mean"], norm["std"])
    chunks = []
    for i in range(0, len(x), ORT_CHUNK):
        chunks.append(os.path.join(WORK, f"test-images-{i // ORT_CHUNK}.npy"))
        np.save(chunks[-1], x[i:i + ORT_CHUNK])
    labels = np.loadtxt(LABELS, dtype=np.int64)
    check(len(labels) == len(x) == 10000, f"{len(x)} test images, {len(labels)} labels")
    for name in NAMES:
        measure(name, norm, chunks, labels)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
