#!/usr/bin/env bash
# Write the 2.54 GB synthetic transformer (corpus big/make_big.py: model.onnx + model.onnx.data) to
# $BIG_DIR (default /tmp/onnxq-big/synth-2p5g) unless it is already there.
# Usage: bench/make_big.sh        env: BIG_DIR, PY (default .venv/bin/python), CORPUS (default ../shared/corpus)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
# make_big.py writes model.onnx last, so its presence means a complete model
if [[ -f $BIG_DIR/model.onnx && -f $BIG_DIR/model.onnx.data ]]; then
    echo "exists: $BIG_DIR/model.onnx"
    exit 0
fi
"$PY" "$CORPUS/big/make_big.py" --out "$BIG_DIR"
