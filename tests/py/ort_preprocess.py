"""Pre-process a model with ONNX Runtime's own `quant_pre_process`, the reference for `onnxq preprocess`.

Usage: python tests/py/ort_preprocess.py MODEL OUT

Runs onnxruntime.quantization.shape_inference.quant_pre_process(MODEL, OUT) with its defaults (all three steps:
symbolic shape inference, ONNX Runtime's basic-level optimizer, ONNX shape inference). ORT's symbolic shape
inference stops with "Incomplete symbolic shape inference" on some real exports (minilm-l6-v2, bytegpt): when the
full run raises, it is run again with skip_symbolic_shape=True (the two other steps only), as a user would.

MODEL (with the other entries of its folder) is linked into a private temporary folder first, because ORT's
tool writes temporary files beside its input and the corpus is read-only.

Prints one line and exits 0 on success: "ok: steps=all" or
"ok: steps=skip_symbolic_shape (full run failed: <ExceptionType>: <first line>)". When both runs raise, prints
"ort-failed: <ExceptionType>: <first line of the message>" and exits 3, so that a caller can tell a model ORT
cannot pre-process from a bug in this script (exit 1) or a usage error (exit 2).
"""
import os
import sys
import tempfile
from pathlib import Path

from onnxruntime.quantization.shape_inference import quant_pre_process


def first_line(e):
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def staged(model, folder):
    """Link MODEL and its folder's other entries into folder; return the path of the linked model."""
    src = Path(model).resolve().parent
    for entry in os.listdir(src):
        os.symlink(src / entry, Path(folder) / entry)
    return str(Path(folder) / Path(model).name)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    model, out = (str(Path(p).resolve()) for p in argv)
    if not Path(out).parent.is_dir():
        print(f"folder of {out} does not exist", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ort_preprocess.") as folder:
        staged_model = staged(model, folder)
        # Its symbolic shape inference writes sym_shape_infer_temp.onnx and data into the current folder.
        os.chdir(folder)
        try:
            quant_pre_process(staged_model, out)
            print("ok: steps=all")
            return 0
        except Exception as e:  # anything ORT's tool raises: symbolic inference, optimizer, ONNX inference
            full = first_line(e)
        try:
            quant_pre_process(staged_model, out, skip_symbolic_shape=True)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            print(f"ort-failed: {first_line(e)} (full run: {full})")
            return 3
    print(f"ok: steps=skip_symbolic_shape (full run failed: {full})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
