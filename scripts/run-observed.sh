#!/usr/bin/env bash
# Run the platform (as `make run`) together with a local Prometheus 2.x scraping both services
# with observability/prometheus/prometheus.yml (alert rules loaded, exemplar storage on).
# Usage: scripts/run-observed.sh [PYTHON]; Prometheus UI on http://127.0.0.1:${PROMETHEUS_PORT:-9090}
# Ctrl-C stops everything. Needs the Debian package `prometheus` (make system-deps installs it).
set -euo pipefail
if [[ "${1:-}" == "--help" ]]; then
  sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-.venv/bin/python}
prometheus_bin=${PROMETHEUS_BIN:-/usr/bin/prometheus}
prometheus_port=${PROMETHEUS_PORT:-9090}
data=$(mktemp -d)

pids=()
# shellcheck disable=SC2317  # called from the traps below
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$data"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

"$prometheus_bin" \
  --config.file="$root/observability/prometheus/prometheus.yml" \
  --storage.tsdb.path="$data" \
  --web.listen-address="127.0.0.1:${prometheus_port}" \
  --enable-feature=exemplar-storage \
  --log.level=warn &
pids+=($!)
bash "$root/scripts/run-local.sh" "$python" &
pids+=($!)
echo "prometheus:   http://127.0.0.1:${prometheus_port} (alerts: /alerts, targets: /targets)"

set +e
wait -n "${pids[@]}"
status=$?
echo "a process stopped (exit status ${status}); stopping the rest" >&2
exit "${status}"
