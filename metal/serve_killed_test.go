package metal

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hl.dev/hl/internal/chaos"
	"hl.dev/hl/internal/testharness"
)

// servedProcess is `hl metal serve` run as the PXE host runs it (HTTP
// only: dnsmasq is not what is killed here), on a loopback port.
type servedProcess struct {
	bin, dir, state, listen string
	cmd                     *exec.Cmd
	out                     testharness.SyncBuffer
}

// newServedProcess is hl metal serve ready to start on a free loopback
// port, serving the loopback copy of the e2e-full repo, with the secrets
// it will serve.
func newServedProcess(t *testing.T) (*servedProcess, *Secrets) {
	t.Helper()
	port, err := testharness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &servedProcess{
		bin:    chaos.Binary(t, "hl.dev/hl/cmd/hl"),
		dir:    loopbackRepo(t),
		state:  filepath.Join(t.TempDir(), "state", "state.json"),
		listen: "127.0.0.1:" + strconv.Itoa(port),
	}
	sec, err := LoadSecrets(p.dir, testIdentities(t))
	if err != nil {
		t.Fatal(err)
	}
	return p, sec
}

func (p *servedProcess) start(t *testing.T) {
	t.Helper()
	if err := p.run(); err != nil {
		t.Fatal(err)
	}
}

// run starts the process and waits for its /healthz (usable off the
// test's goroutine).
func (p *servedProcess) run() error {
	cmd := exec.Command(p.bin, "metal", "serve", "--dir", p.dir, "--state", p.state, "--listen", p.listen,
		"--dhcp", "off", "--cache", filepath.Join(filepath.Dir(p.state), "cache"),
		"--age-key", filepath.Join(repoRoot, "testdata", "age", "test-key.txt"))
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + p.listen + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			p.kill()
			return fmt.Errorf("hl metal serve did not answer /healthz: %v\n%s", err, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs the server's process group: no shutdown code runs.
func (p *servedProcess) kill() {
	if p.cmd == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// hl metal serve SIGKILLed as a process and started again before every
// step of an install chain (boot script, install config, post-install,
// k3s config, callback): the window and the tokens handed out live in the
// state file, so each new process carries on where the installer is; the
// callback closes the window once, and nothing of the chain is served
// again. TestServerRestartedMidInstall does the same in process with a
// test clock; this runs the hl binary as the PXE host does.
func TestServeKilledBeforeEachInstallStep(t *testing.T) {
	p, sec := newServedProcess(t)
	defer p.kill()
	// The request helpers of the in-process tests, aimed at the process.
	ts := &testServer{Server: &httptest.Server{URL: "http://" + p.listen}, dir: p.dir, state: p.state}
	kills := 0
	step := func() {
		t.Helper()
		p.kill()
		p.start(t)
		kills++
	}

	p.start(t)
	code, body := ts.get(t, node1Addr, node1Path)
	if code != 200 {
		t.Fatalf("boot script: %d %s", code, body)
	}
	preseedTok := match(t, bootTokenRE, "install config", body)
	step()
	code, body = ts.get(t, node1Addr, "/t/"+preseedTok+"/nodes/node1/preseed.cfg")
	if code != 200 {
		t.Fatalf("install config after a kill: %d %s\n%s", code, body, p.out.String())
	}
	postTok := match(t, preseedTokenRE, "post-install", body)
	step()
	code, body = ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/post-install.sh", postTok, nil)
	if code != 200 {
		t.Fatalf("post-install after a kill: %d %s", code, body)
	}
	k3sTok := match(t, k3sTokenRE, "k3s config", body)
	callbackTok := match(t, callbackTokenRE, "callback", body)
	step()
	code, body = ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/"+k3sConfigFile, k3sTok, nil)
	if code != 200 || !strings.Contains(body, sec.K3sToken) {
		t.Fatalf("k3s config after a kill: %d", code)
	}
	step()
	if code, body := ts.callback(t, node1Addr, node1MAC, callbackTok, hostKey); code != 200 {
		t.Fatalf("callback after a kill: %d %s", code, body)
	}
	if ns := ts.nodeState(t, node1MAC); ns.Window != nil || ns.Status != StatusInstalled {
		t.Errorf("after the callback: window %+v, status %s", ns.Window, ns.Status)
	}
	step()
	// Served once, in one window: nothing of the chain again, from a new
	// process either.
	if code, _ := ts.get(t, node1Addr, "/t/"+preseedTok+"/nodes/node1/preseed.cfg"); code == 200 {
		t.Error("the install config was served again after the install")
	}
	if code, _ := ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/"+k3sConfigFile, k3sTok, nil); code == 200 {
		t.Error("the k3s config was served again after the install")
	}
	// The callback's token, tried against the new run: taken once as the
	// retry of an answer that may have died with the killed run (within
	// ReplayGrace), changing nothing — not even with another host key —
	// and refused after that.
	if code, body := ts.callback(t, node1Addr, node1MAC, callbackTok, evilKey); code != 200 || !strings.Contains(body, "recorded before") {
		t.Errorf("the callback's retry against a new run: %d %s", code, body)
	}
	if code, _ := ts.callback(t, node1Addr, node1MAC, callbackTok, evilKey); code == 200 {
		t.Error("a second callback was accepted by the same run")
	}
	if ns := ts.nodeState(t, node1MAC); ns.HostKey != hostKey || ns.Installs != 1 {
		t.Errorf("a retried callback changed the node: host key %q, installs %d", ns.HostKey, ns.Installs)
	}
	if code, body := ts.get(t, node1Addr, node1Path); code != 200 || strings.Contains(body, "preseed") {
		t.Errorf("an installed node's boot script: %d, it offers the installer again:\n%s", code, body)
	}
	t.Logf("hl metal serve SIGKILLed %d times across the chain", kills)
	if strings.Contains(p.out.String(), sec.K3sToken) {
		t.Error("hl metal serve printed the k3s token")
	}
}
