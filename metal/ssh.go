package metal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// DefaultRebootCommand runs as the admin user "hl" of the installed nodes.
const DefaultRebootCommand = "sudo systemctl reboot"

// SSH runs commands on the installed nodes, as the admin user "hl" by
// default, checking each node's host key.
type SSH struct {
	User   string
	Port   int
	Signer ssh.Signer
	// KnownHosts is a known_hosts file to check host keys against; without
	// it the key the node reported at install (hl metal serve's state) is
	// pinned.
	KnownHosts string
	// Insecure skips host key checks.
	Insecure bool
	// Addr overrides the address dialled (default node IP:Port).
	Addr    func(Node) string
	Timeout time.Duration
}

// SSHRebooter reboots nodes over SSH.
type SSHRebooter struct {
	SSH
	Command string
}

// Reboot runs the reboot command on n. A connection the reboot cuts before
// the command reports its exit status counts as success.
func (r *SSHRebooter) Reboot(ctx context.Context, n Node, hostKey string) error {
	cmd := r.Command
	if cmd == "" {
		cmd = DefaultRebootCommand
	}
	_, err := r.Run(ctx, n, hostKey, cmd)
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return nil
	}
	return err
}

// Run runs cmd on n and returns its standard output; the error carries
// its standard error.
func (r *SSH) Run(ctx context.Context, n Node, hostKey, cmd string) ([]byte, error) {
	if r.Signer == nil {
		return nil, errors.New("no SSH key (--ssh-key or HL_METAL_SSH_KEY)")
	}
	cb, err := r.hostKeyCallback(n, hostKey)
	if err != nil {
		return nil, err
	}
	port := r.Port
	if port == 0 {
		port = 22
	}
	addr := net.JoinHostPort(n.IP, strconv.Itoa(port))
	if r.Addr != nil {
		addr = r.Addr(n)
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	user := r.User
	if user == "" {
		user = "hl"
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(timeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(r.Signer)}, HostKeyCallback: cb, Timeout: timeout,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh %s@%s: %w", user, addr, err)
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	defer sess.Close()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Run(cmd); err != nil {
		var missing *ssh.ExitMissingError
		if errors.As(err, &missing) {
			return stdout.Bytes(), err
		}
		return nil, fmt.Errorf("ssh %s %q: %w: %s", addr, cmd, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func (r *SSH) hostKeyCallback(n Node, hostKey string) (ssh.HostKeyCallback, error) {
	switch {
	case r.Insecure:
		return ssh.InsecureIgnoreHostKey(), nil
	case r.KnownHosts != "":
		return knownhosts.New(r.KnownHosts)
	case hostKey != "":
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
		if err != nil {
			return nil, fmt.Errorf("host key of %s recorded by hl metal serve: %w", n.Name, err)
		}
		return ssh.FixedHostKey(pk), nil
	}
	return nil, fmt.Errorf("no SSH host key known for %s (it reports one when it installs): pass --ssh-known-hosts, or --ssh-insecure to skip the check", n.Name)
}
