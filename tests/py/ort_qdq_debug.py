"""ONNX Runtime's own QDQ debugging pipeline (onnxruntime.quantization.qdq_loss_debug), the oracle of `onnxq compare`.

Usage: python tests/py/ort_qdq_debug.py FLOAT.onnx QUANT.onnx --data CALIB.npz [--data MORE.npz ...]
           [--samples N] --out OUT.json

Runs the module's functions as its documentation shows:
  modify_model_output_intermediate_tensors(FLOAT) and (QUANT)       every float tensor made a graph output
  collect_activations(augmented, reader) on each                    one run per sample, all outputs kept
  create_activation_matching(qdq_activations, float_activations)    pre-/post-QDQ pairs (+ float counterpart)
  compute_activation_error(matching)                                SQNR in dB
  create_weight_matching(FLOAT, QUANT), compute_weight_error(...)   SQNR of each DequantizeLinear'd initializer

The reader gives the first N samples (default: all) of the --data files in order (the samples of the first file,
then the second, ...), sample i of a file being {key: np.asarray(arr[i])} (key = graph input name, first axis =
sample). compute_activation_error raises KeyError on a matched activation without a float counterpart (its
`match["float"]`), so only the entries that have one are passed to it; the others get their qdq_err from
compute_signal_to_quantization_noice_ratio(pre_qdq, post_qdq) directly (what compute_activation_error does) and
are listed under "without_float" as well.

OUT gets {"weights": {name: sqnr}, "activations": {name: {"qdq_err": x, "xmodel_err": y}}, "seconds": s,
"samples": N, "without_float": [names]}: xmodel_err only when the activation has a float counterpart; floats
are Python floats written by json (shortest repr that reads back exactly), non-finite values as the strings
"inf", "-inf", "nan" (JSON has none). "seconds" is the wall time of the pipeline above (staging, augmenting,
both runs, matching and errors; not Python's imports, reading the npz files or writing OUT).

ORT's functions write beside their inputs (load_model_with_shape_infer writes <stem>-inferred.onnx next to
the model) and some default to files in the current directory, so every path is made absolute, the process
moves into a private temporary folder, and each model is linked (with the other entries of its folder, e.g.
external data) into its own sub-folder there. An augmented model is saved with external data when its input
model has any (the inline form may not fit protobuf's 2 GB).
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader
from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                     compute_signal_to_quantization_noice_ratio,
                                                     compute_weight_error, create_activation_matching,
                                                     create_weight_matching,
                                                     modify_model_output_intermediate_tensors)


def load_samples(paths, limit):
    """[{key: array}] for the first `limit` samples (all when None) of the npz files, in order."""
    samples = []
    for path in paths:
        if limit is not None and len(samples) >= limit:
            break
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        counts = {len(a) for a in arrays.values()}
        if len(counts) != 1:
            raise SystemExit(f"{path}: arrays disagree on the number of samples: {sorted(counts)}")
        n = counts.pop()
        if limit is not None:
            n = min(n, limit - len(samples))
        samples.extend({k: np.asarray(a[i]) for k, a in arrays.items()} for i in range(n))
    return samples


class Reader(CalibrationDataReader):
    """The given samples, one at a time, in order."""

    def __init__(self, samples):
        self.samples = iter(samples)

    def get_next(self):
        return next(self.samples, None)


def has_external_data(path):
    model = onnx.load(path, load_external_data=False)
    graphs, found = [model.graph], False
    while graphs and not found:
        g = graphs.pop()
        tensors = list(g.initializer)
        for node in g.node:
            for a in node.attribute:
                if a.HasField("t"):
                    tensors.append(a.t)
                tensors.extend(a.tensors)
                if a.HasField("g"):
                    graphs.append(a.g)
                graphs.extend(a.graphs)
        found = any(t.data_location == onnx.TensorProto.EXTERNAL for t in tensors)
    return found


def staged(model, folder):
    """Link MODEL and its folder's other entries into folder (created); return the linked model's path."""
    src = model.parent
    folder.mkdir()
    inferred = model.stem + "-inferred" + model.suffix  # what ORT writes; never link over it
    for entry in os.listdir(src):
        if entry != inferred:
            os.symlink(src / entry, folder / entry)
    return folder / model.name


def number(x):
    x = float(x)
    return x if math.isfinite(x) else ("nan" if math.isnan(x) else "inf" if x > 0 else "-inf")


def float64_sqnr(x, y):
    """ORT's SQNR on the same tensors widened to float64 first: its float32 norms lose ~1e-4 of
    relative precision over millions of elements (~1e-3 dB) and overflow on float-min masks."""
    wide = lambda v: [np.asarray(a, np.float64) for a in v] if isinstance(v, (list, tuple)) else np.asarray(v, np.float64)
    return compute_signal_to_quantization_noice_ratio(wide(x), wide(y))


def int32_weight_errors(float_path, quant_path):
    """The weights create_weight_matching pairs (DequantizeLinear of an initializer `<W>_quantized`
    with float initializer `<W>`), dequantized with the zero point subtracted in int64 -- the
    figure ORT's function would give without its integer wrap-around -- SQNR in float64."""
    import onnx
    from onnx import numpy_helper

    fm, qm = onnx.load(str(float_path)), onnx.load(str(quant_path))
    floats = {t.name: numpy_helper.to_array(t) for t in fm.graph.initializer}
    inits = {t.name: numpy_helper.to_array(t) for t in qm.graph.initializer}
    out = {}
    for n in qm.graph.node:
        if n.op_type != "DequantizeLinear" or n.input[0] not in inits or not n.input[0].endswith("_quantized"):
            continue
        name = n.input[0][: -len("_quantized")]
        if name not in floats:
            continue
        q = inits[n.input[0]].astype(np.int64)
        scale = inits[n.input[1]].astype(np.float64)
        zp = inits[n.input[2]].astype(np.int64) if len(n.input) > 2 and n.input[2] else np.zeros_like(scale, np.int64)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if scale.size > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        deq = (q - zp).astype(np.float64) * scale
        out[name] = float64_sqnr(floats[name], deq)
    return out


