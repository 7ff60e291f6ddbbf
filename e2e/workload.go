package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"hl.dev/hl/internal/asrendered"
)

// PodOptions name a rendered workload and what the cluster would give it.
type PodOptions struct {
	Lab *Homelab
	// File is the manifest, relative to the repo (platform/hl-bot/deployment.yaml);
	// Kind and Name pick the workload in it (Deployment, hl-bot).
	File, Kind, Name string
	// Decrypter is the hl image whose `hl secrets manifests` decrypts the
	// component's secrets/ folder, as the hl-secrets plugin does.
	Decrypter *asrendered.Image
	// Images maps each container image reference to its extracted image.
	Images map[string]*asrendered.Image
	// Secrets are the Secrets the cluster holds besides the repo's
	// (sops-age, made by hl bootstrap cluster).
	Secrets []corev1.Secret
	// Hosts are the Services' names (Service.Hosts).
	Hosts map[string]string
}

// Pod turns a rendered workload into a PodRun with exactly its rendered
// inputs: the pod template of File's Kind/Name, the namespace its
// folder's kustomization.yaml sets, the ConfigMaps and Secrets of File,
// and the Secrets of the folder's secrets/ decrypted from the repo with
// the homelab's age key (asrendered.DecryptSecrets), then o.Secrets.
func Pod(ctx context.Context, o PodOptions) (*asrendered.PodRun, error) {
	path := filepath.Join(o.Lab.Dir, filepath.FromSlash(o.File))
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	objs, err := asrendered.Decode(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.File, err)
	}
	ns, err := kustomizeNamespace(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	var w *asrendered.Workload
	for _, cand := range objs.Workloads {
		if cand.Kind == o.Kind && cand.Name == o.Name {
			w = &cand
			break
		}
	}
	if w == nil {
		return nil, fmt.Errorf("%s: no %s %s", o.File, o.Kind, o.Name)
	}
	if w.Namespace != "" {
		ns = w.Namespace
	}
	secrets := append([]corev1.Secret(nil), objs.Secrets...)
	secDir := filepath.Join(filepath.Dir(path), "secrets")
	if _, err := os.Stat(secDir); err == nil {
		if o.Decrypter == nil {
			return nil, fmt.Errorf("%s has secrets/: give a Decrypter image", filepath.Dir(o.File))
		}
		if err := OpenPath(secDir); err != nil {
			return nil, err
		}
		dec, err := asrendered.DecryptSecrets(ctx, o.Decrypter, secDir, o.Lab.AgeKey)
		if err != nil {
			return nil, fmt.Errorf("decrypt %s: %w", secDir, err)
		}
		secrets = append(secrets, dec...)
	}
	secrets = append(secrets, o.Secrets...)
	return &asrendered.PodRun{
		Spec:       *w.Template.Spec.DeepCopy(),
		PodName:    o.Name + "-e2e",
		Namespace:  ns,
		Images:     o.Images,
		ConfigMaps: objs.ConfigMaps,
		Secrets:    secrets,
		Hosts:      o.Hosts,
	}, nil
}

// kustomizeNamespace is the namespace the folder's kustomization.yaml
// sets ("" when it sets none or there is none).
func kustomizeNamespace(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if os.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var k struct {
		Namespace string `json:"namespace"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		return "", fmt.Errorf("%s/kustomization.yaml: %w", dir, err)
	}
	return k.Namespace, nil
}
