"""Calibrate with ONNX Runtime's own calibrator, the reference onnxq's ranges are compared with.

Usage: python tests/py/ort_calibrate.py MODEL.onnx FEEDS.npz OUT.json
           [--method minmax|entropy|percentile|distribution] [--symmetric [BOOL]] [--moving-average]
           [--num-bins N] [--num-quantized-bins N] [--percentile P] [--trt-table DIR]

As quantize_static does, the model first goes through ONNX shape inference (the calibrator only
observes tensors with a known float type), then create_calibrator(...).collect_data(reader) runs every
sample of FEEDS (key = graph input name, first axis = sample) in one call, and compute_data() gives the
ranges. OUT gets {"tensor": [min, max], ...}, float32 values written exactly ("inf"/"-inf" as strings).
With --trt-table, write_calibration_table(ranges, DIR) also writes ORT's TensorRT tables.
"""
import argparse
import json
import os
import tempfile

import numpy as np
import onnx
from onnxruntime.quantization.calibrate import CalibrationDataReader, CalibrationMethod, create_calibrator

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile, "distribution": CalibrationMethod.Distribution}


class Reader(CalibrationDataReader):
    def __init__(self, path, inputs):
        data = np.load(path)
        arrays = {k: data[k] for k in inputs if k in data.files}
        n = len(next(iter(arrays.values())))
        self.samples = iter([{k: np.asarray(a[i]) for k, a in arrays.items()} for i in range(n)])

    def get_next(self):
        return next(self.samples, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("feeds")
    ap.add_argument("out")
    ap.add_argument("--method", choices=METHODS, default="minmax")
    ap.add_argument("--symmetric", nargs="?", const="true", default=None)
    ap.add_argument("--moving-average", action="store_true")
    ap.add_argument("--num-bins", type=int)
    ap.add_argument("--num-quantized-bins", type=int)
    ap.add_argument("--percentile", type=float)
    ap.add_argument("--trt-table")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        inferred = os.path.join(d, "inferred.onnx")
        onnx.save(onnx.shape_inference.infer_shapes(onnx.load(args.model)), inferred)
        extra = {"moving_average": args.moving_average}
        if args.symmetric is not None:
            extra["symmetric"] = args.symmetric == "true"
        elif args.method == "percentile":
            extra["symmetric"] = True  # quantize_static's default for Percentile
        for key in ("num_bins", "num_quantized_bins", "percentile"):
            if getattr(args, key) is not None:
                extra[key] = getattr(args, key)
        cal = create_calibrator(inferred, augmented_model_path=os.path.join(d, "augmented.onnx"),
                                calibrate_method=METHODS[args.method], extra_options=extra)
        inputs = [i.name for i in onnx.load(inferred).graph.input]
        cal.collect_data(Reader(args.feeds, inputs))
        ranges = cal.compute_data()
        if args.trt_table:
            from onnxruntime.quantization import write_calibration_table
            os.makedirs(args.trt_table, exist_ok=True)
            write_calibration_table(ranges, args.trt_table)
    def exact(v):  # float32 as a JSON number, infinities as strings (JSON has none)
        v = float(np.float32(np.asarray(v).item()))
        return v if np.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")

    out = {name: [exact(r.range_value[0]), exact(r.range_value[1])] for name, r in ranges.data.items()}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    print(f"ok: {len(out)} tensors")


if __name__ == "__main__":
    main()
