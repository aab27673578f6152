#!/usr/bin/python3
"""Export torchvision classifiers with random weights to ONNX, for the model tests.

Usage: /usr/bin/python3 export_torchvision.py OUTDIR [MODEL ...]

Needs Debian's python3-torch, python3-torchvision, python3-onnx and python3-numpy
(no network: every model is built with weights=None and seeded random weights).

For each model NAME it writes into OUTDIR:
  NAME.onnx        the default eval-mode export: BatchNormalization folded into Conv
  NAME.bn.onnx     the same weights with the BatchNormalization nodes kept (1 output each);
                   not for squeezenet1_1, which has no BatchNorm (its one export is NAME.onnx)
  NAME.input.npy   a fixed random input, float32 [2,3,224,224]
  NAME.torch.npy   PyTorch's own output for that input, float32 [2,1000]
  NAME.torch64.npy PyTorch's output for that input computed in float64 (the model and
                   the input converted to double): the model's function without float32
                   rounding, the yardstick of the graph-pass tests

Both .onnx files have input 'input' [N,3,224,224] (N symbolic) and output 'output',
opset 13, and pass onnx.checker. Files that already exist are kept: a model whose files
are all present is skipped, so a build directory caches them. Files are written
to a temporary name and renamed, so an interrupted run leaves no partial file.

BatchNorm is made non-trivial before export, so that folding it (ours or the
exporter's) has something to get wrong: the affine weight and bias are drawn at random,
then the running statistics are measured on random batches (forward passes with only
the BN layers in train mode, cumulative average), which keeps activations near unit
scale through the depth of the network.
"""
import os
import sys
import time
import warnings

import numpy as np
import onnx
import torch
import torchvision

OPSET = 13
BATCH = 2

# name -> (constructor, extra keyword arguments, seed)
MODELS = {
    "resnet18": (torchvision.models.resnet18, {}, 1),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, {}, 2),
    "mobilenet_v3_small": (torchvision.models.mobilenet_v3_small, {}, 3),
    "squeezenet1_1": (torchvision.models.squeezenet1_1, {}, 4),
    "shufflenet_v2_x1_0": (torchvision.models.shufflenet_v2_x1_0, {}, 5),
    "efficientnet_b0": (torchvision.models.efficientnet_b0, {}, 6),
    "googlenet": (torchvision.models.googlenet,
                  {"aux_logits": False, "init_weights": True}, 7),
}


NO_BATCHNORM = {"squeezenet1_1"}


def files_for(outdir, name):
    f = {
        "folded": os.path.join(outdir, name + ".onnx"),
        "bn": os.path.join(outdir, name + ".bn.onnx"),
        "input": os.path.join(outdir, name + ".input.npy"),
        "torch": os.path.join(outdir, name + ".torch.npy"),
        "torch64": os.path.join(outdir, name + ".torch64.npy"),
    }
    if name in NO_BATCHNORM:
        del f["bn"]
    return f


def build(name):
    ctor, kwargs, seed = MODELS[name]
    torch.manual_seed(seed)
    model = ctor(weights=None, **kwargs)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    gen = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        # Random affine parameters first, so BN is neither identity nor a pure
        # normalisation; the statistics measured next then see the activations that
        # the eval-mode model will produce.
        for m in bns:
            m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)       # [0.5, 1.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
            m.reset_running_stats()
            m.momentum = None               # cumulative average over the batches
        # Only the BN layers in train mode: dropout and stochastic depth stay off.
        model.eval()
        for m in bns:
            m.train()
        for _ in range(4):
            model(torch.randn(8, 3, 224, 224, generator=gen))
        for m in bns:
            m.momentum = 0.1
    model.eval()
    return model, seed, len(bns)


def atomic(path, write):
    tmp = path + ".tmp%d" % os.getpid()
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def export(model, x, path, keep_bn):
    kwargs = dict(
        input_names=["input"], output_names=["output"], opset_version=OPSET,
        dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
        do_constant_folding=True)
    if keep_bn:
        # PRESERVE with an eval-mode model: the exporter skips its eval-mode BN fusion
        # and emits inference BatchNormalization (one output).
        kwargs["training"] = torch.onnx.TrainingMode.PRESERVE
    atomic(path, lambda tmp: torch.onnx.export(model, x, tmp, **kwargs))


