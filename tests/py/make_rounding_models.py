"""Write tiny float models for the GPTQ weight-rounding test: layers whose inputs move together, so
rounding every weight to nearest shifts each output by the sum of its rounding errors while GPTQ
can round some taps up and others down and keep the sum.

Usage: python tests/py/make_rounding_models.py OUTDIR

Every weight is (k + 0.4 * sign) * S for an integer k, with one entry per output channel at
127 * S, so int8 rounding to nearest moves every entry by the same 0.4 steps of its channel. The
inputs are smooth: per sample and channel a level plus a small ramp and noise, so neighbouring
taps of a kernel (and the features of a MatMul row) carry nearly the same value.

Writes OUTDIR/<name>/model.onnx, calib.npz and eval.npz (input "x", 48 samples each, different
draws) and prints the names, one per line:
- depthwise: Conv 3x3, group = 4 channels, pads 1 (MobileNet's depthwise layer).
- conv: Conv 3x3, 4 -> 8 channels, stride 2, pads 1, dilation 1, with a bias.
- conv1d: Conv kernel 5 over 1-D signals, 2 -> 4 channels.
- matmul: MatMul [32 -> 8] of rows whose 32 features move together.
- gemm: Gemm with transB, [32 -> 8].
- shared: two MatMuls reading one weight (GPTQ leaves it rounded to nearest, and says so).
"""
import sys
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from tiny_model import save

RNG = np.random.default_rng(5)
SAMPLES = 48
S = 0.01


def weight(shape, channel_axis):
    """Entries (k + 0.4 s) * S with s = +-1 alternating by output channel, one per channel at 127 S."""
    k = RNG.integers(-60, 60, size=shape).astype(np.float32)
    rows = np.moveaxis(k, channel_axis, 0).reshape(shape[channel_axis], -1)
    sign = np.where(np.arange(rows.shape[0]) % 2 == 0, 1.0, -1.0)[:, None]
    rows = rows + 0.4 * sign
    rows[:, 0] = 127
    moved = [shape[channel_axis]] + [n for a, n in enumerate(shape) if a != channel_axis]
    return (np.moveaxis(rows.reshape(moved), 0, channel_axis) * S).astype(np.float32)


def smooth(shape, levels):
    """[SAMPLES, *shape] inputs: a level per sample and each index of the first `levels` axes
    (batch and channel for a Conv, the row for a MatMul), a gentle ramp along the last axis and a
    little noise."""
    level_shape = (SAMPLES, *shape[:levels], *[1] * (len(shape) - levels))
    level = RNG.uniform(0.5, 2.0, size=level_shape)
    ramp = np.linspace(0.0, 0.2, shape[-1])
    return level + ramp + 0.01 * RNG.standard_normal((SAMPLES, *shape))


def consts(pairs):
    return [numpy_helper.from_array(np.asarray(a, dtype=np.float32), n) for n, a in pairs]


def splits(x_shape):
    """Calibration and held-out samples, different draws."""
    levels = 2 if len(x_shape) > 2 else 1
    return {split: smooth(x_shape, levels) for split in ("calib", "eval")}


def main():
    out = Path(sys.argv[1])
    save(out, "depthwise",
         [helper.make_node("Conv", ["x", "w"], ["y"], name="dw", group=4, pads=[1, 1, 1, 1])],
         consts([("w", weight((4, 1, 3, 3), 0))]),
         [1, 4, 8, 8], [1, 4, 8, 8], splits([1, 4, 8, 8]))
    save(out, "conv",
         [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv", strides=[2, 2],
                           pads=[1, 1, 1, 1])],
         consts([("w", weight((8, 4, 3, 3), 0)), ("b", RNG.standard_normal(8))]),
         [1, 4, 8, 8], [1, 8, 4, 4], splits([1, 4, 8, 8]))
    save(out, "conv1d",
         [helper.make_node("Conv", ["x", "w"], ["y"], name="conv1d")],
         consts([("w", weight((4, 2, 5), 0))]),
         [1, 2, 16], [1, 4, 12], splits([1, 2, 16]))
    save(out, "matmul",
         [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
         consts([("w", weight((32, 8), 1))]),
         [2, 32], [2, 8], splits([2, 32]))
    save(out, "gemm",
         [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
         consts([("w", weight((8, 32), 0))]),
         [2, 32], [2, 8], splits([2, 32]))
    save(out, "shared",
         [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc1"),
          helper.make_node("MatMul", ["x", "w"], ["h2"], name="fc2"),
          helper.make_node("Add", ["h", "h2"], ["y"], name="sum")],
         consts([("w", weight((32, 32), 1))]),
         [2, 32], [2, 32], splits([2, 32]))


if __name__ == "__main__":
    main()
