"""Compare onnxq's weight-only model (OURS) with ONNX Runtime's (ORTS, from tests/py/ort_weight_only.py).

Usage: python tests/py/compare_weight_only.py FLOAT.onnx OURS.onnx ORTS.onnx [--feeds calib.npz] [--samples N]
           [--atol X] [--min-cosine C] [--ignore-names] [--format qoperator|qdq]

ORTS may be "-" where ORT's tool cannot quantize the model: then checks 2 and 3 are skipped and 4 compares with
the float model only. Where ORTS does not load in ONNX Runtime (ORT's tool forces opset 21 without converting the
nodes), a line "orts-runs: no (...)" says so and 4 compares with the float model only. Checks, each printing one "name: ok|FAIL ..." line:
1. checker  onnx.checker.check_model(OURS, full_check=True) passes.
2. pattern  The multiset of (domain, op_type) over all nodes, subgraphs included, is equal.
3. nodes    Every MatMulNBits, GatherBlockQuantized and DequantizeLinear of ORTS has a node in OURS writing the
            same output, with the same op type, attributes, node name and input names (not checked with
            --ignore-names), and every initializer input has the same data type, dims and bit-identical bytes
            (MatMulNBits' packed B: the same codes at every position within K).
4. outputs  FLOAT, OURS (and ORTS) run in onnxruntime (CPU, one thread) on the first N samples of --feeds (key =
            input name, first axis = sample; random normal data per declared shape without --feeds, dynamic dims
            = 1). Fails where an output's shape differs from FLOAT's, where |OURS-ORTS| > atol anywhere, or where an output's cosine to FLOAT is below
            --min-cosine (default 0.9). Prints max |OURS-FLOAT| and the cosine per output.
With --format qdq, checks 2 and 3 cover the quantized part only, since ORT's tool leaves the other nodes as they
were at the old opset while onnxq converts them to opset 21: the DequantizeLinear nodes (ORT's duplicates, one per
reader of a shared weight all defining the same output, counted once and reported on an "orts-duplicates" line) and
the nodes reading their outputs (MatMul, Gather: same name and inputs). An "orts-checker" line says whether ORT's
model passes the checker's full check (informational).
Exits 1 if any check failed.
"""
import argparse
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

QUANT_OPS = ("MatMulNBits", "GatherBlockQuantized", "DequantizeLinear")


def graphs(graph):
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs:
                yield from graphs(sub)


def nodes(model):
    return [n for g in graphs(model.graph) for n in g.node]


def initializers(model):
    return {t.name: t for g in graphs(model.graph) for t in g.initializer}


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def tensor_key(t):
    a = numpy_helper.to_array(t) if t.data_type not in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4) else None
    raw = a.tobytes() if a is not None else t.raw_data
    return t.data_type, list(t.dims), raw


def nbits_codes(t, node):
    """MatMulNBits' B as codes [N, K]: the positions past K (padding the kernel never reads, where ORT's 2-bit
    kernel leaves stray bits) are cut off."""
    a = attrs(node)
    bits, k = a["bits"], a["K"]
    raw = numpy_helper.to_array(t)
    per = 8 // bits
    codes = np.stack([(raw >> (bits * j)) & ((1 << bits) - 1) for j in range(per)], axis=-1)
    return codes.reshape(raw.shape[0], -1)[:, :k]


def qdq_part(model):
    """Per graph (in walk order), the DequantizeLinear nodes (one per output) and the nodes reading them, keyed by
    (graph index, first output); and the number of duplicates dropped."""
    part, dups = {}, 0
    for gi, g in enumerate(graphs(model.graph)):
        dq = {}
        for n in g.node:
            if n.op_type == "DequantizeLinear":
                dups += n.output[0] in dq
                dq.setdefault(n.output[0], n)
        readers = [n for n in g.node if n.op_type != "DequantizeLinear" and any(i in dq for i in n.input)]
        part.update({(gi, n.output[0]): n for n in list(dq.values()) + readers})
    return part, dups


def check_nodes(ours, orts, names, part=None, mine=None):
    """Nodes are matched by their first output; with `names` their names and input names must match too. `part`:
    the ORT nodes to check by key (default: its MatMulNBits, GatherBlockQuantized and DequantizeLinear nodes by
    output), `mine` onnxq's by the same key."""
    if part is None:
        part = {n.output[0]: n for n in nodes(orts) if n.op_type in QUANT_OPS}
        mine = {n.output[0]: n for n in nodes(ours)}
    init_o, init_r = initializers(ours), initializers(orts)
    problems = []
    for key, n in part.items():
        m = mine.get(key)
        if m is None or m.op_type != n.op_type:
            problems.append(f"{n.op_type} writing `{n.output[0]}` missing in onnxq's model")
            continue
        if attrs(m) != attrs(n):
            problems.append(f"`{n.name}` attributes: ORT {attrs(n)}, onnxq {attrs(m)}")
        if names and (m.name != n.name or list(m.input) != list(n.input)):
            problems.append(f"`{n.name}` names: ORT {n.name} {list(n.input)}, onnxq {m.name} {list(m.input)}")
        if len(m.input) != len(n.input):
            problems.append(f"`{n.name}` has {len(n.input)} inputs in ORT's model, {len(m.input)} in onnxq's")
        for mine_name, name in zip(m.input, n.input):
            if name in init_r:
                if mine_name not in init_o:
                    problems.append(f"initializer `{mine_name}` missing in onnxq's model")
                elif n.op_type == "MatMulNBits" and name == n.input[1]:
                    same = tensor_key(init_o[mine_name])[:2] == tensor_key(init_r[name])[:2]
                    if not same or not np.array_equal(nbits_codes(init_o[mine_name], m), nbits_codes(init_r[name], n)):
                        problems.append(f"packed weight `{name}` differs within K")
                elif tensor_key(init_o[mine_name]) != tensor_key(init_r[name]):
                    a, b = tensor_key(init_o[mine_name]), tensor_key(init_r[name])
                    problems.append(f"initializer `{name}`: onnxq {a[:2]}, ORT {b[:2]}, bytes equal: {a[2] == b[2]}")
    return problems


