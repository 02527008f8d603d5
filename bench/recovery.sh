#!/usr/bin/env bash
# Accuracy recovery on the corpus: the metric of each recovery step's static model against the
# plain static model and ONNX Runtime's tool with the same settings, and the time each onnxq run
# takes (wall seconds and peak RSS of the whole quantize command, calibration included).
# Per model of MODELS, QDQ S8S8 (the default) per tensor and per channel, onnxq calibrating on the
# model's calib.npz with ONNX Runtime (--engine ort):
#   plain; --bias-correction; --equalize; --equalize --bias-correction; --smooth-quant;
#   --weight-rounding gptq (per channel: plain, --bias-correction, --weight-rounding gptq with and
#   without --bias-correction); ORT quantize_static with the same settings; and,
#   when INCPY names the Python of the side venv of tests/py/requirements-inc.txt, ORT's
#   quantize_static with SmoothQuant=True (Intel Neural Compressor inside, tests/py/inc_smooth.py).
# Scored by ../shared/corpus/eval/<model>.py (float: data/<model>/float_metric.txt). A run that
# fails is a row saying why. Prints Markdown on stdout (progress on stderr).
# Usage: cargo build --release -p onnxq-cli && bench/recovery.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), CORPUS, MODELS (default
#      mobilenetv2 minilm-l6-v2 ppocr-rec digits-cnn bytegpt), INCPY (unset: no INC rows),
#      ORT_DYLIB_PATH (default: PY's onnxruntime), KEEP=DIR (keep the models in DIR)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
MODELS=${MODELS:-mobilenetv2 minilm-l6-v2 ppocr-rec digits-cnn bytegpt}
if [[ -n ${KEEP:-} ]]; then
    OUT=$KEEP && mkdir -p "$OUT"
else
    OUT=$(mktemp -d /tmp/onnxq-recovery.XXXXXX)
    trap 'rm -rf "$OUT"' EXIT
fi
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
use_ort_of_py
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# weights | onnxq recovery flags (one variant per entry; "-" = plain)
VARIANTS=(
    "per tensor|-"
    "per tensor|--bias-correction"
    "per tensor|--equalize"
    "per tensor|--equalize --bias-correction"
    "per tensor|--smooth-quant"
    "per tensor|--weight-rounding gptq"
    "per channel|-"
    "per channel|--bias-correction"
    "per channel|--weight-rounding gptq"
    "per channel|--weight-rounding gptq --bias-correction"
)

# row MODEL WEIGHTS STEP TOOL FILE CMD...: runs CMD timed; prints the table row.
row() {
    local m=$1 w=$2 step=$3 tool=$4 f=$5
    shift 5
    timed "$@"
    if ((RC == 0)); then
        echo "| $m | $w | $step | $tool | $(score "$m" "$f") | $WALL | $RSS |"
    else
        local why
        # From the first error word on (INC's progress bar shares the line).
        why=$(tr '\r' '\n' <"$OUT/cmd.txt" | grep -m1 -oiE '(inc-failed|error).*' || tail -n 1 "$OUT/cmd.txt")
        echo "| $m | $w | $step | $tool | fails: ${why//|//} | $WALL | $RSS |"
    fi
}

echo "| model | weights | step | tool | metric | quantize s | peak RSS MB |"
echo "| --- | --- | --- | --- | --- | ---: | ---: |"
for m in $MODELS; do
    src=$CORPUS/models/$m/model.onnx
    calib=$CORPUS/data/$m/calib.npz
    echo "| $m | — | float | — | $(cat "$CORPUS/data/$m/float_metric.txt") | — | — |"
    # One untimed run first, so the first timed one does not pay for cold file caches.
    "$ONNXQ" quantize "$src" -o "$OUT/warm.onnx" --mode static --data "$calib" --engine ort >/dev/null 2>&1
    i=0
    for v in "${VARIANTS[@]}"; do
        i=$((i + 1))
        w=${v%%|*} step=${v#*|}
        pc=()
        [[ $w == "per channel" ]] && pc=(--per-channel)
        flags=()
        [[ $step != - ]] && read -r -a flags <<<"$step"
        label=$step
        [[ $step == - ]] && label=plain
        log "$m: onnxq $w $label"
        q=$OUT/$m-$i.onnx
        row "$m" "$w" "$label" onnxq "$q" "$ONNXQ" quantize "$src" -o "$q" --mode static \
            --data "$calib" --engine ort "${pc[@]}" "${flags[@]}"
        if [[ $step == - ]]; then
            log "$m: ORT $w"
            q=$OUT/$m-$i-ort.onnx
            row "$m" "$w" plain "ORT quantize_static" "$q" "$PY" "$ROOT/tests/py/ort_quantize.py" \
                static "$src" "$q" --data "$calib" "${pc[@]}"
        fi
        if [[ $step == --smooth-quant && -n ${INCPY:-} ]]; then
            log "$m: ORT+INC $w SmoothQuant"
            q=$OUT/$m-$i-inc.onnx
            row "$m" "$w" "$label" "ORT + INC" "$q" "$INCPY" "$ROOT/tests/py/inc_smooth.py" "$src" \
                --data "$calib" --ort-quantize "$q"
        fi
    done
done
echo
echo "Machine load (uptime) at the end: $(uptime | sed 's/.*load average: *//') (1/5/15 min)"
