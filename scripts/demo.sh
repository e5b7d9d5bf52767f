#!/usr/bin/env bash
# Open the platform that scripts/bootstrap-cluster.sh deployed: port-forward the gateway, Grafana
# and the Argo CD UI to localhost in the background, print their URLs, the Argo CD admin password
# (from argocd-initial-admin-secret), where the Grafana credentials live, and a sample upload.
# Ctrl-C stops the port-forwards; so does any of them dying (pod restarted: run it again).
#
# Usage: scripts/demo.sh [--context NAME] [--help]
#   --context NAME   kubectl context (default: the current one; bootstrap names it ocr-platform,
#                    or kind-ocr-platform with --kind)
# Local ports: GATEWAY_PORT (8001), GRAFANA_PORT (3000), ARGOCD_PORT (8080, to Argo CD's 443).
set -euo pipefail

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

context=
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --context) context=${2:?--context needs a value}; shift 2 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

command -v kubectl >/dev/null 2>&1 || die "kubectl is not installed or not on PATH"
kc() {
  if [[ -n "$context" ]]; then kubectl --context "$context" "$@"; else kubectl "$@"; fi
}
kc get namespace ocr-platform >/dev/null 2>&1 ||
  die "no ocr-platform namespace in this cluster: run scripts/bootstrap-cluster.sh first (or pass --context)"

gateway_port=${GATEWAY_PORT:-8001}
grafana_port=${GRAFANA_PORT:-3000}
argocd_port=${ARGOCD_PORT:-8080}

# The gateway Service by its chart labels (its name follows the Helm release).
gateway_svc=$(kc -n ocr-platform get service \
  -l app.kubernetes.io/instance=ocr-platform,app.kubernetes.io/component=gateway \
  -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
gateway_svc=${gateway_svc:-ocr-platform-gateway}

logs=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # run by the traps below, which shellcheck 0.9 does not follow
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$logs"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

forward() { # NAMESPACE SERVICE LOCAL_PORT REMOTE_PORT
  kc -n "$1" port-forward "service/$2" "$3:$4" >"$logs/$2.log" 2>&1 &
  pids+=($!)
}
forward ocr-platform "$gateway_svc" "$gateway_port" 8001
forward monitoring grafana "$grafana_port" 80
forward argocd argocd-server "$argocd_port" 443

# Poll until every local port answers (port-forward prints "Forwarding from" once it listens).
for name in "$gateway_svc" grafana argocd-server; do
  for _ in $(seq 100); do
    grep -q '^Forwarding from' "$logs/$name.log" 2>/dev/null && break
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null || die "port-forward to $name failed: $(cat "$logs/$name.log")"
    done
    sleep 0.1
  done
done

argocd_password=$(kc -n argocd get secret argocd-initial-admin-secret \
  -o jsonpath='{.data.password}' 2>/dev/null | base64 -d 2>/dev/null || true)
grafana_password=$(kc -n monitoring get secret grafana-admin \
  -o jsonpath='{.data.admin-password}' 2>/dev/null | base64 -d 2>/dev/null || true)

cat <<EOF
Gateway   http://localhost:${gateway_port}/docs      (API try-it page; /readyz, /metrics)
Grafana   http://localhost:${grafana_port}/d/ocr-platform   (dashboard "OCR platform")
          user admin, password ${grafana_password:-"(not readable)"}
          from Secret monitoring/grafana-admin, made by bootstrap-cluster.sh; read it with
          kubectl -n monitoring get secret grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d
Argo CD   https://localhost:${argocd_port}   (self-signed certificate)
          user admin, password ${argocd_password:-"(argocd-initial-admin-secret is gone: it is deleted once you change the password)"}

Try an upload:
  curl -F image_file=@scan.png http://localhost:${gateway_port}/gateway/ocr

Ctrl-C stops the port-forwards.
EOF

# Stop everything as soon as one port-forward ends.
set +e
wait -n "${pids[@]}"
status=$?
set -e
echo "a port-forward stopped (exit $status); see above, then run scripts/demo.sh again" >&2
exit 1
