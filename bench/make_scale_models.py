"""Write generated graphs of about N nodes for the scaling benchmark (bench/scale.sh).

Usage: python bench/make_scale_models.py N OUTDIR [--samples S]

Writes, for each graph kind K below, OUTDIR/K/model.onnx, OUTDIR/K/calib.npz (S samples, default
4, key = the input name, first axis = samples) and OUTDIR/K/ranges.json (a MinMax ranges file in
onnxq's format, `onnxq-ranges` version 1, computed here by running the graph in numpy on the same
samples), so `onnxq quantize --mode static --ranges` runs without calibrating:

- shared:      x[1,8] -> MatMul(., Identity_i(W)) -> ... ; N/2 MatMuls, each reading the one shared
               weight W through its own Identity (a weight-tied export). W is orthogonal, so values
               stay bounded however long the chain.
- transformer: x[1,4,16] -> blocks of MatMul -> Add -> Relu -> MatMul -> Add -> Reshape[1,4,2,8]
               -> Transpose -> Softmax -> Transpose -> Reshape[1,4,16] -> Add(residual); 11 nodes
               per block, each block with its own weights and biases (two shape initializers shared).
- gemm:        x[1,16] -> blocks of Gemm(W_i, b_i, transB=1) -> Relu; 2 nodes per block, own weights
               and biases (W orthogonal), and a value_info entry for every intermediate tensor (as a shape-inferred
               export has).

Every file is deterministic (fixed seeds, fixed zip timestamps). Node names and tensor names are
unique and descriptive (`b12.mm1`, `b12.mm1.out`, ...), as exporters write them.
"""
import argparse
import json
import os
import zipfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8


def orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


class Ranges:
    """Per-tensor min/max over all samples (MinMax without moving average)."""

    def __init__(self):
        self.r = {}

    def see(self, name, a):
        lo, hi = np.float32(a.min()), np.float32(a.max())
        if name in self.r:
            plo, phi = self.r[name]
            lo, hi = min(lo, plo), max(hi, phi)
        self.r[name] = (lo, hi)
        return a

    def write(self, path, samples):
        tensors = {k: {"min": float(lo), "max": float(hi)} for k, (lo, hi) in sorted(self.r.items())}
        doc = {
            "format": "onnxq-ranges",
            "version": 1,
            "method": "minmax",
            "engine": "numpy (bench/make_scale_models.py)",
            "samples": samples,
            "tensors": tensors,
        }
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


def shared(n, rng):
    d = 8
    w = orthogonal(rng, d)
    inits = [numpy_helper.from_array(w, "W")]
    nodes = []
    prev = "x"
    k = max(1, n // 2)
    for i in range(k):
        nodes.append(helper.make_node("Identity", ["W"], [f"w{i}"], f"id{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"y{i}"], f"mm{i}"))
        prev = f"y{i}"
    graph = helper.make_graph(
        nodes, "scale_shared",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, d])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, d])],
        initializer=inits,
    )

    def run(x, ranges):
        ranges.see("x", x)
        for i in range(k):
            ranges.see(f"w{i}", w)
            x = ranges.see(f"y{i}", x @ w)

    return graph, ("x", (1, d)), run


