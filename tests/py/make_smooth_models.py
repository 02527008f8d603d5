"""Write tiny float models with one activation channel about 100x larger than the others, for the
SmoothQuant test: per-tensor int8 activation ranges are set by the outlier channel, so the other
channels lose their resolution unless SmoothQuant moves the outlier into the weights.

Usage: python tests/py/make_smooth_models.py OUTDIR

Writes OUTDIR/<name>/model.onnx and OUTDIR/<name>/calib.npz (input "x", 32 samples; first axis =
sample) and prints the names, one per line:
- layernorm: x -> LayerNormalization (scale has a 100x channel) -> MatMul -> Add -> y; the scale
  folds into the LayerNorm.
- decomposed: x -> Mul(x, g) -> Add(., b) -> MatMul -> y, the LayerNorm tail as exporters
  write it; folds into the Mul and the Add.
- relu: x (with a 100x channel) -> Relu -> Gemm (transB) -> y; Relu cannot absorb a scale, so a
  Mul is inserted.
- conv: x -> Conv (one output channel 100x) -> Conv 1x1 -> Relu -> depthwise Conv -> y; folds into
  the first Conv's weight and bias, and into the 1x1 Conv's output channels.
- fanout: the LayerNorm's output also feeds the graph output; no fold, a Mul is inserted.
"""
import sys
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from tiny_model import save

OPSET = 17
RNG = np.random.default_rng(11)
SAMPLES = 32


def const(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def weight(shape, scale=0.3):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def outlier_scale(c, at, big=100.0):
    s = np.ones(c, dtype=np.float32)
    s[at] = big
    return s


def layernorm(out, fanout=False):
    c = 16
    gamma = outlier_scale(c, 3) * (1 + 0.1 * RNG.standard_normal(c)).astype(np.float32)
    nodes = [
        helper.make_node("LayerNormalization", ["x", "g", "b"], ["ln"], name="ln", axis=-1),
        helper.make_node("MatMul", ["ln", "w"], ["mm"], name="mm"),
        helper.make_node("Add", ["mm", "bias"], ["y"], name="add"),
    ]
    inits = [const("g", gamma), const("b", 0.1 * RNG.standard_normal(c)),
             const("w", weight((c, 8))), const("bias", weight(8))]
    data = RNG.standard_normal((SAMPLES, 1, 6, c))
    name = "fanout" if fanout else "layernorm"
    save(out, name, nodes, inits, [1, 6, c], [1, 6, 8], {"calib": data}, [("ln", [1, 6, c])] if fanout else ())


def decomposed(out):
    c = 16
    nodes = [
        helper.make_node("Mul", ["x", "g"], ["scaled"], name="gamma"),
        helper.make_node("Add", ["scaled", "b"], ["shifted"], name="beta"),
        helper.make_node("MatMul", ["shifted", "w"], ["y"], name="mm"),
    ]
    inits = [const("g", outlier_scale(c, 5)), const("b", 0.1 * RNG.standard_normal(c)),
             const("w", weight((c, 8)))]
    save(out, "decomposed", nodes, inits, [1, 6, c], [1, 6, 8], {"calib": RNG.standard_normal((SAMPLES, 1, 6, c))})


def relu(out):
    c = 16
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("Gemm", ["r", "w", "bias"], ["y"], name="gemm", transB=1),
    ]
    inits = [const("w", weight((8, c))), const("bias", weight(8))]
    data = RNG.standard_normal((SAMPLES, 4, c)) * outlier_scale(c, 9)
    save(out, "relu", nodes, inits, [4, c], [4, 8], {"calib": data})


def conv(out):
    c = 8
    w1 = weight((c, 3, 3, 3))
    w1[2] *= 100.0
    b1 = weight(c)
    b1[2] *= 100.0
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c1", "w2", "b2"], ["c2"], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3"], ["y"], name="dw", group=c, pads=[1, 1, 1, 1]),
    ]
    inits = [const("w1", w1), const("b1", b1), const("w2", weight((c, c, 1, 1))),
             const("b2", weight(c)), const("w3", weight((c, 1, 3, 3)))]
    save(out, "conv", nodes, inits, [1, 3, 8, 8], [1, c, 8, 8], {"calib": RNG.standard_normal((SAMPLES, 1, 3, 8, 8))})


def main():
    out = Path(sys.argv[1])
    layernorm(out)
    decomposed(out)
    relu(out)
    conv(out)
    layernorm(out, fanout=True)


if __name__ == "__main__":
    main()
