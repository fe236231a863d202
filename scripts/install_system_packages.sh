#!/usr/bin/env bash
# System packages ecoassess needs beyond PyPI wheels, installed with apt only when missing (prints what it did):
#  - a CJK font, so that Chinese county names render on maps and in the report;
#  - the Pango libraries WeasyPrint lays the PDF report out with;
#  - poppler-utils (pdftoppm, pdftotext, pdffonts) and Debian's chromium: the report checks of `make test` look at
#    the PDF pages and open the HTML report in a headless browser (skipped, with the reason, when absent).
set -euo pipefail
font_present() {
    local f
    for f in /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc \
             /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc; do
        [ -f "$f" ] && return 0
    done
    return 1
}
library_present() {  # a shared library the dynamic linker knows, e.g. libpangoft2-1.0.so.0
    { /sbin/ldconfig -p 2>/dev/null || ldconfig -p 2>/dev/null; } | grep -q "$1"
}
missing=()
font_present || missing+=(fonts-wqy-microhei)
library_present 'libpango-1.0.so.0' || missing+=(libpango-1.0-0)
library_present 'libpangoft2-1.0.so.0' || missing+=(libpangoft2-1.0-0)
library_present 'libharfbuzz-subset.so.0' || missing+=(libharfbuzz-subset0)
command -v pdftoppm >/dev/null 2>&1 && command -v pdffonts >/dev/null 2>&1 || missing+=(poppler-utils)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_packages: no apt-get here; install by hand: ${missing[*]}" \
         "(a CJK font such as WenQuanYi Micro Hei, Pango, poppler-utils, chromium)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "install_system_packages: installing ${missing[*]} with apt"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
font_present
