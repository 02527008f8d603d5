"""One-node models for onnxq-infer's input check (crates/onnxq-infer/tests/schema_check.rs): each
`bad` model breaks one schema rule and is verified here to be refused by ONNX Runtime at load
with the expected error; each `good` model is a near miss ORT loads (an attribute ORT reserves,
LayerNormalization's unchecked attributes, absent optional inputs and outputs), which the check
must accept.

Usage: make_check_models.py OUT_DIR. Prints one JSON object per model:
{"file", "kind": "bad"|"good", "node", "expect"} where `expect` is a phrase onnxq's message has.
"""

import json
import os
import sys

import onnx
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h


def info(name, elem=T.FLOAT, shape=(2, 3)):
    return h.make_tensor_value_info(name, elem, list(shape))


def model(nodes, inputs, outputs, opset=17, extra=(), inits=()):
    g = h.make_graph(nodes, "check", inputs, outputs, initializer=list(inits))
    opsets = [h.make_opsetid("", opset)] + [h.make_opsetid(d, v) for d, v in extra]
    m = h.make_model(g, opset_imports=opsets)
    m.ir_version = 8
    return m


def relu_with(**attrs):
    return model([h.make_node("Relu", ["x"], ["y"], name="bad", **attrs)], [info("x")], [info("y")])


MS = [("com.microsoft", 1)]

# (file, model, phrase ORT's error has, phrase onnxq's message has); every node is named `bad`
# (the If's is `outer`, its body's `bad`).
BAD = [
    ("unknown_op", model([h.make_node("Frobnicate", ["x"], ["y"], name="bad")], [info("x")], [info("y")]),
     "No Op registered for Frobnicate", "no operator `Frobnicate`"),
    ("op_newer_than_opset", model([h.make_node("Gelu", ["x"], ["y"], name="bad")], [info("x")], [info("y")]),
     "No Op registered for Gelu with domain_version of 17", "from opset 20"),
    ("deprecated_op", model([h.make_node("Upsample", ["x", "s"], ["y"], name="bad")],
                            [info("x", shape=(1, 1, 2, 2)), info("s", shape=(4,))],
                            [info("y", shape=(1, 1, 4, 4))], opset=10),
     "deprecated", "deprecated"),
    ("too_many_inputs", model([h.make_node("Relu", ["x", "x"], ["y"], name="bad")], [info("x")], [info("y")]),
     "input size 2 not in range", "takes 1 input"),
    ("too_few_inputs", model([h.make_node("Add", ["x"], ["y"], name="bad")], [info("x")], [info("y")]),
     "input size 1 not in range", "takes 2 inputs"),
    ("trailing_empty_inputs", model([h.make_node("Clip", ["x", "", "", ""], ["y"], name="bad")],
                                    [info("x")], [info("y")]),
     "input size 4 not in range", "takes 1 to 3 inputs"),
    ("too_many_outputs", model([h.make_node("Relu", ["x"], ["y", "z"], name="bad")], [info("x")], [info("y")]),
     "output size 2 not in range", "takes 1 output"),
    ("empty_single_input", model([h.make_node("Add", ["x", ""], ["y"], name="bad")], [info("x")], [info("y")]),
     "marked single but has an empty string", "input 1 is not optional"),
    ("contrib_too_many_outputs", model([h.make_node("FastGelu", ["x"], ["y", "z"], name="bad",
                                                    domain="com.microsoft")],
                                       [info("x")], [info("y")], extra=MS),
     "output size 2 not in range", "takes 1 output"),
    ("attribute_wrong_type", model([h.make_node("Softmax", ["x"], ["y"], name="bad", axis=1.0)],
                                   [info("x")], [info("y")]),
     "Mismatched attribute type", "attribute `axis` is float"),
    ("attribute_unknown", relu_with(alpha=0.5), "Unrecognized attribute: alpha", "no attribute `alpha`"),
    ("contrib_attribute_unknown", model([h.make_node("FastGelu", ["x"], ["y"], name="bad",
                                                     domain="com.microsoft", approximate=1)],
                                        [info("x")], [info("y")], extra=MS),
     "Unrecognized attribute: approximate", "no attribute `approximate`"),
    ("attribute_missing", model([h.make_node("Cast", ["x"], ["y"], name="bad")], [info("x")], [info("y")]),
     "Required attribute 'to' is missing", "requires attribute `to`"),
    ("input_type_not_allowed", model([h.make_node("Sqrt", ["x"], ["y"], name="bad")],
                                     [info("x", T.INT32)], [info("y", T.INT32)]),
     "Type 'tensor(int32)' of input parameter (x) of operator (Sqrt)", "element type int32"),
    ("fixed_type_not_allowed", model([h.make_node("Reshape", ["x", "s"], ["y"], name="bad")],
                                     [info("x"), info("s", shape=(2,))], [info("y", shape=(3, 2))]),
     "of operator (Reshape)", "input 1 is element type float32"),
    ("type_variable_two_types", model([h.make_node("MatMul", ["x", "w"], ["y"], name="bad")],
                                      [info("x"), info("w", T.FLOAT16, (3, 2))], [info("y", shape=(2, 2))]),
     "bound to different types", "they must be one type"),
    ("subgraph_attribute_unknown", model(
        [h.make_node("If", ["c"], ["y"], name="outer",
                     then_branch=h.make_graph([h.make_node("Relu", ["x"], ["t"], name="bad", alpha=0.5)],
                                              "then", [], [info("t")]),
                     else_branch=h.make_graph([h.make_node("Neg", ["x"], ["e"], name="neg")],
                                              "else", [], [info("e")]))],
        [info("c", T.BOOL, ()), info("x")], [info("y")]),
     "Unrecognized attribute: alpha", "no attribute `alpha`"),
    # Known dims that cannot meet, refused by ORT's shape inference at load.
    ("reshape_impossible", model([h.make_node("Reshape", ["x", "s"], ["y"], name="bad")], [info("x")], [info("y")],
                                 inits=[h.make_tensor("s", T.INT64, [2], [5, -1])]),
     "incompatible shapes", "cannot reshape 6 elements into [5, -1]"),
    ("matmul_k_mismatch", model([h.make_node("MatMul", ["x", "w"], ["y"], name="bad")],
                                [info("x"), info("w", shape=(4, 5))], [info("y", shape=(2, 5))]),
     "Incompatible dimensions for matrix multiplication", "dim 3 with B's 4"),
    ("concat_dim_mismatch", model([h.make_node("Concat", ["x", "w"], ["y"], name="bad", axis=0)],
                                  [info("x"), info("w", shape=(4, 5))], [info("y", shape=(6, 3))]),
     "differ", "only the concatenation axis may differ"),
    # The UNDEFINED element type (0) anywhere a tensor is typed.
    ("undefined_input", model([h.make_node("Relu", ["x"], ["y"], name="bad")], [info("x", elem=0)], [info("y")]),
     "Invalid tensor data type 0", "graph input `x` has the UNDEFINED element type"),
    ("undefined_output", model([h.make_node("Relu", ["x"], ["y"], name="bad")], [info("x")], [info("y", elem=0)]),
     "Invalid tensor data type 0", "graph output `y` has the UNDEFINED element type"),
]

