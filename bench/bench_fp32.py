#!/usr/bin/python3
"""fp32 latency of onnxq against onnxruntime on resnet18 and mobilenet_v2.

Usage: /usr/bin/python3 bench/bench_fp32.py [--onnxq PATH] [--models resnet18,mobilenet_v2]
           [--batches 1,8] [--threads 1,2] [--reps 3] [--runs 10] [--workdir DIR]
           [--tol 1e-4]

The models are torchvision's with seeded random weights (tests/models/export_torchvision.py,
BatchNorm folded by the exporter; cached in WORKDIR/models); the input is a fixed random
normal tensor [B,3,224,224]. For every model, batch size and thread count, `onnxq run --time
RUNS --threads T` and onnxruntime (tests/ort/ort_run.js --time RUNS --threads T: CPU
provider, default graph optimizations) run REPS times each, interleaved (alternating which
goes first), every process timing RUNS runs after a warm-up. Every process runs with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, as on a user's machine, and the OpenBLAS core
onnxq ended up with and its GEMM kernels ('kernels:' in its --time output) are printed. The rest of the
environment is passed on (OMP_*, GOMP_*, ONNXQ_* and OPENBLAS_* variables are printed):
e.g. OMP_WAIT_POLICY=passive changes onnxq's multi-threaded figures on a loaded machine.

The table gives, per configuration, the minimum over all timed runs and the median of the
per-process medians, for each engine; the ratio onnxq/onnxruntime of the medians and of the
minima; and the largest difference of the outputs over all repetitions, as
max|onnxq - ort| / max|ort|. Target: onnxq within 1.5x of onnxruntime.

Exit status: 0 when every output agrees within --tol (whatever the timings), 1 when one
does not, 2 for a usage or setup error.
"""
import argparse
import os
import sys

import benchlib as B

TARGET = 1.5


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnxq", default=B.default_onnxq(), help="the onnxq binary")
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=3, help="processes per engine and configuration")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per process")
    ap.add_argument("--workdir", default="/tmp/onnxq-bench")
    ap.add_argument("--tol", type=float, default=1e-4, help="largest output difference accepted")
    a = ap.parse_args()
    if not a.onnxq or not os.access(a.onnxq, os.X_OK):
        B.die("no onnxq binary: build it (meson setup build && ninja -C build) or pass --onnxq")
    B.check_tools()
    models = a.models.split(",")
    batches = [int(b) for b in a.batches.split(",")]
    threads = [int(t) for t in a.threads.split(",")]

    print("# fp32 latency: onnxq vs onnxruntime\n")
    B.print_machine(B.machine_info())
    paths = B.export_models(a.workdir, models)
    print("runs per process: %d, processes per engine and configuration: %d (interleaved)\n"
          % (a.runs, a.reps))
    print("| model | batch | threads | onnxq min / median ms | ORT min / median ms "
          "| ratio median (min) | max rel diff | within %.1fx |" % TARGET)
    print("|---|---|---|---|---|---|---|---|", flush=True)
    cores, bad, ratios = set(), [], []
    for name in models:
        for b in batches:
            x = B.random_input(os.path.join(a.workdir, "%s.b%d.npy" % (name, b)),
                               (b, 3, 224, 224), seed=100 + b)
            for t in threads:
                tag = "fp32-%s-b%d-t%d" % (name, b, t)
                s = B.measure(a.onnxq, paths[name], ["input=" + x], a.workdir, tag, a.reps,
                              a.runs, t)
                cores.update(s["cores"])
                ok = s["cmp"]["rel"] <= a.tol
                if not ok:
                    bad.append("%s batch %d threads %d: max rel diff %.3g" % (name, b, t,
                                                                             s["cmp"]["rel"]))
                ratios.append(s["ratio_med"])
                print("| %s | %d | %d | %s / %s | %s / %s | %.2f (%.2f) | %.2g%s | %s |" % (
                    name, b, t, B.fmt_ms(s["oq_min"]), B.fmt_ms(s["oq_med"]),
                    B.fmt_ms(s["ort_min"]), B.fmt_ms(s["ort_med"]), s["ratio_med"],
                    s["ratio_min"], s["cmp"]["rel"], "" if ok else " FAIL",
                    "yes" if s["ratio_med"] <= TARGET else "no"), flush=True)
    return B.print_summary(cores, ratios, TARGET, bad, a.tol)


if __name__ == "__main__":
    sys.exit(main())
