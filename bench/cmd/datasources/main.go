// Command datasources serves the local datasources of
// bench/renovate-compare.sh on loopback: a Helm chart repository (podinfo
// 1.0.0, 1.0.1, 2.0.0 packaged by the Helm SDK, with index.yaml) and an OCI
// registry holding app/web:1.0.0 and app/web:1.1.0. It writes
// "HELM_URL REGISTRY_HOST" to the file named by its argument once both are
// ready and serves until killed.
package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/repo"
)

func listen() (net.Listener, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	return l, l.Addr().String()
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: datasources CHARTDIR READYFILE")
		os.Exit(2)
	}
	dir, ready := os.Args[1], os.Args[2]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}

	hl, haddr := listen()
	helmURL := "http://" + haddr
	for _, v := range []string{"1.0.0", "1.0.1", "2.0.0"} {
		ch := &chart.Chart{
			Metadata: &chart.Metadata{APIVersion: "v2", Name: "podinfo", Version: v, AppVersion: v},
			Values:   map[string]any{"replicas": 1},
			Templates: []*chart.File{{Name: "templates/cm.yaml", Data: []byte(
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-podinfo\n")}},
		}
		if _, err := chartutil.Save(ch, dir); err != nil {
			log.Fatal(err)
		}
	}
	idx, err := repo.IndexDirectory(dir, helmURL)
	if err != nil {
		log.Fatal(err)
	}
	if err := idx.WriteFile(filepath.Join(dir, "index.yaml"), 0o644); err != nil {
		log.Fatal(err)
	}
	go func() { log.Fatal(http.Serve(hl, http.FileServer(http.Dir(dir)))) }()

	rl, raddr := listen()
	go func() { log.Fatal(http.Serve(rl, registry.New(registry.Logger(log.New(io.Discard, "", 0))))) }()
	for _, tag := range []string{"1.0.0", "1.1.0"} {
		img, err := random.Image(64, 1)
		if err != nil {
			log.Fatal(err)
		}
		ref, err := name.ParseReference(raddr+"/app/web:"+tag, name.Insecure)
		if err != nil {
			log.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			log.Fatal(err)
		}
	}
	if err := os.WriteFile(ready, []byte(helmURL+" "+raddr+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	select {}
}
