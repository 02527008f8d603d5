"""Compare onnxq's quantized model (OURS) with ONNX Runtime's (ORTS) for the same float model and settings.

Usage: python tests/py/compare_quantized.py FLOAT.onnx OURS.onnx ORTS.onnx --feeds calib.npz [--samples N]
           [--atol X] [--rtol Y] [--outputs-only-vs-float] [--report out.json]

ORTS may be "-" where ORT's tool fails on the model: then only checks 1 and 4 run, and 4 only reports.
ORTS comes from tests/py/ort_quantize.py. Checks, each printing one "name: ok|FAIL ..." line (details indented):
1. checker  onnx.checker.check_model(OURS, full_check=True) passes.
2. pattern  The multiset of (domain, op_type) over all nodes, subgraphs included, is the same in both models
            (ORT's read without the Constant nodes and initializers nothing reads: onnxq removes them).
            Each quantized node is also keyed by its float-model anchor: the float tensor(s) it stands for, i.e.
            its weight / data input(s) without the "_quantized" suffix (ANCHOR_INPUTS), so a difference reads as
            "MatMulInteger on W: ORT 1, onnxq 0".
3. weights  Every initializer of ORTS named *_quantized, *_scale or *_zero_point (subgraphs included, keyed by
            the path of If/Loop/Scan node names down to its graph) exists in OURS with the same data type, dims
            and bit-identical values (numpy_helper.to_array(...).tobytes()).
4. outputs  FLOAT, OURS and ORTS run in onnxruntime (CPU, one thread) on the first N samples of --feeds (key =
            graph input name, first axis = sample). Per graph output: max |OURS-ORTS|, max |OURS-FLOAT|,
            max |ORTS-FLOAT| over all samples and the cosine similarity of OURS and ORTS to FLOAT (all samples
            flattened). Fails where |OURS-ORTS| > atol + rtol*|ORTS| anywhere; with --outputs-only-vs-float
            instead where max |OURS-FLOAT| > 1.05 * max |ORTS-FLOAT| + 1e-6.
--report writes every number as JSON. Exits 1 if any check failed, else 0.
"""
import argparse
import json
import sys
import tempfile
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

QUANT_SUFFIX = "_quantized"
PARAM_SUFFIXES = (QUANT_SUFFIX, "_scale", "_zero_point")
ANCHOR_INPUTS = {  # quantized op type -> indices of the inputs that name the float tensors it stands for
    "MatMulInteger": (1,),
    "ConvInteger": (1,),
    "QAttention": (1,),
    "DynamicQuantizeLSTM": (1, 2),
    "QEmbedLayerNormalization": (2,),
    "DynamicQuantizeLinear": (0,),
    "DequantizeLinear": (0,),
    "Gather": (0,),  # only when its data is quantized
}
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
SHOWN = 8  # differences printed per kind; --report has them all


def graphs(graph, scope=""):
    """Yield (scope, graph) for graph and every subgraph below it; scope = 'node/attribute/...' path."""
    yield scope, graph
    for node in graph.node:
        for attr in node.attribute:
            subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
            for i, sub in enumerate(subs):
                name = attr.name if attr.type == onnx.AttributeProto.GRAPH else f"{attr.name}[{i}]"
                yield from graphs(sub, f"{scope}{node.name}/{name}/")


def op_counts(model):
    def domain(n):
        if n.domain == "ai.onnx" or (ARGS and ARGS.ignore_qdq_domain and n.op_type in QDQ_OPS):
            return ""
        return n.domain
    return Counter((domain(n), n.op_type) for _, g in graphs(model.graph) for n in g.node)


def anchors(model):
    """Counter of (op_type, anchor) over the quantized nodes of model."""
    found = Counter()
    for _, g in graphs(model.graph):
        for n in g.node:
            idx = ANCHOR_INPUTS.get(n.op_type)
            if idx is None or (n.op_type == "Gather" and not n.input[0].endswith(QUANT_SUFFIX)):
                continue
            names = [n.input[i].removesuffix(QUANT_SUFFIX) for i in idx if i < len(n.input)]
            found[(n.op_type, ",".join(names))] += 1
    return found


def error_line(e):
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def check_checker(ours):
    try:
        onnx.checker.check_model(ours, full_check=True)
    except Exception as e:  # ValidationError, InferenceError, unreadable file, ...
        return {"ok": False, "error": error_line(e)}, error_line(e), []
    return {"ok": True}, "", []


def more(items, what):
    return [f"... {len(items) - SHOWN} more {what} (see --report)"] if len(items) > SHOWN else []


ARGS = None  # the parsed command line, set by main()