# (file, model): near misses ORT loads.
GOOD = [
    # ORT loads a Cast to UNDEFINED (0) when the output's type is declared (it fails when run).
    ("cast_to_undefined", model([h.make_node("Cast", ["x"], ["y"], name="ok", to=0)], [info("x")], [info("y")])),
    # ORT loads a Reshape whose static element count is wrong without a -1 (it fails when run).
    ("reshape_count_loads", model([h.make_node("Reshape", ["x", "s"], ["y"], name="ok")], [info("x")],
                                  [h.make_tensor_value_info("y", T.FLOAT, None)],
                                  inits=[h.make_tensor("s", T.INT64, [2], [5, 2])])),
    ("matmul_symbolic_k", model([h.make_node("MatMul", ["x", "w"], ["y"], name="ok")],
                                [info("x", shape=(2, "k")), info("w", shape=(3, 5))], [info("y", shape=(2, 5))])),
    ("reserved_attribute", relu_with(__onnxq=1)),
    ("absent_optional_inputs", model([h.make_node("Clip", ["x", "", ""], ["y"], name="ok")],
                                     [info("x")], [info("y")])),
    ("absent_optional_output", model([h.make_node("Dropout", ["x"], ["y", ""], name="ok")],
                                     [info("x")], [info("y")])),
    ("unchecked_attributes", model([h.make_node("LayerNormalization", ["x", "g", "b"], ["y"], name="ok",
                                                onnxq_extra=1)],
                                   [info("x"), info("g", shape=(3,)), info("b", shape=(3,))], [info("y")])),
    ("variadic_inputs", model([h.make_node("Max", ["x", "x", "x"], ["y"], name="ok")], [info("x")], [info("y")])),
    ("mixed_variadic", model([h.make_node("Loop", ["", "c", "x", "n"], ["y", "m"], name="ok",
                                          body=h.make_graph(
                                              [h.make_node("Identity", ["ci"], ["co"]),
                                               h.make_node("Identity", ["xi"], ["xo"]),
                                               h.make_node("Identity", ["ni"], ["no"])],
                                              "body", [info("i", T.INT64, ()), info("ci", T.BOOL, ()),
                                                       info("xi"), info("ni", T.INT64, (1,))],
                                              [info("co", T.BOOL, ()), info("xo"), info("no", T.INT64, (1,))]))],
                              [info("c", T.BOOL, ()), info("x"), info("n", T.INT64, (1,))],
                              [info("y"), info("m", T.INT64, (1,))])),
]


def loads(m):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    try:
        ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        return ""
    except Exception as e:  # noqa: BLE001 - the refusal is what is checked
        return str(e) or "refused"


def main(out):
    for name, m, ort_says, expect in BAD:
        err = loads(m)
        assert ort_says in err, f"{name}: ONNX Runtime should refuse with {ort_says!r}, got {err!r}"
        onnx.save(m, os.path.join(out, f"{name}.onnx"))
        print(json.dumps({"file": f"{name}.onnx", "kind": "bad", "node": "bad", "expect": expect}))
    for name, m in GOOD:
        err = loads(m)
        assert not err, f"{name}: ONNX Runtime should load it: {err}"
        onnx.save(m, os.path.join(out, f"{name}.onnx"))
        print(json.dumps({"file": f"{name}.onnx", "kind": "good", "node": "ok", "expect": ""}))


if __name__ == "__main__":
    main(sys.argv[1])
