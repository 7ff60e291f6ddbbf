package asrendered

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Objects are the kinds a run needs out of a rendered YAML stream.
type Objects struct {
	ConfigMaps []corev1.ConfigMap
	Secrets    []corev1.Secret
	// Workloads are pod templates by "Kind/namespace/name".
	Workloads map[string]Workload
}

// Workload is a rendered pod template and where it came from.
type Workload struct {
	Kind, Namespace, Name string
	Template              corev1.PodTemplateSpec
}

// Decode reads a YAML stream (kustomize's output, a manifest file) for
// ConfigMaps, Secrets and the pod templates of Pods, Deployments,
// StatefulSets, DaemonSets, Jobs and CronJobs; other kinds are passed
// over. Fields are decoded strictly: a misspelt field is an error.
func Decode(r io.Reader) (*Objects, error) {
	out := &Objects{Workloads: map[string]Workload{}}
	docs, err := splitYAML(r)
	if err != nil {
		return nil, err
	}
	for i, doc := range docs {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		where := fmt.Sprintf("document %d (%s %s)", i+1, meta.Kind, meta.Metadata.Name)
		var tmpl *corev1.PodTemplateSpec
		var err error
		switch meta.Kind {
		case "ConfigMap":
			var cm corev1.ConfigMap
			err = yaml.UnmarshalStrict(doc, &cm)
			out.ConfigMaps = append(out.ConfigMaps, cm)
		case "Secret":
			var s corev1.Secret
			err = yaml.UnmarshalStrict(doc, &s)
			out.Secrets = append(out.Secrets, s)
		case "Pod":
			var p corev1.Pod
			err = yaml.UnmarshalStrict(doc, &p)
			tmpl = &corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}
		case "Deployment":
			var d appsv1.Deployment
			err = yaml.UnmarshalStrict(doc, &d)
			tmpl = &d.Spec.Template
		case "StatefulSet":
			var s appsv1.StatefulSet
			err = yaml.UnmarshalStrict(doc, &s)
			tmpl = &s.Spec.Template
		case "DaemonSet":
			var d appsv1.DaemonSet
			err = yaml.UnmarshalStrict(doc, &d)
			tmpl = &d.Spec.Template
		case "Job":
			var j batchv1.Job
			err = yaml.UnmarshalStrict(doc, &j)
			tmpl = &j.Spec.Template
		case "CronJob":
			var c batchv1.CronJob
			err = yaml.UnmarshalStrict(doc, &c)
			tmpl = &c.Spec.JobTemplate.Spec.Template
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if tmpl != nil {
			key := meta.Kind + "/" + meta.Metadata.Namespace + "/" + meta.Metadata.Name
			out.Workloads[key] = Workload{Kind: meta.Kind, Namespace: meta.Metadata.Namespace, Name: meta.Metadata.Name, Template: *tmpl}
		}
	}
	return out, nil
}

func splitYAML(r io.Reader) ([][]byte, error) {
	rd := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs [][]byte
	for {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if onlyComments(doc) {
			continue
		}
		docs = append(docs, doc)
	}
}

// onlyComments reports a document with nothing but blank and comment
// lines (what a template that rendered empty leaves between separators).
func onlyComments(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return false
		}
	}
	return true
}

// DecodeSecrets reads the Secrets of a YAML stream such as `hl secrets
// manifests` prints; any other kind is an error (the plugin emits only
// Secrets).
func DecodeSecrets(r io.Reader) ([]corev1.Secret, error) {
	objs, err := Decode(r)
	if err != nil {
		return nil, err
	}
	if len(objs.ConfigMaps) > 0 || len(objs.Workloads) > 0 {
		return nil, fmt.Errorf("secrets stream holds other kinds than Secret")
	}
	return objs.Secrets, nil
}

// DecryptSecrets decrypts a folder's SOPS Secrets as the cluster does: the
// image's own hl runs `hl secrets manifests` (the generate command of the
// hl-secrets config-management plugin) chrooted in img as its user, the
// folder mounted read-only and the age identity mounted as a file readable
// by that user only, named by SOPS_AGE_KEY_FILE.
func DecryptSecrets(ctx context.Context, img *Image, dir string, ageKey []byte) ([]corev1.Secret, error) {
	uid, gid, home, name, err := img.resolveUser(img.Config.User)
	if err != nil {
		return nil, err
	}
	groups, err := img.memberGroups(name)
	if err != nil {
		return nil, err
	}
	keyDir, err := os.MkdirTemp("", "asrendered-age-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(keyDir)
	keyFile := filepath.Join(keyDir, "keys.txt")
	if err := os.WriteFile(keyFile, ageKey, 0o400); err != nil {
		return nil, err
	}
	if err := os.Chown(keyFile, int(uid), int(gid)); err != nil {
		return nil, err
	}
	const repo, key = "/tmp/asrendered/secrets", "/run/asrendered/age/keys.txt"
	env := newEnv(img.Config.Env)
	env.Set("SOPS_AGE_KEY_FILE", key)
	env.setHome(home)
	s := spec{
		Lower: img.Root,
		Mounts: []mount{
			{Source: dir, Target: repo, ReadOnly: true},
			{Source: keyFile, Target: key, ReadOnly: true},
		},
		Files: runtimeFiles("hl-secrets", nil, nil),
		UID:   uid, GID: gid, Groups: groups,
		Env:  env.List(),
		Dir:  "/",
		Argv: []string{"hl", "secrets", "manifests", repo},
	}
	res, err := collect(ctx, s, nil, nil)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("hl secrets manifests %s: exit %d: %s", dir, res.ExitCode, res.Stderr)
	}
	return DecodeSecrets(bytes.NewReader([]byte(res.Stdout)))
}
