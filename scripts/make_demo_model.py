"""Write the small deterministic demo model and its calibration feeds.

Usage: python scripts/make_demo_model.py [OUT_DIR]   (default: examples/demo in this repository)

Writes OUT_DIR/model.onnx, a tiny CNN+MLP classifier (opset 17, ir_version 8):
  image float32 [1,3,16,16] -> Conv(8, 3x3, pad 1) -> Relu -> MaxPool 2x2 -> Conv(16, 3x3, pad 1) -> Relu
  -> GlobalAveragePool -> Flatten -> Gemm(16->32) -> Relu -> MatMul(32->10) -> Add -> Softmax -> probs [1,10]
and OUT_DIR/calib.npz (key "image", 16 samples shaped [16,1,3,16,16]). Weights ~ N(0, 0.2) and samples
~ N(0, 1) from a fixed seed; both files are byte-identical between runs (the npz has fixed zip timestamps).
"""
import os
import sys
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "examples", "demo")
rng = np.random.default_rng(2024)


def weight(name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)


initializers = [
    weight("conv1.weight", 8, 3, 3, 3), weight("conv1.bias", 8),
    weight("conv2.weight", 16, 8, 3, 3), weight("conv2.bias", 16),
    weight("fc1.weight", 32, 16), weight("fc1.bias", 32),
    weight("fc2.weight", 32, 10), weight("fc2.bias", 10),
]
nodes = [
    helper.make_node("Conv", ["image", "conv1.weight", "conv1.bias"], ["conv1"], "conv1",
                     kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["conv1"], ["relu1"], "relu1"),
    helper.make_node("MaxPool", ["relu1"], ["pool1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
    helper.make_node("Conv", ["pool1", "conv2.weight", "conv2.bias"], ["conv2"], "conv2",
                     kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    helper.make_node("Relu", ["conv2"], ["relu2"], "relu2"),
    helper.make_node("GlobalAveragePool", ["relu2"], ["gap"], "gap"),
    helper.make_node("Flatten", ["gap"], ["flat"], "flatten", axis=1),
    helper.make_node("Gemm", ["flat", "fc1.weight", "fc1.bias"], ["fc1"], "fc1", transB=1),
    helper.make_node("Relu", ["fc1"], ["relu3"], "relu3"),
    helper.make_node("MatMul", ["relu3", "fc2.weight"], ["fc2_matmul"], "fc2_matmul"),
    helper.make_node("Add", ["fc2_matmul", "fc2.bias"], ["logits"], "fc2_add"),
    helper.make_node("Softmax", ["logits"], ["probs"], "softmax", axis=-1),
]
graph = helper.make_graph(
    nodes, "onnxq_demo",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
    [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
    initializer=initializers,
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnxq-demo",
                          doc_string="Tiny CNN+MLP classifier with random weights, for onnxq examples and tests.")
model.ir_version = 8
helper.set_model_props(model, {"source": "scripts/make_demo_model.py"})

os.makedirs(OUT, exist_ok=True)
onnx.save(model, os.path.join(OUT, "model.onnx"))
samples = rng.standard_normal((16, 1, 3, 16, 16)).astype(np.float32)
with zipfile.ZipFile(os.path.join(OUT, "calib.npz"), "w") as z:  # np.savez would stamp the current time
    with z.open(zipfile.ZipInfo("image.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as f:
        np.lib.format.write_array(f, samples, allow_pickle=False)
print(f"wrote {os.path.join(os.path.normpath(OUT), 'model.onnx')} and calib.npz")
