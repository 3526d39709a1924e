#!/usr/bin/env bash
# Debian's Chromium and ChromeDriver for the teacher-page browser tests (installed once).
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "chromium/chromedriver missing and no root: browser tests will be skipped" >&2; exit 0; fi
echo "installing chromium and chromium-driver (Debian packages)..." >&2
$SUDO apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >&2
