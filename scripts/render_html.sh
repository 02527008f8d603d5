#!/usr/bin/env bash
# Renders an HTML report (onnxq compare --html) to a PNG with headless Chromium, to look at a page
# without a desktop browser or to attach a picture of it.
#
#   bash scripts/render_html.sh REPORT.html OUT.png [WIDTH HEIGHT]    (default 1400x2400)
#
# Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`; CHROMIUM overrides the
# path). The page is self-contained; the flags also keep Chromium itself off the network (no
# component updates, sync or background requests) and a fresh profile is used and removed.
set -euo pipefail
if [ $# -ne 2 ] && [ $# -ne 4 ]; then
  echo "usage: $0 REPORT.html OUT.png [WIDTH HEIGHT]" >&2
  exit 2
fi
html="$1"
png="$2"
width="${3:-1400}"
height="${4:-2400}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "error: $chromium is missing; install it with: apt-get install -y chromium" >&2
  exit 2
fi
if [ ! -f "$html" ]; then
  echo "error: no file $html" >&2
  exit 2
fi
case "$width$height" in *[!0-9]*)
  echo "error: WIDTH and HEIGHT must be whole numbers of pixels" >&2
  exit 2 ;;
esac
# Chromium resolves the page and the screenshot path itself: give it absolute ones.
html_abs="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
png_dir="$(cd "$(dirname "$png")" && pwd)"
png_abs="$png_dir/$(basename "$png")"
profile="$(mktemp -d "${TMPDIR:-/tmp}/onnxq-chromium.XXXXXX")"
trap 'rm -rf "$profile"' EXIT
rm -f "$png_abs"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$profile" --window-size="$width,$height" --screenshot="$png_abs" \
  "file://$html_abs" >"$profile/chromium.log" 2>&1 || {
  cat "$profile/chromium.log" >&2
  echo "error: chromium failed" >&2
  exit 1
}
if [ ! -s "$png_abs" ]; then
  cat "$profile/chromium.log" >&2
  echo "error: chromium wrote no screenshot to $png_abs" >&2
  exit 1
fi
echo "wrote $png_abs (${width}x${height})"