def fold_constant_qdq(model):
    """A copy of model (ORT's) where each Constant node whose float output ORT quantizes at run time
    (Constant -> QuantizeLinear -> DequantizeLinear) reads as onnxq stores it: a quantized initializer behind
    one DequantizeLinear (anchored at the constant's name). Numerically the same: ORT's calibrated range of a
    constant is its min/max. A Constant that ORT leaves float as the bias (input 2) of a Conv or Gemm whose
    input and weight are dequantized reads as the int32 bias behind a DequantizeLinear that onnxq writes
    for it (ORT quantizes only initializer biases)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    constants = {n.output[0]: i for i, n in enumerate(g.node)
                 if n.op_type == "Constant" and n.domain in ("", "ai.onnx")}
    drop = set()
    for i, q in enumerate(g.node):
        if q.op_type == "QuantizeLinear" and q.input[0] in constants:
            for d in g.node:
                if d.op_type == "DequantizeLinear" and d.input[0] == q.output[0]:
                    d.input[0] = q.input[0] + QUANT_SUFFIX
            drop.update({i, constants[q.input[0]]})
    dequantized = {n.output[0] for n in g.node if n.op_type == "DequantizeLinear"}
    for n in g.node:
        if (n.op_type in ("Conv", "Gemm") and len(n.input) > 2 and n.input[2] in constants
                and n.input[0] in dequantized and n.input[1] in dequantized):
            c = g.node[constants[n.input[2]]]
            name = c.output[0]
            c.op_type, c.domain = "DequantizeLinear", ""
            del c.attribute[:]
            c.input.extend([name + QUANT_SUFFIX])
    for i in sorted(drop, reverse=True):
        del g.node[i]
    return model


def drop_unread(model):
    """A copy of model (ORT's) without the Constant nodes and initializers nothing reads (no node, at any
    depth, and no graph output), removed until none is left: ORT's tool leaves the float constants it
    replaced, onnxq removes them (ONNX Runtime warns about each at load). Nothing else differs by it."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    while True:
        read = {i for _, g in graphs(model.graph) for n in g.node for i in n.input}
        read |= {o.name for _, g in graphs(model.graph) for o in g.output}
        removed = 0
        for _, g in graphs(model.graph):
            inputs = {i.name for i in g.input}
            dead = [i for i, n in enumerate(g.node) if n.op_type == "Constant" and n.domain in ("", "ai.onnx")
                    and not any(o in read for o in n.output)]
            for i in reversed(dead):
                del g.node[i]
            unread = [i for i, t in enumerate(g.initializer) if t.name not in read and t.name not in inputs]
            for i in reversed(unread):
                del g.initializer[i]
            removed += len(dead) + len(unread)
        if not removed:
            return model


def check_pattern(ours, orts):
    orts = drop_unread(orts)
    if ARGS.fold_constants:
        orts = fold_constant_qdq(orts)
    ca, cb = op_counts(ours), op_counts(orts)
    aa, ab = anchors(ours), anchors(orts)
    op_diffs = [{"domain": d, "op_type": t, "ours": ca[(d, t)], "orts": cb[(d, t)]}
                for d, t in sorted(ca.keys() | cb.keys()) if ca[(d, t)] != cb[(d, t)]]
    anchor_diffs = [{"op_type": t, "anchor": a, "ours": aa[(t, a)], "orts": ab[(t, a)]}
                    for t, a in sorted(aa.keys() | ab.keys()) if aa[(t, a)] != ab[(t, a)]]
    counts = {f"{d}:{t}" if d else t: [ca[(d, t)], cb[(d, t)]] for d, t in sorted(ca.keys() | cb.keys())}
    result = {"ok": not op_diffs and not anchor_diffs, "op_counts": counts, "op_diffs": op_diffs,
              "anchor_diffs": anchor_diffs}
    lines = [f"{d['domain'] + ':' if d['domain'] else ''}{d['op_type']}: onnxq {d['ours']}, ORT {d['orts']} "
             f"({d['ours'] - d['orts']:+d})" for d in op_diffs]
    for d in anchor_diffs[:SHOWN]:
        who = ("ORT but not by onnxq" if not d["ours"] else "onnxq but not by ORT" if not d["orts"]
               else f"ORT {d['orts']}x, onnxq {d['ours']}x")
        lines.append(f"{d['op_type']} on {d['anchor']}: quantized by {who}")
    lines += more(anchor_diffs, "anchors")
    summary = f"{sum(cb.values())} ORT nodes; {len(op_diffs)} op types and {len(anchor_diffs)} anchors differ"
    return result, summary, lines


def quant_params(model):
    """{scope + name: TensorProto} of the initializers named like quantization parameters, subgraphs included."""
    return {scope + t.name: t for scope, g in graphs(model.graph) for t in g.initializer
            if t.name.endswith(PARAM_SUFFIXES)}


