"""How far a quantized model's output mean moves per channel from the float model's.

Usage: python tests/py/channel_mean_error.py FLOAT.onnx QUANT.onnx FEEDS.npz AXIS

Runs both models in ONNX Runtime (CPU) on every sample of FEEDS (key = graph input name, first
axis = sample), takes the first output's error (quantized - float), averages it over every axis
but AXIS (the channel axis of one sample's output; -1 = last) and over the samples, and prints
"max_mean_error=X" (the largest |mean| over channels) and "sqnr_db=Y" (the output's SQNR).
"""
import sys

import numpy as np
import onnxruntime as ort


def main():
    float_path, quant_path, feeds_path, axis = sys.argv[1:5]
    axis = int(axis)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(p, options, providers=["CPUExecutionProvider"])
                for p in (float_path, quant_path)]
    data = np.load(feeds_path)
    count = len(data[data.files[0]])
    errors, signal, noise = [], 0.0, 0.0
    for i in range(count):
        feed = {k: data[k][i] for k in data.files}
        f, q = (s.run(None, feed)[0].astype(np.float64) for s in sessions)
        e = q - f
        errors.append(np.moveaxis(e, axis, 0).reshape(e.shape[axis], -1).mean(axis=1))
        signal += float(np.sum(f ** 2))
        noise += float(np.sum(e ** 2))
    mean = np.mean(errors, axis=0)
    print(f"max_mean_error={float(np.max(np.abs(mean))):.6g}")
    db = float("inf") if noise == 0 else 10 * np.log10(signal / noise)
    print(f"sqnr_db={db:.3f}")


if __name__ == "__main__":
    main()
