package bootstrap

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"hl.dev/hl/secrets"
)

// abs is a repo path (slash separated) inside Dir.
func (r *runner) abs(p string) string {
	return filepath.Join(r.opts.Dir, filepath.FromSlash(p))
}

func (r *runner) fileExists(p string) (bool, error) {
	_, err := os.Stat(r.abs(p))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// readAnnotations reads a SOPS Secret's cleartext metadata.annotations
// without decrypting it.
func (r *runner) readAnnotations(p string) (map[string]string, bool, error) {
	data, err := os.ReadFile(r.abs(p))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var doc struct {
		Metadata struct {
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, true, fmt.Errorf("%s: %w", p, err)
	}
	return doc.Metadata.Annotations, true, nil
}

// readSecret decrypts a stored Secret with Options.Identities.
func (r *runner) readSecret(p string) (map[string]string, error) {
	data, err := os.ReadFile(r.abs(p))
	if err != nil {
		return nil, err
	}
	plain, err := secrets.Decrypt(data, r.opts.Identities...)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", p, err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return ex.Values, nil
}

// writeSecret renders spec with values as a Secret manifest, encrypts it
// for hl.yaml's recipients and replaces p atomically. Bootstrap's
// credentials also live in Gitea, so they are never rotated by git alone.
func (r *runner) writeSecret(p string, spec secrets.Spec, values map[string]string) error {
	spec.Rotatable = false
	spec.RotateAfter = 0
	plain, err := secrets.Manifest(spec, values, r.today)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	enc, err := secrets.Encrypt(plain, r.recipients)
	if err != nil {
		return fmt.Errorf("encrypt %s: %w", p, err)
	}
	dst := r.abs(p)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+path.Base(p)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(enc); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	r.files = append(r.files, p)
	return nil
}
