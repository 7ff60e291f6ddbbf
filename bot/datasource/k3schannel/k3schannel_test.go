package k3schannel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/k3schannel"
	"hl.dev/hl/internal/httpx"
)

func TestReleases(t *testing.T) {
	url, hits := datasourcetest.NewK3sChannels(t)
	ds := k3schannel.New(httpx.Client(httpx.Options{}), url)
	rels, err := ds.Releases(context.Background(), bot.Dependency{Package: "k3s"})
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range rels {
		vs = append(vs, r.Version)
		if !strings.Contains(r.ReleaseNotesURL, "/releases/tag/v1.") {
			t.Errorf("notes %s", r.ReleaseNotesURL)
		}
	}
	sort.Strings(vs)
	want := "v1.29.6+k3s1 v1.30.6+k3s1 v1.31.6+k3s1 v1.32.6+k3s1 v1.33.6+k3s1 v1.34.1+k3s1 v1.35.0-rc1+k3s1"
	if strings.Join(vs, " ") != want {
		t.Errorf("versions = %v\nwant %s", vs, want)
	}
	if hits.Load() != 1 {
		t.Errorf("%d requests", hits.Load())
	}
}

func TestMalformed(t *testing.T) {
	for name, body := range map[string]string{"html": "<html>oops</html>", "empty": `{"data":[]}`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
		defer srv.Close()
		if _, err := k3schannel.New(httpx.Client(httpx.Options{}), srv.URL).Releases(context.Background(), bot.Dependency{}); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
