"""Shared pieces of the benchmarks in bench/ (run with /usr/bin/python3, which has
numpy and onnx): the environment they run in, the machine they ran on, the
torchvision models, timed runs of `onnxq run --time` and of onnxruntime
(tests/ort/ort_run.js --time), interleaved, and the comparison of their outputs.
"""
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ORT_RUN = os.path.join(ROOT, "tests", "ort", "ort_run.js")
EXPORT = os.path.join(ROOT, "tests", "models", "export_torchvision.py")
PYTHON = "/usr/bin/python3"

# Variables that pin OpenBLAS's kernel choice or cache size; a user's machine has
# neither, so the benchmarks run without them (whatever the calling shell set).
OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def clean_env():
    e = dict(os.environ)
    for v in OPENBLAS_PINS:
        e.pop(v, None)
    return e


def default_onnxq():
    """build/onnxq in the repository, if built there."""
    p = os.path.join(ROOT, "build", "onnxq")
    return p if os.access(p, os.X_OK) else None


def die(msg):
    sys.stderr.write(msg.rstrip() + "\n")
    sys.exit(2)


def check_tools(need_node=True):
    if need_node and not shutil.which("node"):
        die("node not found: the onnxruntime reference needs Node.js and tests/ort's "
            "node_modules (cd tests/ort && npm ci)")
    if need_node and not os.path.isdir(os.path.join(ROOT, "tests", "ort", "node_modules",
                                                    "onnxruntime-node")):
        die("tests/ort/node_modules/onnxruntime-node missing: cd tests/ort && npm ci")


def _cmd_out(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info():
    """Facts to print before the figures: when, where, under what load."""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            fl = next((l for l in f if l.startswith("flags")), "").split()
        flags = " ".join(x for x in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")
                         if x in fl)
    except OSError:
        pass
    ort_ver = ""
    try:
        with open(os.path.join(ROOT, "tests", "ort", "node_modules", "onnxruntime-node",
                               "package.json")) as f:
            ort_ver = json.load(f).get("version", "")
    except (OSError, ValueError):
        pass
    blas = _cmd_out(["dpkg-query", "-W", "-f", "${Package} ${Version}", "libopenblas0-openmp"])
    rev = _cmd_out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = _cmd_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "loadavg": "%.2f %.2f %.2f" % os.getloadavg(),
        "onnxruntime_node": ort_ver,
        "openblas": blas,
        "onnxq_rev": rev + ("+changes" if dirty else ""),
        "openblas_pins_unset": ", ".join(OPENBLAS_PINS),
        "env": " ".join("%s=%s" % (k, v) for k, v in sorted(os.environ.items())
                        if k.startswith(("OMP_", "GOMP_", "ONNXQ_", "OPENBLAS_"))
                        and k not in OPENBLAS_PINS) or "none of OMP_*, GOMP_*, ONNXQ_*, OPENBLAS_*",
    }


def print_machine(info, out=sys.stdout):
    out.write("date: %(date)s   host: %(host)s\n"
              "cpu: %(cpu)s, %(cores)s cores, flags: %(cpu_flags)s\n"
              "load average (1/5/15 min) at start: %(loadavg)s\n"
              "onnxruntime-node %(onnxruntime_node)s; %(openblas)s; source tree %(onnxq_rev)s\n"
              "unset for every run: %(openblas_pins_unset)s; passed on: %(env)s\n" % info)
    out.flush()


def export_models(workdir, names):
    """torchvision models with random weights (cached in workdir/models)."""
    d = os.path.join(workdir, "models")
    p = subprocess.run([PYTHON, EXPORT, d] + list(names), capture_output=True, text=True)
    if p.returncode != 0:
        die("exporting %s failed:\n%s%s" % (", ".join(names), p.stdout, p.stderr))
    return {n: os.path.join(d, n + ".onnx") for n in names}


def random_input(path, shape, seed, kind="normal"):
    if not os.path.exists(path):
        rng = np.random.default_rng(seed)
        x = (rng.standard_normal(shape) if kind == "normal" else rng.random(shape)).astype(np.float32)
        tmp = path + ".tmp%d.npy" % os.getpid()
        np.save(tmp, x)
        os.replace(tmp, path)
    return path


def run_onnxq(onnxq, model, feeds, outdir, runs, threads, extra=()):
    """onnxq run --time: (median ms, min ms, its 'kernels:' line: GEMM kernels, OpenBLAS core)."""
    args = [onnxq, "run", model, "-o", outdir, "--time", str(runs), "--threads", str(threads)]
    for f in feeds:
        args += ["-i", f]
    p = subprocess.run(args + list(extra), capture_output=True, text=True, env=clean_env())
    if p.returncode != 0:
        die("onnxq run failed on %s:\n%s" % (model, p.stderr))
    mt = re.search(r"median ([0-9.]+) ms, min ([0-9.]+) ms", p.stdout)
    core = re.search(r"^kernels: (.*)$", p.stdout, re.M)
    if not mt:
        die("no latency line in onnxq's output:\n" + p.stdout)
    return float(mt.group(1)), float(mt.group(2)), core.group(1).strip() if core else "?"


