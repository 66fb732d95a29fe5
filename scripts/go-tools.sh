#!/usr/bin/env bash
# Build the pinned Go oracle CLIs the tests compare against, once per machine, into .tools/bin.
#
#   scripts/go-tools.sh             build what is missing (called by scripts/setup.sh)
#   scripts/go-tools.sh flux argo   only these tools
#
# cosign, crane and oras: `GOBIN=.tools/bin go install MODULE/cmd/NAME@VERSION`.
# flux and argo cannot be built that way (`go install pkg@version` refuses a module whose
# go.mod has replace directives, and the proxy refuses argo-workflows' version list, which
# `go install` reads for deprecations), so for those the module is fetched with
# `go mod download MODULE@VERSION` and its command built with `go build` as the main module,
# in a writable copy (the module cache is read-only). flux embeds the install manifests
# (cmd/flux/manifests/*.yaml) that its release process generates with kustomize from the
# controllers' GitHub releases, which cannot be fetched here: the copy gets one placeholder
# manifest instead, so `flux install` and `flux bootstrap` of these builds are unusable; the
# tests use `flux pull/push/build artifact` and `flux build kustomization`, which never read it.
# Likewise argo 3.7 embeds its web UI (ui/dist/app, built with node by its release process):
# the copy gets a placeholder page, so `argo server` of this build serves no UI; `argo lint`
# never reads it.
#
# Every build: -trimpath, -p 2, version strings set with -ldflags -X so that each binary
# reports its pin. A binary that already reports the pinned version is kept (a second run
# builds nothing). Go's build and module caches stay where `go env` puts them (on the machine,
# outside the repository), so argo 3.6 and 3.7 share what they have in common.
#
# A tool that fails to build is reported and skipped; under CI=true it fails the script.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/.tools/bin"

# One build at a time per tools folder: a second setup (another checkout whose .tools links
# here, or a second terminal) waits for the first instead of building the same tools beside it.
mkdir -p "$BIN"
exec 9>"$(cd "$BIN/.." && pwd -P)/.go-tools.lock"
if ! flock -n 9; then
  log() { printf 'go-tools: %s\n' "$*" >&2; }
  log "another setup is building the Go tools; waiting for it"
  flock 9
fi
ARGO_PKG="github.com/argoproj/argo-workflows/v3"

# name|module|version|command folder|how|ldflags|version command (its output contains the version)
# cosign first: other work waits for it.
PINS=(
  "cosign|github.com/sigstore/cosign/v2|v2.6.5|cmd/cosign|install|-X sigs.k8s.io/release-utils/version.gitVersion=v2.6.5|version --json"
  "crane|github.com/google/go-containerregistry|v0.22.1|cmd/crane|install|-X github.com/google/go-containerregistry/cmd/crane/cmd.Version=v0.22.1|version"
  "oras|oras.land/oras|v1.3.6|cmd/oras|install||version"
  "flux|github.com/fluxcd/flux2/v2|v2.9.5|cmd/flux|module|-X main.VERSION=2.9.5|version --client"
  "argo|$ARGO_PKG|v3.7.6|cmd/argo|module|-X $ARGO_PKG.version=v3.7.6|version --short"
  "argo-3.6|$ARGO_PKG|v3.6.10|cmd/argo|module|-X $ARGO_PKG.version=v3.6.10|version --short"
)

log() { printf 'go-tools: %s\n' "$*" >&2; }

reports() { # reports BINARY "VERSION ARGS" VERSION: the binary's version output names VERSION
  local binary="$1" args="$2" version="${3#v}"
  [ -x "$binary" ] || return 1
  local out
  # Captured first: `cmd | grep -q` would let grep exit early, the tool die of SIGPIPE and
  # pipefail call a good build a failure.
  # shellcheck disable=SC2086
  out="$("$binary" $args 2>&1)" || true
  grep -qF "$version" <<<"$out"
}

build_install() { # module version folder ldflags out
  local work="$1" module="$2" version="$3" folder="$4" ldflags="$5"
  GOBIN="$work" go install -trimpath -p 2 -ldflags "-s -w $ldflags" "$module/$folder@$version"
}

