package metal

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AccessLog writes one line per HTTP request (and dnsmasq's log lines) to
// a writer. Lines never contain tokens: the Authorization header and
// request bodies are not logged.
type AccessLog struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewAccessLog returns a log writing to w.
func NewAccessLog(w io.Writer, now func() time.Time) *AccessLog {
	if now == nil {
		now = time.Now
	}
	return &AccessLog{w: w, now: now}
}

// Printf writes one line with a source tag ("http", "dnsmasq", "serve").
func (l *AccessLog) Printf(source, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s %s %s\n", l.now().UTC().Format(time.RFC3339), source, strings.TrimRight(line, "\n"))
}

type noteKey struct{}

type notes struct {
	mu sync.Mutex
	kv []string
}

// Note adds key=value to the access log line of r.
func Note(r *http.Request, key, value string) {
	n, _ := r.Context().Value(noteKey{}).(*notes)
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if strings.ContainsAny(value, " \t\"=") || value == "" {
		value = strconv.Quote(value)
	}
	n.kv = append(n.kv, key+"="+value)
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Wrap logs every request h serves.
func (l *AccessLog) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		n := &notes{}
		rec := &recorder{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), noteKey{}, n))
		h.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		n.mu.Lock()
		extra := strings.Join(n.kv, " ")
		n.mu.Unlock()
		l.Printf("http", "%s %q %d %d %s %s", r.RemoteAddr, r.Method+" "+redactPath(r.URL.Path), rec.status, rec.bytes, time.Since(start).Round(time.Microsecond), extra)
	})
}

// redactPath hides the token of /t/<token>/... paths.
func redactPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/t/")
	if !ok {
		return p
	}
	if _, after, found := strings.Cut(rest, "/"); found {
		return "/t/-/" + after
	}
	return "/t/-"
}
