#!/usr/bin/env bash
# Builds the Kubernetes control plane sluice's Kubernetes integration tests run
# against -- a real etcd, kube-apiserver and kube-controller-manager -- and the
# test node agent (test/k8s/tools/sluice-test-node), and prints where they are.
#
# They are built from Go modules pinned in the tool module test/k8s/tools (its
# own go.mod, so nothing of this reaches sluice's), once, and cached outside
# the repository: a cold build takes about 4 minutes on 2 cores and 3 GB of
# memory. The node agent is rebuilt when its sources change (its directory is
# named after their hash). Concurrent runs wait for each other (flock).
#
# Usage: test/k8s/build.sh        # prints two lines: the directory of etcd, kube-apiserver and
#                                 # kube-controller-manager (~/.cache/sluice-test/k8s-v1.37.2/bin),
#                                 # then the node agent (.../nodeagent-<hash>/sluice-test-node)
# Env:   SLUICE_TEST_CACHE        # cache root (default $HOME/.cache/sluice-test)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tools="$here/tools"
version="$(sed -nE 's/^[[:space:]]*k8s\.io\/kubernetes (v[0-9.]+)$/\1/p' "$tools/go.mod" | head -1)"
if [[ -z "$version" ]]; then
	echo "build.sh: no k8s.io/kubernetes requirement in $tools/go.mod; run $tools/update.sh" >&2
	exit 1
fi
cache="${SLUICE_TEST_CACHE:-$HOME/.cache/sluice-test}"
dir="$cache/k8s-$version"
agent_hash="$(cd "$tools" && cat go.mod go.sum $(find sluice-test-node -name '*.go' | sort) | sha256sum | cut -c1-16)"
agent_dir="$dir/nodeagent-$agent_hash"
mkdir -p "$dir"

exec 9>"$dir/.lock"
flock 9

build() { # build OUT_DIR PACKAGE...
	local out="$1" tmp
	shift
	tmp="$(mktemp -d "$dir/.build-XXXXXX")"
	# -mod=readonly: go.mod and go.sum are committed and complete; a build never edits them.
	if ! (cd "$tools" && GOFLAGS=-mod=readonly go build -o "$tmp/" "$@" >&2); then
		rm -rf "$tmp"
		echo "build.sh: building $* in $tools failed (see above)" >&2
		exit 1
	fi
	mkdir -p "$out"
	mv "$tmp"/* "$out/"
	rm -rf "$tmp"
}

if [[ ! -x "$dir/bin/kube-apiserver" || ! -x "$dir/bin/kube-controller-manager" || ! -x "$dir/bin/etcd" ]]; then
	echo "build.sh: building etcd, kube-apiserver and kube-controller-manager $version (minutes, once) into $dir/bin" >&2
	# etcd's main package is its server module's root, which go build names "server".
	build "$dir/.bin" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager go.etcd.io/etcd/server/v3
	mv "$dir/.bin/server" "$dir/.bin/etcd"
	rm -rf "$dir/bin"
	mv "$dir/.bin" "$dir/bin"
fi
if [[ ! -x "$agent_dir/sluice-test-node" ]]; then
	echo "build.sh: building the test node agent into $agent_dir" >&2
	build "$agent_dir" ./sluice-test-node
fi
echo "$dir/bin"
echo "$agent_dir/sluice-test-node"
