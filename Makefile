# Tern's entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

SERVICES := scripts/services.sh
# Loads TERN_DATABASE_URL, TERN_NATS_URL and TERN_TEST_* for the local services.
WITH_ENV := eval "$$(bash $(SERVICES) env)";

.PHONY: help dev test test-only test-compose lint fmt generate bench-ingest bench-ingest-tls bench-ingest-tracing bench-delivery bench-scale bench-large bench-api bench-ingest-policy bench-ingest-dkim-verify bench-ingest-signing services-up services-down services-status clean-dev

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

dev: ## run Tern locally (starts PostgreSQL and NATS under .dev/, installing them if missing)
	bash scripts/dev.sh

test: services-up ## start the local services, then run every test
	$(MAKE) --no-print-directory test-only

test-compose: ## run docker-compose.yml on locally built images and check it end to end (installs and starts Docker if needed)
	python3 scripts/test-compose.py

test-only: ## run every test against services that are already up
	$(WITH_ENV) bash scripts/drop-test-databases.sh
	cargo build --workspace --bins
	$(WITH_ENV) cargo test --workspace --no-fail-fast

# cargo-fuzz passes -Z flags to rustc; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
FUZZ_SECONDS ?= 60
FUZZ_ENV := RUSTC_BOOTSTRAP=1

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZ_SECONDS each (default 60); installs cargo-fuzz if missing
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for target in $$(cargo fuzz list); do \
		echo "fuzzing $$target for $(FUZZ_SECONDS)s"; \
		mkdir -p "corpus/$$target"; \
		$(FUZZ_ENV) cargo fuzz run "$$target" "corpus/$$target" "seeds/$$target" -- \
			-max_total_time=$(FUZZ_SECONDS) -max_len=4096; \
	done

generate: ## regenerate the committed artefacts (docs/openapi.json, deploy/crds/, the chart's files/); a test fails when they are stale
	cargo run -q --bin tern -- openapi > docs/openapi.json
	mkdir -p deploy/crds
	cargo run -q --bin tern -- crdgen --out deploy/crds
	# A chart reads only its own directory: it carries copies of what deploy/ has.
	rm -rf helm/tern/files && mkdir -p helm/tern/files/crds helm/tern/files/prometheus helm/tern/files/grafana
	cp deploy/crds/*.yaml helm/tern/files/crds/
	cp deploy/prometheus/tern-alerts.yaml helm/tern/files/prometheus/
	cp deploy/grafana/tern-dashboard.json helm/tern/files/grafana/

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## format the code
	cargo fmt --all

bench-ingest: services-up ## ingest benchmark: Tern vs a durable Postfix relay (see bench/README.md)
	cargo build --release --bin tern
	$(WITH_ENV) bash bench/ingest.sh

bench-ingest-tls: services-up ## ingest with STARTTLS: Tern vs Postfix with TLS, same client (see bench/README.md)
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/ingest_tls.sh

bench-ingest-tracing: services-up ## ingest with OpenTelemetry tracing off and on (100% sampled), and Postfix
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/ingest_tracing.sh

bench-ingest-policy: services-up ## ingest with the policy checks off and on (DNSBL, SPF, rate limits), and Postfix
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/ingest_policy.sh

bench-ingest-dkim-verify: services-up ## ingest of unsigned and DKIM-signed mail with the policy checks off and on, and Postfix
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/ingest_dkim_verify.sh

bench-ingest-signing: services-up ## ingest with DKIM signing (RSA-2048, Ed25519) and without, 1 KB and 100 KB, and Postfix
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/ingest_signing.sh

bench-delivery: services-up ## delivery benchmark: smtp-source -> Tern -> smtp-sink vs the same through Postfix
	cargo build --release --bin tern
	$(WITH_ENV) bash bench/delivery.sh

bench-scale: services-up ## the claim path as workers and claimers are added, under 10M rows of history, and bytes per message (see bench/README.md)
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/scale.sh

bench-large: services-up ## peak memory of ingress and worker with 50 concurrent 25 MB messages, and their cost to PostgreSQL
	cargo build --release -p tern -p tern-loadgen
	$(WITH_ENV) bash bench/large.sh

bench-api: services-up ## admin API latency over a 1M-job queue vs Postfix's qshape/postqueue/postcat (see bench/README.md)
	cargo build --release --bin tern
	$(WITH_ENV) bash bench/api.sh

services-up: ## start PostgreSQL and NATS under .dev/ (installing them if missing)
	bash $(SERVICES) up

services-down: ## stop them
	bash $(SERVICES) down

services-status: ## are they running?
	bash $(SERVICES) status

clean-dev: services-down ## stop the services and delete .dev/ (all local data)
	rm -rf .dev
