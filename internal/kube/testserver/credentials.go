package testserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Token is one user of kube-apiserver's static token file.
type Token struct {
	// User is the user name the token authenticates as.
	User string
	// UID defaults to User.
	UID string
	// Groups the user is in; none by default (every authenticated user is
	// also in system:authenticated).
	Groups []string
	// Value is the bearer token; Start makes a random one when empty.
	Value string
}

// completeTokens returns the admin token followed by extra, with UIDs and
// values filled in, or an error naming the first bad field. The token file
// is CSV with the groups as one quoted, comma-separated field, so commas,
// quotes and line breaks cannot appear in any field.
func completeTokens(extra []Token) ([]Token, error) {
	out := []Token{{User: AdminUser, UID: AdminUser, Groups: []string{"system:masters"}, Value: randomToken()}}
	owner := map[string]string{AdminUser: "the admin"}
	values := map[string]string{out[0].Value: "the admin"}
	for i, t := range extra {
		field := fmt.Sprintf("ExtraTokens[%d]", i)
		if t.User == "" {
			return nil, fmt.Errorf("%s.User: empty", field)
		}
		if prev, ok := owner[t.User]; ok {
			return nil, fmt.Errorf("%s.User: %q is already %s's", field, t.User, prev)
		}
		owner[t.User] = field
		if t.UID == "" {
			t.UID = t.User
		}
		if t.Value == "" {
			t.Value = randomToken()
		}
		check := []struct{ name, value string }{{".User", t.User}, {".UID", t.UID}}
		for j, g := range t.Groups {
			check = append(check, struct{ name, value string }{fmt.Sprintf(".Groups[%d]", j), g})
		}
		for _, c := range check {
			if c.value == "" || strings.ContainsAny(c.value, ",\"\r\n") {
				return nil, fmt.Errorf("%s%s: %q is empty or holds a comma, quote or line break", field, c.name, c.value)
			}
		}
		// Never quote the value: it is a credential.
		if strings.ContainsAny(t.Value, ",\" \t\r\n") {
			return nil, fmt.Errorf("%s.Value: holds a comma, quote or white space", field)
		}
		if prev, ok := values[t.Value]; ok {
			return nil, fmt.Errorf("%s.Value: same token as %s", field, prev)
		}
		values[t.Value] = field
		t.Groups = slices.Clone(t.Groups)
		out = append(out, t)
	}
	return out, nil
}

// tokenCSV renders kube-apiserver's --token-auth-file:
// token,user,uid[,"group1,group2"].
func tokenCSV(tokens []Token) []byte {
	var b bytes.Buffer
	for _, t := range tokens {
		fmt.Fprintf(&b, "%s,%s,%s", t.Value, t.User, t.UID)
		if len(t.Groups) > 0 {
			fmt.Fprintf(&b, ",\"%s\"", strings.Join(t.Groups, ","))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func randomToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// TokenFor returns the static token of user (AdminUser or a user of
// Options.ExtraTokens).
func (s *Server) TokenFor(user string) (Token, error) {
	for _, t := range s.tokens {
		if t.User == user {
			t.Groups = slices.Clone(t.Groups)
			return t, nil
		}
	}
	return Token{}, fmt.Errorf("no static token for user %q: static tokens are fixed at start, pass it in Options.ExtraTokens", user)
}

// ServiceAccountToken creates the service account namespace/name unless it
// exists and returns a one-hour token for it, signed with the server's
// service-account key. It is the way to a least-privileged identity made
// while the server runs (static tokens are fixed at start). The namespace
// must exist.
func (s *Server) ServiceAccountToken(ctx context.Context, namespace, name string) (string, error) {
	cs, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		return "", fmt.Errorf("service account %s/%s: %w", namespace, name, err)
	}
	sas := cs.CoreV1().ServiceAccounts(namespace)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := sas.Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("create service account %s/%s: %w", namespace, name, err)
	}
	hour := int64(3600)
	tr, err := sas.CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("token for service account %s/%s: %w", namespace, name, err)
	}
	return tr.Status.Token, nil
}

// writeServiceAccountKeys makes the key pair kube-apiserver signs (private)
// and verifies (public) service-account tokens with. P-256 rather than RSA:
// generated in microseconds, and kube-apiserver signs with ES256.
func writeServiceAccountKeys(keyPath, pubPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("service-account public key: %w", err)
	}
	for _, f := range []struct {
		path, typ string
		der       []byte
	}{{keyPath, "EC PRIVATE KEY", der}, {pubPath, "PUBLIC KEY", pub}} {
		var b bytes.Buffer
		_ = pemEncode(&b, f.typ, f.der)
		if err := os.WriteFile(f.path, b.Bytes(), 0o600); err != nil {
			return fmt.Errorf("write service-account key: %w", err)
		}
	}
	return nil
}

func pemEncode(w io.Writer, typ string, der []byte) error {
	return pem.Encode(w, &pem.Block{Type: typ, Bytes: der})
}

// parseCerts parses every CERTIFICATE block of a PEM bundle.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate in PEM")
	}
	return certs, nil
}
