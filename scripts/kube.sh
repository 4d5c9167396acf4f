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
#   scripts/kube.sh chart-crds          print a directory holding KEDA's ScaledObject and the
#                                       Prometheus operator's ServiceMonitor and PrometheusRule
#                                       definitions, from their Go modules (what the chart uses)
#   scripts/kube.sh helm                build helm if missing, print its path
set -euo pipefail

KUBERNETES=v1.37.2
# k8s.io/kubernetes's own modules (staging) are published as k8s.io/<name> at v0.<minor>.<patch>.
STAGING=v0.37.2
ETCD=v3.7.3
CERT_MANAGER=v1.21.2
# v2.21 needs a newer Go than this machine's.
KEDA=v2.20.2
PROMETHEUS_OPERATOR=v0.85.0
HELM=v4.3.2
CACHE="${TERN_CACHE_DIR:-$HOME/.cache/tern}"
# The suffix names how they are built: a change of recipe is a new directory.
BIN="$CACHE/kube-$KUBERNETES-etcd-$ETCD-r2"

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
    # Built from a module, the Kubernetes binaries do not know their version (v0.0.0-master),
    # which helm's kubeVersion check and `kubectl version` read: it is stamped as `make` would.
    local major=${KUBERNETES#v} minor
    minor=${major#*.}
    minor=${minor%%.*}
    major=${major%%.*}
    local stamp="-X k8s.io/component-base/version.gitVersion=$KUBERNETES"
    stamp+=" -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor"
    stamp+=" -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES"
    stamp+=" -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
    go build -ldflags "$stamp" -o "$out" "$package" >&2
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

# module_crds NAME MODULE VERSION FILE...: FILEs of MODULE@VERSION copied into a cached directory
# named after NAME and VERSION, which is printed. The modules carry the CRDs their controllers
# install, generated from their Go types; the tests install those, so what Tern writes is checked
# against their real schemas.
module_crds() {
  local name=$1 module=$2 version=$3
  shift 3
  local dir="$CACHE/$name-$version-crds"
  if [[ ! -f "$dir/.copied" ]]; then
    command -v go >/dev/null || { log "the go command is needed"; exit 1; }
    local root file
    root=$(cd "$CACHE" && go mod download -json "$module@$version" |
      sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [[ -d $root ]] || { log "cannot download $module@$version"; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    for file in "$@"; do
      cp "$root/$file" "$dir/"
    done
    touch "$dir/.copied"
  fi
  echo "$dir"
}

# helm from helm.sh/helm/v4, in a throwaway module like the others.
helm_binary() {
  local dir="$CACHE/helm-$HELM"
  if [[ ! -x "$dir/helm" ]]; then
    command -v go >/dev/null || { log "the go command is needed"; exit 1; }
    log "building helm $HELM (once per machine; a few minutes)"
    rm -rf "$dir.work"
    mkdir -p "$dir.work"
    (
      cd "$dir.work"
      go mod init tern.dev/helm-tools >/dev/null 2>&1
      go get -tool "helm.sh/helm/v4/cmd/helm@$HELM" >&2
      CGO_ENABLED=0 go build -ldflags "-X helm.sh/helm/v4/internal/version.version=$HELM" \
        -o helm helm.sh/helm/v4/cmd/helm >&2
    )
    mkdir -p "$dir"
    mv "$dir.work/helm" "$dir/helm"
    rm -rf "$dir.work"
  fi
  echo "$dir/helm"
}

case "${1:-}" in
  bin)
    build
    echo "$BIN"
    ;;
  cert-manager-crds)
    # cert-manager's controller is a module of its own (cmd/controller) that the proxy does not
    # serve; its main module carries the CRDs.
    mkdir -p "$CACHE"
    module_crds cert-manager github.com/cert-manager/cert-manager "$CERT_MANAGER" \
      deploy/crds/cert-manager.io_{certificates,issuers,clusterissuers}.yaml
    ;;
  chart-crds)
    mkdir -p "$CACHE"
    keda=$(module_crds keda github.com/kedacore/keda/v2 "$KEDA" config/crd/bases/keda.sh_scaledobjects.yaml)
    prometheus=$(module_crds prometheus-operator github.com/prometheus-operator/prometheus-operator \
      "$PROMETHEUS_OPERATOR" example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml)
    echo "$keda"
    echo "$prometheus"
    ;;
  helm)
    mkdir -p "$CACHE"
    helm_binary
    ;;
  *)
    echo "usage: scripts/kube.sh bin | cert-manager-crds | chart-crds | helm" >&2
    exit 64
    ;;
esac
