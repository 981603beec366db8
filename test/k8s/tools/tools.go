//go:build tools

// Package tools pins the programs build.sh compiles from this module: the
// real kube-apiserver, kube-controller-manager (a few of its controllers
// are run, see test/k8s/README.md) and etcd that
// sluice's Kubernetes tests run against. The build tag keeps the imports out
// of every ordinary build; go mod tidy still records them.
package tools

import (
	_ "go.etcd.io/etcd/server/v3/etcdmain"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
