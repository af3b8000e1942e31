#!/usr/bin/env bash
# Open a fer-bench report (index.html) in headless Chromium and save a screenshot.
#
#   scripts/screenshot_report.sh REPORT_DIR/index.html OUT.png [WIDTHxHEIGHT]
#
# Installs Debian's `chromium` package when it is missing and apt-get can run (as root);
# where no browser can be had it prints why and exits 0 ("skipped"), so CI without a browser
# passes. The page must render with networking disabled: the report is self-contained.
set -euo pipefail

html=${1:?usage: screenshot_report.sh INDEX.html OUT.png [WIDTHxHEIGHT]}
out=${2:?usage: screenshot_report.sh INDEX.html OUT.png [WIDTHxHEIGHT]}
size=${3:-1280x2000}
[[ -f "$html" ]] || { echo "screenshot_report: $html not found" >&2; exit 2; }

find_browser() {
  for b in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$b" >/dev/null 2>&1 && { command -v "$b"; return 0; }
  done
  return 1
}

browser=$(find_browser || true)
if [[ -z "$browser" ]]; then
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    echo "screenshot_report: installing chromium (Debian package)" >&2
    if ! { apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 ||
           { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; }; }; then
      echo "screenshot_report: skipped (apt-get could not install chromium)"; exit 0
    fi
    browser=$(find_browser || true)
  fi
fi
if [[ -z "$browser" ]]; then
  echo "screenshot_report: skipped (no chromium, and apt-get is unavailable or not root)"; exit 0
fi

abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# --no-sandbox: containers often run as root, where Chromium's sandbox refuses to start.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$tmp" \
  --proxy-server="127.0.0.1:9" --proxy-bypass-list="<-loopback>" \
  --window-size="${size/x/,}" --screenshot="$tmp/shot.png" "file://$abs" >/dev/null 2>&1
[[ -s "$tmp/shot.png" ]] || { echo "screenshot_report: chromium wrote no screenshot" >&2; exit 1; }
mv "$tmp/shot.png" "$out"
echo "screenshot_report: $out"
