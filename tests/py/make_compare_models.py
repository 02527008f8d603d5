"""Small models for `onnxq compare`'s bad-input tests, written to the folder given as argv[1]:

- conv4.onnx / conv8.onnx: input `x` [1,3,8,8] -> Conv (4 or 8 channels, weight `w`) -> Relu ->
  GlobalAveragePool -> Flatten -> output `y`: same inputs and outputs, weights of other sizes
  (a quantized conv8 is not a quantization of conv4);
- renamed.onnx: conv4 with every tensor and node renamed but `x` and `y` (nothing matches);
- other_input.onnx: conv4 with its input named `image`;
- data.npz: 4 samples for `x`; bad_data.npz: 4 samples of the wrong shape.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def conv_model(channels, prefix="", input_name="x"):
    rng = np.random.default_rng(channels)
    w = rng.standard_normal((channels, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(channels).astype(np.float32)
    p = prefix
    nodes = [
        helper.make_node("Conv", [input_name, p + "w", p + "b"], [p + "c"], name=p + "conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", [p + "c"], [p + "r"], name=p + "relu"),
        helper.make_node("GlobalAveragePool", [p + "r"], [p + "g"], name=p + "pool"),
        helper.make_node("Flatten", [p + "g"], ["y"], name=p + "flatten"),
    ]
    g = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels])],
        [numpy_helper.from_array(w, p + "w"), numpy_helper.from_array(b, p + "b")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(conv_model(4), out / "conv4.onnx")
    onnx.save(conv_model(8), out / "conv8.onnx")
    onnx.save(conv_model(4, prefix="other_"), out / "renamed.onnx")
    onnx.save(conv_model(4, input_name="image"), out / "other_input.onnx")
    rng = np.random.default_rng(0)
    np.savez(out / "data.npz", x=rng.standard_normal((4, 1, 3, 8, 8)).astype(np.float32))
    np.savez(out / "bad_data.npz", x=rng.standard_normal((4, 1, 3, 5, 5)).astype(np.float32))


if __name__ == "__main__":
    main()
