"""Check a pre-processed model against its original: the checker's full check passes, ONNX Runtime loads it, and on
the first N calibration samples every output equals the original's within a relative difference of 1e-5
(max |a - b| / max |a| per output; the clean-ups only refold constants, so outputs move by rounding at most).

Usage: python tests/py/compare_preprocess.py ORIG.onnx NEW.onnx --feeds calib.npz [--samples N] [--tol 1e-5]
Prints "ok: ..." and exits 0, or prints the first problem and exits 1. Also prints the op counts of both models
(`ops: ORIG -> NEW`) so a test can check what a clean-up removed.
"""
import argparse
import collections
import sys

import numpy as np
import onnx
import onnxruntime as ort


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def ops(path):
    m = onnx.load(path, load_external_data=False)
    return collections.Counter(n.op_type for n in m.graph.node)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("orig")
    ap.add_argument("new")
    ap.add_argument("--feeds", required=True)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--tol", type=float, default=1e-5)
    a = ap.parse_args()
    try:
        onnx.checker.check_model(a.new, full_check=True)
    except Exception as e:  # noqa: BLE001 - report any checker failure
        print(f"checker: {e}")
        return 1
    s0, s1 = session(a.orig), session(a.new)
    data = np.load(a.feeds)
    names = [i.name for i in s0.get_inputs()]
    n = min(a.samples, min(data[k].shape[0] for k in names))
    worst = 0.0
    for s in range(n):
        feeds = {k: np.asarray(data[k][s]) for k in names}
        for o, x, y in zip(s0.get_outputs(), s0.run(None, feeds), s1.run(None, feeds)):
            x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
            if x.shape != y.shape:
                print(f"output {o.name}: shape {x.shape} became {y.shape}")
                return 1
            scale = max(np.abs(x).max(initial=0.0), 1e-12)
            rel = float(np.abs(x - y).max(initial=0.0) / scale)
            worst = max(worst, rel)
            if rel > a.tol:
                print(f"output {o.name}, sample {s}: relative difference {rel:.3g} > {a.tol}")
                return 1
    a_ops, b_ops = ops(a.orig), ops(a.new)
    changed = {k: (a_ops.get(k, 0), b_ops.get(k, 0)) for k in sorted(set(a_ops) | set(b_ops)) if a_ops.get(k, 0) != b_ops.get(k, 0)}
    print(f"ops: {changed}")
    print(f"ok: checker passed, {n} samples, max relative difference {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
