"""Write a tiny float model for mixed precision (TensorQuantOverrides `convert`) with calibration samples and the
overrides, covering every layout ONNX Runtime's tool writes for a converted tensor.

Usage: python tests/py/make_mixed_precision_model.py OUTDIR

Writes OUTDIR/model.onnx, OUTDIR/calib.npz (input "x", 16 samples) and OUTDIR/overrides.json:
  m  graph output read by MatMul `mm` (converted) and Add `add` (not);
  a  read by Sigmoid `sig` (converted) and Add `sum` (not);
  p  read only by Transpose `tr` (all converted), whose output y shares p's parameters;
  y  graph output read by Mul `mul_out`, converted for all;
  z  graph output read by nothing, converted.
"""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RNG = np.random.default_rng(11)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    n = helper.make_node
    nodes = [
        n("Mul", ["x", "c"], ["m"], name="pre_mul"),
        n("MatMul", ["m", "w"], ["a"], name="mm"),
        n("Add", ["m", "d"], ["b"], name="add"),
        n("Add", ["a", "b"], ["s"], name="sum"),
        n("Sigmoid", ["a"], ["sa"], name="sig"),
        n("Mul", ["s", "sa"], ["p"], name="prod"),
        n("Transpose", ["p"], ["y"], name="tr", perm=[1, 0]),
        n("Mul", ["y", "c"], ["z"], name="mul_out"),
    ]
    inits = [
        numpy_helper.from_array(np.array(1.5, np.float32), "c"),
        numpy_helper.from_array((RNG.standard_normal([16, 16]) * 0.3).astype(np.float32), "w"),
        numpy_helper.from_array((RNG.standard_normal([16]) * 0.5).astype(np.float32), "d"),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "mixed_precision",
        [helper.make_tensor_value_info("x", f, [2, 16])],
        [helper.make_tensor_value_info(v, f, s) for v, s in [("m", [2, 16]), ("y", [16, 2]), ("z", [16, 2])]],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(out / "model.onnx"))
    np.savez(out / "calib.npz", x=RNG.standard_normal([16, 2, 16]).astype(np.float32))
    overrides = {
        "m": [{"convert": {"quant_type": "QInt16", "recv_nodes": ["mm"]}}],
        "a": [{"convert": {"quant_type": "QUInt8", "recv_nodes": ["sig"]}}],
        "p": [{"convert": {"quant_type": "QInt16", "symmetric": True}}],
        "y": [{"convert": {"quant_type": "QUInt16"}}],
        "z": [{"convert": {"quant_type": "QInt16", "scale": 0.001, "zero_point": 0}}],
    }
    (out / "overrides.json").write_text(json.dumps(overrides))


if __name__ == "__main__":
    main()
