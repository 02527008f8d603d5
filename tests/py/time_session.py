"""A plain Python timing loop: the reference `onnxq bench` is checked against.

Usage: time_session.py MODEL DATA.npz THREADS RUNS WARMUP -> prints {"median_ms": ...}

The session has the settings `onnxq bench` documents (every graph optimization, THREADS intra-op
threads, one inter-op thread, sequential execution); sample 0 of DATA (first axis = samples) is
fed, converted once; each `run` is timed alone with perf_counter.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

model, data, threads, runs, warmup = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
d = np.load(data)
names = [i.name for i in s.get_inputs()]
feeds = {n: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(d[n][0])) for n in names}
for _ in range(warmup):
    s.run_with_ort_values(None, feeds)
times = []
for _ in range(runs):
    t = time.perf_counter()
    s.run_with_ort_values(None, feeds)
    times.append((time.perf_counter() - t) * 1e3)
print(json.dumps({"median_ms": float(np.median(times))}))
