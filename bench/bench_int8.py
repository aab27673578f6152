#!/usr/bin/python3
"""int8 latency of onnxq against onnxruntime on the same quantized resnet18 and mobilenet_v2.

Usage: /usr/bin/python3 bench/bench_int8.py [--onnxq PATH] [--models resnet18,mobilenet_v2]
           [--formats qdq,qop] [--batches 1,8] [--threads 1,2] [--reps 3] [--runs 10]
           [--calib-samples 8] [--workdir DIR] [--tol 1e-5]

The fp32 models are those of bench_fp32.py (torchvision, seeded random weights). Each is
quantized by `onnxq quantize --format qdq` and `--format qop` (defaults otherwise: minmax,
per-channel int8 weights, uint8 activations), calibrated on CALIB_SAMPLES random normal
inputs [3,224,224] (a fixed seed, not the timed input). Then, as in bench_fp32.py, for
every int8 file, batch size and thread count, `onnxq run --time RUNS --threads T` and
onnxruntime on the same file (tests/ort/ort_run.js, CPU provider, default graph
optimizations: it fuses the QDQ groups into its own integer kernels) run REPS times each,
interleaved, with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (the rest of the
environment is passed on; OMP_*, GOMP_*, ONNXQ_* and OPENBLAS_* variables are printed).

The outputs are the dequantized (float) logits. They must agree within --tol, as
max|onnxq - ort| / max|ort|; a difference of one quantization step of the output would be
about 1/255 of its range, so 1e-5 means the integer pipelines agree. The table also gives
the fraction of output elements that are not bit-equal and the largest difference in
quantization steps of the output (its DequantizeLinear scale). Target: onnxq within 1.5x
of onnxruntime.

Exit status: 0 when every output agrees within --tol (whatever the timings), 1 when one
does not, 2 for a usage or setup error.
"""
import argparse
import os
import re
import subprocess
import sys
import time

import onnx
from onnx import numpy_helper

import benchlib as B

TARGET = 1.5


def quantize(onnxq, model, out, fmt, calib):
    t0 = time.time()
    p = subprocess.run([onnxq, "quantize", model, "-o", out, "--data", calib, "--format", fmt],
                       capture_output=True, text=True, env=B.clean_env())
    if p.returncode != 0:
        B.die("onnxq quantize --format %s failed on %s:\n%s" % (fmt, model, p.stderr))
    q = re.search(r"^quantized: (.*)$", p.stdout, re.M)
    f = re.search(r"^left in float: (.*)$", p.stdout, re.M)
    return time.time() - t0, (q.group(1) if q else "?"), (f.group(1) if f else "?")


def output_steps(path):
    """{sanitised output name: scale} for graph outputs made by a DequantizeLinear with a
    scalar scale initializer."""
    m = onnx.load(path, load_external_data=False)
    inits = {i.name: i for i in m.graph.initializer}
    outs = {o.name for o in m.graph.output}
    steps = {}
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and n.output[0] in outs and n.input[1] in inits:
            s = numpy_helper.to_array(inits[n.input[1]])
            if s.size == 1:
                name = re.sub(r"[^A-Za-z0-9._-]", "_", n.output[0])
                steps[name] = float(s.reshape(-1)[0])
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq", default=B.default_onnxq(), help="the onnxq binary")
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--formats", default="qdq,qop")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3, help="processes per engine and configuration")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per process")
    ap.add_argument("--calib-samples", type=int, default=8)
    ap.add_argument("--workdir", default="/tmp/onnxq-bench")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest output difference accepted")
    a = ap.parse_args()
    if not a.onnxq or not os.access(a.onnxq, os.X_OK):
        B.die("no onnxq binary: build it (meson setup build && ninja -C build) or pass --onnxq")
    B.check_tools()
    models = a.models.split(",")
    formats = a.formats.split(",")
    batches = [int(b) for b in a.batches.split(",")]
    threads = [int(t) for t in a.threads.split(",")]

    print("# int8 latency: onnxq vs onnxruntime on the same int8 model\n")
    B.print_machine(B.machine_info())
    paths = B.export_models(a.workdir, models)
    calib = B.random_input(os.path.join(a.workdir, "calib%d.npy" % a.calib_samples),
                           (a.calib_samples, 3, 224, 224), seed=7)
    qmodels = []
    for name in models:
        for fmt in formats:
            out = os.path.join(a.workdir, "%s.%s.onnx" % (name, fmt))
            secs, qd, fl = quantize(a.onnxq, paths[name], out, fmt, calib)
            print("quantized %s --format %s on %d samples in %.1f s: %s; left in float: %s"
                  % (name, fmt, a.calib_samples, secs, qd, fl))
            qmodels.append((name, fmt, out, output_steps(out)))
    print("\nruns per process: %d, processes per engine and configuration: %d (interleaved)\n"
          % (a.runs, a.reps))
    print("| model | format | batch | threads | onnxq min / median ms | ORT min / median ms "
          "| ratio median (min) | max rel diff | elements differing | max diff (steps) "
          "| within %.1fx |" % TARGET)
    print("|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
    cores, bad, ratios = set(), [], []
    for name, fmt, path, steps in qmodels:
        for b in batches:
            x = B.random_input(os.path.join(a.workdir, "%s.b%d.npy" % (name, b)),
                               (b, 3, 224, 224), seed=100 + b)
            for t in threads:
                tag = "int8-%s-%s-b%d-t%d" % (name, fmt, b, t)
                s = B.measure(a.onnxq, path, ["input=" + x], a.workdir, tag, a.reps, a.runs, t,
                              lsb=steps)
                cores.update(s["cores"])
                c = s["cmp"]
                ok = c["rel"] <= a.tol
                if not ok:
                    bad.append("%s %s batch %d threads %d: max rel diff %.3g, %.2g%% of "
                               "elements differ" % (name, fmt, b, t, c["rel"], 100 * c["differ"]))
                ratios.append(s["ratio_med"])
                print("| %s | %s | %d | %d | %s / %s | %s / %s | %.2f (%.2f) | %.2g%s | %.2g%% "
                      "| %s | %s |" % (
                          name, fmt, b, t, B.fmt_ms(s["oq_min"]), B.fmt_ms(s["oq_med"]),
                          B.fmt_ms(s["ort_min"]), B.fmt_ms(s["ort_med"]), s["ratio_med"],
                          s["ratio_min"], c["rel"], "" if ok else " FAIL", 100 * c["differ"],
                          "%.3g" % c["lsb"] if c["lsb"] is not None else "-",
                          "yes" if s["ratio_med"] <= TARGET else "no"), flush=True)
    return B.print_summary(cores, ratios, TARGET, bad, a.tol)


if __name__ == "__main__":
    sys.exit(main())
