"""Write small float models, each with the pattern one of `onnxq preprocess`'s clean-ups rewrites, and their
calibration samples (OUTDIR/<case>.npz, key "x", 4 samples), for the preprocess tests.

Usage: python tests/py/make_preprocess_models.py OUTDIR        (prints the case names)

* conv_bn:  x [1, 3, 8, 8] -> Conv(3x3, pads 1, bias) -> BatchNormalization -> Relu -> Conv(1x1, no bias)
            -> BatchNormalization -> y: both pairs fold (2 BatchNormalization fewer);
* cleanups: x [1, 16] -> Identity -> Relu -> Dropout (inference) -> Add(c1) -> Add(c2) -> y, where c1 and c2 are equal
            initializers (merged), a Sigmoid branch nothing reads (removed), and the second Add's constant a Constant
            node (made an initializer);
* shape_fold: x [2, 3, 4] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> y [2, 12]: the shape
            subgraph folds to a constant (Shape, Gather, Unsqueeze and Concat removed).
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(5)


def arr(name, shape, lo=None):
    a = RNG.standard_normal(shape).astype(np.float32)
    if lo is not None:
        a = np.abs(a) + lo
    return numpy_helper.from_array(a, name)


def save(out, name, nodes, inits, x_shape, y_shape):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out / f"{name}.onnx")
    np.savez(out / f"{name}.npz", x=RNG.standard_normal([4] + x_shape).astype(np.float32))
    print(name)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    mk = helper.make_node
    bn = lambda p, c: [arr(f"{p}_scale", [c]), arr(f"{p}_bias", [c]), arr(f"{p}_mean", [c]), arr(f"{p}_var", [c], 0.5)]  # noqa: E731
    save(out, "conv_bn", [
        mk("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        mk("BatchNormalization", ["c1", "bn1_scale", "bn1_bias", "bn1_mean", "bn1_var"], ["n1"], epsilon=1e-3, name="bn1"),
        mk("Relu", ["n1"], ["r1"], name="relu"),
        mk("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        mk("BatchNormalization", ["c2", "bn2_scale", "bn2_bias", "bn2_mean", "bn2_var"], ["y"], name="bn2"),
    ], [arr("w1", [4, 3, 3, 3]), arr("b1", [4]), *bn("bn1", 4), arr("w2", [5, 4, 1, 1]), *bn("bn2", 5)], [1, 3, 8, 8], [1, 5, 8, 8])
    c = RNG.standard_normal(16).astype(np.float32)
    save(out, "cleanups", [
        mk("Identity", ["x"], ["i"], name="identity"),
        mk("Relu", ["i"], ["r"], name="relu"),
        mk("Dropout", ["r"], ["d"], name="dropout"),
        mk("Add", ["d", "c1"], ["a"], name="add1"),
        mk("Constant", [], ["k"], value=numpy_helper.from_array(c, "k"), name="const"),
        mk("Add", ["a", "c2"], ["a2"], name="add2"),
        mk("Add", ["a2", "k"], ["y"], name="add3"),
        mk("Sigmoid", ["x"], ["unused"], name="dead"),
    ], [numpy_helper.from_array(c, "c1"), numpy_helper.from_array(c.copy(), "c2")], [1, 16], [1, 16])
    save(out, "shape_fold", [
        mk("Shape", ["x"], ["s"], name="shape"),
        mk("Gather", ["s", "zero"], ["n"], axis=0, name="gather"),
        mk("Unsqueeze", ["n", "axes"], ["n1"], name="unsqueeze"),
        mk("Concat", ["n1", "minus1"], ["target"], axis=0, name="concat"),
        mk("Reshape", ["x", "target"], ["y"], name="reshape"),
    ], [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([0], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1")], [2, 3, 4], [2, 12])


if __name__ == "__main__":
    main()
