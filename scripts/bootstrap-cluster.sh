#!/usr/bin/env bash
# Create (or reuse) a local Kubernetes cluster and hand it to Argo CD: minikube by default, kind
# with --kind. Installs Argo CD (argo/argo-cd chart, pinned), builds the ocr-gateway and
# ocr-model images into the cluster, creates the Grafana admin Secret, the model token Secret and
# the gateway's key id Secret (random, never in Git), then applies the ocr-platform AppProject and the root Application (argocd/apps); Argo CD
# syncs the monitoring stack (wave 0) and the platform (wave 1) from the Git remote. Re-running
# changes nothing that is already right.
#
# Usage: scripts/bootstrap-cluster.sh [options]
#   --kind               use kind instead of minikube (images built with CONTAINER_ENGINE)
#   --name NAME          minikube profile / kind cluster name (default: ocr-platform)
#   --cpus N             minikube CPUs (default: 2)
#   --memory MB          minikube memory in MB (default: 4096)
#   --driver NAME        minikube driver (default: minikube's choice)
#   --repo-url URL       Git URL Argo CD clones (default: `git remote get-url origin`)
#   --revision REV       tag or commit to deploy (default: targetRevision of argocd/apps/values.yaml)
#   --env NAME           argocd/environments/NAME/values.yaml (default: minikube)
#   --skip-images        do not build the images
#   --no-wait            do not wait for the Applications to become Synced and Healthy
#   --timeout SECONDS    how long to wait for them (default: 900)
#   -h, --help           print this help
# Needs: kubectl, helm, git, and minikube, or kind plus docker or podman. Argo CD reads the
# repository at REV from the remote: push the tag first (git push origin REV).
# ALERTMANAGER_WEBHOOK_URL: where an environment whose Alertmanager mounts the Secret
# monitoring/alertmanager-webhook (production) sends alerts; creates that Secret when missing.
set -euo pipefail

ARGO_CD_CHART_VERSION="9.5.2"
ARGO_CD_CHART_REPO="https://argoproj.github.io/argo-helm"
ARGOCD_NAMESPACE="argocd"
MONITORING_NAMESPACE="monitoring"
GRAFANA_SECRET="grafana-admin"
# Key `url`: the webhook URL of the environments whose Alertmanager mounts it (production).
ALERTMANAGER_SECRET="alertmanager-webhook"
IMAGE_TAG="local"
# The platform's namespace (namespaces.app of argocd/apps/values.yaml).
APP_NAMESPACE="ocr-platform"
# model.auth.existingSecret of the environments: the token the gateway sends and the model
# requires (key `token`).
MODEL_TOKEN_SECRET="ocr-model-token"
# gateway.keyIdSecret.existingSecret of the environments: the HMAC secret of the gateway's key ids
# (key `secret`), the same on every replica.
KEY_ID_SECRET="ocr-gateway-key-id"

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

use_kind=false
name=ocr-platform
cpus=2
memory=4096
driver=
repo_url=
revision=
environment=minikube
build_images=true
wait_apps=true
timeout=900
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --kind) use_kind=true; shift ;;
    --name) name=${2:?--name needs a value}; shift 2 ;;
    --cpus) cpus=${2:?--cpus needs a value}; shift 2 ;;
    --memory) memory=${2:?--memory needs a value}; shift 2 ;;
    --driver) driver=${2:?--driver needs a value}; shift 2 ;;
    --repo-url) repo_url=${2:?--repo-url needs a value}; shift 2 ;;
    --revision) revision=${2:?--revision needs a value}; shift 2 ;;
    --env) environment=${2:?--env needs a value}; shift 2 ;;
    --skip-images) build_images=false; shift ;;
    --no-wait) wait_apps=false; shift ;;
    --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# --- prerequisites ------------------------------------------------------------------------------

require() {
  command -v "$1" >/dev/null 2>&1 || die "$1 is not installed or not on PATH: $2"
}
require kubectl "https://kubernetes.io/docs/tasks/tools/"
require helm "https://helm.sh/docs/intro/install/ (Helm 3.8 or later)"
require git "apt-get install git"
engine=
if $use_kind; then
  require kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
  engine=${CONTAINER_ENGINE:-}
  if [[ -z "$engine" ]]; then
    if command -v docker >/dev/null 2>&1; then engine=docker
    elif command -v podman >/dev/null 2>&1; then engine=podman
    else die "kind needs docker or podman (or set CONTAINER_ENGINE)"; fi
  fi
  require "$engine" "kind runs its node in a $engine container"
else
  require minikube "https://minikube.sigs.k8s.io/docs/start/"
fi
[[ -f "argocd/environments/$environment/values.yaml" ]] ||
  die "no argocd/environments/$environment/values.yaml"

if [[ -z "$repo_url" ]]; then
  repo_url=$(git remote get-url origin 2>/dev/null) ||
    die "no git remote 'origin': pass --repo-url URL (the repository Argo CD clones)"
fi
if [[ -z "$revision" ]]; then
  revision=$(sed -n 's/^targetRevision: *//p' argocd/apps/values.yaml | head -1)
