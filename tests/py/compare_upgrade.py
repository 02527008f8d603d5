"""Check a model converted by onnxq's opset converter against the original.

Usage: python tests/py/compare_upgrade.py BEFORE.onnx AFTER.onnx [--opset 21] [--feeds calib.npz] [--samples N]
           [--rtol R]

Checks, each printing one "name: ok|FAIL ..." line, exit 1 if any failed:
1. checker  onnx.checker.check_model(AFTER, full_check=True) passes.
2. opset    AFTER imports the default domain at --opset, with an IR version of at least 10 (opset 21's).
3. outputs  BEFORE and AFTER run in onnxruntime (CPU, one thread, all graph optimizations off so each op's own
            kernel runs) on the same inputs (the first N samples of --feeds, else random normal data per declared
            shape, dynamic dims = 1): every output has the same type and shape, and |AFTER-BEFORE| <= rtol*max|BEFORE|
            (default 0: bit-identical) with NaNs in the same places.
Prints "rewritten: <op> -> <op>" for each op type count that changed.
"""
import argparse
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort

TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(int64)": np.int64}


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def feeds(sess, npz, samples):
    if npz:
        data = np.load(npz)
        n = min(samples, min(data[k].shape[0] for k in data.files))
        return [{i.name: np.asarray(data[i.name][s]) for i in sess.get_inputs()} for s in range(n)]
    rng = np.random.default_rng(0)
    one = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        t = TYPES[i.type]
        one[i.name] = rng.standard_normal(shape).astype(t) if t != np.int64 else np.ones(shape, np.int64)
    return [one]


def ops(m):
    def walk(g):
        for n in g.node:
            yield n.op_type
            for a in n.attribute:
                for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs:
                    yield from walk(sub)

    return Counter(walk(m.graph))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--opset", type=int, default=21)
    ap.add_argument("--feeds")
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--rtol", type=float, default=0.0)
    a = ap.parse_args()
    failed = False

    def report(name, problems):
        nonlocal failed
        failed |= bool(problems)
        print(f"{name}: {'FAIL' if problems else 'ok'}")
        for p in problems[:8]:
            print(f"    {p}")

    after = onnx.load(a.after)
    try:
        onnx.checker.check_model(a.after, full_check=True)
        report("checker", [])
    except Exception as e:  # noqa: BLE001
        report("checker", [str(e).splitlines()[0][:300]])
    opset = next((o.version for o in after.opset_import if o.domain in ("", "ai.onnx")), None)
    problems = [] if opset == a.opset and after.ir_version >= 10 else [f"opset {opset}, IR {after.ir_version}"]
    report("opset", problems)
    diff = ops(after) - ops(onnx.load(a.before)), ops(onnx.load(a.before)) - ops(after)
    if diff[0] or diff[1]:
        print(f"rewritten: {dict(diff[1])} -> {dict(diff[0])}")
    sb, sa = session(a.before), session(a.after)
    problems = []
    for feed in feeds(sb, a.feeds, a.samples):
        outs_b, outs_a = sb.run(None, feed), sa.run(None, feed)
        for o, b, x in zip(sb.get_outputs(), outs_b, outs_a):
            if b.dtype != x.dtype or b.shape != x.shape:
                problems.append(f"{o.name}: {b.dtype}{b.shape} before, {x.dtype}{x.shape} after")
                continue
            bf, xf = b.astype(np.float64), x.astype(np.float64)
            if not np.array_equal(np.isnan(bf), np.isnan(xf)):
                problems.append(f"{o.name}: NaNs differ")
                continue
            d = float(np.nanmax(np.abs(bf - xf))) if b.size else 0.0
            scale = float(np.nanmax(np.abs(bf))) if b.size else 0.0
            if d > a.rtol * scale:
                problems.append(f"{o.name}: max diff {d:.3g} (max |before| {scale:.3g})")
            print(f"    {o.name}: max diff {d:.3g}")
    report("outputs", problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
