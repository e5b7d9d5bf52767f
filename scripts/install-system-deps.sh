#!/usr/bin/env bash
# Install the Debian packages a target needs, when missing (apt-get as root; otherwise print the
# command to run and fail).
#   run      what serving needs: Tesseract with its English and OSD data        (make run)
#   observe  run + Prometheus                                                   (make run-observed)
#   bench    run + the fonts the benchmark renders its pages with, poppler-utils (pdftotext reads
#            the searchable PDFs back)                                          (make bench, soak)
#   web      run + German data and fonts for the test pages, Chromium and chromedriver: the web
#            page's browser tests                                               (make screenshots)
#   test     everything the tests use: run + German data and fonts for the test pages, Prometheus
#            and promtool, shellcheck, poppler-utils (pdftotext), podman/runc/debootstrap/catatonit
#            for the image tests, Chromium and chromedriver for the web page's tests
# Usage: scripts/install-system-deps.sh [run|observe|bench|web|test]   (default: test)
set -euo pipefail
if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
run=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-osd)
case "${1:-test}" in
  run) packages=("${run[@]}") ;;
  observe) packages=("${run[@]}" prometheus) ;;
  bench) packages=("${run[@]}" fonts-dejavu-core poppler-utils) ;;
  web) packages=("${run[@]}" tesseract-ocr-deu fonts-dejavu-core chromium chromium-driver) ;;
  test)
    packages=(
      "${run[@]}"
      tesseract-ocr-deu fonts-dejavu-core   # the multilingual test scan, rendered test pages
      prometheus                            # PromQL of the dashboard and rules, promtool
      shellcheck                            # script lint
      poppler-utils                         # pdftotext reads the searchable PDFs back
      podman runc debootstrap catatonit     # build and run the images
      chromium chromium-driver              # the web page in a real headless browser (Selenium)
    )
    ;;
  *) echo "usage: $0 [run|observe|bench|web|test]" >&2; exit 2 ;;
esac
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
