"""ONNX Runtime's weight-only quantizer (MatMulNBitsQuantizer) as the reference for onnxq's weight-only mode.

Usage: python tests/py/ort_weight_only.py FLOAT.onnx OUT.onnx [--bits 4] [--block-size 128] [--symmetric]
           [--accuracy-level N] [--format qoperator|qdq] [--algo default|rtn|k_quant] [--op-types MatMul,Gather]
           [--gather-axis 1] [--exclude A,B] [--include A,B] [--node-config JSON]

The class defaults (4 bits, block 128, asymmetric, QOperator, DEFAULT) are the defaults here, as in onnxq.
Saves with external data only when the model needs it (over 2 GB). Exits 3 with the exception text when ORT's
tool fails on the input (so a test can tell "ORT cannot" from a broken oracle).
"""
import argparse
import json
import logging
import sys

import onnx
from onnxruntime.quantization import QuantFormat
from onnxruntime.quantization.matmul_nbits_quantizer import (
    DefaultWeightOnlyQuantConfig,
    KQuantWeightOnlyQuantConfig,
    MatMulNBitsQuantizer,
    RTNWeightOnlyQuantConfig,
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("output")
    ap.add_argument("--bits", type=int, default=4)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--symmetric", action="store_true")
    ap.add_argument("--accuracy-level", type=int, default=None)
    ap.add_argument("--format", default="qoperator", choices=["qoperator", "qdq"])
    ap.add_argument("--algo", default="default", choices=["default", "rtn", "k_quant"])
    ap.add_argument("--op-types", default="MatMul")
    ap.add_argument("--gather-axis", type=int, default=1)
    ap.add_argument("--exclude", default="")
    ap.add_argument("--include", default="")
    # RTN / k-quant: ORT's customized_weight_config, {"node": {"bits": 8, "group_size": 32, "scheme": "sym"}}.
    ap.add_argument("--node-config", default=None)
    a = ap.parse_args()
    logging.disable(logging.WARNING)
    fmt = QuantFormat.QOperator if a.format == "qoperator" else QuantFormat.QDQ
    op_types = tuple(a.op_types.split(","))
    nodes = json.loads(a.node_config) if a.node_config else None
    quant_axes = (("MatMul", 0), ("Gather", a.gather_axis))
    if a.algo == "default":
        algo = DefaultWeightOnlyQuantConfig(
            block_size=a.block_size,
            is_symmetric=a.symmetric,
            accuracy_level=a.accuracy_level,
            quant_format=fmt,
            op_types_to_quantize=op_types,
            quant_axes=quant_axes,
            bits=a.bits,
        )
    elif a.algo == "rtn":
        algo = RTNWeightOnlyQuantConfig(op_types_to_quantize=op_types, customized_weight_config=nodes)
    else:
        algo = KQuantWeightOnlyQuantConfig(op_types_to_quantize=op_types, customized_weight_config=nodes)
    model = onnx.load(a.model)
    try:
        q = MatMulNBitsQuantizer(
            model,
            bits=a.bits,
            block_size=a.block_size,
            is_symmetric=a.symmetric,
            accuracy_level=a.accuracy_level,
            nodes_to_exclude=[n for n in a.exclude.split(",") if n],
            nodes_to_include=[n for n in a.include.split(",") if n] or None,
            quant_format=fmt,
            op_types_to_quantize=op_types,
            quant_axes=quant_axes,
            algo_config=algo,
        )
        q.process()
    except Exception as e:  # noqa: BLE001 - the test wants ORT's failure as data
        print(f"ORT's tool failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(3)
    big = q.model.model.ByteSize() > 2**31 - 1 if hasattr(q.model.model, "ByteSize") else False
    q.model.save_model_to_file(a.output, big)


if __name__ == "__main__":
    main()
