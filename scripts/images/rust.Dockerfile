# A Rust toolchain image for building Tern's Dockerfile here: the host's own toolchain (the
# context's `toolchain/`), on the local Debian base with a C compiler.
ARG BASE=tern-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates gcc g++ libc6-dev make cmake perl pkg-config \
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH
