#!/usr/bin/env bash
# Prepare a self-contained podman for building and running the images on a machine without a
# container registry (tests, CI): every piece of state lives in STATE_DIR, nothing in the host's
# default podman storage.
#
# Usage: scripts/podman-setup.sh [--base-image NAME] STATE_DIR
#   then: eval "$(scripts/podman-setup.sh STATE_DIR)"   (the script prints only `export` lines
#   on stdout; progress goes to stderr) and use plain `podman` or scripts/build-images.sh.
#
# It writes STATE_DIR/containers.conf (runc, cgroupfs, file events, ulimits root may set) and
# STATE_DIR/storage.conf (overlay storage in STATE_DIR/root, run state in STATE_DIR/runroot),
# then creates the base image (default docker.io/library/debian:bookworm-slim) from a Debian
# bookworm minbase debootstrap and `podman import`s it, so `FROM debian:bookworm-slim` resolves
# locally. Idempotent: an existing base image is kept. Needs root, podman, runc, debootstrap
# (and catatonit or tini for `podman run --init`).
# DEBIAN_MIRROR overrides the mirror (default http://deb.debian.org/debian).
set -euo pipefail

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

base_image=docker.io/library/debian:bookworm-slim
state_dir=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --help | -h) usage; exit 0 ;;
    --base-image) base_image=${2:?--base-image needs a value}; shift 2 ;;
    -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    *)
      [[ -z "$state_dir" ]] || { echo "only one STATE_DIR" >&2; exit 2; }
      state_dir=$1; shift ;;
  esac
done
[[ -n "$state_dir" ]] || { usage >&2; exit 2; }
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing: apt-get install -y podman runc debootstrap" >&2
    exit 1
  }
done

mkdir -p "$state_dir"
state_dir=$(cd "$state_dir" && pwd)
# runroot and tmp hold run-time state (mounts, locks, the "alive" marker podman uses to notice a
# reboot), which normally lives on a tmpfs. Here it persists, so drop it after a reboot.
boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
if [[ -f "$state_dir/boot_id" && "$(cat "$state_dir/boot_id")" != "$boot_id" ]]; then
  rm -rf "$state_dir/runroot" "$state_dir/tmp"
fi
echo "$boot_id" >"$state_dir/boot_id"
mkdir -p "$state_dir/root" "$state_dir/runroot" "$state_dir/tmp"

# `podman run --init` needs an init binary, which Debian's podman 4.3 does not pull in: the
# catatonit package (or tini) provides it.
init_line=
for candidate in /usr/libexec/podman/catatonit /usr/bin/catatonit /usr/bin/tini-static \
  /usr/bin/tini; do
  if [[ -x "$candidate" ]]; then
    init_line="init_path = \"$candidate\""
    break
  fi
done
[[ -n "$init_line" ]] \
  || echo "no catatonit or tini: 'podman run --init' will fail (apt-get install catatonit)" >&2

# crun fails on hybrid cgroup hosts, systemd may not manage cgroups here, journald may be absent,
# and the default ulimits exceed what root may set inside some VMs (`--ulimit` on a command line
# would replace these defaults: don't use it).
cat >"$state_dir/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$state_dir/tmp"
$init_line
EOF

cat >"$state_dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$state_dir/root"
runroot = "$state_dir/runroot"
EOF

export CONTAINERS_CONF="$state_dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$state_dir/storage.conf"

if podman image exists "$base_image"; then
  echo "base image $base_image already present" >&2
else
  rootfs=$(mktemp -d "$state_dir/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  echo "debootstrap bookworm (minbase) from $mirror ..." >&2
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state_dir/debootstrap.log" 2>&1 \
    || { tail -20 "$state_dir/debootstrap.log" >&2; exit 1; }
  # Like the official slim image: no apt lists or caches in the base layer.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/debootstrap
  echo "importing it as $base_image ..." >&2
  tar -C "$rootfs" -c . | podman import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$base_image" >&2
  rm -rf "$rootfs"
  trap - EXIT
fi

printf 'export CONTAINERS_CONF=%q\n' "$CONTAINERS_CONF"
printf 'export CONTAINERS_STORAGE_CONF=%q\n' "$CONTAINERS_STORAGE_CONF"
