package asrendered

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PodRun runs one container of a rendered pod template as the kubelet
// would start it, chrooted into its image's file system:
//
//   - command and args: the container's, else the image's entrypoint and
//     cmd, by Kubernetes' rules (command set: the image's cmd is dropped);
//     $(VAR) expanded against the container's environment;
//   - environment: the image's, then envFrom (in order, prefix applied,
//     names that are no valid variable skipped), then env (value with
//     $(VAR) expansion, valueFrom configMapKeyRef/secretKeyRef resolved
//     from ConfigMaps and Secrets, optional honoured, fieldRef from
//     FieldRefs and the pod's name and namespace), then ServiceEnv;
//     HOME from the user's passwd entry when unset;
//   - volumes: secret and configMap (items, defaultMode, item mode,
//     optional; projected secret/configMap sources likewise) laid out as
//     the kubelet's atomic writer does (..data -> timestamped folder,
//     per-key symlinks), fsGroup applied as SetVolumeOwnership does
//     (group-owned, g+r, setgid folders), mounted read-only; emptyDir
//     (0777, fsGroup setgid); a volume named in HostVolumes (a PVC, a
//     hostPath) from the test's folder; subPath and subPathExpr; readOnly;
//   - user: runAsUser/runAsGroup (container over pod) else the image's
//     user, supplementary groups from the image's /etc/group, fsGroup and
//     supplementalGroups; runAsNonRoot refused for uid 0 as the kubelet
//     does; readOnlyRootFilesystem; allowPrivilegeEscalation: false as
//     no_new_privs; workingDir else the image's;
//   - /etc/hosts (localhost, hostAliases, Hosts), /etc/hostname (the pod
//     name), /dev/termination-log, the service account token folder when
//     ServiceAccount is given.
//
// Secrets are given decrypted, as the cluster's SOPS integration hands
// them to the API server: DecryptSecrets runs the image's own `hl secrets
// manifests` (the config-management plugin's generate command);
// DecodeSecrets reads such a stream.
//
// Seams (what differs from a kubelet): the process shares the host's
// network and PID namespaces (ports bind on the host, test servers are
// reached on loopback under the names in Hosts; there is no cluster DNS,
// Service or NetworkPolicy); no capabilities are dropped for a root
// process and no seccomp profile applies; no resource limits, probes,
// restarts or init containers (run them as their own PodRun); volumes are
// laid out once (no updates of a mounted Secret); Services' environment
// variables are only those ServiceEnv gives.
type PodRun struct {
	// Spec is the pod template's spec; Container names the container
	// (empty: the only one).
	Spec      corev1.PodSpec
	Container string
	PodName   string
	Namespace string
	// Images maps a container's image reference to its extracted image.
	Images     map[string]*Image
	ConfigMaps []corev1.ConfigMap
	Secrets    []corev1.Secret
	// HostVolumes maps a volume name (PVC, hostPath, ...) to a host folder.
	HostVolumes map[string]string
	// FieldRefs are values for fieldRef paths other than metadata.name
	// and metadata.namespace (status.podIP, spec.nodeName, ...).
	FieldRefs map[string]string
	// ServiceEnv is what the kubelet derives from Services
	// (KUBERNETES_SERVICE_HOST, ...), added last.
	ServiceEnv map[string]string
	// ServiceAccount, when set, is mounted at
	// /var/run/secrets/kubernetes.io/serviceaccount unless the pod opts out.
	ServiceAccount *ServiceAccount
	Hosts          map[string]string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ServiceAccount is the projected token volume's content.
type ServiceAccount struct {
	Token  string
	CACert []byte
}

// Run starts the container and waits for it to exit.
func (r *PodRun) Run(ctx context.Context) (Result, error) {
	var out, errb strings.Builder
	p, err := r.start(ctx, &out, &errb)
	if err != nil {
		return Result{}, err
	}
	code, err := p.Wait()
	return Result{ExitCode: code, Stdout: out.String(), Stderr: errb.String()}, err
}

// Start starts the container (a server); stop it with Process.Stop.
func (r *PodRun) Start(ctx context.Context) (*Process, error) {
	return r.start(ctx, r.Stdout, r.Stderr)
}

func (r *PodRun) container() (*corev1.Container, error) {
	cs := r.Spec.Containers
	if r.Container == "" {
		if len(cs) != 1 {
			return nil, fmt.Errorf("pod has %d containers: name one", len(cs))
		}
		return &cs[0], nil
	}
	for i := range cs {
		if cs[i].Name == r.Container {
			return &cs[i], nil
		}
	}
	for i := range r.Spec.InitContainers {
		if r.Spec.InitContainers[i].Name == r.Container {
			return &r.Spec.InitContainers[i], nil
		}
	}
	return nil, fmt.Errorf("pod has no container %q", r.Container)
}

func (r *PodRun) start(ctx context.Context, stdout, stderr io.Writer) (*Process, error) {
	c, err := r.container()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Process, error) {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	img := r.Images[c.Image]
	if img == nil {
		return fail(fmt.Errorf("no image given for %q", c.Image))
	}
	env, err := r.environment(c, img)
	if err != nil {
		return fail(err)
	}
	argv := podArgv(c, img, env)
	if len(argv) == 0 {
		return fail(fmt.Errorf("no command: neither the container nor the image %s has one", c.Image))
	}
	id, err := r.identity(c, img)
	if err != nil {
		return fail(err)
	}
	env.setHome(id.home)
	volDir, err := os.MkdirTemp("", "asrendered-volumes-*")
	if err != nil {
		return nil, err
	}
	mounts, err := r.mounts(c, env, volDir)
	if err != nil {
		os.RemoveAll(volDir)
		return fail(err)
	}
	dir := c.WorkingDir
	if dir == "" {
		dir = img.Config.WorkingDir
	}
	var aliases []string
	for _, h := range r.Spec.HostAliases {
		aliases = append(aliases, h.IP+"\t"+strings.Join(h.Hostnames, " "))
	}
	files := runtimeFiles(r.PodName, r.Hosts, aliases)
	files = append(files, file{Path: "/dev/termination-log", Mode: 0o666})
	s := spec{
		Lower: img.Root, ReadOnlyRoot: id.readOnlyRoot, NoNewPrivs: id.noNewPrivs,
		Mounts: mounts, Files: files,
		UID: id.uid, GID: id.gid, Groups: id.groups,
		Env: env.List(), Dir: dir, Argv: argv,
	}
	p, err := start(ctx, s, r.Stdin, stdout, stderr)
	if err != nil {
		os.RemoveAll(volDir)
		return fail(err)
	}
	p.cleanup = append(p.cleanup, func() { os.RemoveAll(volDir) })
	return p, nil
}

// podArgv applies Kubernetes' command rules over the image's.
func podArgv(c *corev1.Container, img *Image, env *envList) []string {
	var argv []string
	switch {
	case len(c.Command) > 0:
		argv = append(append(argv, c.Command...), c.Args...)
	case len(c.Args) > 0:
		argv = append(append(argv, img.Config.Entrypoint...), c.Args...)
	default:
		argv = append(append(argv, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	// Only the container's own words are expanded, the image's stay.
	if len(c.Command) > 0 || len(c.Args) > 0 {
		out := make([]string, len(argv))
		n := 0
		if len(c.Command) == 0 {
			n = len(img.Config.Entrypoint)
		}
		copy(out, argv)
		for i := n; i < len(out); i++ {
			out[i] = expand(out[i], env.Get)
		}
		argv = out
	}
	return argv
}

// envNameOK is what the kubelet accepts as a variable name from envFrom
// (RelaxedEnvironmentVariableValidation, GA: printable ASCII but '=');
// others are skipped.
func envNameOK(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		if n[i] < 32 || n[i] > 126 || n[i] == '=' {
			return false
		}
	}
	return true
}

func (r *PodRun) environment(c *corev1.Container, img *Image) (*envList, error) {
	own := newEnv(nil)
	for _, ef := range c.EnvFrom {
		var data map[string]string
		var err error
		switch {
		case ef.ConfigMapRef != nil:
			data, err = r.configMapData(ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional)
		case ef.SecretRef != nil:
			data, err = r.secretData(ef.SecretRef.Name, ef.SecretRef.Optional)
		default:
			err = fmt.Errorf("envFrom with no source")
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom: %w", err)
		}
		for _, k := range sortedKeys(data) {
			name := ef.Prefix + k
			if !envNameOK(name) {
				continue
			}
			own.Set(name, data[k])
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			own.Set(e.Name, expand(e.Value, own.Get))
			continue
		}
		v, ok, err := r.valueFrom(e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		if ok {
			own.Set(e.Name, v)
		}
	}
	for _, k := range sortedKeys(r.ServiceEnv) {
		if _, ok := own.Get(k); !ok {
			own.Set(k, r.ServiceEnv[k])
		}
	}
	env := newEnv(img.Config.Env)
	for _, kv := range own.List() {
		k, v, _ := strings.Cut(kv, "=")
		env.Set(k, v)
	}
	return env, nil
}

func (r *PodRun) valueFrom(src *corev1.EnvVarSource) (string, bool, error) {
	switch {
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		data, err := r.configMapData(ref.Name, ref.Optional)
		if err != nil {
			return "", false, err
		}
		return keyOf(data, "configmap", ref.Name, ref.Key, ref.Optional)
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		data, err := r.secretData(ref.Name, ref.Optional)
		if err != nil {
			return "", false, err
		}
		return keyOf(data, "secret", ref.Name, ref.Key, ref.Optional)
	case src.FieldRef != nil:
		switch p := src.FieldRef.FieldPath; p {
		case "metadata.name":
			return r.PodName, true, nil
		case "metadata.namespace":
			return r.Namespace, true, nil
		default:
			v, ok := r.FieldRefs[p]
			if !ok {
				return "", false, fmt.Errorf("fieldRef %s: no value given (FieldRefs)", p)
			}
			return v, true, nil
		}
	}
	return "", false, fmt.Errorf("valueFrom source not supported here (resourceFieldRef, fileKeyRef)")
}

func keyOf(data map[string]string, kind, name, key string, optional *bool) (string, bool, error) {
	if data == nil {
		return "", false, nil // optional object missing
	}
	v, ok := data[key]
	if !ok {
		if optional != nil && *optional {
			return "", false, nil
		}
		return "", false, fmt.Errorf("couldn't find key %s in %s %s", key, kind, name)
	}
	return v, true, nil
}

// configMapData is a ConfigMap's data and binaryData; nil for a missing
// optional one.
func (r *PodRun) configMapData(name string, optional *bool) (map[string]string, error) {
	for _, cm := range r.ConfigMaps {
		if cm.Name == name && (cm.Namespace == "" || r.Namespace == "" || cm.Namespace == r.Namespace) {
			out := map[string]string{}
			for k, v := range cm.Data {
				out[k] = v
			}
			for k, v := range cm.BinaryData {
				out[k] = string(v)
			}
			return out, nil
		}
	}
	if optional != nil && *optional {
		return nil, nil
	}
	return nil, fmt.Errorf("configmap %q not found", name)
}

// secretData is a Secret's data with stringData merged over it, as the
// API server stores it; nil for a missing optional one.
func (r *PodRun) secretData(name string, optional *bool) (map[string]string, error) {
	if data, ok := lookupSecret(r.Secrets, r.Namespace, name); ok {
		return data, nil
	}
	if optional != nil && *optional {
		return nil, nil
	}
	return nil, fmt.Errorf("secret %q not found", name)
}

// lookupSecret finds the Secret name of namespace ns among secrets (a
// Secret or an ns without a namespace matches any) and returns its
// values (SecretValues).
func lookupSecret(secrets []corev1.Secret, ns, name string) (map[string]string, bool) {
	for _, s := range secrets {
		if s.Name == name && (s.Namespace == "" || ns == "" || s.Namespace == ns) {
			return SecretValues(s), true
		}
	}
	return nil, false
}

// SecretValues is a Secret's data with stringData merged over it, as the
// API server stores it.
func SecretValues(s corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

type identity struct {
	uid, gid     uint32
	groups       []uint32
	home         string
	readOnlyRoot bool
	noNewPrivs   bool
}

func (r *PodRun) identity(c *corev1.Container, img *Image) (identity, error) {
	var id identity
	uid, gid, home, name, err := img.resolveUser(img.Config.User)
	if err != nil {
		return id, fmt.Errorf("image user: %w", err)
	}
	psc := r.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	if u := pick(csc.RunAsUser, psc.RunAsUser); u != nil {
		// A uid from the pod: home and name from the image's passwd, if
		// it knows the uid.
		uid, gid, home, name, err = img.resolveUser(strconv.FormatInt(*u, 10))
		if err != nil {
			return id, err
		}
	}
	if g := pick(csc.RunAsGroup, psc.RunAsGroup); g != nil {
		gid = uint32(*g)
	}
	nonRoot := csc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = psc.RunAsNonRoot
	}
	if nonRoot != nil && *nonRoot && uid == 0 {
		return id, fmt.Errorf("container has runAsNonRoot and image will run as root")
	}
	groups, err := img.memberGroups(name)
	if err != nil {
		return id, err
	}
	if psc.FSGroup != nil {
		groups = append(groups, uint32(*psc.FSGroup))
	}
	for _, g := range psc.SupplementalGroups {
		groups = append(groups, uint32(g))
	}
	id.uid, id.gid, id.groups, id.home = uid, gid, groups, home
	id.readOnlyRoot = csc.ReadOnlyRootFilesystem != nil && *csc.ReadOnlyRootFilesystem
	id.noNewPrivs = csc.AllowPrivilegeEscalation != nil && !*csc.AllowPrivilegeEscalation
	return id, nil
}

func pick(a, b *int64) *int64 {
	if a != nil {
		return a
	}
	return b
}

// cleanMountPath checks a mount path is absolute and stays put.
func cleanMountPath(p string) (string, error) {
	if !path.IsAbs(p) {
		return "", fmt.Errorf("mountPath %q is not absolute", p)
	}
	return path.Clean(p), nil
}
