#!/usr/bin/env bash
# `quantize --auto` on the corpus: per model, the plain static model (QDQ S8S8 per tensor, the
# default of both tools; ORT's quantize_static makes the same, see the recovery table) and the
# --auto model, each scored by ../shared/corpus/eval/<model>.py and timed against the float model
# with `onnxq bench` (ONNX Runtime, 1 thread, 40 interleaved runs); the search's wall time and peak
# RSS, its chosen configuration and the share of Conv/MatMul/Gemm left float (from --report).
# The target per model is the issue's (TARGETS below): a metric bound judged by the model's own
# eval script through --eval-cmd (PICK: the field judged when it is not the first printed), or
# the output cosine to float on the held-out samples; FLAGS adds what a target asks beyond it
# (ppocr-rec: per-tensor weights).
# Usage: cargo build --release -p onnxq-cli && bench/auto.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), CORPUS, MODELS (default
#      all five), BUDGET (--budget, default 4m), ORT_DYLIB_PATH (default: PY's onnxruntime),
#      KEEP=DIR (keep the models in DIR)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
MODELS=${MODELS:-digits-cnn mobilenetv2 ppocr-rec bytegpt minilm-l6-v2}
BUDGET=${BUDGET:-4m}
if [[ -n ${KEEP:-} ]]; then
    OUT=$KEEP && mkdir -p "$OUT"
else
    OUT=$(mktemp -d /tmp/onnxq-auto.XXXXXX)
    trap 'rm -rf "$OUT"' EXIT
fi
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
use_ort_of_py
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# model -> --target (metric=X: the eval script's first number at least X; metric<=X: at most X)
declare -A TARGETS=(
    [digits-cnn]="metric=0.9876"
    [mobilenetv2]="metric=0.90"
    [ppocr-rec]="metric=0.99"
    [bytegpt]="metric<=2.6852"
    [minilm-l6-v2]="metric=0.99"
)
# model -> what picks the judged number out of the eval script's output, when it is not the first
# (minilm-l6-v2's target is its cos_to_float, printed after spearman)
declare -A PICK=(
    [minilm-l6-v2]=" | grep -o 'cos_to_float=[0-9.]*'"
)
# model -> more --auto flags the issue's target asks for (ppocr-rec: per-tensor weights)
declare -A FLAGS=(
    [ppocr-rec]="--per-tensor"
)

# speed FLOAT MODEL CALIB: "N.NN×" of MODEL against FLOAT (onnxq bench's last column).
speed() {
    "$ONNXQ" bench "$1" "$2" --data "$3" --threads 1 --runs 40 2>/dev/null |
        tail -n 1 | grep -oE '[0-9.]+× (faster|slower)|as fast' | sed 's/ faster//; s/\(.*\)× slower/1\/\1 (slower)/'
}

echo "| model | target | model made | metric | speed vs float | Conv/MatMul/Gemm float | quantize s | peak RSS MB | chosen |"
echo "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |"
for m in $MODELS; do
    src=$CORPUS/models/$m/model.onnx
    calib=$CORPUS/data/$m/calib.npz
    t=${TARGETS[$m]}
    echo "| $m | — | float | $(cat "$CORPUS/data/$m/float_metric.txt") | 1 | — | — | — | — |"
    log "$m: plain"
    q=$OUT/$m-plain.onnx
    timed "$ONNXQ" quantize "$src" -o "$q" --mode static --data "$calib" --engine ort
    echo "| $m | — | plain static | $(score "$m" "$q") | $(speed "$src" "$q" "$calib") | 0 % | $WALL | $RSS | QInt8 activations, per-tensor, all ops, MinMax |"
    log "$m: --auto --target $t"
    q=$OUT/$m-auto.onnx
    eval_cmd=()
    [[ $t == metric* ]] && eval_cmd=(--eval-cmd "'$PY' '$CORPUS/eval/$m.py' {model}${PICK[$m]:-}")
    timed "$ONNXQ" quantize "$src" -o "$q" --mode static --data "$calib" --engine ort --auto \
        --target "$t" --budget "$BUDGET" "${eval_cmd[@]}" ${FLAGS[$m]:-} --report "$OUT/$m-auto.json"
    if ((RC != 0)); then
        echo "| $m | $t | --auto | fails: $(grep -m1 -i error "$OUT/cmd.txt" | tr '|' '/') | | | $WALL | $RSS | |"
        continue
    fi
    chosen=$("$PY" -c 'import json, sys
s = json.load(open(sys.argv[1]))["search"]
d = [d for d in s["decisions"] if d["chosen"]][0]
share, config, n = 100 * d["float_share"], d["config"], len(s["decisions"])
extra = " + %d node(s) float" % len(d["excluded"]) if d["excluded"] else ""
extra += " + %d activation(s) at 16 bits" % len(d["sixteen_bit"]) if d.get("sixteen_bit") else ""
met = "met" if s["met"] else "NOT met"
print(f"{share:.0f} %|{config}{extra} ({n} candidates; target {met})")' "$OUT/$m-auto.json")
    echo "| $m | $t${FLAGS[$m]:+ ${FLAGS[$m]}} | --auto | $(score "$m" "$q") | $(speed "$src" "$q" "$calib") | ${chosen%%|*} | $WALL | $RSS | ${chosen#*|} |"
done
echo
echo "Machine load (uptime) at the end: $(uptime | sed 's/.*load average: *//') (1/5/15 min)"
