package forgehttp_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hl.dev/hl/internal/forgehttp"
)

// panicBody is what a Go server's recovery answers: a stack trace.
var panicBody = "PANIC: runtime error: invalid memory address or nil pointer dereference\n" +
	strings.Repeat("goroutine 1 [running]:\ncode.gitea.io/gitea/routers/api/v1/repo.GetBranch(...)\n\t/src/routers/api/v1/repo/branch.go:42 +0x1d\n", 40)

type answer struct {
	status int
	body   string
	reset  bool // close the connection without an answer
}

func TestTransport(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		answers []answer // in turn; the last repeats
		// want: final status, attempts made, message substrings, and
		// whether the body was replaced (so the panic never passes).
		status   int
		attempts int64
		message  []string
		replaced bool
	}{
		{name: "persistent 500 on a read is retried, then one line", method: "GET",
			answers: []answer{{status: 500, body: panicBody}},
			status:  500, attempts: 3, replaced: true,
			message: []string{"GET /api/v1/repos/o/r/branches/main: HTTP 500 Internal Server Error after 3 attempts", "debug log"}},
		{name: "one 500 on a read is absorbed", method: "GET",
			answers: []answer{{status: 500, body: panicBody}, {status: 200, body: `{"name":"main"}`}},
			status:  200, attempts: 2},
		{name: "a reset connection on a read is retried", method: "GET",
			answers: []answer{{reset: true}, {status: 200, body: `{"name":"main"}`}},
			status:  200, attempts: 2},
		{name: "a create is not sent twice", method: "POST",
			answers: []answer{{status: 500, body: panicBody}},
			status:  500, attempts: 1, replaced: true,
			message: []string{"POST /api/v1/repos/o/r/branches/main: HTTP 500 Internal Server Error (the full"}},
		{name: "a server's short message is kept in the line", method: "GET",
			answers: []answer{{status: 502, body: `{"message":"Server Error"}`}},
			status:  502, attempts: 3, replaced: true,
			message: []string{"GET /api/v1/repos/o/r/branches/main: HTTP 502 Bad Gateway after 3 attempts: Server Error"}},
		{name: "a client error's short message passes as is", method: "GET",
			answers: []answer{{status: 404, body: `{"message":"repository does not exist"}`}},
			status:  404, attempts: 1,
			message: []string{"repository does not exist"}},
		{name: "an HTML client error becomes one line", method: "GET",
			answers: []answer{{status: 404, body: "<html>\n<body>not here</body>\n</html>"}},
			status:  404, attempts: 1, replaced: true,
			message: []string{"GET /api/v1/repos/o/r/branches/main: HTTP 404 Not Found"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(n.Add(1)) - 1
				a := tc.answers[min(i, len(tc.answers)-1)]
				if a.reset {
					c, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						c.Close()
					}
					return
				}
				w.WriteHeader(a.status)
				io.WriteString(w, a.body)
			}))
			defer srv.Close()
			var log bytes.Buffer
			tr := &forgehttp.Transport{Attempts: 3, Backoff: time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			req, _ := http.NewRequest(tc.method, srv.URL+"/api/v1/repos/o/r/branches/main", strings.NewReader(`{"x":1}`))
			req.Header.Set("Authorization", "token s3cr3t")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if got := n.Load(); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
			var m struct{ Message string }
			if len(tc.message) > 0 {
				if err := json.Unmarshal(body, &m); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if strings.ContainsAny(m.Message, "\n\r") {
					t.Errorf("message has several lines: %q", m.Message)
				}
			}
			for _, want := range tc.message {
				if !strings.Contains(m.Message, want) {
					t.Errorf("message %q lacks %q", m.Message, want)
				}
			}
			if strings.Contains(string(body), "goroutine") {
				t.Errorf("the stack trace reached the caller: %.200s", body)
			}
			if tc.replaced && !strings.Contains(log.String(), "forge answered with an error") {
				t.Errorf("the original answer is not in the debug log: %s", log.String())
			}
			if tc.replaced && strings.Contains(tc.answers[len(tc.answers)-1].body, "goroutine") && !strings.Contains(log.String(), "goroutine 1 [running]") {
				t.Errorf("the debug log lacks the body: %.300s", log.String())
			}
			if strings.Contains(log.String(), "s3cr3t") {
				t.Error("the debug log holds the token")
			}
		})
	}
}
