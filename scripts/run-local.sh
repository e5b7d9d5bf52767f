#!/usr/bin/env bash
# Run the model server and the gateway in the foreground; Ctrl-C (or SIGTERM) stops both.
# Usage: scripts/run-local.sh [PYTHON]   (make run passes .venv/bin/python)
# Ports and every other setting come from OCR_MODEL_* / OCR_GATEWAY_* environment variables.
set -euo pipefail
if [[ "${1:-}" == "--help" ]]; then
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
python=${1:-.venv/bin/python}
model_http=${OCR_MODEL_HTTP_PORT:-8080}
model_grpc=${OCR_MODEL_GRPC_PORT:-8081}
export OCR_GATEWAY_MODEL_ADDRESS=${OCR_GATEWAY_MODEL_ADDRESS:-localhost:${model_grpc}}
gateway_port=${OCR_GATEWAY_PORT:-8001}

pids=()
# shellcheck disable=SC2317  # called from the traps below
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

"$python" -m model &
pids+=($!)
"$python" -m gateway &
pids+=($!)

echo "model server: REST http://localhost:${model_http}  gRPC localhost:${model_grpc}"
echo "gateway:      http://localhost:${gateway_port}/gateway/ocr  (docs: /docs)"
echo "try:          curl -F image_file=@scan.png http://localhost:${gateway_port}/gateway/ocr"
echo "Ctrl-C stops both."

# When either process exits on its own, stop the other and report failure.
set +e
wait -n "${pids[@]}"
status=$?
echo "a service stopped (exit status ${status}); stopping the other" >&2
exit "${status}"
