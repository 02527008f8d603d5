"""Write tiny float models for the bias-correction test: layers whose int8 weights all round the
same way, so quantization shifts each output channel's mean by a known sign and amount.

Usage: python tests/py/make_bias_models.py OUTDIR

Every weight is (k + f) * s for an integer k, with |f| = 0.45 and one entry of each tensor at
exactly 127 * s, so symmetric per-tensor int8 quantization (scale s) moves every entry by -f * s:
with inputs >= 0 each output channel's mean moves by about -f * s * sum(E[x]). The sign of f
alternates by output channel, so no single constant would undo it. Inputs are uniform on [0, 1].

Writes OUTDIR/<name>/model.onnx, OUTDIR/<name>/calib.npz and OUTDIR/<name>/eval.npz (input "x",
64 samples each, different draws; first axis = sample) and prints the names, one per line:
- matmul_add: MatMul [64 -> 16] then Add of a constant [16] bias.
- conv: Conv 3x3 with a bias, 4 -> 8 channels, no padding.
- gemm: Gemm (transB) without a bias (the correction makes one).
- matmul_only: MatMul with no bias to correct (reported as skipped).
"""
import sys
from pathlib import Path

import numpy as np
from onnx import helper, numpy_helper

from tiny_model import save

RNG = np.random.default_rng(11)
SAMPLES = 64
S = 0.01


def biased_weight(shape, channel_axis):
    """Entries (k + f) * S with f = +-0.45 alternating along `channel_axis`, one entry at 127 * S."""
    k = RNG.integers(-100, 100, size=shape).astype(np.float32)
    f = np.where(np.arange(shape[channel_axis]) % 2 == 0, 0.45, -0.45).astype(np.float32)
    f = f.reshape([-1 if a == channel_axis else 1 for a in range(len(shape))])
    w = (k + f) * S
    w.flat[0] = 127 * S
    return w.astype(np.float32)


def splits(x_shape):
    """Calibration and held-out samples, different draws."""
    return {split: RNG.random((SAMPLES, *x_shape)) for split in ("calib", "eval")}


def consts(pairs):
    return [numpy_helper.from_array(np.asarray(a, dtype=np.float32), n) for n, a in pairs]


def main():
    out = Path(sys.argv[1])
    save(out, "matmul_add",
         [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"),
          helper.make_node("Add", ["h", "b"], ["y"], name="fc_bias")],
         consts([("w", biased_weight((64, 16), 1)), ("b", RNG.standard_normal(16))]),
         [2, 64], [2, 16], splits([2, 64]))
    save(out, "conv",
         [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv")],
         consts([("w", biased_weight((8, 4, 3, 3), 0)), ("b", RNG.standard_normal(8))]),
         [1, 4, 6, 6], [1, 8, 4, 4], splits([1, 4, 6, 6]))
    save(out, "gemm",
         [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)],
         consts([("w", biased_weight((16, 64), 0))]),
         [2, 64], [2, 16], splits([2, 64]))
    save(out, "matmul_only",
         [helper.make_node("MatMul", ["x", "w"], ["y"], name="fc")],
         consts([("w", biased_weight((64, 16), 1))]),
         [2, 64], [2, 16], splits([2, 64]))


if __name__ == "__main__":
    main()
