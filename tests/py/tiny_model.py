"""The save step the tiny-model generators share (make_smooth_models.py, make_equalize_models.py,
make_bias_models.py): one float input "x", output "y" (and any extra outputs), checked by ONNX's
checker, written as OUT/<name>/model.onnx with one .npz per data split (key "x", first axis =
sample), and the name printed.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper


def save(out, name, nodes, inits, x_shape, y_shape, splits, extra_outputs=(), opset=17):
    """splits: {"calib": array, ...} -> calib.npz, ...; extra_outputs: (name, shape) pairs."""
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
        + [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o, shape in extra_outputs],
        inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    onnx.save(m, d / "model.onnx")
    for split, data in splits.items():
        np.savez(d / f"{split}.npz", x=np.asarray(data, dtype=np.float32))
    print(name)
