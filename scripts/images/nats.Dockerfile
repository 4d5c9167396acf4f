# nats-server from Debian's package, for the compose test: the official alpine image's entrypoint,
# and a wget for the healthcheck as busybox gives it.
ARG BASE=tern-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server wget \
    && rm -rf /var/lib/apt/lists/*
EXPOSE 4222 8222
ENTRYPOINT ["/usr/sbin/nats-server"]
