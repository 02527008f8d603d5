"""Write one tiny float model per op of onnxq's static (QDQ) registry, each with calibration samples, for the
per-op test: quantized with `onnxq quantize --mode static`, every model must keep its outputs close to the
float model's (SQNR, tests/py/sqnr.py).

Usage: python tests/py/make_static_op_models.py OUTDIR [--ort-bugs]

With --ort-bugs it writes instead the models on which ONNX Runtime's tool goes wrong (reference §11):
GemmAlphaBeta (alpha=2, beta=0.5: ORT drops beta), PerChannelOpset12 (a Conv at opset 12: ORT writes per-channel
`axis` attributes the opset lacks) and ReluSharedProducer (a Conv feeding a Relu and an Add: the Relu must stay).

Writes OUTDIR/<Op>/model.onnx and OUTDIR/<Op>/calib.npz (input "x", 16 samples; first axis = sample) and
prints the op names, one per line. Every model is x -> Mul(x, c) -> <Op> -> y (plus what the op needs), so the
op's input is a quantized activation, as in a real network; weights are seeded random initializers.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
RNG = np.random.default_rng(7)


def const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def weight(name, shape, scale=0.5):
    return const(name, (RNG.standard_normal(shape) * scale).astype(np.float32))


def model(op, x_shape, nodes, inits, out_shape=None, out_type=TensorProto.FLOAT, opset=OPSET):
    """x -> Mul(x, 1.5) -> nodes (reading "m", writing "y")."""
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "c"], ["m"], name="pre_mul")] + nodes,
        f"tiny_{op}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", out_type, out_shape)],
        [const("c", np.array(1.5, np.float32))] + inits,
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    # The checker wants the output's shape: take it from shape inference.
    if out_shape is None:
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        m.graph.output[0].CopyFrom(inferred.graph.output[0])
    onnx.checker.check_model(m, full_check=True)
    return m


def cases():
    img = [1, 4, 8, 8]
    n = lambda op, ins, outs=("y",), **attrs: helper.make_node(op, list(ins), list(outs), name=f"the_{op}", **attrs)
    yield "Conv", img, [n("Conv", ["m", "w", "b"], pads=[1, 1, 1, 1])], [weight("w", [6, 4, 3, 3]), weight("b", [6])]
    yield "ConvTranspose", img, [n("ConvTranspose", ["m", "w", "b"])], [weight("w", [4, 3, 3, 3]), weight("b", [3])]
    yield "Gemm", [2, 16], [n("Gemm", ["m", "w", "b"], transB=1)], [weight("w", [8, 16]), weight("b", [8])]
    yield "MatMul", [2, 16], [n("MatMul", ["m", "w"])], [weight("w", [16, 8])]
    yield "Relu", img, [n("Relu", ["m"])], []
    yield "Clip", img, [n("Clip", ["m", "lo", "hi"])], [const("lo", np.float32(-0.5)), const("hi", np.float32(1.0))]
    yield "Reshape", img, [n("Reshape", ["m", "shape"])], [const("shape", np.array([1, -1], np.int64))]
    yield "Transpose", img, [n("Transpose", ["m"], perm=[0, 2, 3, 1])], []
    yield "Squeeze", img, [n("Squeeze", ["m", "axes"])], [const("axes", np.array([0], np.int64))]
    yield "Unsqueeze", img, [n("Unsqueeze", ["m", "axes"])], [const("axes", np.array([0], np.int64))]
    yield "Flatten", img, [n("Flatten", ["m"])], []
    yield "AveragePool", img, [n("AveragePool", ["m"], kernel_shape=[2, 2])], []
    yield "MaxPool", img, [n("MaxPool", ["m"], kernel_shape=[2, 2])], []
    yield "Slice", img, [n("Slice", ["m", "st", "en", "ax"])], [const("st", np.array([1], np.int64)),
                                                                 const("en", np.array([3], np.int64)),
                                                                 const("ax", np.array([1], np.int64))]
    yield "Resize", img, [n("Resize", ["m", "", "scales"], mode="nearest")], [
        const("scales", np.array([1, 1, 2, 2], np.float32))]
    yield "Split", img, [n("Split", ["m"], ["y", "y2"], axis=1)], []
    yield "Gather", [2, 16], [n("Gather", ["m", "idx"], axis=1)], [const("idx", np.array([0, 3, 5, 7], np.int64))]
    yield "GatherElements", [2, 16], [n("GatherElements", ["m", "idx"], axis=1)], [
        const("idx", np.array([[0, 3], [5, 7]], np.int64))]
    yield "Where", [2, 16], [n("Greater", ["m", "zero"], ["cond"]), n("Where", ["cond", "m", "other"])], [
        const("zero", np.float32(0.0)), weight("other", [2, 16])]
    yield "InstanceNormalization", img, [n("InstanceNormalization", ["m", "s", "b"])], [
        weight("s", [4]), weight("b", [4])]
    yield "LayerNormalization", [2, 16], [n("LayerNormalization", ["m", "s", "b"])], [
        weight("s", [16]), weight("b", [16])]
    yield "BatchNormalization", img, [n("BatchNormalization", ["m", "s", "b", "mean", "var"])], [
        weight("s", [4]), weight("b", [4]), weight("mean", [4]), const("var", np.ones(4, np.float32))]
    yield "Pad", img, [n("Pad", ["m", "pads"], mode="reflect")], [const("pads", np.array([0, 0, 1, 1, 0, 0, 1, 1],
                                                                                        np.int64))]
    yield "Add", img, [n("Add", ["m", "w"])], [weight("w", [1, 4, 1, 1])]
    yield "Mul", img, [n("Mul", ["m", "w"])], [weight("w", [1, 4, 1, 1])]
    yield "LeakyRelu", img, [n("LeakyRelu", ["m"], alpha=0.1)], []
    yield "Sigmoid", img, [n("Sigmoid", ["m"])], []
    yield "GlobalAveragePool", img, [n("GlobalAveragePool", ["m"])], []
    yield "Concat", img, [n("Concat", ["m", "w"], axis=1)], [weight("w", [1, 2, 8, 8])]
    yield "Softmax", [2, 16], [n("Softmax", ["m"], axis=1)], []
    yield "CumSum", [2, 16], [n("CumSum", ["m", "ax"])], [const("ax", np.array(1, np.int64))]
    yield "TopK", [2, 16], [n("TopK", ["m", "k"], ["y", "idx"])], [const("k", np.array([4], np.int64))]
    yield "ArgMax", [2, 16], [n("ArgMax", ["m"], axis=1)], []
    # Quantized only on request (--op-types): ONNX Runtime's default list leaves them float.
    yield "GatherND", [2, 16], [n("GatherND", ["m", "idx"])], [const("idx", np.array([[0, 3], [1, 7]], np.int64))]
    yield "Expand", [2, 16], [n("Expand", ["m", "shape"])], [const("shape", np.array([3, 2, 16], np.int64))]
    yield "Tile", [2, 16], [n("Tile", ["m", "reps"])], [const("reps", np.array([2, 3], np.int64))]
    yield "DepthToSpace", img, [n("DepthToSpace", ["m"], blocksize=2)], []
    yield "SpaceToDepth", img, [n("SpaceToDepth", ["m"], blocksize=2)], []
    yield "ReduceMax", img, [n("ReduceMax", ["m"], axes=[2, 3])], []
    yield "ReduceMin", img, [n("ReduceMin", ["m"], axes=[2, 3])], []
    yield "ReduceMean", img, [n("ReduceMean", ["m"], axes=[2, 3])], []


def ort_bug_cases():
    img = [1, 4, 8, 8]
    n = lambda op, ins, outs=("y",), **attrs: helper.make_node(op, list(ins), list(outs), name=f"the_{op}", **attrs)
    yield "GemmAlphaBeta", [2, 16], [n("Gemm", ["m", "w", "b"], alpha=2.0, beta=0.5)], [
        weight("w", [16, 8]), weight("b", [8], scale=4.0)], OPSET, None
    yield "PerChannelOpset12", img, [n("Conv", ["m", "w", "b"])], [weight("w", [6, 4, 3, 3]), weight("b", [6])], 12, [
        1, 6, 6, 6]
    yield "ReluSharedProducer", img, [n("Conv", ["m", "w", "b"], ["cv"]), n("Relu", ["cv"], ["r"]),
                                      n("Add", ["r", "cv"])], [weight("w", [4, 4, 1, 1]), weight("b", [4])], OPSET, None


def main():
    out = Path(sys.argv[1])
    chosen = ort_bug_cases() if "--ort-bugs" in sys.argv else ((*c, OPSET, None) for c in cases())
    for op, x_shape, nodes, inits, opset, out_shape in chosen:
        out_type = TensorProto.INT64 if op == "ArgMax" else TensorProto.FLOAT
        m = model(op, x_shape, nodes, inits, out_shape=out_shape, out_type=out_type, opset=opset)
        (out / op).mkdir(parents=True, exist_ok=True)
        onnx.save(m, str(out / op / "model.onnx"))
        samples = RNG.standard_normal([16] + x_shape).astype(np.float32)
        np.savez(out / op / "calib.npz", x=samples)
        print(op)


if __name__ == "__main__":
    main()
