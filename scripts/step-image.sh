#!/usr/bin/env bash
# Build the alga-release step image without pulling a base image.
#
#   scripts/step-image.sh rootfs          the cached Debian root filesystem (path on stdout)
#   scripts/step-image.sh build IMAGE     the image, committed as IMAGE in buildah's storage,
#                                         and written as an OCI layout to $STEP_IMAGE_LAYOUT
#                                         (default out/step-image) with the tag `latest`
#
# The image is what the Dockerfile builds from python:3.11-slim-bookworm, made from Debian
# packages instead:
#
# 1. A Debian bookworm root filesystem from `debootstrap --variant=minbase` with python3
#    (3.11), python3-venv, git and ca-certificates, from the Debian mirror apt is configured
#    with here (/etc/apt/sources.list*; DEBIAN_MIRROR overrides). It is cached as a tarball
#    under .tools/step-image/, keyed by suite, mirror and package list: built once per
#    machine (a few minutes), then reused.
# 2. buildah (vfs storage, chroot isolation; STEP_IMAGE_STORAGE names the storage folder,
#    default buildah's own) adds that tarball to a `scratch` container, copies in the wheels
#    of this package and its dependencies (`pip wheel` of the Dockerfile's context: pyproject,
#    README, steps/, the consume library; dependencies from PyPI or pip's cache) and the
#    pinned kubectl from .tools/bin, then `buildah run`s the install: a virtualenv in
#    /opt/alga-release with `alga-appliance-release[docker]`, `alga-release` on PATH, the
#    user alga (uid/gid 10001, home /tmp).
# 3. The config the Dockerfile sets: USER 10001:10001, HOME=TMPDIR=/tmp, WORKDIR /tmp,
#    ENTRYPOINT ["alga-release"], CMD ["--help"]; committed as OCI with --timestamp 0.
#
# `make step-image` runs `build` and then scripts/push_step_image.py, which pushes the
# layout with this project's OCI client and prints the reference to render with.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.tools/step-image"
SUITE=bookworm
PACKAGES="python3,python3-venv,git,ca-certificates"
LAYOUT="${STEP_IMAGE_LAYOUT:-$ROOT/out/step-image}"
UID_GID=10001

log() { printf 'step-image: %s\n' "$*" >&2; }

# The Debian mirror apt uses here: the first deb822 "URIs:" or one-line "deb" source
# serving $SUITE (not the security archive).
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$DEBIAN_MIRROR"
    return
  fi
  local found=""
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] || continue
    found="$(awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (uri != "" && ok) print uri }' "$file" | grep -v security | head -n 1 || true)"
    [ -n "$found" ] && break
  done
  if [ -z "$found" ]; then
    found="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' \
      | grep -v security || true)"
  fi
  printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

rootfs() {
  local mirror key tarball work start
  mirror="$(debian_mirror)"
  key="$(printf '%s %s %s v2' "$SUITE" "$mirror" "$PACKAGES" | sha256sum | cut -c1-16)"
  tarball="$CACHE/rootfs-$SUITE-$key.tar"
  if [ -s "$tarball" ]; then
    printf '%s\n' "$tarball"
    return
  fi
  command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  mkdir -p "$CACHE"
  work="$(mktemp -d "$CACHE/.build.XXXXXX")"
  trap 'rm -rf "$work"' RETURN
  start="$(date +%s)"
  log "debootstrap --variant=minbase $SUITE from $mirror (once per machine)"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$mirror" \
      >"$work/log" 2>&1; then
    tail -n 30 "$work/log" >&2
    exit 1
  fi
  # What an image does not need (as the slim images): package lists and caches, logs, the
  # machine id, documentation, manual pages and translations.
  rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"* \
    "$work/rootfs/var/log/"* "$work/rootfs/tmp/"* "$work/rootfs/etc/machine-id" \
    "$work/rootfs/usr/share/doc/"* "$work/rootfs/usr/share/man/"* \
    "$work/rootfs/usr/share/info/"* "$work/rootfs/usr/share/locale/"*
  tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$tarball"
  log "rootfs $tarball: $(( $(date +%s) - start )) s, $(du -h "$tarball" | cut -f1)"
  printf '%s\n' "$tarball"
}