fi
case "$revision" in
  "" | HEAD | main | master) die "--revision must be a tag or commit, not '${revision}'" ;;
esac
if ! GIT_TERMINAL_PROMPT=0 git ls-remote --exit-code "$repo_url" "$revision" "refs/tags/$revision" >/dev/null 2>&1 &&
  ! [[ "$revision" =~ ^[0-9a-f]{7,40}$ ]]; then
  log "warning: $revision is not visible on $repo_url yet; Argo CD retries until it is pushed"
fi

# --- cluster -----------------------------------------------------------------------------------

if $use_kind; then
  context="kind-$name"
  if kind get clusters 2>/dev/null | grep -qx "$name"; then
    log "reusing kind cluster $name"
  else
    log "creating kind cluster $name"
    kind create cluster --name "$name" --wait 120s
  fi
else
  context="$name"
  if minikube -p "$name" status >/dev/null 2>&1; then
    log "reusing minikube profile $name (--cpus/--memory apply only when it is created)"
  else
    log "starting minikube profile $name (${cpus} CPUs, ${memory} MB)"
    start=(minikube start -p "$name" --cpus "$cpus" --memory "$memory")
    [[ -z "$driver" ]] || start+=(--driver "$driver")
    "${start[@]}"
  fi
fi
kc() { kubectl --context "$context" "$@"; }
kc get nodes >/dev/null || die "cannot reach the cluster through context $context"

# --- Argo CD ------------------------------------------------------------------------------------

argo_values=argocd/bootstrap/argo-cd.yaml
values_sum=$(git hash-object "$argo_values")
release_note="chart=$ARGO_CD_CHART_VERSION values=$values_sum"
current=$(helm --kube-context "$context" history argocd -n "$ARGOCD_NAMESPACE" --max 1 -o json 2>/dev/null || true)
if [[ "$current" == *"\"status\":\"deployed\""* && "$current" == *"\"description\":\"$release_note\""* ]]; then
  log "Argo CD $ARGO_CD_CHART_VERSION already installed with these values"
else
  log "installing Argo CD (argo-cd chart $ARGO_CD_CHART_VERSION)"
  helm --kube-context "$context" upgrade --install argocd argo-cd \
    --repo "$ARGO_CD_CHART_REPO" --version "$ARGO_CD_CHART_VERSION" \
    --namespace "$ARGOCD_NAMESPACE" --create-namespace \
    --values "$argo_values" --description "$release_note" --wait --timeout 10m
fi

# --- images -------------------------------------------------------------------------------------

# The identity of an image inside the cluster (minikube) or in the local engine (kind), to tell
# whether a build changed it.
image_id() {
  if $use_kind; then
    "$engine" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true
  else
    minikube -p "$name" image ls --format json 2>/dev/null | grep -o "{[^{}]*$1\"[^{}]*}" || true
  fi
}

if $build_images; then
  for component in gateway model; do
    image="ocr-$component:$IMAGE_TAG"
    before=$(image_id "$image")
    if $use_kind; then
      log "building $image with $engine"
      TAG="$IMAGE_TAG" REGISTRY="" CONTAINER_ENGINE="$engine" \
        scripts/build-images.sh --only "$component" >/dev/null
    else
      log "building $image inside minikube"
      minikube -p "$name" image build -t "$image" -f "$component/Dockerfile" .
    fi
    after=$(image_id "$image")
    if $use_kind; then
      # kind skips an image its node already has with the same ID.
      if [[ "$engine" == podman ]]; then
        # podman names local images localhost/NAME; the pods ask for docker.io/library/NAME.
        archive=$(mktemp)
        podman tag "$image" "docker.io/library/$image"
        podman save -o "$archive" "docker.io/library/$image"
        kind load image-archive "$archive" --name "$name"
        rm -f "$archive"
      else
        kind load docker-image "$image" --name "$name"
      fi
    fi
    # The tag stays `local`: pods already running keep the old image unless restarted.
    if [[ -n "$before" && "$before" != "$after" ]] && kc get namespace ocr-platform >/dev/null 2>&1; then
      log "$image changed: restarting its pods"
      kc -n ocr-platform rollout restart deployment \
        -l "app.kubernetes.io/instance=ocr-platform,app.kubernetes.io/component=$component" || true
    fi
  done
fi

# --- Grafana admin Secret (kept out of Git) -----------------------------------------------------

kc create namespace "$MONITORING_NAMESPACE" --dry-run=client -o yaml | kc apply -f - >/dev/null
if kc -n "$MONITORING_NAMESPACE" get secret "$GRAFANA_SECRET" >/dev/null 2>&1; then
  log "keeping Secret $MONITORING_NAMESPACE/$GRAFANA_SECRET"
else
  log "creating Secret $MONITORING_NAMESPACE/$GRAFANA_SECRET with a random password"
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
  # Through stdin (printf is a builtin), so the password never shows in a process list.
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\ntype: Opaque\nstringData:\n  admin-user: admin\n  admin-password: "%s"\n' \
    "$GRAFANA_SECRET" "$MONITORING_NAMESPACE" "$password" | kc create -f - >/dev/null
  unset password
