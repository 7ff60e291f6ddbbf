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
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"hl.dev/hl/validate"
)

// webhooks is the admission seam. The charts register admission webhooks
// (cert-manager's, MetalLB's) served by pods, which never run here; the
// API server calls them on every create of their kinds and, with
// failurePolicy Fail, refuses the objects. A stand-in answers in their
// place and allows everything (it validates nothing the real webhook
// would): one TLS server on this machine's own address. kube-apiserver
// (aggregator routing on, as k3s runs it) calls a webhook at an endpoint
// of its Service, so the stand-in is published as each webhook Service's
// EndpointSlice, as the EndpointSlice controller would publish the
// webhook pod. Its CA goes into the caBundle of every webhook that calls
// one of those Services, as cert-manager's cainjector or MetalLB's cert
// rotation would write it.
type webhooks struct {
	ca       []byte          // PEM
	services map[string]bool // namespace/name
	addr     *net.TCPAddr    // the stand-in
}

// startWebhooks finds the webhook Services the rendered repo registers
// and serves them.
func startWebhooks(t *testing.T, dir, cache string) *webhooks {
	t.Helper()
	_, ms, err := validate.Render(t.Context(), validate.Options{Dir: dir, CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	var names []string
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
				ClientConfig admissionv1.WebhookClientConfig `json:"clientConfig"`
			}
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		for _, w := range cfg.Webhooks {
			if s := w.ClientConfig.Service; s != nil && !found[s.Namespace+"/"+s.Name] {
				found[s.Namespace+"/"+s.Name] = true
				// The name kube-apiserver verifies the certificate for.
				names = append(names, s.Name+"."+s.Namespace+".svc")
			}
		}
	}
	if len(found) == 0 {
		t.Fatal("the rendered repo registers no admission webhook: the seam is stale")
	}
	sort.Strings(names)
	ip := hostIP(t)
	ca, certPEM, keyPEM := issue(t, names, ip)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", net.JoinHostPort(ip.String(), "0"), &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(allowAll), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	t.Logf("admission webhook stand-in at %s for %v", ln.Addr(), names)
	return &webhooks{ca: ca, services: found, addr: ln.Addr().(*net.TCPAddr)}
}

// hostIP is an address of this machine that an EndpointSlice may carry
// (the API server refuses loopback endpoints).
func hostIP(t *testing.T) net.IP {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.To4()
			}
		}
	}
	t.Fatal("no non-loopback IPv4 address on this machine for the admission webhook seam")
	return nil
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
	w.publish(ctx, l)
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

// publish writes an EndpointSlice for every webhook Service that exists,
// pointing at the stand-in under the Service's port name.
func (w *webhooks) publish(ctx context.Context, l *loop) {
	for key := range w.services {
		ns, name, _ := strings.Cut(key, "/")
		svc, err := l.kc.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			continue // not synced yet
		}
		slices := l.kc.DiscoveryV1().EndpointSlices(ns)
		if _, err := slices.Get(ctx, name+"-loop", metav1.GetOptions{}); err == nil {
			continue
		}
		ready := true
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-loop", Namespace: ns, Labels: map[string]string{
				discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "loop-test"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{w.addr.IP.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}
		for _, p := range svc.Spec.Ports {
			port, pname, proto := int32(w.addr.Port), p.Name, p.Protocol
			es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: &pname, Port: &port, Protocol: &proto})
		}
		_, _ = slices.Create(ctx, es, metav1.CreateOptions{FieldManager: "loop-test-endpointslices"})
	}
}

func (w *webhooks) patch(cc *admissionv1.WebhookClientConfig) bool {
	if cc.Service == nil || !w.services[cc.Service.Namespace+"/"+cc.Service.Name] || bytes.Equal(cc.CABundle, w.ca) {
		return false
	}
	cc.CABundle = w.ca
	return true
}

// issue makes a CA and a serving certificate for names and ip, in PEM.
func issue(t *testing.T, names []string, ip net.IP) (caPEM, certPEM, keyPEM []byte) {
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
		IPAddresses: []net.IP{ip}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
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
