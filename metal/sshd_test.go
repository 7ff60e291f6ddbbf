package metal

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"hl.dev/hl/internal/testharness"
)

// testSSHD is a real OpenSSH server on loopback whose ForceCommand records
// each command it is asked to run (the "reboot") instead of running it,
// and answers with what Reply set (nothing by default).
type testSSHD struct {
	Addr    string
	HostKey string // authorized_keys line
	Signer  ssh.Signer
	record  string
	reply   string
}

// Reply sets what every command prints on standard output.
func (s *testSSHD) Reply(t *testing.T, out string) {
	t.Helper()
	if err := os.WriteFile(s.reply, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (s *testSSHD) Commands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(s.record)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startSSHD(t *testing.T) *testSSHD {
	t.Helper()
	const bin = "/usr/sbin/sshd"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s not found: install the Debian package openssh-server (%v)", bin, err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the SSH test starts sshd, which must run as root (CI runs as root)")
	}
	dir := t.TempDir()
	// sshd's privilege separation directory (created by the package's service).
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(hostPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	hostKeyFile := filepath.Join(dir, "host_ed25519")
	if err := os.WriteFile(hostKeyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	hostSigner, _ := ssh.NewSignerFromKey(hostPriv)
	_, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	clientSigner, _ := ssh.NewSignerFromKey(clientPriv)
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, ssh.MarshalAuthorizedKey(clientSigner.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	record, reply := filepath.Join(dir, "commands"), filepath.Join(dir, "reply")
	port := freePort(t)
	cfg := filepath.Join(dir, "sshd_config")
	writeFile(t, cfg, fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile %s
LogLevel ERROR
ForceCommand /bin/sh -c 'printf "%%s\n" "$SSH_ORIGINAL_COMMAND" >> %s; cat %s 2>/dev/null; true'
`, hostKeyFile, auth, filepath.Join(dir, "sshd.pid"), record, reply))
	cmd := exec.Command(bin, "-D", "-e", "-f", cfg, "-p", fmt.Sprint(port))
	out := &testharness.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start: %v\n%s", err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &testSSHD{Addr: addr, HostKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostSigner.PublicKey()))), Signer: clientSigner, record: record, reply: reply}
}
