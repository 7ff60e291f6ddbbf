package metal

import (
	"strings"
	"testing"
)

// TestFillPublicRolloutKey: a node file asking for the metal pipeline's
// key gets the repo's key; in a repo without one (no Woodpecker, or
// rendered by an older hl) it is refused, never served with the
// placeholder; a file not asking is served as it is.
func TestFillPublicRolloutKey(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	file := []byte("printf '%s\\n' 'restrict,command=\"sudo systemctl reboot\" " + PlaceholderRolloutKey + "'\n")
	got, err := (&Secrets{RolloutKey: key}).fillPublic(file)
	if err != nil || !strings.Contains(string(got), `reboot" `+key+"'") || strings.Contains(string(got), "@@") {
		t.Errorf("with a key: %q, %v", got, err)
	}
	for _, s := range []*Secrets{nil, {}} {
		if _, err := s.fillPublic(file); err == nil || !strings.Contains(err.Error(), RolloutKeyFile) {
			t.Errorf("without a key: %v, want an error naming %s", err, RolloutKeyFile)
		}
		plain := []byte("echo hello\n")
		if got, err := s.fillPublic(plain); err != nil || string(got) != string(plain) {
			t.Errorf("a file without the placeholder: %q, %v", got, err)
		}
	}
}
