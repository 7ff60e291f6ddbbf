package metal

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hl.dev/hl/internal/chaos"
)

// hl metal serve SIGKILLed in the middle of a request, after it burnt the
// node's token and before the answer left — a power cut of the machine
// serving the install at the worst moment — at each step of the chain:
// the install config, the post-install script, the k3s config (fetched
// by the rendered post-install's own fetch function, curl with its
// rendered retry flags) and the callback. A proxy in front of the process
// (connecting from the node's address) passes the request on, throws the
// answer away, kills the process and starts it again after a seeded pause,
// then hangs up; the node retries with the same token, as the rendered
// scripts' curl does. Each retry is taken by the new run (the token was
// burnt by the run that died), a second retry against that run is not,
// the callback's retry hears the install is recorded, and the install
// ends exactly once: window closed, one install counted, the host key
// pinned, nothing of the chain served afterwards.
//
// Seams: the installer's own fetches (d-i's preseed fetch, the late
// command's curl, the callback's curl) are the test's HTTP client retrying
// as curl --retry-all-errors does; only the k3s config's fetch runs the
// rendered shell. The QEMU install (TestE2EPXE) runs all of them for real,
// without kills.
func TestServeKilledMidAnswer(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("the test runs the rendered fetch function, which needs curl: %v", err)
	}
	chaos.ForEach(t, []uint64{1}, func(t *testing.T, seed uint64) {
		p, sec := newServedProcess(t)
		defer p.kill()
		p.start(t)
		proxy, err := chaos.NewProxy("http://"+p.listen, chaos.Faults{})
		if err != nil {
			t.Fatal(err)
		}
		defer proxy.Close()
		if err := proxy.DialFrom(node1Addr); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var restartErr error
		kills := 0
		// lose arms the proxy: the next request whose path holds step is
		// handled, the process killed before its answer leaves and
		// started again after a seeded pause.
		lose := func(step string) {
			var once sync.Once
			pause := chaos.Moment(seed*31+uint64(len(step)), 0, 1500*time.Millisecond)
			proxy.Rule(func(r *http.Request) *chaos.Fault {
				if !strings.Contains(r.URL.Path, step) {
					return nil
				}
				var f *chaos.Fault
				once.Do(func() {
					f = &chaos.Fault{Kind: chaos.Lost, Then: func() {
						p.kill()
						time.Sleep(pause)
						err := p.run()
						mu.Lock()
						kills++
						if err != nil && restartErr == nil {
							restartErr = err
						}
						mu.Unlock()
					}}
				})
				return f
			})
		}
		ts := &testServer{Server: &httptest.Server{URL: proxy.URL}, dir: p.dir, state: p.state}

		code, body := ts.get(t, node1Addr, node1Path)
		if code != 200 {
			t.Fatalf("boot script: %d %s", code, body)
		}
		preseedTok := match(t, bootTokenRE, "install config", body)
		preseedPath := "/t/" + preseedTok + "/nodes/node1/preseed.cfg"

		lose("preseed.cfg")
		code, body, tries := retryLikeCurl(t, http.MethodGet, proxy.URL+preseedPath, "", nil)
		if code != 200 {
			t.Fatalf("install config, retried after the kill: %d %s", code, body)
		}
		t.Logf("install config: %d tries", tries)
		postTok := match(t, preseedTokenRE, "post-install", body)
		if code, _ := ts.get(t, node1Addr, preseedPath); code == 200 {
			t.Error("the install config's token was taken a second time by the same run")
		}

		lose("post-install.sh")
		code, post, tries := retryLikeCurl(t, http.MethodGet, proxy.URL+"/nodes/node1/post-install.sh", postTok, nil)
		if code != 200 {
			t.Fatalf("post-install, retried after the kill: %d %s", code, post)
		}
		t.Logf("post-install: %d tries", tries)
		k3sTok := match(t, k3sTokenRE, "k3s config", post)
		callbackTok := match(t, callbackTokenRE, "callback", post)

		// The k3s config through the rendered script's fetch function.
		lose(k3sConfigFile)
		out := filepath.Join(t.TempDir(), "k3s.yaml")
		sh := renderedFetch(t, post) + "\nfetch \"$1\" \"$2\" \"$3\"\n"
		cmd := exec.Command("sh", "-c", sh, "fetch", k3sTok, k3sConfigFile, out)
		cmd.Env = []string{"HL_URL=" + proxy.URL, "NODE=node1", "PATH=" + filepath.Dir(curl) + ":/usr/bin:/bin", "HOME=" + t.TempDir()}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the rendered fetch of the k3s config after the kill: %v\n%s", err, b)
		}
		k3s, err := os.ReadFile(out)
		if err != nil || !strings.Contains(string(k3s), sec.K3sToken) {
			t.Fatalf("the k3s config fetched after the kill lacks the join token (%v)", err)
		}

		lose("/callback/")
		code, body, tries = retryLikeCurl(t, http.MethodPost, proxy.URL+"/callback/"+node1MAC, callbackTok, url.Values{"hostKey": {hostKey}})
		if code != 200 {
			t.Fatalf("callback, retried after the kill: %d %s", code, body)
		}
		t.Logf("callback: %d tries: %s", tries, strings.TrimSpace(body))
		proxy.Rule(nil)

		mu.Lock()
		if restartErr != nil {
			t.Fatal(restartErr)
		}
		if kills != 4 {
			t.Errorf("%d kills, want one per step (4)", kills)
		}
		mu.Unlock()
		ns := ts.nodeState(t, node1MAC)
		if ns.Window != nil || ns.Status != StatusInstalled || ns.Installs != 1 || ns.HostKey != hostKey {
			t.Errorf("after the chain: window %+v, status %s, installs %d, host key %q", ns.Window, ns.Status, ns.Installs, ns.HostKey)
		}
		if code, _ := ts.do(t, node1Addr, http.MethodGet, "/nodes/node1/"+k3sConfigFile, k3sTok, nil); code == 200 {
			t.Error("the k3s config was served again after the install")
		}
		if code, body := ts.get(t, node1Addr, node1Path); code != 200 || strings.Contains(body, "preseed") {
			t.Errorf("an installed node's boot script: %d, it offers the installer again:\n%s", code, body)
		}
		if strings.Contains(p.out.String(), sec.K3sToken) {
			t.Error("hl metal serve printed the k3s token")
		}
	})
}

// retryLikeCurl sends a request as the node's curl --retry-all-errors
// does: again on any error or non-2xx answer, a moment apart, with the
// same token; it returns the last answer and the number of tries.
func retryLikeCurl(t *testing.T, method, u, token string, form url.Values) (int, string, int) {
	t.Helper()
	var code int
	var body string
	for try := 1; ; try++ {
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(nodeRequest(t, method, u, token, form))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
			if code/100 == 2 {
				return code, body, try
			}
		} else {
			code, body = 0, err.Error()
		}
		if try == 40 {
			return code, body, try
		}
		time.Sleep(250 * time.Millisecond)
	}
}

var (
	retryLineRE = regexp.MustCompile(`(?m)^RETRY=.*$`)
	fetchFuncRE = regexp.MustCompile(`(?ms)^fetch\(\) \{\n.*?^\}`)
)

// renderedFetch is the rendered post-install's retry flags and fetch
// function, as served.
func renderedFetch(t *testing.T, post string) string {
	t.Helper()
	r, f := retryLineRE.FindString(post), fetchFuncRE.FindString(post)
	if r == "" || f == "" {
		t.Fatalf("no RETRY= line or fetch() function in the served post-install:\n%s", post)
	}
	return r + "\n" + f
}
