#!/usr/bin/env bash
# Corpus metrics of static quantization (QDQ): float, ONNX Runtime's quantize_static and onnxq,
# per model and configuration, each scored by ../shared/corpus/eval/<model>.py. Both tools
# calibrate on the model's calib.npz (same samples, same order; onnxq with the ONNX Runtime engine).
# Prints a Markdown table. SKIP_ORT_HISTOGRAM_ON (default ppocr-rec) lists models where ORT's
# histogram calibrators are not run (they hold every activation of every sample: ~14 GB there).
# ONLY (a regular expression) keeps the configurations whose label matches it; MODELS lists the
# models (default: all five).
# Usage: cargo build --release -p onnxq-cli && bench/static_metrics.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
SKIP_ORT_HISTOGRAM_ON=${SKIP_ORT_HISTOGRAM_ON:-ppocr-rec}
ONLY=${ONLY:-.}
MODELS=${MODELS:-digits-cnn mobilenetv2 minilm-l6-v2 bytegpt ppocr-rec}
OUT=$(mktemp -d /tmp/onnxq-staticmetrics.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
export ONNXQ_PYTHON=$PY
score() { "$PY" "$CORPUS/eval/$1.py" "$2" 2>/dev/null | tail -n 1; }
echo "| model | configuration | float | ORT quantize_static | onnxq |"
echo "| --- | --- | --- | --- | --- |"
for m in $MODELS; do
    float=$(cat "$CORPUS/data/$m/float_metric.txt")
    data=$CORPUS/data/$m/calib.npz
    for cfg in "qdq-minmax|" "qdq-minmax per-channel|--per-channel" "qdq-entropy|--method entropy" \
        "qdq-percentile|--method percentile" "qdq-distribution|--method distribution" "u8u8|--activation-type uint8 --weight-type uint8" \
        "16-bit activations|--activation-type int16" "qop-minmax|--format qoperator" \
        "qop-minmax per-channel|--format qoperator --per-channel"; do
        label=${cfg%%|*}; flags=${cfg#*|}
        [[ $label =~ $ONLY ]] || continue
        if [[ $flags == *--method* && " $SKIP_ORT_HISTOGRAM_ON " == *" $m "* ]]; then
            ort="not run (ORT's histogram calibration needs ~14 GB here)"
        # shellcheck disable=SC2086
        elif "$PY" "$ROOT/tests/py/ort_quantize.py" static "$CORPUS/models/$m/model.onnx" "$OUT/ort.onnx" --data "$data" $flags >"$OUT/ort.txt" 2>&1; then
            ort=$(score "$m" "$OUT/ort.onnx")
            [[ -n $ort ]] || ort="model does not run"
        else
            ort="fails: $(grep -m1 ort-failed "$OUT/ort.txt" | cut -c13-90)"
        fi
        # shellcheck disable=SC2086
        if "$ONNXQ" quantize "$CORPUS/models/$m/model.onnx" -o "$OUT/onnxq.onnx" --mode static --data "$data" --engine ort $flags >"$OUT/q.txt" 2>&1; then
            ours=$(score "$m" "$OUT/onnxq.onnx")
        else
            ours="fails: $(grep -m1 error "$OUT/q.txt" | cut -c1-90)"
        fi
        echo "| $m | $label | $float | $ort | $ours |"
    done
done
