//go:build linux

package metal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"hl.dev/hl/internal/testharness"
)

// TestE2EPXE boots QEMU VMs (software emulation, no KVM) from their iPXE
// ROM on a bridge inside network namespaces this test creates, with hl
// metal serve and dnsmasq running the rendered metal/dnsmasq.conf, and
// follows the boot through the server's access log:
//
//	full:  DHCP (dnsmasq, static lease) → /boot.ipxe → /ipxe/<mac>, which
//	       opens node1's first install window because it comes from the
//	       address in dnsmasq's lease file → kernel + initrd → the Debian
//	       installer fetching its preseed with the single-use token from
//	       its kernel command line. The state then shows that token burnt
//	       and the next one (post-install.sh) minted, and a stranger on the
//	       bridge asking for node1's files gets nothing.
//	proxy: a second dnsmasq in another namespace plays the router (with a
//	       reservation for node1's address); hl's dnsmasq adds proxy-DHCP
//	       and TFTP: node1 goes DHCP → /boot.ipxe → /ipxe/<mac> → kernel +
//	       initrd, an unknown MAC gets the refusal script and nothing else,
//	       the router's own address asking for node1 is refused, and TFTP
//	       serves the iPXE binary.
//
// How far the emulated install gets: the installer fetches its preseed
// and then needs the pinned Debian mirror, which is out of reach here, so
// post-install.sh, the k3s config and the callback are never asked for by
// the VM; the server tests walk that part of the chain over loopback.
//
// It needs root and the Debian packages dnsmasq, qemu-system-x86,
// ipxe-qemu, debian-installer-13-netboot-amd64 (the default Debian's
// netboot files) and iproute2; it fails
// (never skips) without them, except under -short. The whole test is
// bounded by HL_E2E_PXE_TIMEOUT (default 290s). Run alone: make e2e-pxe.
func TestE2EPXE(t *testing.T) {
	if testing.Short() {
		t.Skip("QEMU PXE end-to-end test: run without -short (make e2e-pxe)")
	}
	requireE2E(t)
	timeout := 290 * time.Second
	if v := os.Getenv("HL_E2E_PXE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("HL_E2E_PXE_TIMEOUT: %v", err)
		}
		timeout = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// One image cache for both: the pinned Debian netboot files, pulled
	// from the installed package (file:// mirror), checksums verified.
	work := e2eDir(t)
	cache := filepath.Join(work, "cache")
	full := renderedRepo(t, "metal/e2e-full")
	proxy := renderedRepo(t, "metal/e2e-proxy")
	if _, err := Pull(ctx, PullOptions{Dir: full, CacheDir: cache, Mirrors: []Mirror{debianMirror(t, full)}}); err != nil {
		t.Fatal(err)
	}
	// Stand-ins for the iPXE binaries dnsmasq serves over TFTP (the VMs
	// have iPXE in their NIC ROM and never ask for them).
	ipxeDir := filepath.Join(work, "ipxe")
	writeFile(t, filepath.Join(ipxeDir, "undionly.kpxe"), "hl e2e undionly.kpxe\n")
	writeFile(t, filepath.Join(ipxeDir, "ipxe.efi"), "hl e2e ipxe.efi\n")

	t.Run("group", func(t *testing.T) {
		t.Run("proxy", func(t *testing.T) {
			t.Parallel()
			e2eProxy(ctx, t, proxy, cache, ipxeDir)
		})
		t.Run("full", func(t *testing.T) {
			t.Parallel()
			e2eFull(ctx, t, full, cache, ipxeDir)
		})
	})
}

const (
	e2eServer  = "10.99.0.2"
	e2eNode1   = "52:54:00:e2:e0:01"
	e2eUnknown = "52:54:00:e2:e0:99"
	// e2eStranger is another machine on the node network.
	e2eStranger = "10.99.0.77"
)

