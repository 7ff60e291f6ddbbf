package metal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// DHCP modes of metal/nodes.yaml.
const (
	DHCPFull  = "full"
	DHCPProxy = "proxy"
)

// binder says which address the install requests of a node must come
// from (see "Install windows" in the package doc): in full DHCP mode with
// hl's own dnsmasq, the address dnsmasq leased to the node's MAC; else the
// node's configured address from metal/nodes.yaml.
type binder struct {
	// leaseFile is dnsmasq's lease file ("" when dnsmasq does not run).
	leaseFile string
	now       func() time.Time
	// leaseWait bounds the wait for a lease dnsmasq has just handed out
	// but not yet written (iPXE asks right after the DHCPACK).
	leaseWait time.Duration
}

// expected is the address n's requests must come from, and where that
// comes from (for the log).
func (b binder) expected(idx *Index, n Node) (netip.Addr, string, error) {
	if idx.DHCPMode == DHCPFull && b.leaseFile != "" {
		deadline := time.Now().Add(b.leaseWait)
		for {
			a, err := leaseOf(b.leaseFile, n.MAC, b.now())
			if err == nil || !errors.Is(err, errNoLease) || !time.Now().Before(deadline) {
				return a, "dnsmasq lease", err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	a, err := netip.ParseAddr(n.IP)
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("%s: %s has no valid ip (%q)", IndexFile, n.Name, n.IP)
	}
	return a, IndexFile, nil
}

// check fails unless r comes from n's expected address.
func (b binder) check(r *http.Request, idx *Index, n Node) error {
	want, from, err := b.expected(idx, n)
	if err != nil {
		return err
	}
	got, err := remoteAddr(r)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("request from %s: %s installs from %s (%s)", got, n.Name, want, from)
	}
	return nil
}

// remoteAddr is the peer address of r. X-Forwarded-For and friends are
// ignored on purpose: hl metal serve is reached directly, never through a
// proxy that could vouch for anyone.
func remoteAddr(r *http.Request) (netip.Addr, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("peer address %q: %w", r.RemoteAddr, err)
	}
	return a.Unmap().WithZone(""), nil
}

var errNoLease = errors.New("no DHCP lease")

// leaseOf reads dnsmasq's lease file ("<expiry> <mac> <ip> <name>
// <client-id>" per line, expiry 0 for infinite; DHCPv6 lines differ and
// are skipped) and returns mac's current IPv4 lease.
func leaseOf(path, mac string, now time.Time) (netip.Addr, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return netip.Addr{}, fmt.Errorf("%w for %s: %s does not exist yet", errNoLease, mac, path)
	}
	if err != nil {
		return netip.Addr{}, err
	}
	var found netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		m, err := NormaliseMAC(f[1])
		if err != nil || m != mac {
			continue
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || (exp != 0 && !now.Before(time.Unix(exp, 0))) {
			continue
		}
		if a, err := netip.ParseAddr(f[2]); err == nil && a.Is4() {
			found = a
		}
	}
	if !found.IsValid() {
		return netip.Addr{}, fmt.Errorf("%w for %s in %s", errNoLease, mac, path)
	}
	return found, nil
}
