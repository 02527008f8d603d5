#!/usr/bin/env bash
# GPTQ benchmarks: (1) corpus metrics of onnxq's GPTQ against float, DEFAULT and RTN on bytegpt (bits
# per byte, lower is better) and minilm-l6-v2 (spearman / cosine to float), 4 bits, blocks 128 and 32,
# each calibrated on the model's calib.npz and scored by ../shared/corpus/eval/<model>.py on its held-out
# eval set; (2) wall time and peak RSS (/usr/bin/time -v) of GPTQ on the 2.54 GB synthetic transformer
# (bench/make_big.sh) with its 32 calibration samples, 4 bits, block 128. Prints Markdown tables.
# Usage: cargo build --release -p onnxq-cli && bench/weight_only_gptq.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), BIG_DIR, SKIP_BIG=1,
#      SKIP_METRICS=1, GPTQ_MEMORY (the big run's --gptq-memory, default onnxq's)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
OUT=$(mktemp -d /tmp/onnxq-gptq.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
use_ort_of_py
if [[ -z ${SKIP_METRICS:-} ]]; then
    echo "| model | setting | float | onnxq default | onnxq RTN | onnxq GPTQ | onnxq GPTQ act-order |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for m in bytegpt minilm-l6-v2; do
        float=$(cat "$CORPUS/data/$m/float_metric.txt")
        data=$CORPUS/data/$m/calib.npz
        for set in "4-bit b128|--bits 4 --block-size 128" "4-bit b32|--bits 4 --block-size 32"; do
            label=${set%%|*}; flags=${set#*|}
            # shellcheck disable=SC2086
            echo "| $m | $label | $float | $(ours_score "$m" $flags) | $(ours_score "$m" $flags --algo rtn) |" \
                "$(ours_score "$m" $flags --algo gptq --data "$data") |" \
                "$(ours_score "$m" $flags --algo gptq --act-order --data "$data") |"
        done
    done
    echo
fi
if [[ -z ${SKIP_BIG:-} ]]; then
    BIG_DIR=$BIG_DIR bash "$ROOT/bench/make_big.sh" >/dev/null
    extra=()
    [[ -n ${GPTQ_MEMORY:-} ]] && extra=(--gptq-memory "$GPTQ_MEMORY")
    echo "| command | wall s | CPU s | max RSS MB | exit | summary |"
    echo "| --- | --- | --- | --- | --- | --- |"
    timed "$ONNXQ" quantize "$BIG_DIR/model.onnx" -o "$OUT/big.onnx" --mode weight-only --algo gptq \
        --data "$BIG_DIR/calib.npz" --engine ort "${extra[@]}"
    line=$(grep -m1 "GPTQ:" "$OUT/cmd.txt" | sed 's/|/\\|/g')
    echo "| onnxq GPTQ 4-bit b128, 32 samples ${extra[*]} | $WALL | $CPU | $RSS | $RC | $line |"
    [[ $RC == 0 ]] || tail -5 "$OUT/cmd.txt"
fi