def run_ort(model, feeds, outdir, runs, threads):
    """onnxruntime through ort_run.js --time: (median ms, min ms)."""
    args = ["node", ORT_RUN, model, outdir] + list(feeds) + ["--threads", str(threads),
                                                             "--time", str(runs)]
    p = subprocess.run(args, capture_output=True, text=True, env=clean_env())
    if p.returncode != 0:
        die("onnxruntime failed on %s:\n%s" % (model, p.stderr))
    js = json.loads(p.stdout.strip().splitlines()[-1])
    return js["median_ms"], js["min_ms"]


def compare_dirs(got_dir, want_dir, lsb=None):
    """Compares every output onnxruntime wrote with onnxq's. Returns a dict:
    rel = max |got - want| / max |want| over all outputs (the error relative to the
    output's scale; an elementwise relative error is meaningless near zero),
    abs = max |got - want|, differ = fraction of elements not bit-equal, and
    lsb = max |got - want| / lsb[name] where a quantization step is known."""
    res = {"rel": 0.0, "abs": 0.0, "differ": 0.0, "lsb": None, "n": 0}
    total = diff = 0
    for f in sorted(os.listdir(want_dir)):
        if not f.endswith(".npy"):
            continue
        want = np.load(os.path.join(want_dir, f))
        gp = os.path.join(got_dir, f)
        if not os.path.exists(gp):
            die("onnxq wrote no %s (onnxruntime did)" % gp)
        got = np.load(gp)
        if got.shape != want.shape or got.dtype != want.dtype:
            die("%s: onnxq %s %s, onnxruntime %s %s" % (f, got.dtype, got.shape, want.dtype,
                                                         want.shape))
        g, w = got.astype(np.float64), want.astype(np.float64)
        d = np.abs(g - w)
        scale = float(np.max(np.abs(w))) if w.size else 0.0
        res["abs"] = max(res["abs"], float(d.max()) if d.size else 0.0)
        if d.size:
            res["rel"] = max(res["rel"], float(d.max()) / scale if scale > 0 else float(d.max()))
        diff += int(np.count_nonzero(got != want))
        total += got.size
        if lsb and f[:-4] in lsb and d.size:
            v = float(d.max()) / lsb[f[:-4]]
            res["lsb"] = v if res["lsb"] is None else max(res["lsb"], v)
        res["n"] += 1
    if res["n"] == 0:
        die("onnxruntime wrote no outputs in " + want_dir)
    res["differ"] = diff / total if total else 0.0
    return res


def merge_cmp(a, b):
    if a is None:
        return b
    out = dict(a)
    for k in ("rel", "abs", "differ"):
        out[k] = max(a[k], b[k])
    if b["lsb"] is not None:
        out["lsb"] = b["lsb"] if a["lsb"] is None else max(a["lsb"], b["lsb"])
    return out


def measure(onnxq, model, feeds, workdir, tag, reps, runs, threads, lsb=None, extra=()):
    """Interleaves `reps` processes of onnxq and of onnxruntime (alternating which
    goes first), each timing `runs` runs; compares the outputs after every pair.
    Returns the per-process figures and the worst comparison."""
    oq_dir = os.path.join(workdir, "out", tag, "onnxq")
    ort_dir = os.path.join(workdir, "out", tag, "ort")
    os.makedirs(oq_dir, exist_ok=True)
    os.makedirs(ort_dir, exist_ok=True)
    oq, ort, cores, cmp = [], [], set(), None
    for r in range(reps):
        order = ("oq", "ort") if r % 2 == 0 else ("ort", "oq")
        for who in order:
            if who == "oq":
                med, mn, core = run_onnxq(onnxq, model, feeds, oq_dir, runs, threads, extra)
                oq.append((med, mn))
                cores.add(core)
            else:
                ort.append(run_ort(model, feeds, ort_dir, runs, threads))
        cmp = merge_cmp(cmp, compare_dirs(oq_dir, ort_dir, lsb))
    s = {
        "oq_min": min(m for _, m in oq), "oq_med": statistics.median(m for m, _ in oq),
        "ort_min": min(m for _, m in ort), "ort_med": statistics.median(m for m, _ in ort),
        "cores": sorted(cores), "cmp": cmp,
    }
    s["ratio_med"] = s["oq_med"] / s["ort_med"]
    s["ratio_min"] = s["oq_min"] / s["ort_min"]
    return s


def fmt_ms(v):
    return "%.1f" % v if v >= 10 else "%.2f" % v


def print_summary(kernels, ratios, target, bad, tol):
    """The lines after a latency table: onnxq's kernels, the load, how many
    configurations met the target, and the output check. Returns the exit
    status: 1 when an output disagreed (bad lists them), else 0."""
    print()
    print("onnxq kernels (OPENBLAS_* unset): %s" % ", ".join(sorted(kernels)))
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
    print("configurations within %.1fx (median): %d of %d" % (
        target, sum(r <= target for r in ratios), len(ratios)))
    if bad:
        print("OUTPUT MISMATCH (tolerance %.1g):\n  %s" % (tol, "\n  ".join(bad)))
        return 1
    print("outputs: all agree with onnxruntime within %.1g (max|diff| / max|ort|)" % tol)
    return 0