func e2eFull(ctx context.Context, t *testing.T, repo, cache, ipxeDir string) {
	ns := newNetns(t, "f")
	ns.ip(t, "link", "add", "br0", "type", "bridge")
	ns.ip(t, "addr", "add", e2eServer+"/24", "dev", "br0")
	ns.ip(t, "link", "set", "br0", "up")
	ns.tap(t, "tap0", "br0")
	srv := startE2EServer(ctx, t, ns, repo, cache, ipxeDir)
	log := srv.log
	started := time.Now()
	startVM(t, ns, "tap0", e2eNode1)

	mac := regexp.QuoteMeta(e2eNode1)
	steps := []logStep{
		{"DHCP lease", `dnsmasq .*DHCPACK\(br0\) 10\.99\.0\.11 ` + mac},
		{"boot script", `http 10\.99\.0\.11:\d+ "GET /boot\.ipxe" 200`},
		{"per-MAC script", `http 10\.99\.0\.11:\d+ "GET /ipxe/52-54-00-e2-e0-01" 200 .*action=install`},
		{"kernel", `http 10\.99\.0\.11:\d+ "GET /os/debian/` + debianDefault + `/kernel" 200`},
		{"initrd", `http 10\.99\.0\.11:\d+ "GET /os/debian/` + debianDefault + `/initrd" 200`},
		{"preseed with its token", `http 10\.99\.0\.11:\d+ "GET /t/-/nodes/node1/preseed\.cfg" 200`},
	}
	waitSteps(ctx, t, log, steps, started)

	// The window as the installer left it: opened by its first boot, the
	// preseed token burnt, a post-install token minted, nothing released.
	st, err := StateFile{Path: filepath.Join(srv.work, "state.json")}.Load()
	if err != nil {
		t.Fatal(err)
	}
	ns1 := st.Node(e2eNode1, "node1")
	if w := ns1.Window; w == nil || w.Opened != OpenedFirstBoot || w.Tokens["preseed.cfg"] != "" || w.Tokens["post-install.sh"] == "" || len(w.Released) != 0 {
		t.Errorf("node1's window after the preseed fetch: %+v", ns1.Window)
	}
	if a, err := leaseOf(leaseFilePath(srv.work), e2eNode1, time.Now()); err != nil || a.String() != "10.99.0.11" {
		t.Errorf("dnsmasq's lease for node1: %v %v", a, err)
	}
	// A stranger on the bridge gets nothing of node1's.
	ns.ip(t, "addr", "add", e2eStranger+"/24", "dev", "br0")
	sec, err := LoadSecrets(repo, testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/ipxe/52-54-00-e2-e0-01", "/nodes/node1/post-install.sh", "/nodes/node1/k3s-config.yaml", "/nodes/node1/preseed.cfg"} {
		code, body, err := httpGetFrom(ns, e2eStranger, "http://"+e2eServer+":8080"+path)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", path, e2eStranger, err)
		}
		if strings.Contains(body, "kernel ") || (strings.HasPrefix(path, "/nodes/") && code == 200) || strings.Contains(body, sec.K3sToken) || strings.Contains(body, sec.K3sAgentToken) {
			t.Errorf("GET %s from %s: %d\n%s", path, e2eStranger, code, body)
		}
	}
	if !regexp.MustCompile(`http ` + regexp.QuoteMeta(e2eStranger) + `:\d+ "GET /ipxe/52-54-00-e2-e0-01" 200 .*action=refused`).MatchString(log.String()) {
		t.Errorf("the stranger's boot request was not refused:\n%s", tail(log.String(), 20))
	}
}

