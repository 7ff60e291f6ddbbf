package wizard

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Env is what the wizard knows about the machine it runs on: where the
// user's config lives and what to suggest for a fresh hl.yaml. Tests
// build it by hand; the CLI uses DetectEnv.
type Env struct {
	// ConfigDir is the user's config dir; the age identity defaults to
	// ConfigDir/hl/age.key.
	ConfigDir string
	// Timezone is the local IANA zone ("" for UTC).
	Timezone string
	// SSHKey is the user's public key (~/.ssh/id_*.pub), if any.
	SSHKey string
	// LAN is the local IPv4 network and Host this machine's address on it
	// (it usually runs `hl metal serve`); invalid when unknown.
	LAN  netip.Prefix
	Host netip.Addr
}

// DetectEnv looks at the machine: os.UserConfigDir, $TZ or /etc/localtime,
// ~/.ssh/id_{ed25519,ecdsa,rsa}.pub and the first private IPv4 network of
// an interface that is up.
func DetectEnv() Env {
	var e Env
	e.ConfigDir, _ = os.UserConfigDir()
	e.Timezone = localTimezone()
	if home, err := os.UserHomeDir(); err == nil {
		for _, k := range []string{"id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"} {
			if b, err := os.ReadFile(filepath.Join(home, ".ssh", k)); err == nil {
				e.SSHKey = strings.TrimSpace(string(b))
				break
			}
		}
	}
	e.LAN, e.Host = localLAN()
	return e
}

func localTimezone() string {
	valid := func(tz string) bool {
		_, err := time.LoadLocation(tz)
		return tz != "" && tz != "Local" && err == nil
	}
	if tz := strings.TrimPrefix(os.Getenv("TZ"), ":"); valid(tz) {
		return tz
	}
	if b, err := os.ReadFile("/etc/timezone"); err == nil && valid(strings.TrimSpace(string(b))) {
		return strings.TrimSpace(string(b))
	}
	if l, err := os.Readlink("/etc/localtime"); err == nil {
		if _, tz, ok := strings.Cut(l, "zoneinfo/"); ok && valid(tz) {
			return tz
		}
	}
	return ""
}

func localLAN() (netip.Prefix, netip.Addr) {
	ifs, err := net.Interfaces()
	if err != nil {
		return netip.Prefix{}, netip.Addr{}
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			ones, _ := ipn.Mask.Size()
			if !ok || !ip.Unmap().Is4() || !ip.IsPrivate() || ones < 16 || ones > 29 {
				continue
			}
			ip = ip.Unmap()
			return netip.PrefixFrom(ip, ones).Masked(), ip
		}
	}
	return netip.Prefix{}, netip.Addr{}
}

// lineReader hands out at most one line per Read. huh's accessible mode
// wraps the input in a new bufio.Scanner for every prompt, which would
// swallow the rest of piped input after the first answer; it also records
// end of input so the wizard stops instead of looping on defaults.
type lineReader struct {
	r   *bufio.Reader
	eof bool
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{r: bufio.NewReader(r)} }

func (l *lineReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := l.r.ReadByte()
		if err != nil {
			if n == 0 {
				l.eof = true
				return 0, err
			}
			return n, nil
		}
		p[n] = b
		n++
		if b == '\n' {
			break
		}
	}
	return n, nil
}

// withModeline makes the schema modeline the first line of an encoded
// hl.yaml, moving it there if it was elsewhere.
func withModeline(data []byte, modeline string) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	out := make([]byte, 0, len(data)+len(modeline)+1)
	out = append(out, modeline...)
	out = append(out, '\n')
	for _, l := range lines {
		if strings.TrimSpace(string(l)) == modeline {
			continue
		}
		out = append(out, l...)
	}
	return out
}
