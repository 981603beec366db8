# make test: what CI runs (.ci/run). It installs what the tests need when it
# is missing, checks formatting and vet, runs the unit tests with -race and
# the integration tests, which start real sluice processes.
GO ?= go
PKGS := ./cmd/... ./internal/...

.PHONY: all build test deps check unit integration fuzz bench bench-kafka bench-postgres clean web web-check

all: build

build:
	$(GO) build -o bin/sluice ./cmd/sluice

test: deps check unit integration

# deps installs the system packages the integration tests use.
deps:
	@./test/install-deps.sh
	@./test/opa/build.sh >/dev/null
	@# etcd, kube-apiserver, kube-controller-manager and the test node agent, built once
	@# (minutes cold) and cached; without CI the Kubernetes tests report the build error.
	@./test/k8s/build.sh >/dev/null || [ "$$CI" != true ]

check: web-check
	@out=$$(gofmt -l cmd internal test); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# web rebuilds the dashboard (web/dist, embedded by go:embed and committed,
# so that go build alone works on a fresh clone) from web/src with the
# versions package-lock.json pins.
web:
	cd web && npm ci --no-audit --no-fund && npm run build

# web-check rebuilds the dashboard into a scratch directory and fails if the
# committed web/dist differs: a change to web/src needs `make web` and a
# commit of web/dist.
web-check:
	@command -v npm >/dev/null || { echo "web-check: npm (Node.js >= 20.19) is needed to rebuild the dashboard"; exit 1; }
	@cd web && npm ci --no-audit --no-fund >/dev/null && npx tsc --noEmit && \
	  out=$$(mktemp -d) && npx vite build --logLevel error --outDir "$$out" --emptyOutDir && \
	  if ! diff -r dist "$$out" >/dev/null; then diff -r dist "$$out" | head -20; rm -rf "$$out"; \
	    echo "web/dist is stale: run 'make web' and commit web/dist"; exit 1; fi; rm -rf "$$out"

unit:
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

# -parallel 4: the tests marked t.Parallel mostly wait on their processes.
integration:
	$(GO) test -count=1 -parallel 4 -timeout 25m ./test/...

# Short fuzzing runs of the parsers that face the network and the job spec (FUZZTIME each).
# `make unit` runs every fuzz target's seeds and testdata/fuzz corpus as ordinary tests.
FUZZTIME ?= 30s
FUZZ_TARGETS := \
	./internal/dataflow/:FuzzParseSpec ./internal/dataflow/:FuzzDecodeRecord \
	./internal/connectors/kafka/:FuzzKafkaRecord ./internal/network/:FuzzReadFrame \
	./internal/connectors/kafka/:FuzzParseJAAS ./internal/connectors/kafka/:FuzzProperties \
	./internal/connectors/postgres/:FuzzParseConnString ./internal/connectors/postgres/:FuzzGSSUnwrap \
	./internal/connectors/postgres/:FuzzGSSContinue \
	./internal/jobmanager/:FuzzMetricsQuery ./internal/processlog/:FuzzLogFileName \
	./internal/security/tokens/:FuzzTokenSet ./internal/security/tokens/:FuzzJobTokenHeader

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*}"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/network/ ./internal/dataflow/
	$(GO) run ./cmd/sluice bench exchange

# The Kafka source against a bare franz-go consumer (plaintext and TLS), and Kafka -> Kafka
# exactly-once beside at-least-once, against the test broker's process (docs/connectors.md).
bench-kafka:
	$(GO) test -run '^$$' -bench 'BenchmarkKafka' -benchtime 1x ./test/

# The postgres sink's COPY beside psql \copy of the same rows (docs/connectors.md).
bench-postgres:
	$(GO) test -run '^$$' -bench BenchmarkPostgresSink -benchtime 1x ./test/

clean:
	rm -rf bin
