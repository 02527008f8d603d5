"""Per-weight reconstruction error of a weight-only model: each MatMulNBits' B, or each blocked DequantizeLinear
read by a MatMul (the QDQ format), dequantized ((code - zero point) * scale, per block of K) against the float
weight the MatMul read in FLOAT.

Usage: python tests/py/weight_error.py FLOAT.onnx QUANT.onnx

Prints one JSON object {weight name: mean squared error} (nodes matched by their output name).
"""
import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def dequantize(n, inits):
    """MatMulNBits node n's B as the float [K, N] matrix its kernel reads (float64)."""
    a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
    k, nn, bits, bs = a["K"], a["N"], a["bits"], a["block_size"]
    raw = inits[n.input[1]]
    per = 8 // bits
    codes = np.stack([(raw >> (bits * j)) & ((1 << bits) - 1) for j in range(per)], -1).reshape(nn, -1)
    kb = raw.shape[1]
    scales = inits[n.input[2]].reshape(nn, kb).astype(np.float64)
    if len(n.input) > 3 and n.input[3]:
        z = inits[n.input[3]]
        if z.dtype == np.uint8:
            zc = np.stack([(z >> (bits * j)) & ((1 << bits) - 1) for j in range(per)], -1).reshape(nn, -1)[:, :kb]
        else:
            zc = z.reshape(nn, kb)
        zp = zc.astype(np.float64)
    else:
        zp = np.full((nn, kb), 2 ** (bits - 1), np.float64)
    rows = np.arange(codes.shape[1]) // bs
    deq = (codes - zp[:, rows]) * scales[:, rows]
    return deq[:, :k].T


def main():
    flt, qnt = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
    weights = {t.name: numpy_helper.to_array(t) for t in flt.graph.initializer}
    float_b = {n.output[0]: n.input[1] for n in flt.graph.node if n.op_type == "MatMul"}
    inits = {t.name: numpy_helper.to_array(t) for t in qnt.graph.initializer}
    out = {}
    for n in qnt.graph.node:
        if n.op_type != "MatMulNBits":
            continue
        deq = dequantize(n, inits)
        w = weights[float_b[n.output[0]]].reshape(deq.shape).astype(np.float64)
        out[float_b[n.output[0]]] = float(np.mean((deq - w) ** 2))
    out.update(qdq_errors(qnt, weights, float_b, inits))
    print(json.dumps(out))


def qdq_errors(qnt, weights, float_b, inits):
    """The same for DequantizeLinear(axis=0, block_size) -> MatMul, keyed by the float weight's name."""
    dq = {n.output[0]: n for n in qnt.graph.node if n.op_type == "DequantizeLinear"}
    out = {}
    for n in qnt.graph.node:
        if n.op_type != "MatMul" or n.input[1] not in dq or n.output[0] not in float_b:
            continue
        d = dq[n.input[1]]
        bs = {x.name: onnx.helper.get_attribute_value(x) for x in d.attribute}["block_size"]
        codes = inits[d.input[0]].astype(np.float64)
        rows = np.arange(codes.shape[0]) // bs
        zp = inits[d.input[2]].astype(np.float64)[rows] if len(d.input) > 2 and d.input[2] else 0.0
        deq = (codes - zp) * inits[d.input[1]].astype(np.float64)[rows]
        w = weights[float_b[n.output[0]]].reshape(deq.shape).astype(np.float64)
        out[float_b[n.output[0]]] = float(np.mean((deq - w) ** 2))
    return out


if __name__ == "__main__":
    main()