def run(float_model, quant_model, samples, work, float64=False):
    fp = staged(float_model, work / "float")
    qp = staged(quant_model, work / "quant")
    float_aug, quant_aug = work / "float_augmented.onnx", work / "quant_augmented.onnx"
    modify_model_output_intermediate_tensors(str(fp), str(float_aug), save_as_external_data=has_external_data(fp))
    modify_model_output_intermediate_tensors(str(qp), str(quant_aug), save_as_external_data=has_external_data(qp))
    float_acts = collect_activations(str(float_aug), Reader(samples))
    qdq_acts = collect_activations(str(quant_aug), Reader(samples))
    matching = create_activation_matching(qdq_acts, float_acts)
    with_float = {k: v for k, v in matching.items() if "float" in v}
    err = float64_sqnr if float64 else compute_signal_to_quantization_noice_ratio
    activations = compute_activation_error(with_float, err_func=err)
    without_float = [k for k in matching if "float" not in matching[k]]
    for k in without_float:
        activations[k] = {"qdq_err": err(matching[k]["pre_qdq"], matching[k]["post_qdq"])}
    weights = compute_weight_error(create_weight_matching(str(fp), str(qp)), err_func=err)
    return weights, activations, without_float, int32_weight_errors(fp, qp)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("float_model")
    ap.add_argument("quant_model")
    ap.add_argument("--data", action="append", required=True, help="calibration .npz (repeatable)")
    ap.add_argument("--samples", type=int, default=None, help="use the first N samples (default: all)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--float64", action="store_true", help="SQNR of the same tensors in float64 (see float64_sqnr)")
    args = ap.parse_args(argv)
    if args.samples is not None and args.samples < 1:
        ap.error("--samples must be at least 1")
    float_model, quant_model = Path(args.float_model).resolve(), Path(args.quant_model).resolve()
    out = Path(args.out).resolve()
    if not out.parent.is_dir():
        ap.error(f"folder of {args.out} does not exist")
    samples = load_samples([Path(p).resolve() for p in args.data], args.samples)
    if not samples:
        ap.error("no samples in --data")
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="ort_qdq_debug.") as work:
        os.chdir(work)
        try:
            start = time.perf_counter()
            weights, activations, without_float, exact = run(float_model, quant_model, samples, Path(work),
                                                             args.float64)
            seconds = time.perf_counter() - start
        finally:
            os.chdir(cwd)
    result = {
        "weights": {k: number(v) for k, v in weights.items()},
        "activations": {k: {e: number(x) for e, x in v.items()} for k, v in activations.items()},
        "weights_int32": {k: number(v) for k, v in exact.items()},
        "seconds": seconds,
        "samples": len(samples),
        "without_float": without_float,
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"ok: {len(weights)} weights, {len(activations)} activations ({len(without_float)} without a float "
          f"counterpart), {len(samples)} samples, {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
