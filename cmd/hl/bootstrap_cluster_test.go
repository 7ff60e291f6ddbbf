package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/config"
	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/testcharts"
)

// hl bootstrap cluster against a real API server behind a proxy that
// answers every request 500 with a Go stack trace as the body: the command
// exits 1 with one line naming the status, and nothing it prints — its own
// error or what client-go reports (klog) — shows the body.
func TestBootstrapClusterServerErrorIsOneLine(t *testing.T) {
	kube := kubets.New(t, kubets.Options{})
	proxy, err := chaos.NewProxy(kube.URL, chaos.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	if err := proxy.TrustUpstream(kube.CAData); err != nil {
		t.Fatal(err)
	}
	proxy.Rule(func(*http.Request) *chaos.Fault {
		return &chaos.Fault{Kind: chaos.Status, Code: http.StatusInternalServerError}
	})
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	kcData := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"" + proxy.URL + "\"}\nusers:\n- name: u\n  user: {token: \"" + kube.Token + "\"}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"
	if err := os.WriteFile(kc, []byte(kcData), 0o600); err != nil {
		t.Fatal(err)
	}
	dir, key := renderSmall(t)
	doc, _, err := config.Load(filepath.Join(dir, "hl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	testcharts.Catalog(t).Cache(t, cache, doc.Homelab.Spec.Mirrors.Charts...)

	out, errOut, code := hl(t, "bootstrap", "cluster", "--dir", dir, "--kubeconfig", kc, "--age-key", key, "--chart-cache", cache, "--offline")
	all := out + errOut
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, all)
	}
	if strings.Contains(all, "goroutine ") || strings.Contains(all, "PANIC") {
		t.Errorf("the server's stack trace was printed:\n%s", all)
	}
	if !strings.Contains(errOut, "500 Internal Server Error") {
		t.Errorf("the error does not name the status:\n%s", errOut)
	}
	if n := len(proxy.Events()); n < 5 {
		t.Errorf("%d requests: the first was not tried again", n)
	}
	t.Logf("stderr:\n%s", errOut)
}
