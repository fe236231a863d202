#!/usr/bin/env bash
# System packages ecoassess needs beyond PyPI wheels: a CJK font so that Chinese county names render on maps.
# Installs with apt only when the font is missing; prints what it did.
set -euo pipefail
font_present() {
    local f
    for f in /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc \
             /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc; do
        [ -f "$f" ] && return 0
    done
    return 1
}
if font_present; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_packages: no apt-get here; install a CJK font (e.g. WenQuanYi Micro Hei) by hand" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "install_system_packages: installing fonts-wqy-microhei (CJK font for map labels) with apt"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-wqy-microhei >/dev/null
font_present
