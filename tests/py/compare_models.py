"""Check that NEW.onnx is the same model as ORIG.onnx and computes bit-identical outputs.

Usage: python tests/py/compare_models.py ORIG.onnx NEW.onnx [--feeds calib.npz] [--samples N] [--no-run]

1. onnx.checker.check_model(NEW, full_check=True) must pass (path form, so models over 2 GB work).
2. Both models are loaded with their external data and canonicalised: repeated fields whose order carries
   no meaning (opset imports, metadata_props, value_info, initializers, sparse initializers, quantization
   annotations, functions) are sorted, recursively in subgraphs and functions. Every TensorProto (initializer,
   attribute or Constant value, in subgraphs too) is compared by name, dims, data type, other metadata and
   its decoded values (numpy_helper.to_array bytes), not by storage, so a tensor stored inline, as typed
   fields or as external data compares equal. The first differing field path is printed.
3. Unless --no-run, both models run in onnxruntime (CPU, one thread) on the first N samples of --feeds
   (key = graph input name, first axis = sample) and every output must be bit-identical.
Exits 0 after an "ok: ..." line, 1 at the first difference.
"""
import argparse
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor

SORT_KEYS = {
    "opset_import": lambda o: o.domain,
    "metadata_props": lambda p: p.key,
    "value_info": lambda v: v.name,
    "initializer": lambda t: t.name,
    "sparse_initializer": lambda s: s.values.name,
    "quantization_annotation": lambda a: a.tensor_name,
    "functions": lambda f: (f.domain, f.name, f.overload),
}
TENSOR_STORAGE = {"float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data",
                  "raw_data", "external_data", "data_location"}


def fail(msg):
    print(msg)
    sys.exit(1)


def canonicalise(msg, base_dir):
    """Sort order-free repeated fields, in place, recursively; load external data onnx.load left out."""
    if isinstance(msg, onnx.TensorProto) and msg.data_location == onnx.TensorProto.EXTERNAL:
        load_external_data_for_tensor(msg, base_dir)  # e.g. sparse tensors' values and indices
    for field, value in msg.ListFields():
        if field.type != field.TYPE_MESSAGE:
            continue
        for item in value if field.is_repeated else [value]:
            canonicalise(item, base_dir)
        if field.name in SORT_KEYS:
            value.sort(key=SORT_KEYS[field.name])


def same(x, y):
    return x == y or (x != x and y != y)  # NaN attribute values compare equal


def shown(x, y):
    a, b = repr(x), repr(y)
    if len(a) + len(b) <= 120:
        return f": {a} vs {b}"
    if isinstance(x, bytes):
        n = min(len(x), len(y))
        at = np.flatnonzero(np.frombuffer(x, np.uint8, n) != np.frombuffer(y, np.uint8, n))
        at = at[0] if at.size else n
        return f" ({len(x)} vs {len(y)} bytes, first difference at byte {at})"
    return ""


def label(msg, index):
    for key in ("name", "key", "domain", "tensor_name"):
        if key in msg.DESCRIPTOR.fields_by_name and getattr(msg, key):
            return getattr(msg, key)
    return str(index)


def first_diff(a, b, path):
    """Return a description of the first differing field of messages a and b, or None."""
    tensor = isinstance(a, onnx.TensorProto)
    for field in a.DESCRIPTOR.fields:
        if tensor and field.name in TENSOR_STORAGE:
            continue
        p = f"{path}.{field.name}" if path else field.name
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.is_repeated:
            if len(x) != len(y):
                return f"{p} has {len(x)} vs {len(y)} entries"
            for i, (u, v) in enumerate(zip(x, y)):
                if field.type == field.TYPE_MESSAGE:
                    d = first_diff(u, v, f"{p}[{label(u, i)}]")
                    if d:
                        return d
                elif not same(u, v):
                    return f"{p}[{i}] differs{shown(u, v)}"
        elif field.type == field.TYPE_MESSAGE:
            if a.HasField(field.name) != b.HasField(field.name):
                return f"{p} is set in only one model"
            d = a.HasField(field.name) and first_diff(x, y, p)
            if d:
                return d
        elif field.containing_oneof and a.HasField(field.name) != b.HasField(field.name):
            return f"{p} is set in only one model"  # e.g. dim_value 0 vs unknown dimension
        elif not same(x, y):
            return f"{p} differs{shown(x, y)}"
    return values_diff(a, b, path) if tensor else None


def values_diff(a, b, path):
    """Compare two tensors' decoded values bit for bit (same data type and dims already checked)."""
    x, y = numpy_helper.to_array(a), numpy_helper.to_array(b)
    if x.dtype == object:  # strings
        return None if x.tolist() == y.tolist() else f"{path} string values differ"
    x, y = x.tobytes(), y.tobytes()
    return None if x == y else f"{path} values differ{shown(x, y)}"


def load_canonical(path):
    m = onnx.load(path)
    canonicalise(m, os.path.dirname(os.path.abspath(path)))
    return m


def run_outputs(path, feeds):
    """Outputs of the model at path for each feed, in onnxruntime on one CPU thread."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in s.get_outputs()]
    return names, [s.run(names, f) for f in feeds]


def run_compare(orig, new, feeds_path, samples):
    """Run both models (one at a time, to bound memory) on the first samples of feeds_path; fail on any difference."""
    data = np.load(feeds_path)
    inputs = [i.name for i in onnx.load(orig, load_external_data=False).graph.input]
    arrays = {n: data[n] for n in inputs if n in data.files}
    if not arrays:
        fail(f"{feeds_path} has none of the graph inputs {inputs}")
    k = min(samples, *(len(a) for a in arrays.values()))
    feeds = [{n: np.asarray(a[i]) for n, a in arrays.items()} for i in range(k)]
    names, outs_orig = run_outputs(orig, feeds)
    _, outs_new = run_outputs(new, feeds)
    for i, (xs, ys) in enumerate(zip(outs_orig, outs_new)):
        for name, x, y in zip(names, xs, ys):
            x, y = np.asarray(x), np.asarray(y)
            if (x.dtype, x.shape) != (y.dtype, y.shape):
                fail(f"output {name} differs on sample {i}: {x.dtype}{list(x.shape)} vs {y.dtype}{list(y.shape)}")
            if not (np.array_equal(x, y) if x.dtype == object else x.tobytes() == y.tobytes()):
                detail = ""
                if x.dtype.kind in "fiu":
                    detail = f", max |diff| {np.nanmax(np.abs(x.astype(np.float64) - y.astype(np.float64))):g}"
                fail(f"output {name} differs on sample {i}{detail}")
    print(f"ok: {len(names)} outputs bit-identical on {k} samples")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("orig")
    ap.add_argument("new")
    ap.add_argument("--feeds", help="npz: key = graph input name, first axis = sample")
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--no-run", action="store_true", help="skip running the models in onnxruntime")
    args = ap.parse_args()
    if not args.no_run and not args.feeds:
        ap.error("--feeds is required unless --no-run")

    try:
        onnx.checker.check_model(args.new, full_check=True)
    except Exception as e:  # ValidationError, InferenceError, unreadable file, ...
        fail(f"onnx.checker failed on {args.new}: {e}")

    diff = first_diff(load_canonical(args.orig), load_canonical(args.new), "")  # both freed before running
    if diff:
        fail(diff)
    print("ok: models are structurally identical")

    if not args.no_run:
        run_compare(args.orig, args.new, args.feeds, args.samples)


if __name__ == "__main__":
    main()
