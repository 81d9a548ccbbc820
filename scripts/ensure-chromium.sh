#!/usr/bin/env bash
# `make test` runs this: install Debian's chromium for the browser test when it is missing. Where that is
# impossible (not root, no apt, no package), say so and go on; the browser test then skips with a reason.
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "note: chromium is missing and cannot be installed here (needs root and apt-get); the browser test will be skipped"
    exit 0
fi
echo "installing chromium for the browser test (apt-get, about 30 s)"
install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; }
install || { apt-get update -q >/dev/null 2>&1 && install; } ||
    echo "note: apt-get could not install chromium; the browser test will be skipped"
exit 0
