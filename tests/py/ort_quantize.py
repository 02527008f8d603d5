"""Quantize a model with ONNX Runtime's own tool, the reference that onnxq's output is compared with.

Usage: python tests/py/ort_quantize.py dynamic MODEL OUT [--per-channel] [--reduce-range]
           [--weight-type int8|uint8] [--op-types A,B] [--exclude n1,n2] [--extra KEY=VALUE ...]
       python tests/py/ort_quantize.py static MODEL OUT --data CALIB.npz [--format qdq|qoperator]
           [--activation-type T] [--weight-type T] [--method minmax|entropy|percentile|distribution]
           [--per-channel] [--reduce-range] [--op-types A,B] [--exclude n1,n2] [--extra KEY=VALUE ...]

`static` calls quantize_static with a data reader over CALIB.npz (key = graph input name, first axis = sample,
samples in order, one at a time), so its MinMax ranges equal `onnxq calibrate`'s bit for bit.

`dynamic` calls onnxruntime.quantization.quantize_dynamic(MODEL, OUT, ...) with these settings: --op-types is
op_types_to_quantize, --exclude is nodes_to_exclude (node names), --extra sets extra_options keys, each value
parsed as JSON when it is valid JSON (MatMulConstBOnly=false, EnableSubgraph=true) and kept as a string
otherwise. Every setting left out keeps ORT's default.

ORT's tool writes <stem>-inferred.onnx beside its input while it runs, so MODEL (with the other entries of its
folder, e.g. external data) is linked into a private temporary folder first: the corpus must not be written
to (it is read-only in CI), and two runs on one model must not share that file.

Prints "ok" and exits 0 when ORT's tool succeeds. When it raises, prints
"ort-failed: <ExceptionType>: <first line of the message>" and exits 3, so that a caller can tell a model ORT
cannot quantize from a bug in this script (exit 1) or a usage error (exit 2).
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_dynamic, quantize_static)

WEIGHT_TYPES = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8, "int16": QuantType.QInt16,
                "uint16": QuantType.QUInt16, "int4": QuantType.QInt4, "uint4": QuantType.QUInt4}
METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile, "distribution": CalibrationMethod.Distribution}


def names(text):
    return [n for n in text.split(",") if n]


def key_value(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = ap.add_subparsers(dest="mode", required=True)
    dyn = modes.add_parser("dynamic", help="onnxruntime.quantization.quantize_dynamic")
    dyn.add_argument("model")
    dyn.add_argument("out")
    dyn.add_argument("--per-channel", action="store_true")
    dyn.add_argument("--reduce-range", action="store_true")
    dyn.add_argument("--weight-type", choices=WEIGHT_TYPES, default="int8")
    dyn.add_argument("--op-types", type=names, default=None, help="comma-separated op types to quantize")
    dyn.add_argument("--exclude", type=names, default=None, help="comma-separated node names to leave float")
    dyn.add_argument("--extra", type=key_value, nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                     help="extra_options entries")
    st = modes.add_parser("static", help="onnxruntime.quantization.quantize_static")
    st.add_argument("model")
    st.add_argument("out")
    st.add_argument("--data", required=True)
    st.add_argument("--format", choices=["qdq", "qoperator"], default="qdq")
    st.add_argument("--activation-type", choices=WEIGHT_TYPES, default="int8")
    st.add_argument("--weight-type", choices=WEIGHT_TYPES, default="int8")
    st.add_argument("--method", choices=METHODS, default="minmax")
    st.add_argument("--per-channel", action="store_true")
    st.add_argument("--reduce-range", action="store_true")
    st.add_argument("--op-types", type=names, default=None)
    st.add_argument("--exclude", type=names, default=None)
    st.add_argument("--extra", type=key_value, nargs="+", action="extend", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    if not Path(args.out).resolve().parent.is_dir():
        ap.error(f"folder of {args.out} does not exist")  # else ORT's save would fail and read as ORT's failure
    return args


def staged(model, folder):
    """Link MODEL and its folder's other entries into folder; return the path of the linked model."""
    src = Path(model).resolve().parent
    base = Path(model).name
    inferred = Path(base).stem + "-inferred" + Path(base).suffix  # what ORT writes; never link over it
    for entry in os.listdir(src):
        if entry != inferred:
            os.symlink(src / entry, Path(folder) / entry)
    return str(Path(folder) / base)


def run_dynamic(args, model):
    quantize_dynamic(
        model,
        args.out,
        op_types_to_quantize=args.op_types,
        per_channel=args.per_channel,
        reduce_range=args.reduce_range,
        weight_type=WEIGHT_TYPES[args.weight_type],
        nodes_to_exclude=args.exclude,
        extra_options=dict(args.extra),
    )


class Reader(CalibrationDataReader):
    """One sample at a time, in order, from an .npz whose first axis indexes samples."""

    def __init__(self, path):
        data = np.load(path)
        self.arrays = {k: data[k] for k in data.files}
        self.count = len(next(iter(self.arrays.values())))
        self.i = 0

    def get_next(self):
        if self.i >= self.count:
            return None
        sample = {k: v[self.i] for k, v in self.arrays.items()}
        self.i += 1
        return sample


ZP_DTYPES = {"QInt8": np.int8, "QUInt8": np.uint8, "QInt16": np.int16, "QUInt16": np.uint16}


def ort_entry(e, qtype):
    """One override dict from JSON to ORT's form: QuantType members, numpy scale/zero point/range,
    and for `convert` the same plus `recv_nodes` as a set."""
    e = dict(e)
    if "quant_type" in e:
        e["quant_type"] = QuantType[e["quant_type"]]
    for key in ("rmin", "rmax"):
        if key in e:
            e[key] = np.array(e[key], np.float32)
    if "scale" in e:
        e["scale"] = np.array(e["scale"], np.float32)
        e["zero_point"] = np.array(e["zero_point"], ZP_DTYPES[qtype])
    if "convert" in e:
        c = e["convert"]
        e["convert"] = ort_entry(c, c["quant_type"])
    if "recv_nodes" in e:
        e["recv_nodes"] = set(e["recv_nodes"])
    return e


def ort_overrides(overrides):
    """TensorQuantOverrides from JSON to what ORT's tool expects."""
    return {
        tensor: [ort_entry(e, e.get("quant_type", entries[0].get("quant_type", "QInt8"))) for e in entries]
        for tensor, entries in overrides.items()
    }


def run_static(args, model):
    extra = dict(args.extra)
    if "TensorQuantOverrides" in extra:
        extra["TensorQuantOverrides"] = ort_overrides(extra["TensorQuantOverrides"])
    quantize_static(
        model,
        args.out,
        Reader(args.data),
        quant_format=QuantFormat.QDQ if args.format == "qdq" else QuantFormat.QOperator,
        op_types_to_quantize=args.op_types,
        per_channel=args.per_channel,
        reduce_range=args.reduce_range,
        activation_type=WEIGHT_TYPES[args.activation_type],
        weight_type=WEIGHT_TYPES[args.weight_type],
        nodes_to_exclude=args.exclude,
        calibrate_method=METHODS[args.method],
        extra_options=extra,
    )


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ort_quantize.") as folder:
        model = staged(args.model, folder)
        try:
            (run_dynamic if args.mode == "dynamic" else run_static)(args, model)
        except Exception as e:  # anything ORT's tool raises: InferenceError, ValueError, RuntimeError, ...
            message = str(e).strip().splitlines()
            print(f"ort-failed: {type(e).__name__}: {message[0] if message else ''}")
            return 3
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
