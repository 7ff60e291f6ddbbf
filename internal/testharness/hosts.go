package testharness

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// WithHosts wraps a server's command so that it runs in a private mount
// namespace whose /etc/hosts is the host's plus hosts (name → address):
// how a harness process resolves a cluster's Service names, as cluster
// DNS would. The hosts file is written into dir. Without hosts it returns
// the command unchanged. The wrapper execs the server, so the process and
// its group are the server's. Needs root and util-linux's unshare.
func WithHosts(dir string, hosts map[string]string, bin string, args []string) (string, []string, error) {
	if len(hosts) == 0 {
		return bin, args, nil
	}
	base, err := os.ReadFile("/etc/hosts")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("hosts: %w", err)
	}
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.Write(base)
	b.WriteString("\n# test harness hosts\n")
	for _, n := range names {
		fmt.Fprintf(&b, "%s\t%s\n", hosts[n], n)
	}
	file := filepath.Join(dir, "hosts")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return "", nil, fmt.Errorf("hosts: %w", err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return "", nil, fmt.Errorf("resolving names for a harness needs util-linux's unshare: %w", err)
	}
	wrapped := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c",
		`mount --bind "$0" /etc/hosts && exec "$@"`, file, bin}, args...)
	return unshare, wrapped, nil
}

// NoProxy returns env with the names of hosts added to NO_PROXY and
// no_proxy: a harness process that reaches those names (Service names
// mapped by WithHosts) must dial them itself, never through an HTTP proxy
// the machine's environment configures for the outside world.
func NoProxy(env []string, hosts map[string]string) []string {
	if len(hosts) == 0 {
		return env
	}
	names := make([]string, 0, len(hosts))
	for n := range hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	add := strings.Join(names, ",")
	out := make([]string, 0, len(env)+2)
	seen := map[string]bool{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "NO_PROXY" || k == "no_proxy" {
			seen[k] = true
			if v != "" {
				v += ","
			}
			kv = k + "=" + v + add
		}
		out = append(out, kv)
	}
	for _, k := range []string{"NO_PROXY", "no_proxy"} {
		if !seen[k] {
			out = append(out, k+"="+add)
		}
	}
	return out
}
