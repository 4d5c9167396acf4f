# Mailpit (a mail catcher: SMTP in on 1025, its API and UI on 8025), built from its Go module on
# the host, on the local Debian base: what the official image runs, for the compose test.
ARG BASE=tern-local/debian:bookworm
FROM ${BASE}
# Where the official image has it: its healthcheck is `/mailpit readyz`.
COPY mailpit /mailpit
USER 65532:65532
EXPOSE 1025 8025
ENTRYPOINT ["/mailpit"]
