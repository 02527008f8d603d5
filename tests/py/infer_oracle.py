"""ONNX's own shape inference on a model, for onnxq-infer's agreement test.

Usage: python tests/py/infer_oracle.py MODEL

Runs onnx.shape_inference.infer_shapes(strict_mode=True, data_prop=True) and, where strict mode stops
(digits-cnn: "Inferred shape and existing shape differ"), the non-strict form, and prints one JSON object:
{"mode": "strict"|"lenient", "values": {name: [elem_type, [dim, ...] or null]}, "symbolic": {...} or null,
"symbolic_error": str or null} for every value of the main graph with a tensor type; a dim is an int (known) or a
string (named) or null (neither). "symbolic" is the same for ONNX Runtime's SymbolicShapeInference (auto_merge on,
as quant_pre_process users pass it), null with the error where it stops.
"""
import json
import os
import sys
import tempfile

import onnx
from onnx import shape_inference


def dims(t):
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def values_of(g):
    values = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type"):
            t = vi.type.tensor_type
            values[vi.name] = [t.elem_type, dims(t)]
    return values


def symbolic(path):
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    model = onnx.load(path)
    # It writes sym_shape_infer_temp.onnx (and external data) into the current folder: use a private one.
    os.chdir(tempfile.mkdtemp(prefix="onnxq-sym-"))
    try:
        out = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
        return values_of(out.graph), None
    except Exception as e:  # noqa: BLE001 - the point is to record where it stops
        return None, str(e)[:200]


def main():
    m = onnx.load(sys.argv[1], load_external_data=False)
    try:
        inferred, mode = shape_inference.infer_shapes(m, strict_mode=True, data_prop=True), "strict"
    except Exception:  # noqa: BLE001 - strict mode stops on some real models; fall back as ORT's tool does
        inferred, mode = shape_inference.infer_shapes(m, strict_mode=False, data_prop=True), "lenient"
    sym, err = symbolic(sys.argv[1])
    print(json.dumps({"mode": mode, "values": values_of(inferred.graph), "symbolic": sym, "symbolic_error": err}))


if __name__ == "__main__":
    main()
