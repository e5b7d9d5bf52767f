#!/usr/bin/env bash
# Build the ocr-gateway and ocr-model images from the repository root, tag them
# ${REGISTRY}/ocr-gateway:${TAG} and ${REGISTRY}/ocr-model:${TAG}, and push them with --push.
#
# Usage: scripts/build-images.sh [--push] [--only gateway|model] [-- EXTRA BUILD FLAGS...]
#   REGISTRY          registry/namespace prefix, e.g. localhost:5000 or docker.io/you
#                     (default: none, giving local names ocr-gateway:TAG / ocr-model:TAG)
#   TAG               image tag (default: `git rev-parse --short HEAD`, else "dev")
#   CONTAINER_ENGINE  docker or podman (default: whichever is installed, docker first)
#   BASE_IMAGE        base of both stages (default in the Dockerfiles: debian:bookworm-slim);
#                     pin by digest with BASE_IMAGE=debian:bookworm-slim@sha256:...
#   SOURCE_URL        org.opencontainers.image.source label (e.g. the repository's URL)
# Everything after `--` goes to every `build` call unchanged. Behind a TLS-intercepting proxy
# (podman; docker build has no -v) give pip the host's CA bundle without editing a Dockerfile:
#   printf '[global]\ncert = /run/host-ca.crt\n' >/tmp/pip.conf
#   scripts/build-images.sh -- --network=host \
#     -v /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro -v /tmp/pip.conf:/etc/pip.conf:ro
# Prints the built image names on stdout, one a line; the build output goes to stderr.
set -euo pipefail

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }

push=false
only=
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --push) push=true; shift ;;
    --only)
      only=${2:?--only needs gateway or model}
      [[ "$only" == gateway || "$only" == model ]] || { echo "--only gateway|model" >&2; exit 2; }
      shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

engine=${CONTAINER_ENGINE:-}
if [[ -z "$engine" ]]; then
  if command -v docker >/dev/null; then
    engine=docker
  elif command -v podman >/dev/null; then
    engine=podman
  else
    echo "neither docker nor podman is installed (or set CONTAINER_ENGINE)" >&2
    exit 1
  fi
fi
command -v "$engine" >/dev/null || { echo "$engine is not installed" >&2; exit 1; }

revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
tag=${TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo dev)}
prefix=${REGISTRY:+${REGISTRY%/}/}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)

build_args=(
  --build-arg "REVISION=$revision"
  --build-arg "VERSION=${version:-0.0.0}"
  --build-arg "CREATED=$created"
)
[[ -z "${BASE_IMAGE:-}" ]] || build_args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[[ -z "${SOURCE_URL:-}" ]] || build_args+=(--build-arg "SOURCE=$SOURCE_URL")

components=(gateway model)
[[ -z "$only" ]] || components=("$only")

built=()
for component in "${components[@]}"; do
  image="${prefix}ocr-${component}:${tag}"
  echo "building $image with $engine" >&2
  start=$SECONDS
  "$engine" build -f "$component/Dockerfile" -t "$image" "${build_args[@]}" "${extra[@]}" . >&2
  echo "built $image in $((SECONDS - start))s" >&2
  built+=("$image")
done

if $push; then
  [[ -n "$prefix" ]] || { echo "--push needs REGISTRY (e.g. REGISTRY=localhost:5000)" >&2; exit 2; }
  for image in "${built[@]}"; do
    echo "pushing $image" >&2
    "$engine" push "$image"
  done
fi
printf '%s\n' "${built[@]}"
