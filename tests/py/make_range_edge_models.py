"""Write small float models whose activations are calibration edge cases, each with calibration samples,
for the ranges round-trip test (`onnxq calibrate` then `--ranges` must give the `--data` model).

Usage: python tests/py/make_range_edge_models.py OUTDIR

Writes OUTDIR/<case>/model.onnx and OUTDIR/<case>/calib.npz (input "x", 8 samples of [1, 3, 4, 4]; first
axis = sample) and prints the case names, one per line. Every model is x -> Mul(x, 1.5) -> ... -> Conv -> y,
so the edge tensors sit between quantized ops, where static quantization reads their ranges:

* empty: an empty `roi` Constant feeding a Resize (as some exporters write it), and an activation with no
  elements (a Slice to zero channels) concatenated to a non-empty one;
* constant: activations holding one value in every sample: 0 (Mul by 0), 3 and -2;
* nan: an activation that is NaN everywhere (Sqrt of a negative) and one with a NaN in every sample
  (Sqrt of values of both signs), both turned back into numbers by Where(IsNaN(t), ...);
* infinite: an additive -inf mask before a Softmax, and +inf from an overflowing Exp.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SHAPE = [1, 3, 4, 4]
RNG = np.random.default_rng(11)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def conv_tail(src):
    """`src` -> Conv (3 -> 2 channels, 1x1) -> y: the edge tensors feed quantized ops up to here."""
    w = const("w", (RNG.standard_normal([2, 3, 1, 1]) * 0.5).astype(np.float32))
    b = const("b", (RNG.standard_normal([2]) * 0.1).astype(np.float32))
    return [helper.make_node("Conv", [src, "w", "b"], ["y"], name="tail_conv")], [w, b]


def node(op, ins, outs, **attrs):
    return helper.make_node(op, list(ins), list(outs), name=f"{outs[0]}_node", **attrs)


def f32(*values):
    return np.array(values, np.float32)


def empty():
    nodes = [
        node("Slice", ["m", "zero_i", "zero_i", "one_i"], ["no_channels"]),
        node("Concat", ["m", "no_channels"], ["joined"], axis=1),
        node("Constant", [], ["roi"], value=const("roi_value", np.zeros([0], np.float32))),
        node("Resize", ["joined", "roi", "scales"], ["resized"], mode="nearest"),
        node("MaxPool", ["resized"], ["pooled"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits = [const("zero_i", np.array([0], np.int64)), const("one_i", np.array([1], np.int64)),
             const("scales", f32(1, 1, 2, 2))]
    return nodes, inits, "pooled"


def constant():
    nodes = [
        node("Mul", ["m", "zero"], ["zeros"]),
        node("Add", ["zeros", "three"], ["threes"]),
        node("Add", ["zeros", "minus_two"], ["minus_twos"]),
        node("Add", ["m", "threes"], ["a1"]),
        node("Mul", ["a1", "minus_twos"], ["a2"]),
        node("Add", ["a2", "zeros"], ["a3"]),
    ]
    return nodes, [const("zero", f32(0)), const("three", f32(3)), const("minus_two", f32(-2))], "a3"


def nan():
    nodes = [
        node("Abs", ["m"], ["abs"]),
        node("Neg", ["abs"], ["neg"]),
        node("Sub", ["neg", "one"], ["below"]),
        node("Sqrt", ["below"], ["all_nan"]),
        node("Mul", ["all_nan", "two"], ["all_nan_x2"]),
        node("IsNaN", ["all_nan_x2"], ["is_nan"]),
        node("Where", ["is_nan", "m", "all_nan_x2"], ["cleaned"]),
        node("Sqrt", ["m"], ["some_nan"]),
        node("Mul", ["some_nan", "two"], ["some_nan_x2"]),
        node("IsNaN", ["some_nan_x2"], ["is_nan_2"]),
        node("Where", ["is_nan_2", "cleaned", "some_nan_x2"], ["cleaned_2"]),
    ]
    return nodes, [const("one", f32(1)), const("two", f32(2))], "cleaned_2"


def infinite():
    # Column 0 of the mask is always open, so no Softmax row is all -inf.
    keep = np.zeros(SHAPE, bool)
    keep[..., 0] = True
    keep[..., 2] = True
    nodes = [
        node("Where", ["keep", "zero", "minus_inf"], ["mask"]),
        node("Add", ["m", "mask"], ["masked"]),
        node("Softmax", ["masked"], ["probs"], axis=-1),
        node("Mul", ["m", "hundred"], ["big"]),
        node("Exp", ["big"], ["overflow"]),
        node("Mul", ["overflow", "two"], ["overflow_x2"]),
        node("Min", ["overflow_x2", "six"], ["capped"]),
        node("Add", ["probs", "capped"], ["sum"]),
    ]
    inits = [const("keep", keep), const("zero", f32(0)), const("minus_inf", f32(-np.inf)),
             const("hundred", f32(100)), const("two", f32(2)), const("six", f32(6))]
    return nodes, inits, "sum"


CASES = {"empty": empty, "constant": constant, "nan": nan, "infinite": infinite}


def build(name, make):
    body, inits, last = make()
    tail, tail_inits = conv_tail(last)
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "c"], ["m"], name="pre_mul")] + body + tail,
        f"edge_{name}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])],
        [const("c", f32(1.5))] + inits + tail_inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def main():
    out = Path(sys.argv[1])
    for name, make in CASES.items():
        m = build(name, make)
        (out / name).mkdir(parents=True, exist_ok=True)
        onnx.save(m, str(out / name / "model.onnx"))
        samples = RNG.standard_normal([8] + SHAPE).astype(np.float32)
        np.savez(out / name / "calib.npz", x=samples)
        print(name)


if __name__ == "__main__":
    main()
