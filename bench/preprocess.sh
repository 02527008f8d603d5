#!/usr/bin/env bash
# Benchmark pre-processing side by side on one machine: `onnxq preprocess` against ONNX Runtime's
# quant_pre_process (all three steps where it can: symbolic shape inference, the ORT basic optimizer,
# ONNX shape inference) on minilm-l6-v2, mobilenetv2 and bytegpt, and on the 2.54 GB synthetic model
# (bench/make_big.sh), where ORT must skip its optimizer (it cannot write a model over 2 GB) and save with
# external data; and onnxq with --ort-optimizer on the corpus models. The 2.5 GB model's output is checked
# (checker full check, ORT's outputs equal the original's). Wall time, CPU time and max RSS from
# /usr/bin/time -v; each command $RUNS times.
# Prints a Markdown table; raw output goes to $LOG.
#
# Usage: bench/make_big.sh && cargo build --release -p onnxq-cli && bench/preprocess.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), BIG_DIR, RUNS (default 2),
#      SKIP_BIG=1, MODELS (default "minilm-l6-v2 mobilenetv2 bytegpt"), LOG (default /tmp/onnxq-pre-<time>.log)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
RUNS=${RUNS:-2}
LOG=${LOG:-/tmp/onnxq-pre-$(date +%Y%m%d-%H%M%S).log}
# --ort-optimizer finds the ONNX Runtime library in this Python's onnxruntime package.
export ONNXQ_PYTHON=${ONNXQ_PYTHON:-$PY}
OUT=$(mktemp -d /tmp/onnxq-pre.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

PY_ORT='import logging, sys
from onnxruntime.quantization.shape_inference import quant_pre_process
logging.disable(logging.WARNING)
src, out, big = sys.argv[1], sys.argv[2], sys.argv[3] == "big"
quant_pre_process(src, out, skip_optimization=big, save_as_external_data=big, all_tensors_to_one_file=True)'

rows=()
# ORT's symbolic shape inference writes sym_shape_infer_temp.onnx (and its data) into the current folder.
cd "$OUT" || exit 1

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is), onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
# MODELS="" runs the 2.5 GB model alone.
read -r -a models <<< "${MODELS-minilm-l6-v2 mobilenetv2 bytegpt}"
for m in "${models[@]}"; do
    src=$CORPUS/models/$m/model.onnx
    measure_runs "onnxq preprocess, $m" "$ONNXQ" preprocess "$src" -o "$OUT/o/model.onnx"
    measure_runs "ORT quant_pre_process, $m" "$PY" -c "$PY_ORT" "$src" "$OUT/o/model.onnx" small
    measure_runs "onnxq preprocess --ort-optimizer, $m" "$ONNXQ" preprocess "$src" -o "$OUT/o/model.onnx" \
        --ort-optimizer
done
if [[ -z ${SKIP_BIG:-} ]]; then
    BIG_DIR=$BIG_DIR bash "$ROOT/bench/make_big.sh" >/dev/null
    measure_runs "cp model.onnx.data (2.5 GB)" cp "$BIG_DIR/model.onnx.data" "$OUT/o/copy.data"
    measure_runs "onnxq preprocess, 2.5 GB model" "$ONNXQ" preprocess "$BIG_DIR/model.onnx" -o "$OUT/o/model.onnx"
    # The output of the last run: the checker's full check, and ORT's outputs equal the original's.
    "$PY" "$ROOT/tests/py/compare_preprocess.py" "$BIG_DIR/model.onnx" "$OUT/o/model.onnx" \
        --feeds "$BIG_DIR/calib.npz" --samples 1 2>&1 | grep -v onnxruntime: | tee -a "$LOG"
    measure_runs "ORT quant_pre_process (no optimizer), 2.5 GB model" "$PY" -c "$PY_ORT" "$BIG_DIR/model.onnx" \
        "$OUT/o/model.onnx" big
fi
echo
echo "| command | run | wall s | CPU s | max RSS MB | exit |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
