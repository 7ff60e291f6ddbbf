package secrets

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
	"gopkg.in/yaml.v3"
)

// MaxManifestFile bounds one SOPS file Manifests reads.
const MaxManifestFile = 1 << 20

// Manifests decrypts every *.sops.yaml file directly in dir and writes the
// Secrets as one YAML stream, in file name order: what Argo CD's
// config-management plugin `hl-secrets` (`hl secrets manifests`) hands
// the application controller for a component's secrets/ folder.
//
// Only Secrets come out. A file that decrypts to anything else — a
// ClusterRoleBinding, a Deployment — is refused, so the one place that
// holds the age key turns git into Secrets and nothing more; whoever can
// push to the repo gets no other kind of object applied by going through
// the decryption. Files that are not regular (symlinks), larger than
// MaxManifestFile or not SOPS-encrypted are refused too. Every problem
// of the folder is reported at once, naming files, never values.
func Manifests(dir string, identities []age.Identity, w io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if n == ".sops.yaml" || !(strings.HasSuffix(n, ".sops.yaml") || strings.HasSuffix(n, ".sops.yml")) {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out bytes.Buffer
	var problems []string
	for _, n := range names {
		doc, err := manifest(filepath.Join(dir, n), identities)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		if out.Len() > 0 {
			out.WriteString("---\n")
		}
		out.Write(doc)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %s", dir, strings.Join(problems, "; "))
	}
	_, err = w.Write(out.Bytes())
	return err
}

func manifest(p string, identities []age.Identity) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeType != 0 {
		return nil, fmt.Errorf("not a regular file")
	}
	if fi.Size() > MaxManifestFile {
		return nil, fmt.Errorf("%d bytes is over the %d byte limit", fi.Size(), MaxManifestFile)
	}
	cipher, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	plain, err := Decrypt(cipher, identities...)
	if err != nil {
		return nil, err
	}
	var head struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(plain))
	if err := dec.Decode(&head); err != nil {
		return nil, fmt.Errorf("decrypted content is not YAML: %w", err)
	}
	var more any
	if dec.Decode(&more) != io.EOF {
		return nil, fmt.Errorf("holds more than one document")
	}
	if head.Kind != "Secret" || head.APIVersion != "v1" {
		return nil, fmt.Errorf("decrypts to %s %s, not a v1 Secret: only Secrets are decrypted", head.APIVersion, head.Kind)
	}
	if !bytes.HasSuffix(plain, []byte("\n")) {
		plain = append(plain, '\n')
	}
	return plain, nil
}
