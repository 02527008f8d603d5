#!/usr/bin/env bash
# Corpus metrics and inference latency of weight-only quantization: float, ONNX Runtime's
# MatMulNBitsQuantizer (DEFAULT, RTN, k_quant, where its tool runs) and onnxq (every algorithm), on
# bytegpt (bits per byte, lower is better) and minilm-l6-v2 (spearman and cosine to float), at 4 bits
# with blocks of 32 and 128 and at 8 bits (block 128), each scored by ../shared/corpus/eval/<model>.py;
# then ONNX Runtime's latency (CPU, 2 threads, median of $REPS runs on the first calibration sample) of the float model and
# of onnxq's DEFAULT 4-bit block-32 model at accuracy levels 0 and 4, on the two models and on the 2.5 GB synthetic
# model (64 tokens and 1). Prints Markdown tables.
# Usage: cargo build --release -p onnxq-cli && bench/weight_only_metrics.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), REPS (default 20),
#      SKIP_METRICS=1 (latency only), SKIP_BIG=1 (no 2.5 GB model rows), BIG_DIR
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
REPS=${REPS:-20}
OUT=$(mktemp -d /tmp/onnxq-wometrics.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
ort_score() {  # MODEL_NAME FLAGS...: ORT's tool, scored, or why it fails
    local m=$1
    shift
    if "$PY" "$ROOT/tests/py/ort_weight_only.py" "$CORPUS/models/$m/model.onnx" "$OUT/ort.onnx" "$@" >"$OUT/ort.txt" 2>&1; then
        score "$m" "$OUT/ort.onnx"
    else
        echo "fails: $(grep -m1 "ORT's tool failed" "$OUT/ort.txt" | cut -c20-90)"
    fi
}
if [[ -z ${SKIP_METRICS:-} ]]; then
echo "| model | setting | float | ORT default | onnxq default | ORT RTN | onnxq RTN | ORT k-quant | onnxq k-quant | onnxq HQQ |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for m in bytegpt minilm-l6-v2; do
    float=$(cat "$CORPUS/data/$m/float_metric.txt")
    for set in "4-bit b32|--bits 4 --block-size 32" "4-bit b128|--bits 4 --block-size 128" "8-bit b128|--bits 8 --block-size 128"; do
        label=${set%%|*}; flags=${set#*|}
        # shellcheck disable=SC2086
        row="| $m | $label | $float | $(ort_score "$m" $flags) | $(ours_score "$m" $flags)"
        for algo in rtn k_quant; do
            # ORT's RTN and k_quant always use 4 bits (its node config hard-codes them).
            if [[ $label == 8-bit* ]]; then ort="(4 bits only)"; else
                # shellcheck disable=SC2086
                ort=$(ort_score "$m" $flags --algo $algo)
            fi
            # shellcheck disable=SC2086
            row="$row | $ort | $(ours_score "$m" $flags --algo $algo)"
        done
        # HQQ's float zero points run in ONNX Runtime at 2 and 4 bits only (onnxq refuses 8).
        # shellcheck disable=SC2086
        if [[ $label == 8-bit* ]]; then hqq="(2/4 bits only)"; else hqq=$(ours_score "$m" $flags --algo hqq); fi
        echo "$row | $hqq |"
    done
done
fi

PY_LAT='import sys, time
import numpy as np, onnxruntime as ort
path, name, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
o = ort.SessionOptions(); o.intra_op_num_threads = 2
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
data = np.load(sys.argv[4])
feeds = {i.name: data[i.name][0] for i in s.get_inputs()}  # the first calibration sample
if len(sys.argv) > 5:  # only its first TOKENS positions (a decoding step reads one)
    feeds = {k: v[..., : int(sys.argv[5])] for k, v in feeds.items()}
s.run(None, feeds)
t = []
for _ in range(reps):
    a = time.perf_counter(); s.run(None, feeds); t.append(time.perf_counter() - a)
print(f"{np.median(t) * 1000:.2f}")'
echo
echo "| model | float ms | onnxq 4-bit b32 ms (accuracy level 0) | onnxq 4-bit b32 ms (accuracy level 4) |"
echo "| --- | --- | --- | --- |"
latency() {  # LABEL MODEL FEEDS [TOKENS]
    local label=$1 model=$2 feeds=$3 tokens=${4:-} f l0 l4
    f=$("$PY" -c "$PY_LAT" "$model" "$label" "$REPS" "$feeds" $tokens)
    rm -f "$OUT"/l0.onnx* "$OUT"/l4.onnx*
    "$ONNXQ" quantize "$model" -o "$OUT/l0.onnx" --mode weight-only --block-size 32 -q
    "$ONNXQ" quantize "$model" -o "$OUT/l4.onnx" --mode weight-only --block-size 32 --accuracy-level 4 -q
    l0=$("$PY" -c "$PY_LAT" "$OUT/l0.onnx" "$label" "$REPS" "$feeds" $tokens)
    l4=$("$PY" -c "$PY_LAT" "$OUT/l4.onnx" "$label" "$REPS" "$feeds" $tokens)
    echo "| $label | $f | $l0 | $l4 |"
}
for m in bytegpt minilm-l6-v2; do
    latency "$m" "$CORPUS/models/$m/model.onnx" "$CORPUS/data/$m/calib.npz"
done
# The 2.5 GB synthetic model (bench/make_big.sh), where weight bandwidth dominates: a 64-token
# prompt and one token (a decoding step).
if [[ -z ${SKIP_BIG:-} ]]; then
    BIG_DIR=${BIG_DIR:-/tmp/onnxq-big/synth-2p5g}
    BIG_DIR=$BIG_DIR bash "$ROOT/bench/make_big.sh" >/dev/null
    latency "synth-2p5g, 64 tokens" "$BIG_DIR/model.onnx" "$BIG_DIR/calib.npz"
    latency "synth-2p5g, 1 token" "$BIG_DIR/model.onnx" "$BIG_DIR/calib.npz" 1
fi