build_module() { # module version folder ldflags out
  local work="$1" module="$2" version="$3" folder="$4" ldflags="$5" dir
  dir="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$dir" ] && [ -d "$dir" ] || { log "go mod download $module@$version gave no folder"; return 1; }
  cp -R "$dir" "$work/src"
  chmod -R u+w "$work/src"
  # Files the projects' release builds generate, which go:embed needs to exist.
  if [ "$module" = github.com/fluxcd/flux2/v2 ] && [ ! -d "$work/src/cmd/flux/manifests" ]; then
    mkdir -p "$work/src/cmd/flux/manifests"
    printf '# placeholder: this flux was built without its install manifests\n' \
      >"$work/src/cmd/flux/manifests/placeholder.yaml"
  fi
  if [ -f "$work/src/ui/embed.go" ] && [ ! -d "$work/src/ui/dist/app" ]; then
    mkdir -p "$work/src/ui/dist/app"
    printf '<!-- placeholder: this argo was built without its web UI -->\n' \
      >"$work/src/ui/dist/app/index.html"
  fi
  (cd "$work/src" && go build -trimpath -p 2 -ldflags "-s -w $ldflags" -o "$work/${folder##*/}" "./$folder")
}

# The machine's copy of every binary built here, keyed by its pin and the Go toolchain: a
# second checkout on the same machine (a CI clone, another worktree) copies it instead of
# building it again. ALGA_TOOLS_CACHE moves it; removing the folder makes the next setup build.
CACHE="${ALGA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alga-release/tools}"

cache_key() { # the pin's fields -> a folder name
  printf '%s|' "$@" "$(go env GOVERSION 2>/dev/null)" | sha256sum | cut -c1-16
}

build_one() {
  local name="$1" module="$2" version="$3" folder="$4" how="$5" ldflags="$6" check="$7"
  if reports "$BIN/$name" "$check" "$version"; then
    log "$name $version: present"
    return 0
  fi
  local cached
  cached="$CACHE/go/$name-$version-$(cache_key "$@")/$name"
  if reports "$cached" "$check" "$version"; then
    mkdir -p "$BIN"
    cp -f "$cached" "$BIN/$name.tmp" && mv -f "$BIN/$name.tmp" "$BIN/$name"
    log "$name $version: copied from the machine's cache ($CACHE)"
    return 0
  fi
  local work start
  work="$(mktemp -d)"
  start="$(date +%s)"
  log "$name: building $module/$folder@$version ($how)"
  if ! "build_$how" "$work" "$module" "$version" "$folder" "$ldflags" >"$work/log" 2>&1; then
    tail -n 30 "$work/log" >&2
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$BIN"
  mv -f "$work/${folder##*/}" "$BIN/$name"
  rm -rf "$work"
  if ! reports "$BIN/$name" "$check" "$version"; then
    log "$name: built, but \`$name $check\` does not report $version"
    return 1
  fi
  log "$name $version: built in $(( $(date +%s) - start )) s"
  if mkdir -p "${cached%/*}" 2>/dev/null && cp -f "$BIN/$name" "$cached.tmp" 2>/dev/null; then
    mv -f "$cached.tmp" "$cached"
  else
    log "$name: could not keep a copy in $CACHE (the next checkout builds it again)"
  fi
}

main() {
  if ! command -v go >/dev/null 2>&1; then
    log "go is missing: the Go oracle tools (cosign, crane, oras, flux, argo) are not built"
    [ "${CI:-}" = true ] && exit 1
    return 0
  fi
  local failed=() entry name module version folder how ldflags check
  for entry in "${PINS[@]}"; do
    IFS='|' read -r name module version folder how ldflags check <<<"$entry"
    if [ "$#" -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
    build_one "$name" "$module" "$version" "$folder" "$how" "$ldflags" "$check" || failed+=("$name")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    log "FAILED to build: ${failed[*]}"
    [ "${CI:-}" = true ] && exit 1
  fi
  return 0
}

main "$@"