fi

# --- Alertmanager webhook Secret (kept out of Git; only where the environment mounts it) ----------

# The Alertmanager pod does not start before its Secret exists: create it before the first sync.
if grep -qsE "^[[:space:]]*-[[:space:]]*${ALERTMANAGER_SECRET}[[:space:]]*$" \
  "argocd/environments/$environment/stack/kube-prometheus-stack.yaml"; then
  if kc -n "$MONITORING_NAMESPACE" get secret "$ALERTMANAGER_SECRET" >/dev/null 2>&1; then
    log "keeping Secret $MONITORING_NAMESPACE/$ALERTMANAGER_SECRET"
  elif [[ -n "${ALERTMANAGER_WEBHOOK_URL:-}" ]]; then
    log "creating Secret $MONITORING_NAMESPACE/$ALERTMANAGER_SECRET from ALERTMANAGER_WEBHOOK_URL"
    # Through stdin, so the URL (and its token) never shows in a process list.
    printf '%s' "$ALERTMANAGER_WEBHOOK_URL" |
      kc -n "$MONITORING_NAMESPACE" create secret generic "$ALERTMANAGER_SECRET" \
        --from-file=url=/dev/stdin >/dev/null
  else
    log "warning: the $environment Alertmanager reads its webhook URL from Secret $MONITORING_NAMESPACE/$ALERTMANAGER_SECRET, which is missing; its pod waits until you create it:"
    log "  kubectl --context $context -n $MONITORING_NAMESPACE create secret generic $ALERTMANAGER_SECRET --from-literal=url=https://..."
    log "  (or re-run with ALERTMANAGER_WEBHOOK_URL=https://... set)"
  fi
fi

# --- model token Secret (kept out of Git) ----------------------------------------------------------

# The gateway and model pods do not start before it exists: create it before the first sync. Not
# generated by the chart: Argo CD renders without cluster access, and the chart's random token
# would change at every render. Rotate: delete it, re-run this script, restart both Deployments.
kc create namespace "$APP_NAMESPACE" --dry-run=client -o yaml | kc apply -f - >/dev/null
if kc -n "$APP_NAMESPACE" get secret "$MODEL_TOKEN_SECRET" >/dev/null 2>&1; then
  log "keeping Secret $APP_NAMESPACE/$MODEL_TOKEN_SECRET"
else
  log "creating Secret $APP_NAMESPACE/$MODEL_TOKEN_SECRET with a random token"
  # 24 random bytes, 32 base64 characters; through stdin, so the token never shows in a process list.
  head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n' |
    kc -n "$APP_NAMESPACE" create secret generic "$MODEL_TOKEN_SECRET" \
      --from-file=token=/dev/stdin >/dev/null
fi
# The gateway's key id secret, for the same reasons. Rotate: delete it, re-run, restart the gateway.
if kc -n "$APP_NAMESPACE" get secret "$KEY_ID_SECRET" >/dev/null 2>&1; then
  log "keeping Secret $APP_NAMESPACE/$KEY_ID_SECRET"
else
  log "creating Secret $APP_NAMESPACE/$KEY_ID_SECRET with a random key id secret"
  head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n' |
    kc -n "$APP_NAMESPACE" create secret generic "$KEY_ID_SECRET" \
      --from-file=secret=/dev/stdin >/dev/null
fi

# --- AppProject and root Application --------------------------------------------------------------

log "applying the ocr-platform AppProject and the root Application ($repo_url @ $revision, $environment)"
helm template ocr-platform-apps argocd/apps --namespace "$ARGOCD_NAMESPACE" \
  --set-string repoURL="$repo_url" --set-string targetRevision="$revision" \
  --set-string environment="$environment" \
  --show-only templates/project.yaml --show-only templates/root.yaml |
  kc apply -f -

# --- wait ---------------------------------------------------------------------------------------

if ! $wait_apps; then
  log "not waiting; watch with: kubectl --context $context -n $ARGOCD_NAMESPACE get applications -w"
  exit 0
fi
expected=(ocr-platform-apps kube-prometheus-stack tempo opentelemetry-collector ocr-platform)
log "waiting up to ${timeout}s for ${expected[*]} to be Synced and Healthy"
deadline=$((SECONDS + timeout))
while true; do
  states=$(kc -n "$ARGOCD_NAMESPACE" get applications \
    -o jsonpath='{range .items[*]}{.metadata.name}={.status.sync.status}/{.status.health.status}{"\n"}{end}' 2>/dev/null || true)
  pending=()
  for app in "${expected[@]}"; do
    grep -qx "$app=Synced/Healthy" <<<"$states" || pending+=("$app")
  done
  if [[ ${#pending[@]} -eq 0 ]]; then
    break
  fi
  if ((SECONDS >= deadline)); then
    printf '%s\n' "$states" >&2
    die "not Synced/Healthy after ${timeout}s: ${pending[*]} (kubectl -n $ARGOCD_NAMESPACE describe application NAME)"
  fi
  sleep 10
done
log "all Applications are Synced and Healthy"
log "next: scripts/demo.sh --context $context"
