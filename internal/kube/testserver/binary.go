package testserver

import (
	"errors"
	"fmt"

	"hl.dev/hl/internal/testharness"
)

// The releases the harness builds and runs. scripts/build-kube.sh reads
// these two lines, so they are the only place the versions are written.
const (
	KubernetesVersion = "1.37.2"
	EtcdVersion       = "3.6.16"
)

const (
	// EnvAPIServer names a kube-apiserver binary to use instead of the cached build.
	EnvAPIServer = "HL_KUBE_APISERVER_BIN"
	// EnvEtcd names an etcd binary to use instead of the cached build.
	EnvEtcd = "HL_ETCD_BIN"
	// EnvCache overrides the cache root used by scripts/build-kube.sh.
	EnvCache = "HL_KUBE_CACHE"
)

// ErrNoBinary is returned (wrapped) when kube-apiserver or etcd cannot be found.
var ErrNoBinary = errors.New("kube-apiserver/etcd binary not found; run `make kube` (scripts/build-kube.sh) to build them")

// APIServerBinary returns the kube-apiserver to run: $HL_KUBE_APISERVER_BIN
// if set, else <cache>/kube-apiserver-v<KubernetesVersion>/kube-apiserver.
func APIServerBinary() (string, error) {
	return binary(EnvAPIServer, "kube-apiserver-v"+KubernetesVersion, "kube-apiserver")
}

// EtcdBinary returns the etcd to run: $HL_ETCD_BIN if set, else
// <cache>/etcd-v<EtcdVersion>/etcd.
func EtcdBinary() (string, error) {
	return binary(EnvEtcd, "etcd-v"+EtcdVersion, "etcd")
}

// binary resolves one executable. The cache root is $HL_KUBE_CACHE, else
// <repo root>/.cache/kube where the repo root is the nearest folder above
// the working directory that holds go.mod.
func binary(env, versionDir, name string) (string, error) {
	p, err := testharness.Binary(env, EnvCache, "kube", versionDir+"/"+name)
	if errors.Is(err, testharness.ErrNoBinary) {
		return "", fmt.Errorf("%w: %v", ErrNoBinary, err)
	}
	return p, err
}
