#!/usr/bin/env bash
# Benchmark the float-vs-quantized comparison side by side on one machine: `onnxq compare --engine ort`
# against ONNX Runtime's own debugging pipeline (tests/py/ort_qdq_debug.py: qdq_loss_debug's
# modify_model_output_intermediate_tensors on both models, collect_activations on each,
# create_activation_matching + compute_activation_error, create_weight_matching + compute_weight_error).
# Per model, a static QDQ model is first made with ORT's quantize_static (tests/py/ort_quantize.py static,
# default settings, calibrated on the model's calib.npz; not timed), then both tools compare it with the float
# model on the first SAMPLES samples of calib.npz; a calib.npz with fewer samples is cycled (sample i of the
# new npz = sample i mod n) into a temporary npz of SAMPLES samples, which the output says. Each command is
# a fresh process timed by /usr/bin/time -v (bench/lib.sh: wall seconds and peak RSS; the ORT rows include
# Python importing onnxruntime). Prints a Markdown table row per model (and run); ratios are onnxq / ORT.
# When the onnxq binary has no `compare` command yet, only the ORT side is run (onnxq cells "n/a").
#
# Usage: cargo build --release -p onnxq-cli && bench/compare.sh
# env: ONNXQ (default target/release/onnxq), PY (default .venv/bin/python), MODELS (default
#      "mobilenetv2 minilm-l6-v2"), SAMPLES (default 64), RUNS (default 1), CORPUS (default ../shared/corpus)
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ONNXQ=${ONNXQ:-$ROOT/target/release/onnxq}
PY=${PY:-$ROOT/.venv/bin/python}
CORPUS=${CORPUS:-$ROOT/../shared/corpus}
MODELS=${MODELS:-mobilenetv2 minilm-l6-v2}
SAMPLES=${SAMPLES:-64}
RUNS=${RUNS:-1}
OUT=$(mktemp -d /tmp/onnxq-comparebench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
export ONNXQ_PYTHON=$PY
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
use_ort_of_py

have_compare=1
if ! "$ONNXQ" compare --help >/dev/null 2>&1; then
    have_compare=0
    echo "note: $ONNXQ has no \`compare\` command (or does not run): only ONNX Runtime's side is measured" >&2
fi

# failure FILE: the last error line of a command's output, fit for a table cell.
failure() { grep -E "Error|error" "$1" | tail -n 1 | cut -c1-120 | tr '|' '/'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

echo "machine: $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GB RAM, $(date -Is)"
rows=() notes=()
for m in $MODELS; do
    float=$CORPUS/models/$m/model.onnx
    calib=$CORPUS/data/$m/calib.npz
    mkdir -p "$OUT/$m"
    if [[ ! -f $float || ! -f $calib ]]; then
        echo "$m: no $float or $calib" >&2
        rows+=("| $m | $SAMPLES | no such corpus model | | | | | |")
        continue
    fi
    n=$("$PY" -c "import sys, numpy as np; z = np.load(sys.argv[1]); print(min(len(z[k]) for k in z.files))" "$calib")
    data=$calib
    if ((n < SAMPLES)); then
        data=$OUT/$m/calib-cycled.npz
        "$PY" -c "import sys, numpy as np
z = np.load(sys.argv[1]); s = int(sys.argv[3])
np.savez(sys.argv[2], **{k: np.take(z[k], np.arange(s) % len(z[k]), axis=0) for k in z.files})" "$calib" "$data" "$SAMPLES"
        echo "note: $m: calib.npz has $n samples; cycled to $SAMPLES (sample i = sample i mod $n) in a temporary npz"
        notes+=("$m: calib.npz has $n samples, cycled to $SAMPLES")
    fi
    quant=$OUT/$m/qdq.onnx
    if ! "$PY" "$ROOT/tests/py/ort_quantize.py" static "$float" "$quant" --data "$calib" >"$OUT/$m/quantize.txt" 2>&1; then
        echo "$m: ORT's quantize_static failed: $(tail -n 1 "$OUT/$m/quantize.txt")" >&2
        rows+=("| $m | $SAMPLES | quantize_static fails | | | | | |")
        continue
    fi
    for run in $(seq "$RUNS"); do
        label=$m
        ((RUNS == 1)) || label="$m (run $run)"
        timed "$PY" "$ROOT/tests/py/ort_qdq_debug.py" "$float" "$quant" --data "$data" --samples "$SAMPLES" --out "$OUT/$m/ort.json"
        ort_wall=$WALL ort_rss=$RSS
        if ((RC == 0)); then
            echo "ORT ($label): ${WALL} s, ${RSS} MB; $(grep '^ok' "$OUT/cmd.txt")" >&2
        else
            echo "ORT ($label): exit $RC: $(failure "$OUT/cmd.txt")" >&2
            notes+=("ORT ($label) exits $RC: $(failure "$OUT/cmd.txt")")
            ort_wall="fails" ort_rss="fails"
        fi
        ours_wall=n/a ours_rss=n/a
        if ((have_compare)); then
            timed "$ONNXQ" compare "$float" "$quant" --data "$data" --samples "$SAMPLES" --json "$OUT/$m/onnxq.json" --engine ort --suggest 0
            ours_wall=$WALL ours_rss=$RSS
            echo "onnxq ($label): ${WALL} s, ${RSS} MB, exit $RC" >&2
            if ((RC != 0)); then
                notes+=("onnxq ($label) exits $RC: $(failure "$OUT/cmd.txt")")
                ours_wall="fails" ours_rss="fails"
            fi
        fi
        tr=n/a rr=n/a
        if [[ $ort_wall != fails && $ours_wall != fails && $ours_wall != n/a ]]; then
            tr=$(ratio "$ours_wall" "$ort_wall") rr=$(ratio "$ours_rss" "$ort_rss")
        fi
        rows+=("| $label | $SAMPLES | $ort_wall | $ort_rss | $ours_wall | $ours_rss | $tr | $rr |")
    done
done
echo
((have_compare)) || echo "onnxq: $ONNXQ has no \`compare\` command; ONNX Runtime's side only."
echo "| model | samples | ORT s | ORT MB | onnxq s | onnxq MB | time ratio (onnxq / ORT) | RSS ratio (onnxq / ORT) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
((${#notes[@]} == 0)) || { echo; printf -- '- %s\n' "${notes[@]}"; }
