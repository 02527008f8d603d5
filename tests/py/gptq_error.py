"""GPTQ's objective for weight-only models: per float MatMul weight W, tr((W-Ŵ)ᵀ H (W-Ŵ)) summed over the MatMuls
reading W, with H = 2/n XᵀX of the MatMul's input A (reshaped to [-1, K], n rows) over the calibration samples, and Ŵ
the weight each quantized model's MatMulNBits reads (weight_error.dequantize). This is the output error on the
calibration inputs, which GPTQ minimises and round-to-nearest ignores.

Usage: python tests/py/gptq_error.py FLOAT.onnx DATA.npz QUANT.onnx [QUANT.onnx ...]

DATA.npz: key = input name, first axis = samples. Prints one JSON object {weight: [error in each QUANT]}; a weight a
QUANT model left float has error 0 there. Main-graph MatMuls with an initializer B only.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from weight_error import dequantize


def hessians(flt, data):
    """{A tensor name: H} for the main graph's MatMuls with an initializer B."""
    inits = {t.name for t in flt.graph.initializer}
    inputs = {i.name for i in flt.graph.input}
    a_names = sorted({n.input[0] for n in flt.graph.node if n.op_type == "MatMul" and n.input[1] in inits})
    m = onnx.ModelProto()
    m.CopyFrom(flt)
    for a in a_names:
        if a not in inputs:
            m.graph.output.append(helper.make_empty_tensor_value_info(a))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    acc, rows = {}, {}
    for i in range(len(next(iter(data.values())))):
        feeds = {k: v[i] for k, v in data.items()}
        outs = dict(zip(names, sess.run(None, feeds)))
        outs.update(feeds)
        for a in a_names:
            x = outs[a].astype(np.float64).reshape(-1, outs[a].shape[-1])
            acc[a] = acc.get(a, 0) + x.T @ x
            rows[a] = rows.get(a, 0) + x.shape[0]
    return {a: 2.0 / rows[a] * acc[a] for a in a_names}


def main():
    flt = onnx.load(sys.argv[1])
    data = dict(np.load(sys.argv[2]))
    hs = hessians(flt, data)
    weights = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in flt.graph.initializer}
    uses = {}
    for n in flt.graph.node:
        if n.op_type == "MatMul" and n.input[1] in weights:
            uses.setdefault(n.input[1], []).append((n.output[0], n.input[0]))
    out = {w: [] for w in uses}
    for path in sys.argv[3:]:
        q = onnx.load(path)
        inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
        by_output = {n.output[0]: n for n in q.graph.node if n.op_type == "MatMulNBits"}
        for w, reads in uses.items():
            total = 0.0
            for output, a in reads:
                node = by_output.get(output)
                if node is None:
                    continue
                wf = weights[w].reshape(-1, weights[w].shape[-1])
                d = dequantize(node, inits) - wf
                total += float(np.trace(d.T @ hs[a] @ d))
            out[w].append(total)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
