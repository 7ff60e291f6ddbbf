package chaos

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Kind is one fault the proxy injects.
type Kind string

// The faults. A request the proxy faults gets exactly one of them.
const (
	// Reset closes the connection before the request reaches the server:
	// nothing happened there.
	Reset Kind = "reset"
	// Drop lets the server handle the request and then closes the
	// connection: the server did it, the client never hears.
	Drop Kind = "drop"
	// Delay holds the request up to Faults.MaxDelay before passing it on.
	Delay Kind = "delay"
	// Status answers 500, 502 or 503 (with a Go panic's stack trace as
	// the body) without passing the request on.
	Status Kind = "5xx"
	// Truncate passes the request on and cuts the answer's body short.
	Truncate Kind = "truncate"
	// Cut passes the request on and runs the fault's Then Delay after its
	// body has been sent, holding the server's answer back until Then has
	// run, so the client never hears it however fast the server is: Then
	// kills the client (Runner.KillOn), its connection closes, and the
	// server's request is cancelled midway if it is still working on it (a
	// push cut short) or has done it unheard. Only by Rule; the seeded
	// faults never draw it.
	Cut Kind = "cut"
	// Lost passes the request on, throws the server's answer away, runs
	// the fault's Then (which kills the server) and hangs up: the server
	// did the work and died before the client heard. Only by Rule.
	Lost Kind = "lost"
	// Rewrite passes the request on and the answer's body through the
	// fault's Rewrite: a server state that cannot be had on demand, played
	// for a test that names it as its seam. Only by Rule.
	Rewrite Kind = "rewrite"
)

// AllKinds are the faults a Faults without Kinds draws from.
var AllKinds = []Kind{Reset, Drop, Delay, Status, Truncate}

// Faults say how often and how the proxy fails requests. The zero value
// injects nothing.
type Faults struct {
	Seed uint64
	// Rate is the probability that a request is faulted (0..1).
	Rate float64
	// Kinds to draw from (default AllKinds).
	Kinds []Kind
	// MaxDelay bounds Delay (default 2s).
	MaxDelay time.Duration
	// Match, when set, limits faults to the requests it accepts (e.g.
	// the API, not the git pushes).
	Match func(*http.Request) bool
}

// Fault is one fault decided for one request; Rule returns it.
type Fault struct {
	Kind Kind
	// Code and Body of a Status fault (default: 500 and PanicBody).
	Code int
	Body string
	// Delay of a Delay fault.
	Delay time.Duration
	// Rewrite edits the body of a Rewrite fault's answer.
	Rewrite func([]byte) []byte
	// Then, when set, runs once the fault is done: for Drop after the
	// server answered, so a test can kill the client in the window where
	// the server did the work and the client never heard (Runner.KillOn).
	Then func()
}

// Event is a request the proxy saw and what it did to it.
type Event struct {
	Method, Path string
	Fault        Kind // "" when passed on untouched
}

func (e Event) String() string {
	if e.Fault == "" {
		return e.Method + " " + e.Path
	}
	return e.Method + " " + e.Path + " [" + string(e.Fault) + "]"
}

// PanicBody is what a Go server's recovery answers with: a hundred lines
// of stack trace, the body no user should see.
var PanicBody = "PANIC: runtime error: invalid memory address or nil pointer dereference\n\n" +
	strings.Repeat("goroutine 117 [running]:\ncode.gitea.io/gitea/modules/git.(*Repository).GetBranchCommit(0x0, {0xc0012a, 0x4})\n\t/go/pkg/mod/code.gitea.io/gitea/modules/git/repo_branch.go:52 +0x3a\n", 34)

// Proxy is a reverse proxy in front of one HTTP server that faults
// requests at a seeded rate (Faults) or by rule (Rule). It listens on
// loopback; URL is its base.
type Proxy struct {
	URL string

	srv    *http.Server
	ln     net.Listener
	target *url.URL
	rp     *httputil.ReverseProxy

	mu     sync.Mutex
	faults Faults
	rng    *rand.Rand
	rule   func(*http.Request) *Fault
	events []Event
}

// NewProxy starts a proxy in front of target (a base URL).
func NewProxy(target string, f Faults) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("chaos proxy: target %q is not a URL", target)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("chaos proxy: %w", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), ln: ln, target: u}
	p.rp = httputil.NewSingleHostReverseProxy(u)
	// Never through the machine's HTTP proxy: the target is on loopback.
	p.rp.Transport = &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	// A reset upstream is the chaos working, not news.
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	p.rp.FlushInterval = -1 // git's streamed answers pass as they come
	p.SetFaults(f)
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// TrustUpstream makes the proxy reach an HTTPS target whose certificate
// the PEM certificates sign (the API server's own CA), while clients talk
// plain HTTP to the proxy. Call it before the first request.
func (p *Proxy) TrustUpstream(caPEM []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("chaos proxy: no certificate in the CA given")
	}
	p.rp.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return nil
}

// DialFrom makes the proxy connect to its target from ip (a loopback
// alias such as 127.0.0.11), for a server that tells clients apart by
// their address: the proxy stands in for the client at that address.
// Call it before the first request.
func (p *Proxy) DialFrom(ip string) error {
	addr := net.ParseIP(ip)
	if addr == nil {
		return fmt.Errorf("chaos proxy: %q is not an IP address", ip)
	}
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: addr}}
	p.rp.Transport.(*http.Transport).DialContext = d.DialContext
	return nil
}

// SetFaults replaces the faults (and reseeds); Faults{} stops the chaos.
func (p *Proxy) SetFaults(f Faults) {
	if f.MaxDelay <= 0 {
		f.MaxDelay = 2 * time.Second
	}
	if len(f.Kinds) == 0 {
		f.Kinds = AllKinds
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
	p.rng = rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15))
}

