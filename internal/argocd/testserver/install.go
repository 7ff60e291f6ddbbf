package testserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

// install is what the harness reads from the module's manifests/install.yaml:
// the env of each component's container and the configuration objects the
// install ships (argocd-cm, argocd-cmd-params-cm, argocd-secret, ...).
type install struct {
	env        map[string][]corev1.EnvVar // by workload (= container) name
	configMaps []corev1.ConfigMap
	secrets    []corev1.Secret
}

// readInstall parses manifests/install.yaml of the module at src.
func readInstall(src string) (*install, error) {
	path := filepath.Join(src, "manifests", "install.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Argo CD install manifest: %w", err)
	}
	in := &install{env: map[string][]corev1.EnvVar{}}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for i := 0; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		switch head.Kind {
		case "Deployment", "StatefulSet":
			var w struct {
				Spec struct {
					Template corev1.PodTemplateSpec `json:"template"`
				} `json:"spec"`
			}
			if err := json.Unmarshal(raw, &w); err != nil {
				return nil, fmt.Errorf("%s: %s %s: %w", path, head.Kind, head.Metadata.Name, err)
			}
			for _, c := range w.Spec.Template.Spec.Containers {
				if c.Name == head.Metadata.Name {
					in.env[c.Name] = c.Env
				}
			}
		case "ConfigMap":
			var cm corev1.ConfigMap
			if err := json.Unmarshal(raw, &cm); err != nil {
				return nil, fmt.Errorf("%s: ConfigMap %s: %w", path, head.Metadata.Name, err)
			}
			in.configMaps = append(in.configMaps, cm)
		case "Secret":
			var s corev1.Secret
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("%s: Secret %s: %w", path, head.Metadata.Name, err)
			}
			in.secrets = append(in.secrets, s)
		}
	}
	for _, name := range []string{repoServer, appController, appSetController, apiServer} {
		if _, ok := in.env[name]; !ok {
			return nil, fmt.Errorf("%s: no container %s (has the install layout changed?)", path, name)
		}
	}
	return in, nil
}

// ensureConfig creates the configuration objects of install.yaml that are
// missing in ns, as applying the install would; existing ones (a test's or a
// rendered install's) are left alone.
func (in *install) ensureConfig(ctx context.Context, kc kubernetes.Interface, ns string) error {
	for _, cm := range in.configMaps {
		cm.Namespace = ns
		if _, err := kc.CoreV1().ConfigMaps(ns).Create(ctx, &cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ConfigMap %s/%s: %w", ns, cm.Name, err)
		}
	}
	for _, s := range in.secrets {
		s.Namespace = ns
		if _, err := kc.CoreV1().Secrets(ns).Create(ctx, &s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create Secret %s/%s: %w", ns, s.Name, err)
		}
	}
	return nil
}

// envResolver resolves env entries the way the kubelet does, reading each
// ConfigMap and Secret once.
type envResolver struct {
	kc    kubernetes.Interface
	ns    string
	cache map[string]map[string]string // "ConfigMap/name" → data; nil: absent
}

func newEnvResolver(kc kubernetes.Interface, ns string) *envResolver {
	return &envResolver{kc: kc, ns: ns, cache: map[string]map[string]string{}}
}

// resolve turns the container env of install.yaml into KEY=value entries.
// A missing ConfigMap, Secret or key fails unless the entry is optional, as
// it would keep the pod from starting.
func (r *envResolver) resolve(ctx context.Context, component string, env []corev1.EnvVar) ([]string, error) {
	var out []string
	for _, e := range env {
		if e.ValueFrom == nil {
			out = append(out, e.Name+"="+e.Value)
			continue
		}
		var (
			val string
			ok  bool
			err error
		)
		switch f := e.ValueFrom; {
		case f.ConfigMapKeyRef != nil:
			val, ok, err = r.lookup(ctx, "ConfigMap", f.ConfigMapKeyRef.Name, f.ConfigMapKeyRef.Key, f.ConfigMapKeyRef.Optional)
		case f.SecretKeyRef != nil:
			val, ok, err = r.lookup(ctx, "Secret", f.SecretKeyRef.Name, f.SecretKeyRef.Key, f.SecretKeyRef.Optional)
		case f.FieldRef != nil && f.FieldRef.FieldPath == "metadata.namespace":
			val, ok = r.ns, true
		default:
			err = errors.New("unsupported valueFrom")
		}
		if err != nil {
			return nil, fmt.Errorf("%s env %s: %w", component, e.Name, err)
		}
		if ok {
			out = append(out, e.Name+"="+val)
		}
	}
	return out, nil
}

func (r *envResolver) lookup(ctx context.Context, kind, name, key string, optional *bool) (string, bool, error) {
	data, err := r.data(ctx, kind, name)
	if err != nil {
		return "", false, err
	}
	v, found := data[key]
	if !found && (optional == nil || !*optional) {
		return "", false, fmt.Errorf("key %q of %s %s/%s is missing and not optional", key, kind, r.ns, name)
	}
	return v, found, nil
}

// data is the data of a ConfigMap or Secret, nil when it does not exist.
func (r *envResolver) data(ctx context.Context, kind, name string) (map[string]string, error) {
	k := kind + "/" + name
	if d, ok := r.cache[k]; ok {
		return d, nil
	}
	var (
		d   map[string]string
		err error
	)
	switch kind {
	case "ConfigMap":
		var cm *corev1.ConfigMap
		if cm, err = r.kc.CoreV1().ConfigMaps(r.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			d = map[string]string{}
			maps.Copy(d, cm.Data)
		}
	case "Secret":
		var s *corev1.Secret
		if s, err = r.kc.CoreV1().Secrets(r.ns).Get(ctx, name, metav1.GetOptions{}); err == nil {
			d = map[string]string{}
			for key, v := range s.Data {
				d[key] = string(v)
			}
		}
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("get %s %s/%s: %w", kind, r.ns, name, err)
	}
	r.cache[k] = d
	return d, nil
}