func e2eProxy(ctx context.Context, t *testing.T, repo, cache, ipxeDir string) {
	ns := newNetns(t, "p")
	router := newNetns(t, "r")
	ns.ip(t, "link", "add", "br0", "type", "bridge")
	ns.ip(t, "addr", "add", e2eServer+"/24", "dev", "br0")
	ns.ip(t, "link", "set", "br0", "up")
	ns.tap(t, "tap0", "br0")
	ns.tap(t, "tap1", "br0")
	ns.ip(t, "link", "add", "p0", "type", "veth", "peer", "name", "r0", "netns", router.name)
	ns.ip(t, "link", "set", "p0", "master", "br0")
	ns.ip(t, "link", "set", "p0", "up")
	router.ip(t, "addr", "add", "10.99.0.1/24", "dev", "r0")
	router.ip(t, "link", "set", "r0", "up")

	// The "home router": plain DHCP, knows nothing about PXE.
	rdir := e2eDir(t)
	routerLog := &testharness.SyncBuffer{}
	rcmd := exec.Command("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--log-facility=-",
		"--interface=r0", "--bind-interfaces", "--dhcp-authoritative", "--dhcp-range=10.99.0.100,10.99.0.150,255.255.255.0,10m",
		// The reservation proxy mode needs: node1 gets its nodes.yaml address.
		"--dhcp-host="+e2eNode1+",10.99.0.11",
		"--dhcp-option=option:router,10.99.0.1", "--dhcp-leasefile="+filepath.Join(rdir, "leases"), "--pid-file="+filepath.Join(rdir, "pid"))
	rcmd.Stdout, rcmd.Stderr = routerLog, routerLog
	if err := router.do(rcmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rcmd.Process.Kill(); _ = rcmd.Wait() })

	log := startE2EServer(ctx, t, ns, repo, cache, ipxeDir).log

	// TFTP from the router's side of the bridge: dnsmasq serves the iPXE
	// binary named in the rendered config.
	var got []byte
	if err := router.do(func() (err error) { got, err = tftpGet(e2eServer, "undionly.kpxe"); return err }); err != nil {
		t.Errorf("TFTP undionly.kpxe: %v\n%s", err, log.String())
	} else if string(got) != "hl e2e undionly.kpxe\n" {
		t.Errorf("TFTP returned %q", got)
	}

	started := time.Now()
	startVM(t, ns, "tap1", e2eUnknown)
	known := startVM(t, ns, "tap0", e2eNode1)

	unknown := waitSteps(ctx, t, log, []logStep{
		{"unknown MAC refused", `http (10\.99\.0\.\d+):\d+ "GET /ipxe/52-54-00-e2-e0-99" 200 .*action=unknown`},
	}, started)
	steps := []logStep{
		{"proxy DHCP", `dnsmasq .*PXE\(br0\) (?:[0-9.]+ )?` + regexp.QuoteMeta(e2eNode1) + ` proxy`},
		{"boot script", `http (10\.99\.0\.11):\d+ "GET /boot\.ipxe" 200`},
		{"per-MAC script", `http (10\.99\.0\.11):\d+ "GET /ipxe/52-54-00-e2-e0-01" 200 .*action=install`},
		{"kernel", `http (10\.99\.0\.11):\d+ "GET /os/debian/` + debianDefault + `/kernel" 200`},
		{"initrd", `http (10\.99\.0\.11):\d+ "GET /os/debian/` + debianDefault + `/initrd" 200`},
	}
	waitSteps(ctx, t, log, steps, started)
	known.stop()
	// The router's address is not node1's: no install script, no token.
	code, body, err := httpGetFrom(router, "", "http://"+e2eServer+":8080/ipxe/52-54-00-e2-e0-01")
	if err != nil || code != 200 || strings.Contains(body, "kernel ") || !strings.Contains(body, "not installing node1") {
		t.Errorf("node1's boot script asked from the router: %d %v\n%s", code, err, body)
	}
	if len(unknown) > 0 && unknown[0] != "" {
		if strings.Contains(log.String(), "http "+unknown[0]+":") && regexp.MustCompile(`http `+regexp.QuoteMeta(unknown[0])+`:\d+ "GET /(os|nodes)/`).MatchString(log.String()) {
			t.Errorf("the unknown machine (%s) got install files:\n%s", unknown[0], log.String())
		}
	}
	if !strings.Contains(routerLog.String(), "DHCPACK(r0)") {
		t.Errorf("the router handed out no lease:\n%s", routerLog.String())
	}
}

