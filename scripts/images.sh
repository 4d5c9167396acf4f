#!/usr/bin/env bash
# Container images for proving docker-compose.yml on a machine that reaches no image registry:
# a Debian base made by debootstrap and `docker import`, PostgreSQL, NATS and Prometheus on it
# from Debian's packages, Jaeger and Mailpit built from their Go modules, and Tern from its own
# Dockerfile. What takes long is cached outside the repository (the base's root file system,
# the Go programs) or kept by the engine (the images, BuildKit's cargo caches), so a second run
# builds nothing.
#
#   scripts/images.sh engine   install Docker (Debian's docker.io, docker-compose) and start the
#                              engine, when missing
#   scripts/images.sh build    build every image; print the environment naming them, for
#                              docker-compose.yml
#   scripts/images.sh compose-v2
#                              build Docker Compose v2 (the `docker compose` plugin; Debian ships
#                              only 1.29) from its Go module; print a DOCKER_CONFIG directory
#                              that holds it as a plugin
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CACHE="${TERN_CACHE_DIR:-$HOME/.cache/tern}/images"
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
JAEGER=v1.75.0   # the module's version; its cmd/jaeger is Jaeger v2
MAILPIT=v1.33.1
COMPOSE=v5.6.0   # Compose v2's line: the `docker compose` plugin, renumbered v5
# Debian's client: BuildKit is built in (the newer client wants a buildx plugin for it).
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=1

log() { echo "images.sh: $*" >&2; }
die() { log "$*"; exit 1; }

engine() {
  if [[ ! -x $DOCKER || ! -x /usr/sbin/dockerd ]] || ! command -v docker-compose >/dev/null ||
    ! command -v debootstrap >/dev/null; then
    log "installing docker.io, docker-compose and debootstrap"
    local apt=(apt-get -q -o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0)
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" update </dev/null >&2
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends \
      docker.io docker-compose debootstrap </dev/null >&2
  fi
  if ! "$DOCKER" info >/dev/null 2>&1; then
    log "starting dockerd (log in /var/log/tern-dockerd.log)"
    setsid /usr/sbin/dockerd >/var/log/tern-dockerd.log 2>&1 </dev/null &
    local waited=0
    until "$DOCKER" info >/dev/null 2>&1; do
      sleep 1
      ((++waited < 60)) || die "dockerd did not start: see /var/log/tern-dockerd.log"
    done
  fi
}

have() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

# A tag naming the recipe: a changed Dockerfile (or file it copies) is a new image, never a
# stale one found under the old name.
recipe() { cat "$@" | sha256sum | cut -c1-12; }

# After building $1: the same repository's images of older recipes go, so disk use stays flat.
drop_older() {
  "$DOCKER" images --format '{{.Repository}}:{{.Tag}}' "${1%%:*}" | grep -vxF "$1" |
    xargs -r "$DOCKER" rmi >/dev/null 2>&1 || true
}

base() {
  local image=tern-local/debian:$SUITE rootfs="$CACHE/rootfs-$SUITE"
  have "$image" && return
  if [[ ! -f $rootfs/.complete ]]; then
    log "debootstrap $SUITE (once per machine)"
    rm -rf "$rootfs"
    mkdir -p "$CACHE"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >&2
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    touch "$rootfs/.complete"
  fi
  tar -C "$rootfs" --exclude=./.complete -c . |
    "$DOCKER" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
}

# from_debian NAME: the image tern-local/NAME from scripts/images/NAME.Dockerfile; its name
# goes into the variable IMAGE_<NAME>.
from_debian() {
  local name=$1
  local image
  image="tern-local/$name:$(recipe scripts/images/"$name"[.-]*)"
  printf -v "IMAGE_${name^^}" '%s' "$image"
  have "$image" && return
  log "building $image"
  "$DOCKER" build -q -t "$image" -f "scripts/images/$name.Dockerfile" scripts/images >/dev/null
  drop_older "$image"
}

