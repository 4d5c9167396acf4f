# Python from Debian's package, for running the Helm chart's `helm test` pod (whose default image
# is the official python slim image) against the compose stack.
ARG BASE=tern-local/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
