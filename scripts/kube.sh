#!/usr/bin/env bash
# A real Kubernetes control plane for the operator's tests: kube-apiserver, kubectl and
# kube-controller-manager built from k8s.io/kubernetes, etcd from go.etcd.io/etcd/server/v3,
# with the go command through the module proxy (what Go operators get from envtest, built
# rather than downloaded). The binaries are cached outside the repository, keyed by version, so
# they are built once per machine.
#
#   scripts/kube.sh bin                 build if missing, print the directory holding
#                                       etcd, kube-apiserver, kubectl and
#                                       kube-controller-manager
#   scripts/kube.sh cert-manager-crds   print a directory holding cert-manager's own
#                                       CustomResourceDefinitions (Certificate, Issuer,
#                                       ClusterIssuer), taken from its Go module
set -euo pipefail

KUBERNETES=v1.37.2
# k8s.io/kubernetes's own modules (staging) are published as k8s.io/<name> at v0.<minor>.<patch>.
STAGING=v0.37.2
ETCD=v3.7.3
CERT_MANAGER=v1.21.2
CACHE="${TERN_CACHE_DIR:-$HOME/.cache/tern}"
BIN="$CACHE/kube-$KUBERNETES-etcd-$ETCD"

log() { echo "kube.sh: $*" >&2; }

# build_main MODULE VERSION SIBLINGS OUT PACKAGE: builds PACKAGE of MODULE@VERSION into OUT.
# Neither module can be installed with `go install module@version`: their go.mod files replace
# sibling modules with directories of the same repository. A throwaway module requires MODULE and
# points each of those at its published version, SIBLINGS, instead.
build_main() {
  local module=$1 version=$2 siblings=$3 out=$4 package=$5
  local work
  work="$BIN.work/${module//\//_}"
  mkdir -p "$work"
  (
    cd "$work"
    [[ -f go.mod ]] || go mod init tern.dev/kube-tools >/dev/null 2>&1
    local gomod sibling
    gomod=$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    [[ -f $gomod ]] || { log "no go.mod for $module@$version"; exit 1; }
    go mod edit -require="$module@$version"
    for sibling in $(sed -n 's#^[[:space:]]*\([^[:space:]]*\)[[:space:]]*=>[[:space:]]*\.\{1,2\}/.*#\1#p' "$gomod"); do
      go mod edit -replace="$sibling=$sibling@$siblings"
    done
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" >tools.go
    go mod tidy >&2
    go build -o "$out" "$package" >&2
  )
}

# The binaries the tests run. Each is built on its own and moved into place whole, so its
# presence says it is complete, and a tool added later is built alone on a machine that has the
# others.
TOOLS=(etcd kube-apiserver kubectl kube-controller-manager)

missing() {
  local tool
  for tool in "${TOOLS[@]}"; do
    [[ -x "$BIN/$tool" ]] || echo "$tool"
  done
}

build() {
  if [[ -z "$(missing)" ]]; then
    return
  fi
  command -v go >/dev/null || { log "the go command is needed"; exit 1; }
  mkdir -p "$CACHE" "$BIN"
  # Test binaries ask for it in parallel: one builds, the others wait and find it built.
  exec 9>"$BIN.lock"
  flock 9
  local tool
  for tool in $(missing); do
    log "building $tool (once per machine; minutes)"
    rm -rf "$BIN.work"
    mkdir -p "$BIN.work"
    case $tool in
      etcd) build_main go.etcd.io/etcd/server/v3 "$ETCD" "$ETCD" "$BIN.work/$tool" go.etcd.io/etcd/server/v3 ;;
      *) build_main k8s.io/kubernetes "$KUBERNETES" "$STAGING" "$BIN.work/$tool" "k8s.io/kubernetes/cmd/$tool" ;;
    esac
    mv "$BIN.work/$tool" "$BIN/$tool"
    rm -rf "$BIN.work"
  done
  log "built into $BIN"
}

# cert-manager's controller is a module of its own (cmd/controller) that the proxy does not serve,
# but its main module carries the CRDs it installs, generated from its Go types: the MailCertificate
# tests install those, so the operator's Certificates are checked against cert-manager's schema.
cert_manager_crds() {
  local dir="$CACHE/cert-manager-$CERT_MANAGER-crds"
  if [[ ! -f "$dir/.copied" ]]; then
    command -v go >/dev/null || { log "the go command is needed"; exit 1; }
    local module
    module=$(cd "$CACHE" && go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER" |
      sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [[ -d $module/deploy/crds ]] || { log "no deploy/crds in cert-manager $CERT_MANAGER"; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$module"/deploy/crds/cert-manager.io_{certificates,issuers,clusterissuers}.yaml "$dir/"
    touch "$dir/.copied"
  fi
  echo "$dir"
}

case "${1:-}" in
  bin)
    build
    echo "$BIN"
    ;;
  cert-manager-crds)
    mkdir -p "$CACHE"
    cert_manager_crds
    ;;
  *)
    echo "usage: scripts/kube.sh bin | cert-manager-crds" >&2
    exit 64
    ;;
esac