def tensor_diff(a, b):
    """None if tensors a (ours) and b (ORT's) are bit-identical, else a dict describing the difference."""
    if a.data_type != b.data_type or list(a.dims) != list(b.dims):
        return {"reason": f"{onnx.helper.tensor_dtype_to_np_dtype(a.data_type)}{list(a.dims)} vs "
                          f"{onnx.helper.tensor_dtype_to_np_dtype(b.data_type)}{list(b.dims)}"}
    x, y = numpy_helper.to_array(a), numpy_helper.to_array(b)
    if x.tobytes() == y.tobytes():
        return None
    x, y = x.astype(np.float64), y.astype(np.float64)
    diff = {"reason": f"{int(np.count_nonzero(x != y))} of {x.size} values differ",
            "max_abs": float(np.max(np.abs(x - y)))}
    if b.name.endswith("_scale"):
        nonzero = y != 0
        diff["max_rel"] = float(np.max(np.abs(x - y)[nonzero] / np.abs(y[nonzero]))) if nonzero.any() else None
    return diff


def check_weights(ours, orts):
    orts = drop_unread(orts)
    pa, pb = quant_params(ours), quant_params(orts)
    missing = sorted(pb.keys() - pa.keys())
    mismatched = []
    for name in sorted(pb.keys() & pa.keys()):
        d = tensor_diff(pa[name], pb[name])
        if d:
            mismatched.append({"name": name, **d})
    extra = sorted(pa.keys() - pb.keys())
    identical = len(pb) - len(missing) - len(mismatched)
    result = {"ok": not missing and not mismatched, "orts": len(pb), "identical": identical, "missing": missing,
              "mismatched": mismatched, "only_in_ours": extra}
    lines = [f"missing in onnxq: {n}" for n in missing[:SHOWN]] + more(missing, "missing")
    for d in mismatched[:SHOWN]:
        nums = "".join(f", {k} {d[k]:.3g}" for k in ("max_abs", "max_rel") if d.get(k) is not None)
        lines.append(f"{d['name']}: {d['reason']}{nums}")
    lines += more(mismatched, "mismatched")
    if extra:
        lines.append(f"(onnxq has {len(extra)} such initializers ORT lacks, e.g. {extra[0]})")
    return result, f"{identical}/{len(pb)} of ORT's quantization initializers bit-identical", lines


def compare_graphs(ours_path, orts_path, record):
    """Checks 2 and 3; the loaded models are freed on return, before the models run."""
    ours, orts = onnx.load(ours_path), onnx.load(orts_path)
    record("pattern", check_pattern(ours, orts))
    record("weights", check_weights(ours, orts))


def load_feeds(path, inputs, samples):
    data = np.load(path)
    missing = [n for n in inputs if n not in data.files]
    if missing:
        sys.exit(f"{path} lacks the graph inputs {missing}")
    k = min(samples, *(len(data[n]) for n in inputs))
    arrays = {n: data[n] for n in inputs}
    return [{n: np.asarray(a[i]) for n, a in arrays.items()} for i in range(k)]


def run_outputs(path, feed_path, samples):
    """{output name: list of per-sample arrays} of the model at path, in onnxruntime on one CPU thread."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    outs = [s.run(names, f) for f in load_feeds(feed_path, [i.name for i in s.get_inputs()], samples)]
    return {n: [np.asarray(o[j]) for o in outs] for j, n in enumerate(names)}


def abs_diff(x, y):
    """Elementwise |x - y| in float64; equal values (infinities included) and NaN pairs give 0."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    d = np.abs(x - y)
    d[(x == y) | (np.isnan(x) & np.isnan(y))] = 0
    return d


def cosine(x, y):
    x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    n = np.linalg.norm(x) * np.linalg.norm(y)
    return float(x @ y / n) if n else float(np.array_equal(x, y))


def without_value_info(path, folder, label):
    """A copy of the model at path with every value_info entry (subgraphs included) removed."""
    m = onnx.load(path)
    graphs = [m.graph]
    while graphs:
        g = graphs.pop()
        del g.value_info[:]
        for n in g.node:
            for a in n.attribute:
                graphs.extend([a.g] if a.HasField("g") else list(a.graphs))
    out = f"{folder}/{label}-no-value-info.onnx"
    onnx.save(m, out)
    return out


