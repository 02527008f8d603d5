"""Write small float models, each with the pattern one of `onnxq preprocess`'s clean-ups rewrites, and their
calibration samples (OUTDIR/<case>.npz, key "x", 4 samples), for the preprocess tests.

Usage: python tests/py/make_preprocess_models.py OUTDIR        (prints the case names)

* conv_bn:  x [1, 3, 8, 8] -> Conv(3x3, pads 1, bias) -> BatchNormalization -> Relu -> Conv(1x1, no bias)
            -> BatchNormalization -> y: both pairs fold (2 BatchNormalization fewer);
* cleanups: x [1, 16] -> Identity -> Relu -> Dropout (inference) -> Add(c1) -> Add(c2) -> y, where c1 and c2 are equal
            initializers (merged), a Sigmoid branch nothing reads (removed), and the second Add's constant a Constant
            node (made an initializer);
* shape_fold: x [2, 3, 4] -> Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])) -> y [2, 12]: the shape
            subgraph folds to a constant (Shape, Gather, Unsqueeze and Concat removed);
* const_fold: x [2, 8] -> MatMul(x, Transpose(wt)) -> Add(b) -> Div(Sqrt(64)) -> Mul(Cast(int64 3)) -> y [2, 4]: the
            Transpose, Sqrt and Cast fold, then MatMul + Add become one Gemm;
* conv_affine: x [1, 3, 8, 8] -> Conv(bias) -> Mul([4, 1, 1]) -> Add([1, 4, 1, 1]) -> Relu -> Conv(no bias) -> Mul(scalar)
            -> Mul([1, 1, 8, 8]) -> y: the per-channel Mul/Add fold into the Convs (3 nodes fewer), the last Mul varies
            over space and stays;
* eval_ops: x [1] plus, per output, one constant subgraph of the evaluator's ops (negative Gather indices, negative
            Slice steps, Split, Expand, Tile, Range, Where, integer division, float maths, ...) cast to float: every
            subgraph folds, and ONNX Runtime must compute the same outputs from the folded constants.
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
    i64 = lambda v, name: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    save(out, "const_fold", [
        mk("Transpose", ["wt"], ["w"], perm=[1, 0], name="transpose"),
        mk("MatMul", ["x", "w"], ["m"], name="matmul"),
        mk("Add", ["m", "b"], ["a"], name="add"),
        mk("Sqrt", ["c64"], ["s"], name="sqrt"),
        mk("Div", ["a", "s"], ["d"], name="div"),
        mk("Cast", ["k"], ["kf"], to=TensorProto.FLOAT, name="cast"),
        mk("Mul", ["d", "kf"], ["y"], name="mul"),
    ], [arr("wt", [4, 8]), arr("b", [4]), numpy_helper.from_array(np.array(64.0, np.float32), "c64"), i64(3, "k")],
        [2, 8], [2, 4])
    save(out, "conv_affine", [
        mk("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        mk("Mul", ["c1", "s1"], ["m1"], name="mul1"),
        mk("Add", ["t1", "m1"], ["a1"], name="add1"),
        mk("Relu", ["a1"], ["r1"], name="relu"),
        mk("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        mk("Mul", ["c2", "half"], ["m2"], name="mul2"),
        mk("Mul", ["m2", "spatial"], ["y"], name="mul3"),
    ], [arr("w1", [4, 3, 3, 3]), arr("b1", [4]), arr("s1", [4, 1, 1]), arr("t1", [1, 4, 1, 1]), arr("w2", [5, 4, 1, 1]),
        numpy_helper.from_array(np.array(0.5, np.float32), "half"), arr("spatial", [1, 1, 8, 8])], [1, 3, 8, 8],
        [1, 5, 8, 8])
    eval_ops(out)


def eval_ops(out):
    """One output per constant subgraph; each is `x + Cast(subgraph, float)`, so only the subgraph can fold."""
    mk = helper.make_node
    c = lambda name, v, dt=np.int64: numpy_helper.from_array(np.array(v, dt), name)  # noqa: E731
    f = RNG.standard_normal([2, 3, 4]).astype(np.float32)
    inits = [numpy_helper.from_array(f, "f"), c("i", [[7, -7, 9], [-9, 5, 12]]), c("d", [2, -3, 4]),
             c("idx", [[-1, 0], [2, -2]]), c("st", [3, 0]), c("en", [-5, 3]), c("ax", [2, 0]), c("sp", [-1, 1]),
             c("zero_neg", [0, -1]), c("rep", [1, 2, 1]), c("r0", 5), c("r1", -7), c("r2", -3),
             c("sq_axes", [0]), c("split", [1, 2]), c("e_shape", [2, 1, 3, 4]), c("pw", 2.0, np.float32),
             c("flo", [0.5, -1.5, 2.5], np.float32)]
    subgraphs = [
        [mk("Gather", ["f", "idx"], ["o"], axis=2)],
        [mk("Slice", ["f", "st", "en", "ax", "sp"], ["o"])],
        [mk("Split", ["f", "split"], ["o", "unused"], axis=1)],
        [mk("Transpose", ["f"], ["t"], perm=[2, 0, 1]), mk("Reshape", ["t", "zero_neg"], ["o"])],
        [mk("Expand", ["f", "e_shape"], ["o"])],
        [mk("Tile", ["f", "rep"], ["o"])],
        [mk("Range", ["r0", "r1", "r2"], ["o"])],
        [mk("Div", ["i", "d"], ["o"])],
        [mk("Greater", ["i", "d"], ["g"]), mk("Where", ["g", "i", "d"], ["o"])],
        [mk("Unsqueeze", ["f", "sq_axes"], ["u"]), mk("Squeeze", ["u", "sq_axes"], ["o"])],
        [mk("Flatten", ["f"], ["o"], axis=2)],
        [mk("Concat", ["f", "f"], ["o"], axis=-1)],
        [mk("Pow", ["f", "pw"], ["p"]), mk("Exp", ["p"], ["e"]), mk("Log", ["e"], ["o"])],
        [mk("Tanh", ["f"], ["t"]), mk("Sigmoid", ["t"], ["s"]), mk("Reciprocal", ["s"], ["o"])],
        [mk("Floor", ["flo"], ["a"]), mk("Ceil", ["flo"], ["b"]), mk("Max", ["a", "b"], ["o"])],
        [mk("Shape", ["f"], ["s"], start=1), mk("ConstantOfShape", ["s"], ["o"],
                                                  value=numpy_helper.from_array(np.array([3], np.int64)))],
        [mk("Neg", ["i"], ["n"]), mk("Abs", ["n"], ["a"]), mk("Size", ["a"], ["o"])],
        [mk("Cast", ["f"], ["ci"], to=TensorProto.INT32), mk("Cast", ["ci"], ["o"], to=TensorProto.INT64)],
    ]
    nodes, outputs = [], []
    for k, sub in enumerate(subgraphs):
        rename = lambda n: n if n in {i.name for i in inits} else f"{n}_{k}"  # noqa: E731
        for j, node in enumerate(sub):
            node.input[:] = [rename(n) for n in node.input]
            node.output[:] = [rename(n) for n in node.output]
            node.name = f"{node.op_type.lower()}_{k}_{j}"
            nodes.append(node)
        nodes.append(mk("Cast", [f"o_{k}"], [f"of_{k}"], to=TensorProto.FLOAT, name=f"tofloat_{k}"))
        nodes.append(mk("Add", ["x", f"of_{k}"], [f"y{k}"], name=f"add_{k}"))
        outputs.append(helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, None))
    g = helper.make_graph(nodes, "eval_ops", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])], outputs,
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    # The outputs' shapes, for the checker's full check, from what ONNX Runtime computes.
    import onnxruntime as ort
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    results = sess.run(None, {"x": np.zeros([1], np.float32)})
    del m.graph.output[:]
    m.graph.output.extend(helper.make_tensor_value_info(f"y{k}", TensorProto.FLOAT, list(r.shape))
                          for k, r in enumerate(results))
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out / "eval_ops.onnx")
    np.savez(out / "eval_ops.npz", x=RNG.standard_normal([4, 1]).astype(np.float32))
    print("eval_ops", len(subgraphs))


if __name__ == "__main__":
    main()
