# Jaeger (v2, all in one: OTLP in, the query API and UI out), built from its Go module on the
# host, on the local Debian base: what the official image runs, for the compose test, with a wget
# for the healthcheck as the official image's alpine base gives it.
ARG BASE=tern-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/*
COPY jaeger /usr/local/bin/jaeger
# As the official image: its built-in configuration listens on localhost unless told otherwise.
ENV JAEGER_LISTEN_HOST=0.0.0.0
USER 65532:65532
EXPOSE 4317 4318 16686
ENTRYPOINT ["/usr/local/bin/jaeger"]
