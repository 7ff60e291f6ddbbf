package metal

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestEtcdS3Keys: a server's k3s config gets the offsite backup target's
// S3 keys (decrypted from system/backups/secrets/restic-offsite.sops.yaml)
// for its etcd snapshot uploads, filled in at serve time; an agent's gets
// neither the settings nor the keys, and no file before the k3s config
// carries them.
func TestEtcdS3Keys(t *testing.T) {
	dir := loopbackRepo(t)
	ts := newTestServer(t, dir, filepath.Join(t.TempDir(), "state.json"))
	access, err := readSecretKey(filepath.Join(dir, EtcdS3SecretFile), "AWS_ACCESS_KEY_ID", testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := readSecretKey(filepath.Join(dir, EtcdS3SecretFile), "AWS_SECRET_ACCESS_KEY", testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	if ts.sec.EtcdS3AccessKey != access || ts.sec.EtcdS3SecretKey != secret {
		t.Fatal("LoadSecrets did not load the offsite target's S3 keys")
	}

	server := ts.install(t, node1Addr, "node1", node1Path)
	for _, want := range []string{"etcd-s3: true\n", `etcd-s3-access-key: "` + access + `"`, `etcd-s3-secret-key: "` + secret + `"`} {
		if !strings.Contains(server.k3s, want) {
			t.Errorf("server k3s config lacks %q:\n%s", want, server.k3s)
		}
	}
	for what, b := range map[string]string{"boot": server.boot, "preseed": server.preseed, "post-install": server.post} {
		if strings.Contains(b, access) || strings.Contains(b, secret) {
			t.Errorf("%s holds an S3 key", what)
		}
	}
	agent := ts.install(t, node2Addr, "node2", node2Path)
	if strings.Contains(agent.k3s, "etcd-s3") || strings.Contains(agent.k3s, access) || strings.Contains(agent.k3s, secret) {
		t.Errorf("agent k3s config has etcd-s3 settings or keys:\n%s", agent.k3s)
	}
}

// TestFillEtcdS3 covers what the served repos above cannot reach: a
// hand-edited agent config asking for the keys, a repo without them, and
// keys that need escaping in a YAML double-quoted scalar.
func TestFillEtcdS3(t *testing.T) {
	cfg := []byte(`etcd-s3-access-key: "` + PlaceholderEtcdS3AccessKey + `"` + "\n" + `etcd-s3-secret-key: "` + PlaceholderEtcdS3SecretKey + `"` + "\n")
	for _, tc := range []struct {
		name, role, access, secret string
		want, err                  string
	}{
		{"server", RoleServer, "AKIA", `a/b+c"d\e`, "etcd-s3-access-key: \"AKIA\"\netcd-s3-secret-key: \"a/b+c\\\"d\\\\e\"\n", ""},
		{"agent", RoleAgent, "AKIA", "agent-must-not-see", "", "only servers run etcd"},
		{"no keys", RoleServer, "", "", "", "has no " + EtcdS3SecretFile},
		{"line break", RoleServer, "AKIA", "line1\nline2: x", "", "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Secrets{K3sToken: "t", K3sAgentToken: "a", EtcdS3AccessKey: tc.access, EtcdS3SecretKey: tc.secret}
			got, err := s.fill(cfg, tc.role)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				if strings.Contains(err.Error(), tc.secret) && tc.secret != "" {
					t.Errorf("the error shows the key: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
