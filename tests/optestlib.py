"""Running one-graph ONNX models through `onnxq run` for the operator tests
(test_ops_data.py, test_ops_pool_norm_resize.py): numpy dtypes as ONNX
element types, and a graph built with onnx.helper, saved, run and its outputs
read back."""
import os
import subprocess
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

NP2ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
    np.dtype(np.float16): TensorProto.FLOAT16, np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int16): TensorProto.INT16,
    np.dtype(np.uint16): TensorProto.UINT16, np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.uint32): TensorProto.UINT32, np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.uint64): TensorProto.UINT64, np.dtype(np.bool_): TensorProto.BOOL,
}


def value_info(name, arr):
    """A graph input typed and shaped like arr."""
    return helper.make_tensor_value_info(name, NP2ONNX[arr.dtype], list(arr.shape))


def run_graph(exe, nodes, inputs, inits, opset, out_names, threads=4):
    """Runs nodes as one graph in onnxq (exe): inputs and inits map names to
    arrays; the outputs out_names are left untyped. Returns a dict name ->
    array, or onnxq's error text when it fails."""
    graph = helper.make_graph(
        nodes, "g", [value_info(k, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in out_names],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.onnx")
        with open(path, "wb") as f:
            f.write(model.SerializeToString())
        args = [exe, "run", path, "-o", os.path.join(d, "out"), "--threads", str(threads)]
        for k, v in inputs.items():
            np.save(os.path.join(d, k + ".npy"), v)
            args += ["-i", "%s=%s" % (k, os.path.join(d, k + ".npy"))]
        p = subprocess.run(args, capture_output=True, text=True)
        if p.returncode != 0:
            return p.stderr.strip()
        return {o: np.load(os.path.join(d, "out", o + ".npy")) for o in out_names}
