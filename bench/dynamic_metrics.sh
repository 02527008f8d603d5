#!/usr/bin/env bash
# Corpus metrics of dynamic quantization: float, ONNX Runtime's quantize_dynamic and onnxq, per
# model and option set, each scored by ../shared/corpus/eval/<model>.py. Prints a Markdown table.
# Usage: cargo build --release -p onnxq-cli && bench/dynamic_metrics.sh
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
OUT=$(mktemp -d /tmp/onnxq-dynmetrics.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
score() { "$PY" "$CORPUS/eval/$1.py" "$2" 2>/dev/null | tail -n 1; }
echo "| model | option set | float | ORT quantize_dynamic | onnxq |"
echo "| --- | --- | --- | --- | --- |"
for m in digits-cnn mobilenetv2 minilm-l6-v2 bytegpt ppocr-rec silero-vad; do
    float=$(cat "$CORPUS/data/$m/float_metric.txt")
    for set in "defaults|" "per-channel|--per-channel" "uint8|--weight-type uint8" "conv-per-channel|--per-channel --conv-per-channel" "subgraphs|--enable-subgraph --conv-per-channel"; do
        label=${set%%|*}; flags=${set#*|}
        [[ $label == subgraphs && $m != silero-vad ]] && continue
        ort_flags=$flags
        [[ $label == conv-per-channel ]] && ort_flags="--per-channel"   # ORT has no per-channel Conv path
        [[ $label == subgraphs ]] && ort_flags="--extra EnableSubgraph=true"
        # shellcheck disable=SC2086
        if "$PY" "$ROOT/tests/py/ort_quantize.py" dynamic "$CORPUS/models/$m/model.onnx" "$OUT/ort.onnx" $ort_flags >"$OUT/ort.txt" 2>&1; then
            ort=$(score "$m" "$OUT/ort.onnx")
        else
            ort="fails: $(grep -m1 ort-failed "$OUT/ort.txt" | cut -c13-90)"
        fi
        # shellcheck disable=SC2086
        if "$ONNXQ" quantize "$CORPUS/models/$m/model.onnx" -o "$OUT/onnxq.onnx" $flags >"$OUT/q.txt" 2>&1; then
            ours=$(score "$m" "$OUT/onnxq.onnx")
        else
            ours="fails: $(head -1 "$OUT/q.txt")"
        fi
        echo "| $m | $label | $float | $ort | $ours |"
    done
done
