package metal

import (
	"testing"
	"time"
)

// A token works once per run of the server; a later run takes a token an
// earlier run burnt once more within ReplayGrace (its answer may have
// died with that run), and never a token that was not the one burnt.
func TestTokenReplayOnlyAcrossRuns(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	w := &Window{}
	known := func(string) bool { return true }
	b, err := w.mint([]byte("@@HL_TOKEN:post-install.sh@@"), known)
	if err != nil {
		t.Fatal(err)
	}
	tok := string(b)
	steps := []struct {
		what       string
		tok, run   string
		at         time.Duration
		ok, replay bool
	}{
		{"a wrong token", "f00d", "run-a", 0, false, false},
		{"the live token", tok, "run-a", 0, true, false},
		{"again, same run", tok, "run-a", time.Second, false, false},
		{"a wrong token, next run", "f00d", "run-b", 2 * time.Second, false, false},
		{"again, next run", tok, "run-b", 3 * time.Second, true, true},
		{"again, that run", tok, "run-b", 4 * time.Second, false, false},
		{"again, a third run, in the grace", tok, "run-c", ReplayGrace - time.Second, true, true},
		{"again, a fourth run, past the grace", tok, "run-d", ReplayGrace + time.Second, false, false},
	}
	for _, s := range steps {
		ok, replay := w.redeem("post-install.sh", s.tok, s.run, now.Add(s.at))
		if ok != s.ok || replay != s.replay {
			t.Errorf("%s: ok %v replay %v, want %v %v", s.what, ok, replay, s.ok, s.replay)
		}
	}
	if _, live := w.Tokens["post-install.sh"]; live {
		t.Error("the token is still live after it was redeemed")
	}
	if ok, _ := w.redeem("k3s-config.yaml", tok, "run-e", now); ok {
		t.Error("a token of one resource released another")
	}
}