def check_outputs(args):
    runs, errors = {}, []
    ours, orts = args.ours, args.orts
    folder = tempfile.TemporaryDirectory()
    if args.strip_value_info and orts != "-":
        ours, orts = without_value_info(ours, folder.name, "ours"), without_value_info(orts, folder.name, "orts")
    for key, path in (("float", args.float), ("ours", ours), ("orts", orts)):
        try:
            runs[key] = run_outputs(path, args.feeds, args.samples) if path != "-" else None
        except Exception as e:  # e.g. a model onnxruntime refuses to load
            errors.append(f"{path} does not run: {error_line(e)}")
    if errors:
        return {"ok": False, "errors": errors}, "a model does not run", errors
    flt, ours, orts = runs["float"], runs["ours"], runs["orts"]
    result = {"samples": len(next(iter(flt.values()))) if flt else 0, "outputs": {}}
    lines, ok = [], True
    for name, f in flt.items():
        if name not in ours or (orts is not None and name not in orts):
            lines.append(f"{name}: missing from a quantized model")
            ok = False
            continue
        models = {"ours": ours[name]} | ({"orts": orts[name]} if orts is not None else {})
        if any([v.shape for v in vs] != [v.shape for v in f] for vs in models.values()):
            lines.append(f"{name}: shapes differ from the float model's")
            ok = False
            continue
        cat = {k: np.concatenate([v.ravel() for v in vs]) for k, vs in models.items()}
        fl = np.concatenate([v.ravel() for v in f])
        r = {f"max_abs_{k}_float": float(abs_diff(v, fl).max(initial=0)) for k, v in cat.items()}
        r |= {f"cos_{k}_float": cosine(v, fl) for k, v in cat.items()}
        text = f"onnxq-float {r['max_abs_ours_float']:.3g} (cos {r['cos_ours_float']:.6f})"
        if orts is not None:
            d = abs_diff(cat["ours"], cat["orts"])
            r["max_abs_ours_orts"] = float(d.max(initial=0))
            bound = args.atol + args.rtol * np.abs(cat["orts"].astype(np.float64))
            r["over_tolerance"] = int(np.count_nonzero(d > bound))
            r["ok"] = (r["max_abs_ours_float"] <= 1.05 * r["max_abs_orts_float"] + 1e-6 if args.outputs_only_vs_float
                       else r["over_tolerance"] == 0)
            ok &= r["ok"]
            text = (f"onnxq-ORT {r['max_abs_ours_orts']:.3g} ({r['over_tolerance']} over tolerance), {text}, "
                    f"ORT-float {r['max_abs_orts_float']:.3g} (cos {r['cos_orts_float']:.6f})")
        result["outputs"][name] = r
        lines.append(f"{name}: {text}")
    result["ok"] = ok
    result["criterion"] = ("report only" if orts is None else "vs float" if args.outputs_only_vs_float
                           else f"|onnxq-ORT| <= {args.atol:g} + {args.rtol:g}*|ORT|")
    return result, f"{result['samples']} samples, {result['criterion']}", lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("float")
    ap.add_argument("ours")
    ap.add_argument("orts", help='ORT\'s quantized model, or "-" where ORT\'s tool fails on this model')
    ap.add_argument("--feeds", required=True, help="npz: key = graph input name, first axis = sample")
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--outputs-only-vs-float", action="store_true",
                    help="outputs: only require onnxq's error vs float to be no worse than 1.05x ORT's")
    ap.add_argument("--strip-value-info", action="store_true",
                    help="outputs: run both quantized models without value_info. ORT's tool adds the value_info of "
                         "ONNX shape inference, with which ONNX Runtime fuses some float ops differently, so the "
                         "same graph computes slightly different numbers")
    ap.add_argument("--fold-constants", action="store_true",
                    help="pattern: read ORT's Constant -> QuantizeLinear -> DequantizeLinear as onnxq's quantized "
                         "constant behind one DequantizeLinear (static QDQ stores Constant-node tensors quantized)")
    ap.add_argument("--ignore-qdq-domain", action="store_true",
                    help="pattern: count com.microsoft QuantizeLinear/DequantizeLinear as the ONNX ones (onnxq uses the "
                         "contrib ops where ORT's tool raises the opset to 21 for 16-bit types)")
    ap.add_argument("--report", help="write all numbers to this JSON file")
    args = ap.parse_args()
    global ARGS
    ARGS = args

    report = {"float": args.float, "ours": args.ours, "orts": None if args.orts == "-" else args.orts, "checks": {}}

    def record(name, outcome):
        result, summary, lines = outcome
        report["checks"][name] = result
        print(f"{name}: {'ok' if result['ok'] else 'FAIL'} {summary}".rstrip())
        for line in lines:
            print(f"  {line}")

    record("checker", check_checker(args.ours))
    if args.orts != "-":
        compare_graphs(args.ours, args.orts, record)
    record("outputs", check_outputs(args))
    ok = all(r["ok"] for r in report["checks"].values())
    report["ok"] = ok
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f, indent=1)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