def feeds(model_path, npz, samples):
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    if npz:
        data = np.load(npz)
        n = min(samples, min(data[k].shape[0] for k in data.files))
        return [{i.name: data[i.name][s] for i in sess.get_inputs()} for s in range(n)]
    rng = np.random.default_rng(0)
    types = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(int64)": np.int64}
    one = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        t = types[i.type]
        one[i.name] = rng.standard_normal(shape).astype(t) if t != np.int64 else np.ones(shape, np.int64)
    return [one]


def run(path, samples):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return [sess.run(None, s) for s in samples]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("float")
    ap.add_argument("ours")
    ap.add_argument("orts")
    ap.add_argument("--feeds")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--atol", type=float, default=0.0)
    ap.add_argument("--min-cosine", type=float, default=0.9)
    ap.add_argument("--ignore-names", action="store_true", help="match nodes by output only (ORT's RTN names differ)")
    ap.add_argument("--format", default="qoperator", choices=["qoperator", "qdq"])
    a = ap.parse_args()
    failed = False

    def report(name, problems):
        nonlocal failed
        failed |= bool(problems)
        print(f"{name}: {'FAIL' if problems else 'ok'}")
        for p in problems[:8]:
            print(f"    {p}")

    ours = onnx.load(a.ours)
    try:
        onnx.checker.check_model(a.ours, full_check=True)
        report("checker", [])
    except Exception as e:  # noqa: BLE001
        report("checker", [str(e).splitlines()[0]])
    orts = onnx.load(a.orts) if a.orts != "-" else None
    if orts is not None and a.format == "qdq":
        try:
            onnx.checker.check_model(a.orts, full_check=True)
            print("orts-checker: ok")
        except Exception as e:  # noqa: BLE001 - informational: ORT's tool forces opset 21 without converting
            print(f"orts-checker: fails ({str(e).splitlines()[0][:200]})")
        part_o, _ = qdq_part(ours)
        part_r, dups = qdq_part(orts)
        if dups:
            print(f"orts-duplicates: {dups} DequantizeLinear node(s) define an output another one defines")
        po = Counter((n.domain, n.op_type) for n in part_o.values())
        pr = Counter((n.domain, n.op_type) for n in part_r.values())
        report("pattern", [] if po == pr else [f"ORT {dict(pr - po)} vs onnxq {dict(po - pr)}"])
        report("nodes", check_nodes(ours, orts, not a.ignore_names, part_r, part_o))
    elif orts is not None:
        po = Counter((n.domain, n.op_type) for n in nodes(ours))
        pr = Counter((n.domain, n.op_type) for n in nodes(orts))
        report("pattern", [] if po == pr else [f"ORT {dict(pr - po)} vs onnxq {dict(po - pr)}"])
        report("nodes", check_nodes(ours, orts, not a.ignore_names))
    samples = feeds(a.float, a.feeds, a.samples)
    outs_f, outs_o = run(a.float, samples), run(a.ours, samples)
    outs_r = None
    if orts is not None:
        try:
            outs_r = run(a.orts, samples)
        except Exception as e:  # noqa: BLE001 - ORT's tool writes invalid models (opset forced to 21)
            print(f"orts-runs: no ({str(e).splitlines()[0][:300]})")
    problems = []
    for j, name in enumerate(o.name for o in ours.graph.output):
        bad = [(a[j].shape, b[j].shape) for a, b in zip(outs_f, outs_o) if a[j].shape != b[j].shape]
        if bad:
            problems.append(f"{name}: onnxq's shape {bad[0][1]}, the float model's {bad[0][0]}")
        f = np.concatenate([s[j].ravel() for s in outs_f]).astype(np.float64)
        o = np.concatenate([s[j].ravel() for s in outs_o]).astype(np.float64)
        cos = float(f @ o / (np.linalg.norm(f) * np.linalg.norm(o) + 1e-30))
        line = f"{name}: max|onnxq-float| {np.abs(o - f).max():.4g}, cosine {cos:.6f}"
        if outs_r is not None:
            r = np.concatenate([s[j].ravel() for s in outs_r]).astype(np.float64)
            d = float(np.abs(o - r).max())
            line += f", max|onnxq-ORT| {d:.3g}"
            if d > a.atol:
                problems.append(line)
        if cos < a.min_cosine:
            problems.append(line)
        print(f"    {line}")
    report("outputs", problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