// logStep is an access log line the boot must produce, in order.
type logStep struct {
	what string
	re   string
}

// waitSteps waits until every step's line is in the log, each after the
// previous one, and returns the first submatch of the last step.
func waitSteps(ctx context.Context, t *testing.T, log *testharness.SyncBuffer, steps []logStep, started time.Time) []string {
	t.Helper()
	res := make([]*regexp.Regexp, len(steps))
	for i, s := range steps {
		res[i] = regexp.MustCompile(s.re)
	}
	reported := 0
	for {
		lines := strings.Split(log.String(), "\n")
		pos, matched := 0, 0
		var sub []string
		for i, re := range res {
			found := false
			for ; pos < len(lines); pos++ {
				if m := re.FindStringSubmatch(lines[pos]); m != nil {
					found, sub = true, m[1:]
					break
				}
			}
			if !found {
				break
			}
			matched = i + 1
		}
		for ; reported < matched; reported++ {
			t.Logf("%s after %s", steps[reported].what, time.Since(started).Round(time.Second))
		}
		if matched == len(steps) {
			return sub
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %s: no %q in the access log (%s):\n%s", time.Since(started).Round(time.Second), steps[matched].what, steps[matched].re, tail(log.String(), 60))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// e2eServe is a running hl metal serve of the end-to-end test.
type e2eServe struct {
	log  *testharness.SyncBuffer
	work string // state, dnsmasq's lease file
}

func startE2EServer(ctx context.Context, t *testing.T, ns *netns, repo, cache, ipxeDir string) e2eServe {
	t.Helper()
	work := e2eDir(t)
	log := &testharness.SyncBuffer{}
	srv, err := NewServer(ServeOptions{
		Dir: repo, Listen: e2eServer + ":8080", StateFile: filepath.Join(work, "state.json"), CacheDir: cache,
		Identities: testIdentities(t), AccessLog: log,
		Dnsmasq: &DnsmasqOptions{IPXEDir: ipxeDir, Interface: "br0", WorkDir: work},
	})
	if err != nil {
		t.Fatal(err)
	}
	// The listener and the dnsmasq child are created inside the namespace.
	if err := ns.do(func() error { return srv.Start(ctx) }); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("access log:\n%s", tail(log.String(), 120))
		}
	})
	return e2eServe{log: log, work: work}
}

// httpGetFrom sends one GET from inside ns, from the local address (the
// namespace's default when ""). It dials on this goroutine's thread: an
// http.Transport would dial on another thread, outside the namespace.
func httpGetFrom(ns *netns, local, rawURL string) (int, string, error) {
	var code int
	var body string
	err := ns.do(func() error {
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		req.Close = true
		d := net.Dialer{Timeout: 10 * time.Second}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		c, err := d.Dial("tcp", req.URL.Host)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := req.Write(c); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		code, body = resp.StatusCode, string(b)
		return err
	})
	return code, body, err
}

type vm struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (v *vm) stop() {
	_ = v.cmd.Process.Kill()
	<-v.done
}

func startVM(t *testing.T, ns *netns, tap, mac string) *vm {
	t.Helper()
	serial := filepath.Join(e2eDir(t), "serial.log")
	cmd := exec.Command("qemu-system-x86_64",
		"-machine", "pc,accel=tcg", "-m", "1024", "-smp", "1",
		"-display", "none", "-monitor", "none", "-serial", "file:"+serial,
		"-netdev", "tap,id=n0,ifname="+tap+",script=no,downscript=no",
		"-device", "e1000,netdev=n0,mac="+mac,
		"-boot", "n", "-no-reboot")
	out := &testharness.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := ns.do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	v := &vm{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		v.stop()
		if t.Failed() {
			t.Logf("qemu %s: %s", mac, out.String())
		}
	})
	return v
}

