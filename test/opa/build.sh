#!/usr/bin/env bash
# Builds the Open Policy Agent server used by sluice's OPA authorizer tests
# (internal/security/authz/opa) and prints the path of the binary.
#
# OPA is built from its Go module rather than downloaded as a release binary:
# the Go module proxy is the only source we can rely on in CI, and a pinned
# module version gives the same, checksummed (go.sum database) build anywhere.
# The binary is cached across runs because a cold build takes minutes on 2 cores.
#
# Usage: test/opa/build.sh            # prints e.g. ~/.cache/sluice-test/opa-v1.22.2/opa
# Env:   SLUICE_TEST_CACHE            # cache root (default $HOME/.cache/sluice-test)
set -euo pipefail

version=v1.22.2
cache="${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}"
dir="$cache/opa-$version"
bin="$dir/opa"

if [[ -x "$bin" ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$dir"
# Build outside the sluice module so its go.mod is neither consulted nor touched;
# the install is atomic (go install writes the binary only on success).
(
	cd "$dir"
	GOFLAGS=-mod=mod GOBIN="$dir" go install "github.com/open-policy-agent/opa@$version" >&2
)
if [[ ! -x "$bin" ]]; then
	echo "build.sh: go install did not produce $bin" >&2
	exit 1
fi
echo "$bin"
