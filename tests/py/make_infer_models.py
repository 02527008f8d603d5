"""Small models for onnxq-infer's ops that have their own parsing or scoping, checked against ONNX's own shape
inference by crates/onnxq-infer/tests/generated.rs: Einsum equations (explicit, implicit, with `...`, a
contraction, a transpose, a trace-like repeated letter) and a model-local function called twice, whose body
reads an attribute reference (`ref_attr_name`) bound by the call or by the function's default.

Usage: python tests/py/make_infer_models.py OUTDIR     (prints the file names, one per line)
"""
import sys
from pathlib import Path

import onnx
from onnx import TensorProto as T
from onnx import helper as h


def info(name, shape):
    return h.make_tensor_value_info(name, T.FLOAT, shape)


def einsum_model(eq, shapes):
    names = [f"x{i}" for i in range(len(shapes))]
    g = h.make_graph([h.make_node("Einsum", names, ["y"], equation=eq, name="einsum")], "einsum",
                     [info(n, s) for n, s in zip(names, shapes)], [onnx.ValueInfoProto(name="y")])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17)], ir_version=8)


def function_model():
    # scaled_flatten(x): Flatten(x, axis=@axis) * 2, axis defaulting to 1.
    body = [h.make_node("Flatten", ["x"], ["f"]), h.make_node("Constant", [], ["two"], value_float=2.0),
            h.make_node("Mul", ["f", "two"], ["y"])]
    ref = onnx.AttributeProto()
    ref.name, ref.ref_attr_name, ref.type = "axis", "axis", onnx.AttributeProto.INT
    body[0].attribute.append(ref)
    fn = h.make_function("local", "scaled_flatten", ["x"], ["y"], body, [h.make_opsetid("", 17)],
                         attributes=[])
    fn.attribute_proto.append(h.make_attribute("axis", 1))
    nodes = [h.make_node("scaled_flatten", ["x"], ["a"], domain="local", name="default_axis"),
             h.make_node("scaled_flatten", ["x"], ["b"], domain="local", name="axis_2", axis=2),
             h.make_node("Relu", ["a"], ["ra"], name="relu_a"), h.make_node("Relu", ["b"], ["rb"], name="relu_b")]
    g = h.make_graph(nodes, "calls", [info("x", [2, 3, 4, 5])],
                     [onnx.ValueInfoProto(name="ra"), onnx.ValueInfoProto(name="rb")])
    return h.make_model(g, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("local", 1)], functions=[fn],
                        ir_version=8)


CASES = {
    "einsum_matmul": ("ij,jk->ik", [[3, 4], [4, 5]]),
    "einsum_batch": ("bij,bjk->bik", [[2, 3, 4], [2, 4, 5]]),
    "einsum_implicit": ("ij,jk", [[3, 4], [4, 5]]),
    "einsum_transpose": ("ij->ji", [[3, 4]]),
    "einsum_ellipsis": ("...ij,...jk->...ik", [[2, 1, 3, 4], [6, 4, 5]]),
    "einsum_sum": ("ij->i", [["n", 4]]),
    "einsum_diag": ("ii->i", [[4, 4]]),
    "einsum_attention": ("bhqd,bhkd->bhqk", [["b", 2, "s", 8], ["b", 2, "s", 8]]),
}


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    models = {name: einsum_model(eq, shapes) for name, (eq, shapes) in CASES.items()}
    models["local_function"] = function_model()
    for name, m in models.items():
        # Outputs carry no type (inference is what is tested), which the checker does not allow.
        onnx.save(m, out / f"{name}.onnx")
        print(f"{name}.onnx")


if __name__ == "__main__":
    main()
