#!/usr/bin/env bash
# Renders a report.html or index.html to PNG with headless Chromium (Debian's `chromium` package), offline.
#
#   scripts/screenshot.sh results/latest/report.html [out.png] [WIDTHxHEIGHT]
#   scripts/screenshot.sh results/index.html index.png 1400x900
#
# Install Chromium first if needed: apt-get install -y chromium
# Network access is disabled for the page (a report must open offline): a page that needs the network renders
# without what it fetches, which the screenshot shows.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
    echo "usage: $0 PAGE.html [OUT.png] [WIDTHxHEIGHT]" >&2
    exit 2
fi
page=$1
out=${2:-${page%.html}.png}
size=${3:-1400x2400}
if [[ ! -f $page ]]; then
    echo "$0: $page: no such file" >&2
    exit 2
fi
if [[ ! $size =~ ^[0-9]+x[0-9]+$ ]]; then
    echo "$0: size must look like 1400x2400, got $size" >&2
    exit 2
fi
browser=""
for b in chromium chromium-browser google-chrome; do
    if command -v "$b" >/dev/null 2>&1; then
        browser=$b
        break
    fi
done
if [[ -z $browser ]]; then
    echo "$0: no chromium found; install it with: apt-get install -y chromium" >&2
    exit 2
fi

profile=$(mktemp -d "${TMPDIR:-/tmp}/screenshot-profile.XXXXXX")
trap 'rm -rf "$profile"' EXIT
abs_page=$(realpath "$page")
abs_out=$(realpath -m "$out")

# A page that still loads after 20 s is treated as broken rather than waited for forever.
timeout 60 "$browser" \
    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --proxy-server="127.0.0.1:9" --proxy-bypass-list="<-loopback>" \
    --hide-scrollbars --virtual-time-budget=20000 \
    --user-data-dir="$profile" \
    --window-size="${size/x/,}" \
    --screenshot="$abs_out" \
    "file://$abs_page" >"$profile/chromium.log" 2>&1 || {
    echo "$0: chromium failed; its output:" >&2
    cat "$profile/chromium.log" >&2
    exit 1
}
if [[ ! -s $abs_out ]]; then
    echo "$0: chromium wrote no screenshot; its output:" >&2
    cat "$profile/chromium.log" >&2
    exit 1
fi
echo "$abs_out"
