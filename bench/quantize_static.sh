#!/usr/bin/env bash
# Static quantization end to end (calibration + quantization), side by side on one machine:
# `onnxq quantize --mode static --data` (ONNX Runtime engine) against ONNX Runtime's quantize_static
# (tests/py/ort_quantize.py static: the same calib.npz, one sample at a time) on mobilenetv2 and
# minilm-l6-v2, QDQ MinMax per-channel and QDQ Percentile. Wall time and peak RSS from
# /usr/bin/time -v; RUNS runs per cell (default 1).
# Usage: cargo build --release -p onnxq-cli && bench/quantize_static.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
RUNS=${RUNS:-1}
CORPUS=$ROOT/../shared/corpus
OUT=$(mktemp -d /tmp/onnxq-staticbench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
export ONNXQ_PYTHON=$PY
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

rows=()
measure() {  # LABEL CMD...
    local label=$1 run note
    shift
    for run in $(seq "$RUNS"); do
        timed "$@"
        note=""
        ((RC == 0)) || note=$(grep -E "error|Error" "$OUT/cmd.txt" | tail -n 1 | cut -c1-120 | tr '|' '/')
        rows+=("| $label | $WALL | $RSS | $RC | $note |")
        echo "$label: ${WALL} s, ${RSS} MB, exit $RC" >&2
    done
}

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is), onnxruntime $("$PY" -c 'import onnxruntime; print(onnxruntime.__version__)')"
for model in mobilenetv2 minilm-l6-v2; do
    data=$CORPUS/data/$model/calib.npz
    for cfg in "MinMax per-channel|--per-channel" "Percentile|--method percentile"; do
        label=${cfg%%|*}; flags=${cfg#*|}
        # shellcheck disable=SC2086
        measure "onnxq $label ($model)" "$ONNXQ" quantize "$CORPUS/models/$model/model.onnx" -o "$OUT/q.onnx" --mode static --data "$data" --engine ort $flags
        # shellcheck disable=SC2086
        measure "ORT quantize_static $label ($model)" "$PY" "$ROOT/tests/py/ort_quantize.py" static "$CORPUS/models/$model/model.onnx" "$OUT/o.onnx" --data "$data" $flags
    done
done
echo
echo "| command | wall s | max RSS MB | exit | note |"
echo "| --- | ---: | ---: | ---: | --- |"
printf '%s\n' "${rows[@]}"
