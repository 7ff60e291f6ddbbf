package validate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// The whole-repo secret scan on files the testdata cases cannot hold
// (JSON has no "# want" comments, binary files, generator inputs). Each
// case lays its files over the clean base repo; the findings of the
// whole run must be exactly want ("file:line policy").
func TestScanEveryFile(t *testing.T) {
	secretJSON := `{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "j"},
 "data": {"password": "aHVudGVyMi1idXQtbXVjaC1sb25nZXI="}}
`
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "JSON Secret",
			files: map[string]string{"notes/secret.json": secretJSON},
			want:  []string{"notes/secret.json:2 plaintext-secret"},
		},
		{
			name:  "JSON that does not parse is no finding",
			files: map[string]string{"notes/broken.json": `{"kind": "Secret", "data": {`},
		},
		{
			name:  "binary file",
			files: map[string]string{"notes/blob.bin": "\x00\x01AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"},
		},
		{
			// The generator's Secret is the finding (at the generator);
			// the env file it reads is not reported a second time.
			name: "secretGenerator input",
			files: map[string]string{
				"apps/demo/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: demo\n" +
					"resources:\n  - namespace.yaml\n  - networkpolicy.yaml\n  - deployment.yaml\n  - service.yaml\n  - configmap.yaml\n  - secret.sops.yaml\n" +
					"secretGenerator:\n  - name: api\n    envs:\n      - api.env\n",
				"apps/demo/api.env": "API_TOKEN=3c9b8f1e6d2a4b7c9e0f1a2b3c4d5e6f\n",
			},
			want: []string{"apps/demo/kustomization.yaml:12 plaintext-secret"},
		},
		{
			name:  "env example",
			files: map[string]string{"notes/.env.example": "API_TOKEN=3c9b8f1e6d2a4b7c9e0f1a2b3c4d5e6f\n"},
		},
		{
			// One leak, one finding: the key inside a plaintext Secret
			// is not reported again.
			name: "private key in a plaintext Secret",
			files: map[string]string{"notes/tls.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\nstringData:\n" +
				"  tls.key: |\n    -----BEGIN PRIVATE KEY-----\n    ZmFrZQ==\n    -----END PRIVATE KEY-----\n"},
			want: []string{"notes/tls.yaml:5 plaintext-secret"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := repoFor(t, "")
			writeFiles(t, dir, tc.files)
			r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, fmt.Sprintf("%s %s", f.Location(), f.Policy))
			}
			sort.Strings(got)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				var sb strings.Builder
				r.WriteText(&sb)
				t.Errorf("got %q, want %q\n%s", got, tc.want, sb.String())
			}
		})
	}
}

// A finding of the whole-repo scan is downgraded like any other
// plaintext-secret finding.
func TestScanFindingsFollowThePolicySeverity(t *testing.T) {
	dir := repoFor(t, "plaintext-secret-anywhere")
	r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true,
		Policies: map[string]string{PolicyPlaintextSecret: "warning", PolicyDefaultCredential: "off"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Errors() != 0 {
		var sb strings.Builder
		r.WriteText(&sb)
		t.Errorf("errors left after the downgrade:\n%s", sb.String())
	}
	if r.Warnings() < 7 {
		t.Errorf("%d warnings, want the case's 7 plaintext-secret findings", r.Warnings())
	}
}

// The restart annotation hl secrets rotate/set writes on a consumer is
// named after the secret (…-api-token) but holds the SHA-256 of public
// ciphertext: no credential. A key that names one still is.
func TestChecksumAnnotationIsNoCredential(t *testing.T) {
	for key, want := range map[string]bool{
		"hl.dev/secret-checksum-cloudflare-api-token": false,
		"hl.dev/secret-checksum-gitea-admin":          false,
		"api-token":                                   true,
		"cloudflare-api-token":                        true,
		"example.org/secret-checksum-api-token":       true,
	} {
		if got := credentialKey(key); got != want {
			t.Errorf("credentialKey(%q) = %v, want %v", key, got, want)
		}
	}
}
