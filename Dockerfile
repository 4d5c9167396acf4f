# Tern's image: one stripped `tern` binary on a small runtime base, run as a non-root user.
#
#   docker build -t tern .
#   docker run --rm tern --help
#
# The base images are build arguments, so the same file builds on local bases where no registry
# can be reached. Build with BuildKit (the default in Docker 23 and later; DOCKER_BUILDKIT=1
# before that): the cargo registry and target directory are cache mounts, so a rebuild compiles
# only what changed.
ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# A build that must trust a private CA (a proxy between the builder and crates.io) mounts its
# bundle as the secret `cacert`; it never reaches a layer, and the image users build needs none.
RUN --mount=type=cache,id=tern-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=tern-target,target=/src/target \
    --mount=type=secret,id=cacert \
    if [ -f /run/secrets/cacert ]; then \
        export CARGO_HTTP_CAINFO=/run/secrets/cacert SSL_CERT_FILE=/run/secrets/cacert; \
    fi \
    && cargo build --release --locked --bin tern \
    && install -D -s target/release/tern /out/tern

FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="tern" \
      org.opencontainers.image.description="Tern: a Kubernetes-native mail transfer agent" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/tern /usr/local/bin/tern
# Debian's CA set from the build stage, for a runtime base without one (Debian slim): workers
# verify the TLS of the hosts they deliver to.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The distroless `nonroot` user, by number so that any base works. SMTP listens on unprivileged
# ports in the container (2525, 2587, 2465 by default; bind 0.0.0.0 through the TERN_INGRESS_*
# settings), and a Service or a port mapping puts 25, 587 and 465 in front.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/tern"]
CMD ["--help"]
