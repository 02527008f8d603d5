"""Write tiny float models for the cross-layer equalization test: layer pairs whose channels have
ranges 100x apart, so per-tensor int8 weights lose the small channels unless equalization
evens them out.

Usage: python tests/py/make_equalize_models.py OUTDIR

Writes OUTDIR/<name>/model.onnx and OUTDIR/<name>/calib.npz (input "x", 32 samples; first axis =
sample) and prints the names, one per line:
- pair: Conv 3x3 (output channels scaled 0.01..1) -> Relu -> Conv 1x1; the biases are positive
  so bias absorption has something to move.
- depthwise: Conv 1x1 -> Relu -> depthwise Conv 3x3 -> Relu -> Conv 1x1 (a MobileNet block).
- mlp: Gemm (transB) -> Relu -> MatMul.
- clip: Conv -> Clip(0, 6) -> Conv (skipped unless relu6 mode).
"""
import sys
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from tiny_model import save

OPSET = 17
RNG = np.random.default_rng(5)
SAMPLES = 32


def const(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def spread(c):
    """Per-channel factors from 0.01 to 1, shuffled."""
    return RNG.permutation(np.geomspace(0.01, 1.0, c)).astype(np.float32)


def conv_weight(o, i, k, scale=None):
    w = RNG.standard_normal((o, i, k, k)).astype(np.float32) * 0.5
    if scale is not None:
        w *= scale[:, None, None, None]
    return w


def pair(out):
    c = 8
    s = spread(c)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="head", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w2", "b2"], ["y"], name="tail"),
    ]
    inits = [const("w1", conv_weight(c, 3, 3, s)), const("b1", 0.5 + s),
             const("w2", conv_weight(6, c, 1)), const("b2", np.zeros(6))]
    save(out, "pair", nodes, inits, [1, 3, 8, 8], [1, 6, 8, 8], {"calib": RNG.standard_normal((SAMPLES, 1, 3, 8, 8))})


def depthwise(out):
    c = 8
    s = spread(c)
    dw = RNG.standard_normal((c, 1, 3, 3)).astype(np.float32) * spread(c)[:, None, None, None]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h1"], name="expand"),
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["h2"], name="dw", group=c, pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["y"], name="project"),
    ]
    inits = [const("w1", conv_weight(c, 4, 1, s)), const("b1", 0.2 * s),
             const("w2", dw), const("b2", 0.3 + 0.1 * RNG.random(c)),
             const("w3", conv_weight(4, c, 1))]
    save(out, "depthwise", nodes, inits, [1, 4, 6, 6], [1, 4, 6, 6], {"calib": RNG.standard_normal((SAMPLES, 1, 4, 6, 6))})


def mlp(out):
    k, n, m = 12, 16, 5
    w1 = (RNG.standard_normal((n, k)) * spread(n)[:, None]).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="fc2"),
    ]
    inits = [const("w1", w1), const("b1", 0.1 * RNG.random(n)),
             const("w2", RNG.standard_normal((n, m)) * 0.5)]
    save(out, "mlp", nodes, inits, [4, k], [4, m], {"calib": RNG.standard_normal((SAMPLES, 4, k))})


def clip(out):
    c = 8
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["h"], name="head"),
        helper.make_node("Clip", ["h", "lo", "hi"], ["r"], name="relu6"),
        helper.make_node("Conv", ["r", "w2"], ["y"], name="tail"),
    ]
    inits = [const("w1", conv_weight(c, 3, 1, 4 * spread(c))), const("b1", np.zeros(c)),
             const("lo", 0.0), const("hi", 6.0), const("w2", conv_weight(4, c, 1))]
    save(out, "clip", nodes, inits, [1, 3, 5, 5], [1, 4, 5, 5], {"calib": RNG.standard_normal((SAMPLES, 1, 3, 5, 5))})


def main():
    out = Path(sys.argv[1])
    pair(out)
    depthwise(out)
    mlp(out)
    clip(out)


if __name__ == "__main__":
    main()