# go_program NAME MODULE VERSION: NAME built from MODULE@VERSION on the host (static), then
# the image tern-local/NAME:VERSION around it.
go_program() {
  local name=$1 module=$2 version=$3
  local bin="$CACHE/$name-$version/$name"
  local image
  image="tern-local/$name:$version-$(recipe "scripts/images/$name.Dockerfile")"
  printf -v "IMAGE_${name^^}" '%s' "$image"
  have "$image" && return
  if [[ ! -x $bin ]]; then
    log "building $name $version from its Go module (once per machine; minutes)"
    # A throwaway module that requires the program as a tool: `go install module@version`
    # refuses a module whose go.mod has replace directives (Jaeger's has).
    local work
    work="$(dirname "$bin").work"
    rm -rf "$work"
    mkdir -p "$work"
    (
      cd "$work"
      go mod init tern.dev/compose-tools >/dev/null 2>&1
      go get -tool "$module@$version" >&2
      CGO_ENABLED=0 go build -o "$name" "$module" >&2
    )
    mv "$work/$name" "$bin"
    rm -rf "$work"
  fi
  local context
  context=$(mktemp -d)
  cp "$bin" "$context/$name"
  "$DOCKER" build -q -t "$image" -f "scripts/images/$name.Dockerfile" "$context" >/dev/null
  rm -rf "$context"
  drop_older "$image"
}

# The host's Rust toolchain in an image, to build Tern's Dockerfile with.
rust() {
  local version
  version=$(rustc --version | awk '{print $2}')
  RUST_IMAGE=tern-local/rust:$version-$(recipe scripts/images/rust.Dockerfile)
  have "$RUST_IMAGE" && return
  log "building $RUST_IMAGE from the host's toolchain"
  local context
  context=$(mktemp -d)
  mkdir "$context/toolchain"
  # The documentation is most of a toolchain's size and no build reads it.
  tar -C "$(rustc --print sysroot)" --exclude=./share/doc -c . | tar -C "$context/toolchain" -x
  "$DOCKER" build -q -t "$RUST_IMAGE" -f scripts/images/rust.Dockerfile "$context" >/dev/null
  rm -rf "$context"
  drop_older "$RUST_IMAGE"
}

# Tern from the repository's Dockerfile, on the local bases. The registry (crates.io) is reached
# through this machine's CA bundle, mounted as a build secret: it reaches no layer.
tern() {
  log "building tern-local/tern from ./Dockerfile"
  "$DOCKER" build -q -t tern-local/tern:dev \
    --build-arg "RUST_IMAGE=$RUST_IMAGE" \
    --build-arg "RUNTIME_IMAGE=tern-local/debian:$SUITE" \
    --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt \
    . >/dev/null
}

# Docker Compose v2 as a CLI plugin of Debian's docker client, in a DOCKER_CONFIG of its own.
compose_v2() {
  local config="$CACHE/compose-$COMPOSE/docker-config"
  local plugin="$config/cli-plugins/docker-compose"
  if [[ ! -x $plugin ]]; then
    log "building Docker Compose $COMPOSE from its Go module (once per machine; minutes)"
    # Built as the main module, in its own directory: its go.mod excludes versions, which
    # neither `go install module@version` nor a requiring module would honour.
    local source
    source=$(go mod download -json "github.com/docker/compose/v5@$COMPOSE" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    mkdir -p "$(dirname "$plugin")"
    (cd "$source" && CGO_ENABLED=0 go build -trimpath -o "$plugin.tmp" \
      -ldflags "-X github.com/docker/compose/v5/internal.Version=$COMPOSE" ./cmd >&2)
    mv "$plugin.tmp" "$plugin"
  fi
  echo "$config"
}

build() {
  engine
  base
  from_debian postgres
  from_debian nats
  from_debian prometheus
  from_debian python
  go_program jaeger github.com/jaegertracing/jaeger/cmd/jaeger "$JAEGER"
  go_program mailpit github.com/axllent/mailpit "$MAILPIT"
  rust
  tern
  cat <<EOF
TERN_IMAGE=tern-local/tern:dev
TERN_POSTGRES_IMAGE=$IMAGE_POSTGRES
TERN_NATS_IMAGE=$IMAGE_NATS
TERN_PROMETHEUS_IMAGE=$IMAGE_PROMETHEUS
TERN_JAEGER_IMAGE=$IMAGE_JAEGER
TERN_MAILPIT_IMAGE=$IMAGE_MAILPIT
TEST_PYTHON_IMAGE=$IMAGE_PYTHON
EOF
}

case "${1:-}" in
  engine) engine ;;
  build) build ;;
  compose-v2) compose_v2 ;;
  *)
    echo "usage: scripts/images.sh engine|build|compose-v2" >&2
    exit 64
    ;;
esac
