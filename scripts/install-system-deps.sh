#!/usr/bin/env bash
# Install the system packages the platform needs (Tesseract with English and German data, the
# DejaVu fonts the tests render with, Prometheus + promtool for `make run-observed` and the
# observability tests, shellcheck, and podman for the image tests) when they are missing. Uses apt-get when run as root; otherwise prints
# the command to run and fails.
set -euo pipefail
if [[ "${1:-}" == "--help" ]]; then
  echo "usage: $0    install the apt packages listed in this script when missing (needs root)"
  exit 0
fi
packages=(
  tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu fonts-dejavu-core  # the engine, test fonts
  prometheus                                                           # make run-observed, tests
  shellcheck                                                           # script lint
  podman runc debootstrap catatonit                                    # build and run the images
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
  || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
