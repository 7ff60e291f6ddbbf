package config

import "testing"

func TestRewritePrefix(t *testing.T) {
	ms := []Mirror{
		{From: "https://charts.jetstack.io", To: "https://mirror.lan/jetstack"},
		{From: "docker.io", To: "registry.lan/dockerhub/"},
		{From: "docker.io/library", To: "registry.lan/official"},
	}
	for in, want := range map[string]string{
		"https://charts.jetstack.io":          "https://mirror.lan/jetstack",
		"https://charts.jetstack.io/sub":      "https://mirror.lan/jetstack/sub",
		"https://charts.jetstack.iox":         "",
		NormaliseImage("grafana/loki"):        "registry.lan/dockerhub/grafana/loki",
		NormaliseImage("nginx"):               "registry.lan/official/nginx",
		NormaliseImage("ghcr.io/x/y"):         "",
		NormaliseImage("localhost:5000/x/y"):  "",
		NormaliseImage("registry.lan:5000/z"): "",
	} {
		got, ok := RewritePrefix(in, ms)
		if ok != (want != "") || got != want {
			t.Errorf("%s: got %q, %v; want %q", in, got, ok, want)
		}
	}
}
