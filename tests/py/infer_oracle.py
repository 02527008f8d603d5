"""ONNX's own shape inference on a model, for onnxq-infer's agreement test.

Usage: python tests/py/infer_oracle.py MODEL

Runs onnx.shape_inference.infer_shapes(strict_mode=True, data_prop=True) and, where strict mode stops
(digits-cnn: "Inferred shape and existing shape differ"), the non-strict form, and prints one JSON object:
{"mode": "strict"|"lenient", "values": {name: [elem_type, [dim, ...] or null]}} for every value of the main
graph with a tensor type; a dim is an int (known) or a string (named) or null (neither).
"""
import json
import sys

import onnx
from onnx import shape_inference


def dims(t):
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def main():
    m = onnx.load(sys.argv[1], load_external_data=False)
    try:
        inferred, mode = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True), "strict"
    except Exception:  # noqa: BLE001 - strict mode stops on some real models; fall back as ORT's tool does
        inferred, mode = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True), "lenient"
    g = inferred.graph
    values = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type"):
            t = vi.type.tensor_type
            values[vi.name] = [t.elem_type, dims(t)]
    print(json.dumps({"mode": mode, "values": values}))


if __name__ == "__main__":
    main()
