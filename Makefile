# make test: what CI runs (.ci/run). It installs what the tests need when it
# is missing, checks formatting and vet, runs the unit tests with -race and
# the integration tests, which start real sluice processes.
GO ?= go
PKGS := ./cmd/... ./internal/...

.PHONY: all build test deps check unit integration fuzz bench bench-postgres clean

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

check:
	@out=$$(gofmt -l cmd internal test); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m $(PKGS)

# -parallel 4: the tests marked t.Parallel mostly wait on their processes.
integration:
	$(GO) test -count=1 -parallel 4 -timeout 25m ./test/...

# Short fuzzing runs of the parsers that face the network and the job spec.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime 30s ./internal/dataflow/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 30s ./internal/dataflow/
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime 30s ./internal/network/

bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s ./internal/network/ ./internal/dataflow/
	$(GO) run ./cmd/sluice bench exchange

# The postgres sink's COPY beside psql \copy of the same rows (docs/connectors.md).
bench-postgres:
	$(GO) test -run '^$$' -bench BenchmarkPostgresSink -benchtime 1x ./test/

clean:
	rm -rf bin