def check(path, keep_bn):
    onnx.checker.check_model(path, full_check=True)
    m = onnx.load(path)
    bn = [n for n in m.graph.node if n.op_type == "BatchNormalization"]
    if keep_bn:
        if not bn:
            raise SystemExit("%s: no BatchNormalization node" % path)
        bad = [n.name for n in bn if len([o for o in n.output if o]) != 1]
        if bad:
            raise SystemExit("%s: BatchNormalization with more than one output: %s" % (path, bad[:3]))
    elif bn:
        raise SystemExit("%s: %d BatchNormalization nodes left after folding" % (path, len(bn)))
    ins = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
           for i in m.graph.input]
    outs = [o.name for o in m.graph.output]
    if ins != [("input", ["N", 3, 224, 224])] or outs != ["output"]:
        raise SystemExit("%s: unexpected inputs %s / outputs %s" % (path, ins, outs))
    ops = {}
    for n in m.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return len(bn), ops


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    outdir = sys.argv[1]
    names = sys.argv[2:] or list(MODELS)
    for n in names:
        if n not in MODELS:
            raise SystemExit("unknown model %r (known: %s)" % (n, ", ".join(MODELS)))
    os.makedirs(outdir, exist_ok=True)
    # PRESERVE warns about constant folding for models in training mode; ours is in eval.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding")
    torch.set_grad_enabled(False)
    for name in names:
        f = files_for(outdir, name)
        if all(os.path.exists(p) for p in f.values()):
            print("%-20s cached" % name, flush=True)
            continue
        # Regenerate all files together: the files must come from the same weights.
        t0 = time.time()
        model, seed, nbn = build(name)
        x = np.random.default_rng(seed).standard_normal((BATCH, 3, 224, 224)).astype(np.float32)
        with torch.no_grad():
            y = model(torch.from_numpy(x)).numpy().astype(np.float32)
        if not np.all(np.isfinite(y)):
            raise SystemExit("%s: PyTorch output is not finite" % name)
        if (nbn == 0) != (name in NO_BATCHNORM):
            raise SystemExit("%s: %d BatchNorm layers, NO_BATCHNORM is out of date" % (name, nbn))
        xt = torch.from_numpy(x)
        export(model, xt, f["folded"], keep_bn=False)
        _, ops_f = check(f["folded"], keep_bn=False)
        bn_desc = "no BN variant"
        if "bn" in f:
            export(model, xt, f["bn"], keep_bn=True)
            kept, ops_b = check(f["bn"], keep_bn=True)
            if kept != nbn:
                raise SystemExit("%s: model has %d BatchNorm layers, export kept %d"
                                 % (name, nbn, kept))
            bn_desc = "bn %.1f MB (%d nodes, %d BN)" % (
                os.path.getsize(f["bn"]) / 1e6, sum(ops_b.values()), kept)
        # The input and PyTorch's output last: their presence marks a complete set.
        atomic(f["input"], lambda tmp: np.save(open(tmp, "wb"), x))
        atomic(f["torch"], lambda tmp: np.save(open(tmp, "wb"), y))
        y64 = model.double()(torch.from_numpy(x.astype(np.float64))).numpy()
        atomic(f["torch64"], lambda tmp: np.save(open(tmp, "wb"), y64))
        print("%-20s %.1fs  folded %.1f MB (%d nodes)  %s  output %s |y|max %.3g  ops: %s" % (
                  name, time.time() - t0,
                  os.path.getsize(f["folded"]) / 1e6, sum(ops_f.values()), bn_desc,
                  list(y.shape), float(np.abs(y).max()),
                  " ".join("%s:%d" % kv for kv in sorted(ops_f.items()))), flush=True)


if __name__ == "__main__":
    main()
