"""Run a corpus metric script (`<corpus>/eval/NAME.py MODEL`) on the first N samples of its evaluation set.

Usage: python tests/py/corpus_metric.py CORPUS_DIR NAME MODEL [--samples N]

Without --samples this is exactly `python CORPUS_DIR/eval/NAME.py MODEL`. With --samples N the script runs
unchanged on a copy of the corpus layout in a temporary folder (eval/NAME.py copied, data/NAME/ linked entry by
entry) whose data/NAME/eval.npz keeps the first N rows of every array that has one row per evaluation sample
(leading axis as long as the largest array's) and every other array whole (e.g. mobilenetv2's mean and std).
The metric scripts find their data beside themselves, so nothing else changes; the corpus is only read.

Only evaluation sets whose per-sample arrays are aligned row by row can be cut this way (digits-cnn,
mobilenetv2, ppocr-rec, bytegpt); minilm-l6-v2 (sentence pairs index the sentences) and silero-vad (4 streams)
are refused with exit 2.

Prints the metric script's one line ("key=value ...") and exits with its status.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROW_ALIGNED = {"digits-cnn", "mobilenetv2", "ppocr-rec", "bytegpt"}


def cut(src, dst, samples):
    """Write the first `samples` rows of src's per-sample arrays (and its other arrays whole) to dst."""
    data = np.load(src)
    arrays = {k: data[k] for k in data.files}
    rows = max(arrays.values(), key=lambda a: a.size).shape[0]
    if samples > rows:
        raise SystemExit(f"--samples {samples}: the evaluation set has {rows}")
    np.savez(dst, **{k: (a[:samples] if a.ndim and a.shape[0] == rows else a) for k, a in arrays.items()})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("name")
    ap.add_argument("model")
    ap.add_argument("--samples", type=int)
    a = ap.parse_args()
    corpus = Path(a.corpus)
    model = str(Path(a.model).resolve())
    if a.samples is None:
        return subprocess.call([sys.executable, str(corpus / "eval" / f"{a.name}.py"), model])
    if a.name not in ROW_ALIGNED:
        ap.error(f"{a.name}: its evaluation set cannot be cut row by row")
    with tempfile.TemporaryDirectory(prefix="corpus_metric.") as tmp:
        (Path(tmp) / "eval").mkdir()
        shutil.copy(corpus / "eval" / f"{a.name}.py", Path(tmp) / "eval")
        data = Path(tmp) / "data" / a.name
        data.mkdir(parents=True)
        for entry in os.listdir(corpus / "data" / a.name):
            if entry != "eval.npz":
                os.symlink((corpus / "data" / a.name / entry).resolve(), data / entry)
        cut(corpus / "data" / a.name / "eval.npz", data / "eval.npz", a.samples)
        return subprocess.call([sys.executable, str(Path(tmp) / "eval" / f"{a.name}.py"), model])


if __name__ == "__main__":
    sys.exit(main())