def transformer(n, rng):
    seq, d, heads = 4, 16, 2
    blocks = max(1, n // 11)
    inits = [
        numpy_helper.from_array(np.array([1, seq, heads, d // heads], np.int64), "shape4"),
        numpy_helper.from_array(np.array([1, seq, d], np.int64), "shape3"),
    ]
    params = []
    nodes = []
    prev = "x"
    for b in range(blocks):
        p = {
            "w1": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32),
            "b1": (rng.standard_normal(d) * 0.1).astype(np.float32),
            "w2": (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32),
            "b2": (rng.standard_normal(d) * 0.1).astype(np.float32),
        }
        params.append(p)
        for key, v in p.items():
            inits.append(numpy_helper.from_array(v, f"b{b}.{key}"))
        t = lambda s: f"b{b}.{s}.out"  # noqa: E731
        nodes += [
            helper.make_node("MatMul", [prev, f"b{b}.w1"], [t("mm1")], f"b{b}.mm1"),
            helper.make_node("Add", [t("mm1"), f"b{b}.b1"], [t("add1")], f"b{b}.add1"),
            helper.make_node("Relu", [t("add1")], [t("relu")], f"b{b}.relu"),
            helper.make_node("MatMul", [t("relu"), f"b{b}.w2"], [t("mm2")], f"b{b}.mm2"),
            helper.make_node("Add", [t("mm2"), f"b{b}.b2"], [t("add2")], f"b{b}.add2"),
            helper.make_node("Reshape", [t("add2"), "shape4"], [t("split")], f"b{b}.split"),
            helper.make_node("Transpose", [t("split")], [t("tr1")], f"b{b}.tr1", perm=[0, 2, 1, 3]),
            helper.make_node("Softmax", [t("tr1")], [t("softmax")], f"b{b}.softmax", axis=-1),
            helper.make_node("Transpose", [t("softmax")], [t("tr2")], f"b{b}.tr2", perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [t("tr2"), "shape3"], [t("merge")], f"b{b}.merge"),
            helper.make_node("Add", [prev, t("merge")], [t("residual")], f"b{b}.residual"),
        ]
        prev = t("residual")
    graph = helper.make_graph(
        nodes, "scale_transformer",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, d])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, seq, d])],
        initializer=inits,
    )

    def softmax(a):
        e = np.exp(a - a.max(axis=-1, keepdims=True))
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    def run(x, ranges):
        ranges.see("x", x)
        for b, p in enumerate(params):
            see = lambda s, a: ranges.see(f"b{b}.{s}.out", a.astype(np.float32))  # noqa: E731
            h = see("mm1", x @ p["w1"])
            h = see("add1", h + p["b1"])
            h = see("relu", np.maximum(h, 0))
            h = see("mm2", h @ p["w2"])
            h = see("add2", h + p["b2"])
            h = see("split", h.reshape(1, seq, heads, d // heads))
            h = see("tr1", h.transpose(0, 2, 1, 3))
            h = see("softmax", softmax(h))
            h = see("tr2", h.transpose(0, 2, 1, 3))
            h = see("merge", h.reshape(1, seq, d))
            x = see("residual", x + h)

    return graph, ("x", (1, seq, d)), run


def gemm(n, rng):
    d = 16
    blocks = max(1, n // 2)
    inits, nodes, infos, params = [], [], [], []
    prev = "x"
    for b in range(blocks):
        # Orthogonal W keeps |W x| = |x|; Relu drops about half the energy and the bias adds some
        # back, so activations settle near |x| ~ |b| however long the chain.
        w = orthogonal(rng, d)
        bias = (rng.standard_normal(d) * 0.5).astype(np.float32)
        params.append((w, bias))
        inits += [numpy_helper.from_array(w, f"b{b}.weight"), numpy_helper.from_array(bias, f"b{b}.bias")]
        nodes += [
            helper.make_node("Gemm", [prev, f"b{b}.weight", f"b{b}.bias"], [f"b{b}.gemm.out"], f"b{b}.gemm",
                             transB=1),
            helper.make_node("Relu", [f"b{b}.gemm.out"], [f"b{b}.relu.out"], f"b{b}.relu"),
        ]
        infos.append(helper.make_tensor_value_info(f"b{b}.gemm.out", TensorProto.FLOAT, [1, d]))
        prev = f"b{b}.relu.out"
        if b + 1 < blocks:
            infos.append(helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, d]))
    graph = helper.make_graph(
        nodes, "scale_gemm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, d])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, d])],
        initializer=inits,
        value_info=infos,
    )

    def run(x, ranges):
        ranges.see("x", x)
        for b, (w, bias) in enumerate(params):
            h = ranges.see(f"b{b}.gemm.out", (x @ w.T + bias).astype(np.float32))
            x = ranges.see(f"b{b}.relu.out", np.maximum(h, 0))

    return graph, ("x", (1, d)), run


KINDS = {"shared": shared, "transformer": transformer, "gemm": gemm}


def save_npz(path, arrays):
    """np.savez with fixed zip timestamps, so the file is byte-identical between runs."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for key, a in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with z.open(info, "w") as f:
                np.lib.format.write_array(f, np.ascontiguousarray(a))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", type=int, help="about how many nodes each graph has")
    ap.add_argument("outdir")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of " + ",".join(KINDS))
    a = ap.parse_args()
    for kind in a.kinds.split(","):
        rng = np.random.default_rng(10)
        graph, (input_name, shape), run = KINDS[kind](a.n, rng)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="onnxq-bench-scale")
        model.ir_version = IR_VERSION
        d = os.path.join(a.outdir, kind)
        os.makedirs(d, exist_ok=True)
        onnx.save(model, os.path.join(d, "model.onnx"))
        samples = rng.standard_normal((a.samples, *shape)).astype(np.float32)
        save_npz(os.path.join(d, "calib.npz"), {input_name: samples})
        ranges = Ranges()
        for s in samples:
            run(s, ranges)
        ranges.write(os.path.join(d, "ranges.json"), a.samples)
        print(f"{d}/model.onnx: {len(graph.node)} nodes, {len(graph.initializer)} initializers, "
              f"{len(ranges.r)} ranges")


if __name__ == "__main__":
    main()
