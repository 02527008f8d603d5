"""Write small float models with strongly correlated inputs, and their calibration data, for the GPTQ tests.

Usage: python tests/py/make_gptq_models.py OUTDIR

Writes, each with OUTDIR/<case>.npz (24 samples of "x" [1, 16, K], a random mix of 6 factors plus a little noise,
so the Hessian XᵀX is far from diagonal and GPTQ has errors to push around), and prints the case names:

* mlp:     x [1, 16, 96] -> MatMul [96, 80] -> Relu -> MatMul [80, 33] -> Add(bias) -> y; K = 96 (3 blocks of 32,
           odd), K = 80 (not a multiple of 32), N = 33; input 7 of x is always 0 (a dead column);
* shared:  one weight [96, 40] read by two MatMuls, of x and of Tanh(x);
* n1:      N = 1, K = 64;
* fp16:    float16 activations and weight [96, 48] (scales are float16);
* subgraph: a MatMul of x inside an If branch (not collectable: reported skip) beside a top-level MatMul;
* cut_if:  MatMul [96, 64] -> h; an If whose branches read h from the outer graph (Relu(h) or Neg(h)) -> MatMul
           [64, 32]: with a small --gptq-memory the engine runs it in two segments, h crossing the cut into the
           If's branches.
"""
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(11)


def weight(name, shape, dtype=np.float32):
    w = RNG.standard_normal(shape) * RNG.uniform(0.02, 0.2, size=shape[-1:])
    return numpy_helper.from_array(w.astype(dtype), name)


def data(k, dead=None, dtype=np.float32):
    mix = RNG.standard_normal((6, k))
    z = RNG.standard_normal((24, 1, 16, 6))
    x = z @ mix + 0.05 * RNG.standard_normal((24, 1, 16, k))
    if dead is not None:
        x[..., dead] = 0.0
    return x.astype(dtype)


def save(out, name, nodes, inits, k, x, elem=TensorProto.FLOAT):
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", elem, [1, 16, k])],
        [helper.make_tensor_value_info("y", elem, [1, 16, None])],
        initializer=inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out / f"{name}.onnx")
    np.savez(out / f"{name}.npz", x=x)
    print(name)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    mm = helper.make_node
    save(out, "mlp", [
        mm("MatMul", ["x", "w1"], ["h"], name="mm1"),
        mm("Relu", ["h"], ["r"], name="relu"),
        mm("MatMul", ["r", "w2"], ["o"], name="mm2"),
        mm("Add", ["o", "b2"], ["y"], name="add"),
    ], [weight("w1", (96, 80)), weight("w2", (80, 33)), numpy_helper.from_array(
        RNG.standard_normal(33).astype(np.float32), "b2")], 96, data(96, dead=7))
    save(out, "shared", [
        mm("MatMul", ["x", "w"], ["a"], name="mm_a"),
        mm("Tanh", ["x"], ["t"], name="tanh"),
        mm("MatMul", ["t", "w"], ["b"], name="mm_b"),
        mm("Add", ["a", "b"], ["y"], name="add"),
    ], [weight("w", (96, 40))], 96, data(96))
    save(out, "n1", [mm("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", (64, 1))], 64, data(64))
    save(out, "fp16", [mm("MatMul", ["x", "w"], ["y"], name="mm")], [weight("w", (96, 48), np.float16)], 96,
         data(96, dtype=np.float16), TensorProto.FLOAT16)
    branch = lambda name, w: helper.make_graph(  # noqa: E731
        [mm("MatMul", ["x", w], [f"{name}_y"], name=f"{name}_mm")], name, [],
        [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 16, 32])])
    save(out, "subgraph", [
        mm("MatMul", ["x", "w_top"], ["top"], name="mm_top"),
        mm("ReduceSum", ["top"], ["s"], name="sum", keepdims=0),
        mm("Greater", ["s", "zero"], ["cond"], name="gt"),
        mm("If", ["cond"], ["y"], name="if", then_branch=branch("then", "w_then"),
           else_branch=branch("else", "w_else")),
    ], [weight("w_top", (96, 32)), weight("w_then", (96, 32)), weight("w_else", (96, 32)),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero")], 96, data(96))
    outer = lambda name, op: helper.make_graph(  # noqa: E731
        [mm(op, ["h"], [f"{name}_y"], name=f"{name}_op")], name, [],
        [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1, 16, 64])])
    save(out, "cut_if", [
        mm("MatMul", ["x", "w0"], ["h"], name="mm0"),
        mm("ReduceSum", ["h"], ["s"], name="sum", keepdims=0),
        mm("Greater", ["s", "zero"], ["cond"], name="gt"),
        mm("If", ["cond"], ["b"], name="if", then_branch=outer("then", "Relu"),
           else_branch=outer("else", "Neg")),
        mm("MatMul", ["b", "w1"], ["y"], name="mm1"),
    ], [weight("w0", (96, 64)), weight("w1", (64, 32)), numpy_helper.from_array(np.array(0.0, np.float32), "zero")],
        96, data(96))


if __name__ == "__main__":
    main()
