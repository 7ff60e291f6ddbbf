package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRestoreErrors: hl backup restore refuses what it cannot do
// before it touches the cluster (the kubeconfig points at a closed port),
// naming the problem: an app that is not rendered, one with nothing backed
// up, a target the app has no copies on, and --snapshot for an app with
// several volumes. What it does in a cluster is backup's TestRestoreDrill.
func TestBackupRestoreErrors(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "golden", "full")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	age := filepath.Join("..", "..", "testdata", "age", "test-key.txt")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown app", []string{"nope"}, `no app "nope"`},
		{"not backed up", []string{"homepage"}, "nothing of namespace homepage is backed up"},
		{"no such target", []string{"paperless", "--target", "usb"}, `no backups on target "usb" (its targets: local, nas, offsite)`},
		{"snapshot of two volumes", []string{"paperless", "--snapshot", "abc", "--age-key", age}, "backs up 2 volumes (paperless-data, paperless-media): name one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"backup", "restore", "--dir", dir, "--kubeconfig", kubeconfig}, tc.args...)
			_, stderr, code := hl(t, args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 1 and %q", code, stderr, tc.want)
			}
		})
	}
}