// netns is a network namespace owned by the test.
type netns struct{ name string }

func newNetns(t *testing.T, suffix string) *netns {
	t.Helper()
	n := &netns{name: fmt.Sprintf("hl-e2e-%d-%s", os.Getpid(), suffix)}
	_ = exec.Command("ip", "netns", "del", n.name).Run() // a leftover of a killed run
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	n.ip(t, "link", "set", "lo", "up")
	return n
}

func (n *netns) ip(t *testing.T, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"-n", n.name}, args...)...)
}

func (n *netns) tap(t *testing.T, name, bridge string) {
	t.Helper()
	n.ip(t, "tuntap", "add", "dev", name, "mode", "tap")
	n.ip(t, "link", "set", name, "master", bridge)
	n.ip(t, "link", "set", name, "up")
}

// do runs fn on an OS thread switched into the namespace: sockets it opens
// and processes it starts live there.
func (n *netns) do(fn func() error) error {
	runtime.LockOSThread()
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + n.name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", n.name, err)
	}
	ferr := fn()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime discards it when this
		// goroutine ends instead of reusing it in the wrong namespace.
		return fmt.Errorf("setns back: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// e2eDir is a temp folder others (dnsmasq runs as nobody) can read.
func e2eDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hl-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// tftpGet reads a file of at most a few blocks over TFTP (RFC 1350).
func tftpGet(server, file string) ([]byte, error) {
	c, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	dst, err := net.ResolveUDPAddr("udp4", net.JoinHostPort(server, "69"))
	if err != nil {
		return nil, err
	}
	rrq := append([]byte{0, 1}, []byte(file+"\x00octet\x00")...)
	if _, err := c.WriteTo(rrq, dst); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	buf := make([]byte, 600)
	for block := uint16(1); ; block++ {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return nil, err
		}
		if n < 4 {
			return nil, io.ErrUnexpectedEOF
		}
		switch binary.BigEndian.Uint16(buf) {
		case 3: // DATA
			if binary.BigEndian.Uint16(buf[2:]) != block {
				return nil, fmt.Errorf("block %d out of order", binary.BigEndian.Uint16(buf[2:]))
			}
			out.Write(buf[4:n])
			ack := []byte{0, 4, buf[2], buf[3]}
			if _, err := c.WriteTo(ack, from); err != nil {
				return nil, err
			}
			if n-4 < 512 {
				return out.Bytes(), nil
			}
		case 5: // ERROR
			return nil, fmt.Errorf("TFTP error %d: %s", binary.BigEndian.Uint16(buf[2:]), bytes.TrimRight(buf[4:n], "\x00"))
		default:
			return nil, fmt.Errorf("unexpected TFTP opcode %d", binary.BigEndian.Uint16(buf))
		}
	}
}

// requireE2E fails, naming the Debian package, when something the test
// needs is missing.
func requireE2E(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("TestE2EPXE needs root (network namespaces, tap devices); CI runs as root. Use -short to leave it out.")
	}
	var missing []string
	for _, c := range []struct{ path, pkg string }{
		{"dnsmasq", "dnsmasq"},
		{"qemu-system-x86_64", "qemu-system-x86"},
		{"ip", "iproute2"},
		{"/usr/lib/ipxe/qemu/efi-e1000.rom", "ipxe-qemu"},
		{filepath.Join(debianNetbootDir(debianDefault), "linux"), debianNetbootPackage(debianDefault)},
		{"/dev/net/tun", "(kernel tun device)"},
	} {
		var err error
		if strings.HasPrefix(c.path, "/") {
			_, err = os.Stat(c.path)
		} else {
			_, err = exec.LookPath(c.path)
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", c.path, c.pkg))
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing: %s\napt-get install dnsmasq qemu-system-x86 ipxe-qemu %s iproute2", strings.Join(missing, ", "), debianNetbootPackage(debianDefault))
	}
}
