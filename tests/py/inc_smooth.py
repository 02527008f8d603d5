"""SmoothQuant oracle: Intel Neural Compressor's own ORTSmoothQuant, called exactly as ONNX Runtime's
quantize_static calls it when extra_options has SmoothQuant=True. The numbers it gives are INC's facts, to
compare onnxq's native `--smooth-quant` against; nothing here re-implements the algorithm.

Usage: python tests/py/inc_smooth.py MODEL.onnx [OUT.onnx] --data CALIB.npz [--alpha 0.5] [--folding true|false]
           [--scales SCALES.npz] [--ort-quantize QOUT.onnx]

OUT: runs `ORTSmoothQuant(model_path, dataloader, reduce_range=False).transform(alpha, folding)` and saves
INC's smoothed float model to OUT, as quantize.py does (onnxruntime 1.31.1, quantize_static's SmoothQuant
block): the model is passed as a path string, the dataloader is a generator over a deep copy of a
CalibrationDataReader that yields (feed_dict, None) once per sample of CALIB.npz (key = graph input name,
first axis = sample, in order), and transform gets only alpha and folding, so INC's other defaults hold
(percentile 99.999, op_types Gemm/Conv/MatMul/FusedConv, scales_per_op=True, calib_iter 100). Prints one
line per Mul that INC inserted and could not fold ("kept-mul NAME"), then "ok".
--scales writes INC's smoothing factors s (weight input channel j times s_j, activation times 1/s_j) to an
.npz, one array per key (a node name, since scales_per_op=True), captured from INC's own
_get_smooth_scales return value.

--ort-quantize QOUT: runs onnxruntime.quantization.quantize_static(MODEL, QOUT, reader,
extra_options={"SmoothQuant": True, "SmoothQuantAlpha": alpha, "SmoothQuantFolding": folding}) with ORT's
defaults spelled out (QDQ, QInt8 activations and weights, MinMax, per-tensor), i.e. ORT+INC's quantized model.
OUT may be given too; then both are written (INC runs twice, once standalone and once inside ORT).

MODEL is never written to: it (with its folder's other entries, e.g. external data) is symlinked into a
private temporary folder first (ORT writes <stem>-inferred.onnx beside its input), and its bytes are
checked unchanged at the end. Note that INC imports `transformers` when the model's folder holds a
config.json, as it would inside ORT.

Needs the side venv of tests/py/requirements-inc.txt (neural-compressor 3.7.1 wants numpy<2).
Exit 0 on success; 3 with "inc-failed: <Type>: <first line>" when INC or ORT raises; 1 on other errors.
"""
import argparse
import contextlib
import copy
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ort_quantize import Reader, staged  # noqa: E402  the same reader as the ORT oracle's


def boolean(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def alpha_value(text):
    return text if text == "auto" else float(text)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out", nargs="?", help="INC's smoothed float model")
    ap.add_argument("--data", required=True)
    ap.add_argument("--alpha", type=alpha_value, default=0.5, help="SmoothQuantAlpha (float, or auto)")
    ap.add_argument("--folding", type=boolean, default=True, help="SmoothQuantFolding")
    ap.add_argument("--scales", help="write INC's per-key smoothing factors s to this .npz")
    ap.add_argument("--ort-quantize", metavar="QOUT", help="also/instead: ORT quantize_static with SmoothQuant")
    args = ap.parse_args(argv)
    if args.out is None and args.ort_quantize is None:
        ap.error("give OUT and/or --ort-quantize QOUT")
    for path in (args.out, args.ort_quantize, args.scales):
        if path is not None and not Path(path).resolve().parent.is_dir():
            ap.error(f"folder of {path} does not exist")
    return args


def inc_smooth(model_path, reader, alpha, folding, scales_out=None):
    """INC's smoothed ONNXModel, with the call sequence of ORT's quantize_static."""
    from neural_compressor.adaptor.ox_utils.smooth_quant import ORTSmoothQuant

    def inc_dataloader():  # as in ORT: a generator over a deep copy, so the original reader stays unread
        data_reader = copy.deepcopy(reader)
        for data in data_reader:
            yield data, None

    dataloader = inc_dataloader()
    sq = ORTSmoothQuant(model_path, dataloader, False)  # reduce_range: quantize_static's default False
    captured = {}
    if scales_out is not None:  # observe INC's scales without changing what it computes
        original = sq._get_smooth_scales

        def capture(*a, **k):
            result = original(*a, **k)
            captured.update(result)
            return result

        sq._get_smooth_scales = capture
    del dataloader
    model = sq.transform(alpha, folding)
    if scales_out is not None:
        np.savez(scales_out, **{k: np.asarray(v, np.float32) for k, v in captured.items()})
    return model


def ort_quantize(model_path, qout, reader, alpha, folding):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(
        model_path,
        qout,
        reader,
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"SmoothQuant": True, "SmoothQuantAlpha": alpha, "SmoothQuantFolding": folding},
    )


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv=None):
    args = parse_args(argv)
    before = digest(args.model)
    with tempfile.TemporaryDirectory(prefix="inc_smooth.") as folder:
        model_path = staged(args.model, folder)
        try:
            if args.out is not None:
                with contextlib.redirect_stdout(sys.stderr):  # INC prints a progress bar to stdout
                    model = inc_smooth(model_path, Reader(args.data), args.alpha, args.folding, args.scales)
                model.save(str(Path(args.out).resolve()))
                for node in onnx.load(args.out, load_external_data=False).graph.node:
                    if node.op_type == "Mul" and node.name.endswith("_smooth_mul"):
                        print(f"kept-mul {node.name}")
            if args.ort_quantize is not None:
                with contextlib.redirect_stdout(sys.stderr):
                    ort_quantize(model_path, args.ort_quantize, Reader(args.data), args.alpha, args.folding)
        except Exception as e:  # what INC or ORT raises: AssertionError, ValueError, KeyError, ...
            message = str(e).strip().splitlines()
            print(f"inc-failed: {type(e).__name__}: {message[0] if message else ''}")
            return 3
    if digest(args.model) != before:
        print(f"error: {args.model} was modified", file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
