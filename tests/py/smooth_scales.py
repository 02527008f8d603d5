"""SmoothQuant's per-channel scales of a rewritten model against Intel Neural Compressor's.

Usage: python tests/py/smooth_scales.py ORIG.onnx REWRITTEN.onnx INC_SCALES.npz

INC_SCALES.npz is tests/py/inc_smooth.py's --scales output (one array s per node name: the node's
weight input channel j was multiplied by s_j). For each node of it, the scale onnxq applied is read
back from REWRITTEN's weight over ORIG's along the input-channel axis (the median over the other
axes); a node whose weight was also rescaled on its output side (a fold into it) is listed as not
compared. Prints "compared=N of M" and "max_rel_diff=X" (the largest |s_inc - s| / |s| over the
compared nodes and channels), then one line per node not compared.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def load(path):
    g = onnx.load(path).graph
    values = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = numpy_helper.to_array(a.t)
    return {n.name: n for n in g.node}, values


def attr(node, name, default):
    return next((a.i for a in node.attribute if a.name == name), default)


def applied_scale(node, before, after):
    """(s per input channel, s broadcast to the weight) read from after / before."""
    r = after.astype(np.float64) / np.where(before == 0, np.nan, before)
    if r.ndim == 4 and before.shape[1] == 1 and attr(node, "group", 1) > 1:
        s = np.nanmedian(r.reshape(r.shape[0], -1), 1)
        return s, s.reshape(-1, 1, 1, 1)
    if r.ndim == 4:
        s = np.nanmedian(np.moveaxis(r, 1, 0).reshape(r.shape[1], -1), 1)
        return s, s.reshape(1, -1, 1, 1)
    if node.op_type == "Gemm" and attr(node, "transB", 0):
        s = np.nanmedian(r, 0)
        return s, s[None, :]
    s = np.nanmedian(r, 1)
    return s, s[:, None]


def main():
    orig, rewritten, scales = sys.argv[1:4]
    (on, ov), (rn, rv), inc = load(orig), load(rewritten), np.load(scales)
    worst, compared, skipped = 0.0, 0, []
    for key in inc.files:
        n0, n1 = on.get(key), rn.get(key)
        w0 = ov.get(n0.input[1]) if n0 is not None else None
        w1 = rv.get(n1.input[1]) if n1 is not None else None
        if w0 is None or w1 is None or w0.shape != w1.shape:
            skipped.append((key, "weight not found"))
            continue
        s, full = applied_scale(n0, w0, w1)
        ratio = w1.astype(np.float64) / np.where(w0 == 0, np.nan, w0)
        if np.nanmax(np.abs(ratio / full - 1)) > 1e-4:
            skipped.append((key, "weight also rescaled on its output side (a fold)"))
            continue
        worst = max(worst, float(np.max(np.abs(inc[key] - s) / np.abs(s))))
        compared += 1
    print(f"compared={compared} of {len(inc.files)}")
    print(f"max_rel_diff={worst:.6g}")
    for key, why in skipped:
        print(f"not compared {key}: {why}")


if __name__ == "__main__":
    main()
