#!/usr/bin/env bash
# Benchmark calibration side by side on one machine: `onnxq calibrate` (ONNX Runtime and tract engines) against
# ONNX Runtime's own calibrator (tests/py/ort_calibrate.py: shape inference, create_calibrator,
# collect_data over all samples, compute_data) for MinMax, Entropy and Percentile on mobilenetv2 (its
# 64 calibration samples, and the same samples repeated 4x to show whether memory stays flat) and
# ppocr-rec. One run per cell (RUNS to change); wall time and max RSS from /usr/bin/time -v.
#
# Usage: cargo build --release -p onnxq-cli && bench/calibrate.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), RUNS (default 1)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
RUNS=${RUNS:-1}
CORPUS=$ROOT/../shared/corpus
OUT=$(mktemp -d /tmp/onnxq-calbench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
export ONNXQ_PYTHON=$PY
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

# mobilenetv2's samples repeated 4 times (256 samples).
"$PY" -c "import sys, numpy as np; z = np.load(sys.argv[1]); np.savez(sys.argv[2], **{k: np.concatenate([z[k]] * 4) for k in z.files})" \
    "$CORPUS/data/mobilenetv2/calib.npz" "$OUT/mobilenetv2-x4.npz"

rows=()
measure() {  # LABEL CMD...
    local label=$1 run wall rss rc
    shift
    for run in $(seq "$RUNS"); do
        timed "$@"
        rc=$RC wall=$WALL rss=$RSS
        note=""
        ((rc == 0)) || note=$(grep -E "Error|error" "$OUT/cmd.txt" | tail -n 1 | cut -c1-120 | tr '|' '/')
        rows+=("| $label | $wall | $rss | $rc | $note |")
        echo "$label: ${wall} s, ${rss} MB, exit $rc" >&2
    done
}

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is)"
for case in "mobilenetv2|$CORPUS/data/mobilenetv2/calib.npz|64" "mobilenetv2|$OUT/mobilenetv2-x4.npz|256" "ppocr-rec|$CORPUS/data/ppocr-rec/calib.npz|64"; do
    IFS='|' read -r model data n <<<"$case"
    for method in minmax entropy percentile; do
        for engine in ort tract; do
            measure "onnxq $engine $method ($model, $n samples)" "$ONNXQ" calibrate "$CORPUS/models/$model/model.onnx" --data "$data" --method "$method" --engine "$engine" -o "$OUT/r.json"
        done
        measure "ORT $method ($model, $n samples)" "$PY" "$ROOT/tests/py/ort_calibrate.py" "$CORPUS/models/$model/model.onnx" "$data" "$OUT/o.json" --method "$method"
    done
done
echo
echo "| command | wall s | max RSS MB | exit | note |"
echo "| --- | ---: | ---: | ---: | --- |"
printf '%s\n' "${rows[@]}"
