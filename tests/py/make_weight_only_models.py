"""Write small float models with the weight shapes weight-only quantization must handle, for the tests that
compare onnxq's weight-only models with ONNX Runtime's MatMulNBitsQuantizer.

Usage: python tests/py/make_weight_only_models.py OUTDIR [--reshape | --format qdq]

Writes OUTDIR/<case>.onnx (opset 17, IR 8) and prints the case names, one per line. Each model reads a float
input "x" (and "ids" for the Gather cases) and writes "y":

* kpad:    K = 100, not a multiple of any block size (the last block is padded);
* even:    K = 128 (4 blocks of 32: an even block count);
* odd:     K = 96 (3 blocks of 32: ORT's RTN and k-quant crash packing zero points);
* n1:      N = 1, one output column;
* ksmall:  K = 10, smaller than the smallest block;
* rank3:   B is [1, 64, 16] and A has rank 3 (MatMulNBits needs no reshape);
* fp16:    float16 activations and weight (scales are float16 too);
* shared:  one weight read by two MatMuls (stored once);
* subgraph: a MatMul inside an If branch reading a weight of the main graph;
* gather:  a Gather on a [50, 64] float table (an embedding) followed by a MatMul.

With --reshape, instead, the weights whose MatMulNBits output needs MatMul's rank restored (ORT's tool and
onnxq each add a shape chain, different ones):
* rank4a2: B is [1, 1, 64, 16] and A [3, 64] (output [1, 1, 3, 16]);
* rank3unknown: B is [1, 64, 16] and A a Relu output with no declared shape (output [1, 2, 16]);
* rank3inferred: the same with A of rank 3: inference knows it, so onnxq writes no reshape.

With --format qdq (the QDQ form needs opset 21, so the model is converted first), one more listed case and one
unlisted model:
* old_opset:     opset 11, a MatMul between an Unsqueeze (axes attribute) and a Softmax on axis 1 of a rank-3
                 value, both of which change meaning by opset 21 (onnxq rewrites them, ORT's tool does not);
* unconvertible: opset 18, a MatMul then a GroupNormalization (per-group scale and bias, which onnxq cannot
                 convert to opset 21): the conversion is refused, naming the node `gn`.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(5)


def weight(name, shape, dtype=np.float32):
    # Heavy-ish tails so blocks differ in range, as trained weights do.
    w = RNG.standard_normal(shape) * RNG.uniform(0.02, 0.2, size=shape[-1:])
    return numpy_helper.from_array(w.astype(dtype), name)


def model(nodes, inits, inputs, out_type=TensorProto.FLOAT, out_shape=None):
    g = helper.make_graph(
        nodes, "g", inputs, [helper.make_tensor_value_info("y", out_type, out_shape)], initializer=inits
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    # The checker wants shaped main-graph outputs: take them from shape inference.
    inferred = onnx.shape_inference.infer_shapes(m)
    m.graph.ClearField("output")
    m.graph.output.extend(inferred.graph.output)
    onnx.checker.check_model(m, full_check=True)
    return m


def x(shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info("x", t, shape)


def matmul(k, n, a_shape):
    return model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", [k, n])], [x(a_shape)])


def cases():
    yield "kpad", matmul(100, 24, [2, 100])
    yield "even", matmul(128, 16, [1, 3, 128])
    yield "odd", matmul(96, 16, [1, 3, 96])
    yield "n1", matmul(64, 1, [4, 64])
    yield "ksmall", matmul(10, 8, [4, 10])
    yield "rank3", model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", [1, 64, 16])], [x([2, 5, 64])]
    )
    yield "fp16", model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [weight("w", [64, 32], np.float16)],
        [x([1, 4, 64], TensorProto.FLOAT16)],
        TensorProto.FLOAT16,
    )
    yield "shared", model(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"], name="mm_a"),
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("MatMul", ["r", "w"], ["h2"], name="mm_b"),
            helper.make_node("Add", ["h", "h2"], ["y"], name="add"),
        ],
        [weight("w", [64, 32])],
        [x([3, 64])],
    )
    branch = lambda name, src: helper.make_graph(  # noqa: E731
        [helper.make_node("MatMul", [src, "w"], [f"{name}_y"], name=f"{name}_mm")],
        name,
        [],
        [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)],
    )
    yield "subgraph", model(
        [
            helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
            helper.make_node("Greater", ["s", "zero"], ["c"], name="gt"),
            helper.make_node(
                "If", ["c"], ["y"], name="if", then_branch=branch("then", "x"), else_branch=branch("else", "x")
            ),
        ],
        [weight("w", [64, 32]), numpy_helper.from_array(np.array(0, np.float32), "zero")],
        [x([2, 64])],
    )
    yield "gather", model(
        [
            helper.make_node("Gather", ["table", "ids"], ["e"], name="embed", axis=0),
            helper.make_node("MatMul", ["e", "w"], ["y"], name="mm"),
        ],
        [weight("table", [50, 64]), weight("w", [64, 32])],
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 7])],
    )


def reshape_cases():
    yield "rank4a2", model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", [1, 1, 64, 16])], [x([3, 64])]
    )
    yield "rank3unknown", model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("MatMul", ["r", "w"], ["y"], name="mm")],
        [weight("w", [1, 64, 16])],
        [x([2, 64])],
    )
    # A's rank (3) is not declared but inferred: MatMulNBits needs no reshape.
    yield "rank3inferred", model(
        [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("MatMul", ["r", "w"], ["y"], name="mm")],
        [weight("w", [1, 64, 16])],
        [x([1, 2, 64])],
    )


def qdq_cases():
    mm = helper.make_node("MatMul", ["u", "w"], ["h"], name="mm")
    nodes = [
        helper.make_node("Unsqueeze", ["x"], ["u"], name="unsq", axes=[0]),
        mm,
        helper.make_node("Softmax", ["h"], ["y"], name="softmax", axis=1),
    ]
    m = helper.make_model(
        helper.make_graph(nodes, "g", [x([3, 64])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32])],
                          initializer=[weight("w", [64, 32])]),
        opset_imports=[helper.make_opsetid("", 11)],
        ir_version=6,
    )
    onnx.checker.check_model(m, full_check=True)
    yield "old_opset", m, True
    gn = helper.make_node("GroupNormalization", ["h3", "gs", "gb"], ["y"], name="gn", num_groups=2)
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"), helper.make_node("Unsqueeze", ["h", "ax"], ["h3"], name="unsq"), gn],
        "g",
        [x([4, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32])],
        initializer=[weight("w", [64, 32]), numpy_helper.from_array(np.ones(2, np.float32), "gs"),
                     numpy_helper.from_array(np.zeros(2, np.float32), "gb"), numpy_helper.from_array(np.array([0], np.int64), "ax")],
    )
    # GroupNormalization-18 is deprecated since opset 21, so today's checker refuses it: not checked.
    yield "unconvertible", helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8), False


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, m in reshape_cases() if "--reshape" in sys.argv[2:] else cases():
        onnx.save(m, out / f"{name}.onnx")
        print(name)
    if sys.argv[2:4] == ["--format", "qdq"]:
        for name, m, listed in qdq_cases():
            onnx.save(m, out / f"{name}.onnx")
            if listed:
                print(name)


if __name__ == "__main__":
    main()