# The wheels of this package (from the Dockerfile's context only) and its dependencies.
wheels() {
  local out="$1" context
  context="$(mktemp -d)"
  cp "$ROOT/pyproject.toml" "$ROOT/README.md" "$context/"
  cp -R "$ROOT/steps" "$context/steps"
  mkdir -p "$context/consume"
  cp "$ROOT/consume/__init__.py" "$ROOT/consume/release_consume.py" "$context/consume/"
  find "$context" -name __pycache__ -prune -exec rm -rf {} +
  if ! "$ROOT/.venv/bin/python" -m pip wheel --quiet --wheel-dir "$out" "$context[docker]" \
      >"$context.log" 2>&1; then
    tail -n 30 "$context.log" >&2
    exit 1
  fi
  rm -rf "$context" "$context.log"
}

INSTALL_SCRIPT='set -eu
python3 -m venv /opt/alga-release
/opt/alga-release/bin/pip install --quiet --no-cache-dir --no-index --find-links /tmp/wheels \
  "alga-appliance-release[docker]"
/opt/alga-release/bin/pip uninstall --quiet --yes pip
ln -s /opt/alga-release/bin/alga-release /usr/local/bin/alga-release
echo "alga:x:10001:" >> /etc/group
echo "alga:x:10001:10001:alga-release:/tmp:/usr/sbin/nologin" >> /etc/passwd
echo "alga:!:19000::::::" >> /etc/shadow
rm -rf /tmp/wheels /root/.cache
find /opt/alga-release -name __pycache__ -prune -exec rm -rf {} +
alga-release --version'

build() {
  local image="$1" tarball work ctr
  local buildah=(buildah --storage-driver vfs)
  if [ -n "${STEP_IMAGE_STORAGE:-}" ]; then
    buildah+=(--root "$STEP_IMAGE_STORAGE/root" --runroot "$STEP_IMAGE_STORAGE/run")
  fi
  tarball="$(rootfs)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"; [ -z "${ctr:-}" ] || "${buildah[@]}" rm "$ctr" >/dev/null 2>&1 || true' RETURN
  wheels "$work/wheels"
  ctr="$("${buildah[@]}" from --pull=never scratch)"
  "${buildah[@]}" add --quiet "$ctr" "$tarball" / >/dev/null
  "${buildah[@]}" copy --quiet "$ctr" "$work/wheels" /tmp/wheels >/dev/null
  "${buildah[@]}" copy --quiet --chmod 0755 "$ctr" "$(readlink -f "$ROOT/.tools/bin/kubectl")" \
    /usr/local/bin/kubectl >/dev/null
  "${buildah[@]}" run --isolation chroot "$ctr" -- sh -c "$INSTALL_SCRIPT" >&2
  "${buildah[@]}" config \
    --user "$UID_GID:$UID_GID" --workingdir /tmp \
    --env HOME=/tmp --env TMPDIR=/tmp --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
    --entrypoint '["alga-release"]' --cmd '["--help"]' \
    --label org.opencontainers.image.title=alga-release-step \
    --label org.opencontainers.image.source=Dockerfile-equivalent \
    "$ctr"
  "${buildah[@]}" commit --quiet --format oci --timestamp 0 --rm "$ctr" "$image" >/dev/null
  ctr=""
  rm -rf "$LAYOUT"
  mkdir -p "$(dirname "$LAYOUT")"
  "${buildah[@]}" push --quiet "$image" "oci:$LAYOUT:latest" >&2
  log "built $image; OCI layout $LAYOUT (tag latest)"
}

case "${1:-}" in
  rootfs) rootfs ;;
  build) [ -n "${2:-}" ] || { log "usage: $0 build IMAGE"; exit 2; }; build "$2" ;;
  *) echo "usage: $0 rootfs | build IMAGE" >&2; exit 2 ;;
esac