// Rule sets a function that picks the fault of each request (nil: pass
// on); it takes precedence over the seeded faults. Rule(nil) removes it.
func (p *Proxy) Rule(rule func(*http.Request) *Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rule = rule
}

// Events returns the requests seen so far.
func (p *Proxy) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Event(nil), p.events...)
}

// Faulted returns the requests that were faulted.
func (p *Proxy) Faulted() []Event {
	var out []Event
	for _, e := range p.Events() {
		if e.Fault != "" {
			out = append(out, e)
		}
	}
	return out
}

// Close stops the proxy.
func (p *Proxy) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		return p.srv.Close()
	}
	return nil
}

// decide picks the fault of one request under the lock, so a seed gives
// the same sequence of decisions for the same sequence of requests.
func (p *Proxy) decide(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	var f *Fault
	if p.rule != nil {
		f = p.rule(r)
	} else if p.faults.Rate > 0 && (p.faults.Match == nil || p.faults.Match(r)) && p.rng.Float64() < p.faults.Rate {
		f = &Fault{Kind: p.faults.Kinds[p.rng.IntN(len(p.faults.Kinds))]}
		switch f.Kind {
		case Delay:
			f.Delay = time.Duration(p.rng.Int64N(int64(p.faults.MaxDelay)))
		case Status:
			f.Code = []int{500, 502, 503}[p.rng.IntN(3)]
		}
	}
	e := Event{Method: r.Method, Path: r.URL.Path}
	if f != nil {
		e.Fault = f.Kind
	}
	p.events = append(p.events, e)
	return f
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.decide(r)
	if f == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	defer func() {
		if f.Then != nil {
			f.Then()
		}
	}()
	switch f.Kind {
	case Reset:
		hangUp(w)
	case Drop:
		p.rp.ServeHTTP(discard{h: http.Header{}}, r)
		if f.Then != nil {
			// Then kills the client: hold the connection until it is
			// gone, so it never sees an answer or a hang-up to act on.
			f.Then()
			f.Then = nil
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		}
		hangUp(w)
	case Lost:
		p.rp.ServeHTTP(discard{h: http.Header{}}, r)
		if f.Then != nil {
			f.Then()
			f.Then = nil
		}
		hangUp(w)
	case Delay:
		select {
		case <-r.Context().Done():
			return
		case <-time.After(f.Delay):
		}
		p.rp.ServeHTTP(w, r)
	case Status:
		code, body := f.Code, f.Body
		if code == 0 {
			code = http.StatusInternalServerError
		}
		if body == "" {
			body = PanicBody
		}
		// Drain what the client sends (a git push's pack) so it reads the
		// answer instead of a broken pipe.
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	case Truncate:
		p.rp.ServeHTTP(&truncating{ResponseWriter: w}, r)
		hangUp(w)
	case Rewrite:
		rec := httptest.NewRecorder()
		p.rp.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if f.Rewrite != nil {
			body = f.Rewrite(body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	case Cut:
		if then := f.Then; then != nil {
			f.Then = nil
			var once sync.Once
			d := f.Delay
			fired := make(chan struct{})
			r.Body = &onEOF{ReadCloser: r.Body, fn: func() {
				once.Do(func() { time.AfterFunc(d, func() { then(); close(fired) }) })
			}}
			w = &held{ResponseWriter: w, until: fired, ctx: r.Context()}
		}
		p.rp.ServeHTTP(w, r)
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// hangUp closes the client's connection without (more of) an answer.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// onEOF calls fn when the body has been read to its end.
type onEOF struct {
	io.ReadCloser
	fn func()
}

func (o *onEOF) Read(b []byte) (int, error) {
	n, err := o.ReadCloser.Read(b)
	if err == io.EOF {
		o.fn()
	}
	return n, err
}

// held is a ResponseWriter that passes nothing on until until is closed
// (or the client has gone).
type held struct {
	http.ResponseWriter
	until <-chan struct{}
	ctx   context.Context
}

func (h *held) wait() {
	select {
	case <-h.until:
	case <-h.ctx.Done():
	}
}

func (h *held) WriteHeader(code int) { h.wait(); h.ResponseWriter.WriteHeader(code) }

func (h *held) Write(b []byte) (int, error) { h.wait(); return h.ResponseWriter.Write(b) }

func (h *held) Flush() {
	h.wait()
	if fl, ok := h.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

// discard is a ResponseWriter that throws the answer away.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// truncating passes on the headers (with the full Content-Length) and
// half of the first chunk of the body, then swallows the rest, so the
// client reads a body cut short.
type truncating struct {
	http.ResponseWriter
	wrote bool
}

func (t *truncating) Write(b []byte) (int, error) {
	if t.wrote {
		return len(b), nil
	}
	t.wrote = true
	if _, err := t.ResponseWriter.Write(b[:len(b)/2]); err != nil {
		return 0, err
	}
	if fl, ok := t.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	return len(b), nil
}

// KillAfter kills a server mid-journey: once the proxy has seen n
// requests it calls kill, waits a second and calls restart (the server
// started again on its data). Call the returned func when the journey is
// over: it ends the watch if the kill never came, and says whether it
// came and what restart returned.
func (p *Proxy) KillAfter(n int, kill func(), restart func() error) func() (killed bool, err error) {
	done := make(chan struct{})
	type result struct {
		killed bool
		err    error
	}
	out := make(chan result, 1)
	go func() {
		for len(p.Events()) < n {
			select {
			case <-done:
				out <- result{}
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		kill()
		time.Sleep(time.Second)
		out <- result{true, restart()}
	}()
	return func() (bool, error) {
		close(done)
		r := <-out
		return r.killed, r.err
	}
}
