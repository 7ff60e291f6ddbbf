package backup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"filippo.io/age"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/secrets"
)

// Rendered paths of the backups component that Restore reads.
const (
	// SourcesFile holds one ReplicationSource per volume and target.
	SourcesFile = "system/backups/templates/replicationsources.yaml"
	// SecretsDir holds the per-volume repository Secrets
	// (volsync-<pvc>-<target>.sops.yaml).
	SecretsDir = "system/backups/secrets"
)

// Volume is one backed-up volume of an app on one target, as rendered.
type Volume struct {
	// PVC is the claim's name, in Namespace.
	PVC       string
	Namespace string
	// Source is the ReplicationSource that copies it.
	Source string
	// Repository is the Secret (in Namespace) VolSync reads the restic
	// repository, password and S3 keys from.
	Repository string
	// MoverSecurityContext is the ReplicationSource's: a restore writes the
	// files as the same user.
	MoverSecurityContext map[string]any
}

// App is what the rendered repo says about one app's backups.
type App struct {
	Name, Namespace, Layer string
	Target                 string
	Volumes                []Volume
}

// LoadApp reads app's folder (<layer>/<app>/app.yaml, for its namespace)
// and its ReplicationSources on target from the rendered repo at dir.
func LoadApp(dir, app, target string) (*App, error) {
	if app == "" || strings.ContainsAny(app, `/\`) || app == "." || app == ".." {
		return nil, fmt.Errorf("app %q: not an app name", app)
	}
	a := &App{Name: app, Target: target}
	for _, layer := range []string{"system", "platform", "apps"} {
		b, err := os.ReadFile(filepath.Join(dir, layer, app, "app.yaml"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var meta struct {
			Namespace string `yaml:"namespace"`
		}
		if err := yaml.Unmarshal(b, &meta); err != nil || meta.Namespace == "" {
			return nil, fmt.Errorf("%s/%s/app.yaml: no namespace (%v)", layer, app, err)
		}
		a.Namespace, a.Layer = meta.Namespace, layer
		break
	}
	if a.Namespace == "" {
		return nil, fmt.Errorf("no app %q in %s (no system/, platform/ or apps/%s/app.yaml): is it enabled in hl.yaml?", app, dir, app)
	}
	p := filepath.Join(dir, filepath.FromSlash(SourcesFile))
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: missing: the repo renders no backups (enable spec.apps.backups)", SourcesFile)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	targets := map[string]bool{}
	for {
		var rs struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name      string            `yaml:"name"`
				Namespace string            `yaml:"namespace"`
				Labels    map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				SourcePVC string `yaml:"sourcePVC"`
				Restic    struct {
					Repository           string         `yaml:"repository"`
					MoverSecurityContext map[string]any `yaml:"moverSecurityContext"`
				} `yaml:"restic"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&rs)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", SourcesFile, err)
		}
		if rs.Kind != "ReplicationSource" || rs.Metadata.Namespace != a.Namespace {
			continue
		}
		t := rs.Metadata.Labels["backups.hl.dev/target"]
		targets[t] = true
		if t != target {
			continue
		}
		if rs.Spec.SourcePVC == "" || rs.Spec.Restic.Repository == "" {
			return nil, fmt.Errorf("%s: ReplicationSource %s/%s has no sourcePVC or restic.repository", SourcesFile, a.Namespace, rs.Metadata.Name)
		}
		a.Volumes = append(a.Volumes, Volume{
			PVC: rs.Spec.SourcePVC, Namespace: a.Namespace, Source: rs.Metadata.Name,
			Repository: rs.Spec.Restic.Repository, MoverSecurityContext: rs.Spec.Restic.MoverSecurityContext,
		})
	}
	if len(a.Volumes) == 0 {
		if len(targets) > 0 {
			names := make([]string, 0, len(targets))
			for t := range targets {
				names = append(names, t)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("app %s: no backups on target %q (its targets: %s)", app, target, strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("app %s: nothing of namespace %s is backed up (%s has no ReplicationSource there; system/backups/README.md lists what is and why)", app, a.Namespace, SourcesFile)
	}
	return a, nil
}

// Volume returns the app's volume named pvc, or its only one when pvc is
// empty.
func (a *App) Volume(pvc string) (Volume, error) {
	var names []string
	for _, v := range a.Volumes {
		if v.PVC == pvc || (pvc == "" && len(a.Volumes) == 1) {
			return v, nil
		}
		names = append(names, v.PVC)
	}
	if pvc == "" {
		return Volume{}, fmt.Errorf("app %s backs up %d volumes (%s): name one", a.Name, len(names), strings.Join(names, ", "))
	}
	return Volume{}, fmt.Errorf("app %s: no backed-up volume %q (it has %s)", a.Name, pvc, strings.Join(names, ", "))
}

// Env decrypts the volume's repository Secret from the rendered repo: the
// environment restic needs (RESTIC_REPOSITORY, RESTIC_PASSWORD and the S3
// keys), exactly the keys VolSync's mover gets.
func (v Volume) Env(dir string, ids []age.Identity) (map[string]string, error) {
	p := filepath.Join(dir, filepath.FromSlash(SecretsDir), v.Repository+".sops.yaml")
	cipher, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("the repository Secret of %s/%s: %w", v.Namespace, v.PVC, err)
	}
	plain, err := secrets.Decrypt(cipher, ids...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	ex, err := secrets.ReadSecret(plain)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	for _, k := range []string{"RESTIC_REPOSITORY", "RESTIC_PASSWORD"} {
		if strings.TrimSpace(ex.Values[k]) == "" {
			return nil, fmt.Errorf("%s: key %s is empty", p, k)
		}
	}
	env := make(map[string]string, len(ex.Values))
	for k, val := range ex.Values {
		env[k] = val
	}
	return env, nil
}

// environ is env as os/exec wants it, after base, sorted.
func environ(base []string, env map[string]string) []string {
	out := append([]string(nil), base...)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}
