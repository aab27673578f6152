#!/usr/bin/python3
"""The graph passes on the torchvision exports (both the exporter-folded and
the BatchNorm-keeping variants): `onnxq optimize` leaves no
BatchNormalization, Identity or Dropout in any of them, the node counts
before and after are printed and the removed ones accounted for, the result
passes onnx.checker, and its output agrees with the original model's.

Agreement is measured as ||a - b|| / ||b|| over the whole output (batch 2,
the exporter's fixed random input), against PyTorch's output computed in
float64 (NAME.torch64.npy): the original model's function without float32
rounding. For every model:
  1. the rewritten model, run in onnxq, is within 1e-5 of it;
  2. the rewritten model is no further from it than the original model run in
     onnxq, within 20% (a pass may change float32 rounding, never add error
     beyond it);
  3. the rewritten and the original model, both run in onnxq, agree within
     1e-5, where float32 rounding lets two evaluations agree that closely:
     when the original's own distance from float64 exceeds 1e-5 / 2, two
     float32 evaluations with independent rounding differ by about sqrt(2)
     times that (GoogLeNet with its 57 BatchNormalizations kept: 9.2e-6 from
     float64, 1.3e-5 between the two), so the comparison is printed, and 1 and
     2 carry the check.
The exports are made by tests/models/export_torchvision.py (cached in the
build folder, shared with the 'models' suite).

usage: test_passes_models.py ONNXQ WORKDIR"""
import collections
import os
import subprocess
import sys

import numpy as np
import onnx

ONNXQ, WORK = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1",
          "shufflenet_v2_x1_0", "efficientnet_b0", "googlenet"]
TOLERANCE = 1e-5
ROUNDING_SLACK = 1.2
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def rel(a, ref):
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def run(model, x, out):
    r = subprocess.run([ONNXQ, "run", model, "-i", f"input={x}", "-o", out], capture_output=True, text=True)
    if r.returncode:
        print(r.stderr)
        return None
    return np.load(os.path.join(out, "output.npy"))


def main():
    os.makedirs(WORK, exist_ok=True)
    r = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "models", "export_torchvision.py"), WORK],
                       capture_output=True, text=True)
    check(r.returncode == 0, f"exports: {r.stderr[-500:]}")
    print(f"{'model':24} {'nodes':>6} {'after':>6} {'BN':>4} {'orig-f64':>9} {'opt-f64':>9} "
          f"{'opt-orig':>9} {'max diff/max':>12}")
    for name in MODELS:
        for variant in ["", ".bn"]:
            src = os.path.join(WORK, f"{name}{variant}.onnx")
            x = os.path.join(WORK, f"{name}.input.npy")
            if not os.path.exists(src):
                check(variant == ".bn" and name == "squeezenet1_1", f"{src} was not exported")
                continue
            dst = os.path.join(WORK, f"{name}{variant}.opt.onnx")
            r = subprocess.run([ONNXQ, "optimize", src, "-o", dst], capture_output=True, text=True)
            check(r.returncode == 0, f"{name}{variant}: optimize: {r.stderr}")
            if r.returncode:
                continue
            before = collections.Counter(n.op_type for n in onnx.load(src).graph.node)
            m = onnx.load(dst)
            after = collections.Counter(n.op_type for n in m.graph.node)
            onnx.checker.check_model(m)
            for op in ["BatchNormalization", "Identity", "Dropout"]:
                check(after[op] == 0, f"{name}{variant}: {after[op]} {op} left")
            # Every removed node is accounted for: BatchNormalization folded,
            # Identity/Dropout bypassed, or constants/shape chains folded.
            removable = before["BatchNormalization"] + before["Identity"] + before["Dropout"] + \
                before["Constant"] + before["Shape"] + before["Gather"] + before["Unsqueeze"] + \
                before["Concat"] + before["Cast"]
            removed = sum(before.values()) - sum(after.values())
            check(0 <= removed <= removable and (variant != ".bn" or removed >= before["BatchNormalization"]),
                  f"{name}{variant}: {removed} nodes removed, at most {removable} removable")
            a = run(src, x, os.path.join(WORK, f"out_{name}{variant}"))
            b = run(dst, x, os.path.join(WORK, f"out_{name}{variant}.opt"))
            ref = np.load(os.path.join(WORK, f"{name}.torch64.npy"))
            ok = a is not None and b is not None and a.shape == b.shape == ref.shape
            if not ok:
                check(False, f"{name}{variant}: no output or shapes differ")
                continue
            a, b = a.astype(np.float64), b.astype(np.float64)
            e_orig, e_opt, e_pair = rel(a, ref), rel(b, ref), rel(b, a)
            peak = float(np.abs(a - b).max() / np.abs(a).max())
            check(e_opt <= TOLERANCE, f"{name}{variant}: rewritten model {e_opt:.3g} from float64 > {TOLERANCE}")
            check(e_opt <= ROUNDING_SLACK * e_orig + 1e-9,
                  f"{name}{variant}: rewritten model {e_opt:.3g} from float64, original {e_orig:.3g}")
            if e_orig <= TOLERANCE / 2:
                check(e_pair <= TOLERANCE, f"{name}{variant}: rewritten vs original {e_pair:.3g} > {TOLERANCE}")
            note = "" if e_orig <= TOLERANCE / 2 else "  (rounding-limited: 1 and 2 apply)"
            print(f"{name + variant:24} {sum(before.values()):6} {sum(after.values()):6} "
                  f"{before['BatchNormalization']:4} {e_orig:9.2e} {e_opt:9.2e} {e_pair:9.2e} "
                  f"{peak:12.2e}{note}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
