//go:build loop

package loop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"sort"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"hl.dev/hl/e2e"
	"hl.dev/hl/validate"
)

// webhooks is the admission seam. The charts register admission webhooks
// (cert-manager's, MetalLB's) served by pods, which never run here; the
// API server calls them on every create of their kinds and, with
// failurePolicy Fail, refuses the objects. A stand-in answers in their
// place and allows everything (it validates nothing the real webhook
// would): one TLS server, reached through the Service seam at each
// webhook Service's rendered name and port (kube-apiserver resolves them
// through a private /etc/hosts). Its CA goes into the caBundle of every
// webhook that calls one of those Services, as cert-manager's cainjector
// or MetalLB's cert rotation would write it.
type webhooks struct {
	ca       []byte            // PEM
	services map[string]bool   // namespace/name
	hosts    map[string]string // Service names → the seam's addresses
}

// startWebhooks finds the webhook Services the rendered repo registers
// and serves them.
func startWebhooks(t *testing.T, dir, cache string) *webhooks {
	t.Helper()
	_, ms, err := validate.Render(t.Context(), validate.Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	type svc struct {
		Namespace, Name string
		Port            *int32
	}
	found := map[string]svc{}
	for _, m := range ms {
		kind, _ := m.Object["kind"].(string)
		if kind != "ValidatingWebhookConfiguration" && kind != "MutatingWebhookConfiguration" {
			continue
		}
		raw, err := json.Marshal(m.Object)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Webhooks []struct {
				ClientConfig struct{ Service *svc } `json:"clientConfig"`
			}
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		for _, w := range cfg.Webhooks {
			if s := w.ClientConfig.Service; s != nil {
				found[s.Namespace+"/"+s.Name] = *s
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("the rendered repo registers no admission webhook: the seam is stale")
	}
	w := &webhooks{services: map[string]bool{}, hosts: map[string]string{}}
	var names []string
	for key, s := range found {
		w.services[key] = true
		names = append(names, s.Name+"."+s.Namespace+".svc", s.Name+"."+s.Namespace+".svc.cluster.local")
	}
	sort.Strings(names)
	var certPEM, keyPEM []byte
	w.ca, certPEM, keyPEM = issue(t, names)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(allowAll), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for _, s := range found {
		port := 443
		if s.Port != nil {
			port = int(*s.Port)
		}
		proxy, err := e2e.StartService(t.Context(), s.Name, s.Namespace, port, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { proxy.Close() })
		for n, ip := range proxy.Hosts() {
			w.hosts[n] = ip
		}
	}
	t.Logf("admission webhook stand-in for %d Services: %v", len(found), names)
	return w
}

// allowAll answers an AdmissionReview with allowed: true.
func allowAll(rw http.ResponseWriter, r *http.Request) {
	var review struct {
		APIVersion string `json:"apiVersion"`
		Request    *struct {
			UID string `json:"uid"`
		} `json:"request"`
	}
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	if review.APIVersion == "" {
		review.APIVersion = "admission.k8s.io/v1"
	}
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(map[string]any{
		"apiVersion": review.APIVersion, "kind": "AdmissionReview",
		"response": map[string]any{"uid": review.Request.UID, "allowed": true},
	})
}

// inject writes the stand-in's CA into the caBundle of every webhook that
// calls one of its Services (part of reportReady's loop).
func (w *webhooks) inject(ctx context.Context, l *loop) {
	if w == nil {
		return
	}
	adm := l.kc.AdmissionregistrationV1()
	if list, err := adm.ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range list.Items {
			changed := false
			for i := range c.Webhooks {
				changed = w.patch(&c.Webhooks[i].ClientConfig) || changed
			}
			if changed {
				_, _ = adm.ValidatingWebhookConfigurations().Update(ctx, &c, metav1.UpdateOptions{FieldManager: "loop-test-cainjector"})
			}
		}
	}
	if list, err := adm.MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{}); err == nil {
		for _, c := range list.Items {
			changed := false
			for i := range c.Webhooks {
				changed = w.patch(&c.Webhooks[i].ClientConfig) || changed
			}
			if changed {
				_, _ = adm.MutatingWebhookConfigurations().Update(ctx, &c, metav1.UpdateOptions{FieldManager: "loop-test-cainjector"})
			}
		}
	}
}

func (w *webhooks) patch(cc *admissionv1.WebhookClientConfig) bool {
	if cc.Service == nil || !w.services[cc.Service.Namespace+"/"+cc.Service.Name] || bytes.Equal(cc.CABundle, w.ca) {
		return false
	}
	cc.CABundle = w.ca
	return true
}

// issue makes a CA and a serving certificate for names, in PEM.
func issue(t *testing.T, names []string) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loop test webhook CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
