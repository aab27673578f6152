#!/usr/bin/python3
"""PyTorch's own int8 (the anchor of onnxq's accuracy targets) against fp32,
per bundled model: top-1 of both and their prediction agreement.

The weights are loaded from models/ARCH.onnx into the torch architecture of
train_fashion.py (the mixer's MatMul weights, renamed and stored transposed by
the exporter's constant folding, are mapped back in graph order), the fp32
top-1 is checked against the recorded one, and PyTorch's FX-graph-mode PTQ is
run exactly as train_fashion.py runs it (onednn backend, its default qconfig
mapping, one forward pass over the 500 calibration images); its top-1 must
reproduce the recorded `pytorch_ptq.int8_test_accuracy`. Writes nothing.

Needs Debian's python with torch, numpy and onnx, and dataset-fashion-mnist
(as train_fashion.py).

usage: /usr/bin/python3 models/ptq_agreement.py [ARCH ...]   (default: all four)"""
import copy
import json
import os
import sys

import numpy as np
import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_fashion as tf  # noqa: E402


def load_mixer(model, path):
    """The mixer's weights: initializers by name, the MatMul weights (exported as
    onnx::MatMul_N, [in, out]) in graph order: per block token_fc1, token_fc2,
    channel_fc1, channel_fc2, then score."""
    m = onnx.load(path)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    mm = [n.input[1] for n in m.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    names = [f"blocks.{b}.{fc}.weight" for b in range(len(model.blocks))
             for fc in ("token_fc1", "token_fc2", "channel_fc1", "channel_fc2")]
    names.append("score.weight")
    if len(mm) != len(names):
        raise RuntimeError(f"{path}: {len(mm)} MatMul weights, expected {len(names)}")
    for k, w in zip(names, mm):
        inits[k] = inits[w].T
    for k, v in model.state_dict().items():
        if k not in inits or tuple(inits[k].shape) != tuple(v.shape):
            raise RuntimeError(f"{path}: no initializer of the right shape for {k}")
        v.copy_(torch.from_numpy(np.array(inits[k])))


def predictions(model, x, batch=1000):
    with torch.no_grad():
        return torch.cat([model(x[i:i + batch]).argmax(1) for i in range(0, len(x), batch)])


def ptq(model, x_cal, backend):
    """As train_fashion.pytorch_ptq quantizes (prepare_fx, one calibration
    pass, convert_fx)."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = backend
    prepared = prepare_fx(copy.deepcopy(model).eval(), get_default_qconfig_mapping(backend),
                          example_inputs=(x_cal[:1],))
    with torch.no_grad():
        prepared(x_cal)
    return convert_fx(prepared)


def main():
    archs = sys.argv[1:] or ["lenet", "resnet", "mobilenetv2", "mixer"]
    torch.set_num_threads(2)
    x_tr_u8, _, x_te_u8, y_te_u8 = tf.load_fashion(tf.DATA_DIR_DEFAULT)
    status = 0
    print("| model | fp32 | PyTorch int8 | agreement |\n|---|---:|---:|---:|")
    for arch in archs:
        meta = json.load(open(os.path.join(HERE, arch + ".json")))
        mean, std = (np.float32(meta["normalisation"][k]) for k in ("mean", "std"))

        def prep(x):
            x = (x.astype(np.float32) / np.float32(255.0) - mean) / std
            return torch.from_numpy(np.ascontiguousarray(x[:, None, :, :]))
        x_te, y_te = prep(x_te_u8), torch.from_numpy(y_te_u8.astype(np.int64))
        x_cal = prep(x_tr_u8)[torch.from_numpy(np.sort(tf.calibration_indices()))]
        model = tf.ARCHS[arch]["cls"]().eval()
        path = os.path.join(HERE, arch + ".onnx")
        with torch.no_grad():
            (load_mixer if arch == "mixer" else tf.load_from_onnx)(model, path)
        p32 = predictions(model, x_te)
        p8 = predictions(ptq(model, x_cal, meta["pytorch_ptq"]["backend"]), x_te)
        a32 = float((p32 == y_te).float().mean())
        a8 = float((p8 == y_te).float().mean())
        agree = float((p32 == p8).float().mean())
        print(f"| {arch} | {100 * a32:.2f}% | {100 * a8:.2f}% | {100 * agree:.2f}% |", flush=True)
        for what, got, want in (("fp32", a32, meta["fp32_test_accuracy_torch"]),
                                ("PyTorch int8", a8, meta["pytorch_ptq"]["int8_test_accuracy"])):
            if round(got * 10000) != round(want * 10000):
                print(f"{arch}: {what} top-1 {got:.4f} is not the recorded {want:.4f}",
                      file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
