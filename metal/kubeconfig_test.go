package metal

import (
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// k3sYAML is what k3s writes to /etc/rancher/k3s/k3s.yaml (shortened
// certificate data: only its presence matters here).
const k3sYAML = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: %s
    client-key-data: %s
`

// hl metal kubeconfig over a real sshd: it runs k3s's kubeconfig command
// as the admin user on the first server, trusting only the host key that
// server reported at install, and points the result at the control-plane
// VIP under the homelab's name. A wrong host key or a server that never
// called back gives nothing.
func TestKubeconfig(t *testing.T) {
	sshd := startSSHD(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sshd.Reply(t, strings.ReplaceAll(strings.ReplaceAll(k3sYAML, "%s", b64("pem")), "\n", "\n"))
	dir := renderedRepo(t, "valid/ha")
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	var first Node
	for _, n := range idx.Nodes {
		if n.FirstServer {
			first = n
		}
	}
	sf := StateFile{Path: filepath.Join(t.TempDir(), "state.json")}
	install := func(hostKey string) {
		t.Helper()
		if err := sf.Update(func(s *State) error {
			ns := s.ensure(first.MAC, first.Name)
			ns.Status, ns.HostKey, ns.InstalledAt = StatusInstalled, hostKey, time.Now()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	o := KubeconfigOptions{Dir: dir, State: sf, Name: "homelab",
		SSH: SSH{User: "root", Signer: sshd.Signer, Addr: func(Node) string { return sshd.Addr }, Timeout: 10 * time.Second}}

	if _, err := Kubeconfig(t.Context(), o); err == nil || !strings.Contains(err.Error(), "has not called back") {
		t.Fatalf("before the install: %v", err)
	}
	install(sshd.HostKey)
	out, err := Kubeconfig(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := sshd.Commands(t); len(got) != 1 || got[0] != strings.ReplaceAll(K3sKubeconfigCommand, " ", "_") {
		t.Errorf("commands run: %v", got)
	}
	cfg, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Clusters["homelab"]
	if c == nil || c.Server != "https://"+idx.ControlPlaneVIP+":6443" || cfg.CurrentContext != "homelab" || cfg.AuthInfos["homelab"] == nil || idx.ControlPlaneVIP == "" {
		t.Fatalf("kubeconfig not pointed at the VIP %q:\n%s", idx.ControlPlaneVIP, out)
	}
	if strings.Contains(string(out), "127.0.0.1") || strings.Contains(string(out), "default") {
		t.Errorf("k3s's loopback address or names left:\n%s", out)
	}

	// Another host key than the one reported at install: refused.
	other := startSSHD(t)
	install(other.HostKey)
	if _, err := Kubeconfig(t.Context(), o); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("with another host key pinned: %v", err)
	}
}
