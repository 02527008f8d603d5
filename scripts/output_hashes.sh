#!/usr/bin/env bash
# Byte-identity guard for refactors: quantizes every corpus model in a fixed set of dynamic and
# static configurations (static from the committed ranges files in tests/fixtures/ranges/, so
# calibration changes do not move these hashes) and compares the sha256 of every output model with
# scripts/output_hashes.txt. A configuration that fails records its exit code instead, so a change
# in what is refused shows too.
#
#   bash scripts/output_hashes.sh            # compare (exit 1 on any difference)
#   bash scripts/output_hashes.sh --update   # rewrite scripts/output_hashes.txt
#   bash scripts/output_hashes.sh --ranges   # re-make tests/fixtures/ranges/ (MinMax)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus="${ONNXQ_CORPUS:-../shared/corpus}"
[ -d "$corpus/models" ] || { echo "corpus not found at $corpus (set ONNXQ_CORPUS)" >&2; exit 2; }
cargo build --release --locked -q -p onnxq-cli
bin="${CARGO_TARGET_DIR:-target}/release/onnxq"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
models=(digits-cnn mobilenetv2 minilm-l6-v2 bytegpt ppocr-rec silero-vad)

if [ "${1:-}" = "--ranges" ]; then
  lib="$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | head -1)"
  [ -n "${ORT_DYLIB_PATH:-}" ] || [ -z "$lib" ] || export ORT_DYLIB_PATH="$PWD/$lib"
  for m in "${models[@]}"; do
    # tract where it can run the model (no Python needed), ONNX Runtime where it cannot (silero-vad)
    for engine in tract ort; do
      "$bin" calibrate "$corpus/models/$m/model.onnx" --data "$corpus/data/$m/calib.npz" \
        --engine "$engine" -o "tests/fixtures/ranges/$m.json" 2>/dev/null && break
      echo "$m: calibration with $engine failed" >&2
    done
  done
  exit 0
fi

dynamic=(
  "dyn-default|--mode dynamic"
  "dyn-per-channel|--mode dynamic --per-channel"
  "dyn-u8-rr|--mode dynamic --weight-type uint8 --reduce-range"
  "dyn-conv-pc|--mode dynamic --conv-per-channel"
  "dyn-subgraph|--mode dynamic --enable-subgraph"
  "dyn-dynamic-b|--mode dynamic --dynamic-b"
)
static=(
  "st-qdq|--mode static"
  "st-qdq-pc|--mode static --per-channel"
  "st-u8u8|--mode static --activation-type uint8 --weight-type uint8"
  "st-16bit|--mode static --activation-type uint16 --weight-type int16"
  "st-int4|--mode static --weight-type int4 --per-channel"
  "st-rr|--mode static --reduce-range --per-channel"
  "st-sym|--mode static --extra ActivationSymmetric=true"
  "st-dedicated|--mode static --extra DedicatedQDQPair=true"
  "st-qop|--mode static --format qoperator"
  "st-qop-pc|--mode static --format qoperator --per-channel"
)
out="$work/hashes.txt"
for m in "${models[@]}"; do
  model="$corpus/models/$m/model.onnx"
  ranges="tests/fixtures/ranges/$m.json"
  for entry in "${dynamic[@]}" "${static[@]}"; do
    name="${entry%%|*}"; flags="${entry#*|}"
    extra=()
    case "$name" in st-*) [ -f "$ranges" ] || continue; extra=(--ranges "$ranges") ;; esac
    # shellcheck disable=SC2086
    if "$bin" quantize "$model" -o "$work/out.onnx" $flags "${extra[@]}" >/dev/null 2>&1; then
      hash="$(cat "$work"/out.onnx* | sha256sum | cut -d' ' -f1)"
    else
      hash="exit $?"
    fi
    echo "$m $name $hash" >>"$out"
    rm -f "$work"/out.onnx*
  done
done

if [ "${1:-}" = "--update" ]; then
  cp "$out" scripts/output_hashes.txt
  echo "wrote scripts/output_hashes.txt ($(wc -l <"$out") configurations)"
elif diff -u scripts/output_hashes.txt "$out"; then
  echo "all $(wc -l <"$out") outputs byte-identical to scripts/output_hashes.txt"
else
  echo "outputs differ from scripts/output_hashes.txt (above)" >&2
  exit 1
fi
