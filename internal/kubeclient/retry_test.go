package kubeclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// server answers the first fail requests with 503 and a stack trace, then
// a Namespace; it counts the requests.
func server(t *testing.T, fail int32) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fail {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("PANIC: boom\n\ngoroutine 1 [running]:\nmain.main()\n"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"argocd"}}`))
	}))
	t.Cleanup(s.Close)
	return s, &n
}

// Reads are tried again through passing 5xx answers; a create is sent
// once; an answer that stays bad is one line without its body.
func TestRetrying(t *testing.T) {
	s, n := server(t, 2)
	cs := kubernetes.NewForConfigOrDie(Retrying(&rest.Config{Host: s.URL, QPS: -1}, nil))
	if _, err := cs.CoreV1().Namespaces().Get(t.Context(), "argocd", metav1.GetOptions{}); err != nil || n.Load() != 3 {
		t.Errorf("GET through two 503s: %v after %d requests, want success after 3", err, n.Load())
	}

	s, n = server(t, 1)
	cs = kubernetes.NewForConfigOrDie(Retrying(&rest.Config{Host: s.URL, QPS: -1}, nil))
	_, err := cs.CoreV1().Namespaces().Create(t.Context(), nil, metav1.CreateOptions{})
	if err == nil || n.Load() != 1 {
		t.Errorf("POST answered 503: %v after %d requests, want the error after 1", err, n.Load())
	}

	s, n = server(t, 100)
	cs = kubernetes.NewForConfigOrDie(Retrying(&rest.Config{Host: s.URL, QPS: -1}, nil))
	_, err = cs.CoreV1().Namespaces().Get(t.Context(), "argocd", metav1.GetOptions{})
	if n.Load() != retryAttempts {
		t.Errorf("GET always answered 503: %d requests, want %d", n.Load(), retryAttempts)
	}
	sum := Summarize(err)
	if msg := sum.Error(); strings.Contains(msg, "goroutine") || strings.Contains(msg, "\n") {
		t.Errorf("summary %q: want one line, no body", msg)
	}
	if !apierrors.IsServiceUnavailable(sum) {
		t.Errorf("the summary no longer unwraps to the API error: %v", sum)
	}
	plain := errors.New("connection refused")
	if Summarize(plain) != plain {
		t.Error("Summarize changed an error that is no server answer")
	}
}
