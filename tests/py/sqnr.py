"""How close a quantized model's outputs stay to the float model's, on calibration-style samples.

Usage: python tests/py/sqnr.py FLOAT.onnx QUANT.onnx FEEDS.npz

Runs both models in ONNX Runtime (CPU) on every sample of FEEDS (key = graph input name, first axis = sample)
and prints one line per graph output: "NAME sqnr_db=X" for float outputs (10 log10 of signal power over error
power, over all samples; inf when identical) or "NAME agree=F" for integer outputs (fraction of equal values).
"""
import sys

import numpy as np
import onnxruntime as ort


def main():
    float_path, quant_path, feeds_path = sys.argv[1:4]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = [ort.InferenceSession(p, options, providers=["CPUExecutionProvider"])
                for p in (float_path, quant_path)]
    data = np.load(feeds_path)
    count = len(data[data.files[0]])
    names = [o.name for o in sessions[0].get_outputs()]
    outs = {name: ([], []) for name in names}
    for i in range(count):
        feed = {k: data[k][i] for k in data.files}
        for which, s in enumerate(sessions):
            for name, value in zip(names, s.run(names, feed)):
                outs[name][which].append(value)
    for name, (f, q) in outs.items():
        f, q = np.concatenate([a.ravel() for a in f]), np.concatenate([a.ravel() for a in q])
        if np.issubdtype(f.dtype, np.floating):
            signal, noise = float(np.sum(f.astype(np.float64) ** 2)), float(np.sum((f.astype(np.float64) - q) ** 2))
            db = float("inf") if noise == 0 else 10 * np.log10(signal / noise)
            print(f"{name} sqnr_db={db:.2f}")
        else:
            print(f"{name} agree={float(np.mean(f == q)):.4f}")


if __name__ == "__main__":
    main()
