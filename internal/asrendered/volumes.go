package asrendered

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// atomicDir is the timestamped folder the kubelet's atomic writer puts a
// Secret's or ConfigMap's files in (fixed here: a run lays out once).
const atomicDir = "..2006_01_02_15_04_05.000000000"

// ServiceAccountPath is where the kubelet mounts a pod's token.
const ServiceAccountPath = "/var/run/secrets/kubernetes.io/serviceaccount"

// mounts lays out the container's volumes under volDir and returns the
// bind mounts for its volumeMounts.
func (r *PodRun) mounts(c *corev1.Container, env *envList, volDir string) ([]mount, error) {
	vols := map[string]corev1.Volume{}
	for _, v := range r.Spec.Volumes {
		vols[v.Name] = v
	}
	prepared := map[string]string{}
	var out []mount
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no volume of that name", vm.Name)
		}
		dir, ok := prepared[vm.Name]
		apiData := v.Secret != nil || v.ConfigMap != nil || v.Projected != nil || v.DownwardAPI != nil
		if !ok {
			var err error
			if dir, err = r.layOut(v, filepath.Join(volDir, vm.Name)); err != nil {
				return nil, fmt.Errorf("volume %s: %w", vm.Name, err)
			}
			prepared[vm.Name] = dir
		}
		target, err := cleanMountPath(vm.MountPath)
		if err != nil {
			return nil, fmt.Errorf("volumeMount %s: %w", vm.Name, err)
		}
		src := dir
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			sub = expand(vm.SubPathExpr, env.Get)
		}
		if sub != "" {
			if src, err = subPath(dir, sub, !apiData); err != nil {
				return nil, fmt.Errorf("volumeMount %s subPath %q: %w", vm.Name, sub, err)
			}
		}
		// The kubelet mounts Secret, ConfigMap, projected and downward
		// API volumes read-only whatever the mount says.
		out = append(out, mount{Source: src, Target: target, ReadOnly: vm.ReadOnly || apiData})
	}
	if r.ServiceAccount != nil && (r.Spec.AutomountServiceAccountToken == nil || *r.Spec.AutomountServiceAccountToken) {
		dir := filepath.Join(volDir, "..serviceaccount")
		files := map[string]keyFile{
			"token":     {data: r.ServiceAccount.Token, mode: 0o644},
			"ca.crt":    {data: string(r.ServiceAccount.CACert), mode: 0o644},
			"namespace": {data: r.Namespace, mode: 0o644},
		}
		if err := r.atomicWrite(dir, files, 0o1777); err != nil {
			return nil, fmt.Errorf("service account volume: %w", err)
		}
		out = append(out, mount{Source: dir, Target: ServiceAccountPath, ReadOnly: true})
	}
	return out, nil
}

// subPath resolves sub inside the volume folder as the kubelet does:
// relative, no "..", symlinks followed but never out of the volume; a
// missing path is made a folder in writable volumes.
func subPath(dir, sub string, create bool) (string, error) {
	if path.IsAbs(sub) || strings.Contains("/"+sub+"/", "/../") {
		return "", fmt.Errorf("must be a relative path without ..")
	}
	p := filepath.Join(dir, filepath.FromSlash(sub))
	if _, err := os.Lstat(p); os.IsNotExist(err) && create {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", err
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if real != base && !strings.HasPrefix(real, base+string(filepath.Separator)) {
		return "", fmt.Errorf("leads out of the volume")
	}
	return real, nil
}

type keyFile struct {
	data string
	mode fs.FileMode
}

// layOut writes one volume's contents at dir.
func (r *PodRun) layOut(v corev1.Volume, dir string) (string, error) {
	switch {
	case v.Secret != nil:
		files, err := r.keyFiles("secret", v.Secret.SecretName, v.Secret.Items, v.Secret.DefaultMode, v.Secret.Optional)
		if err != nil {
			return "", err
		}
		return dir, r.atomicWrite(dir, files, 0o1777)
	case v.ConfigMap != nil:
		files, err := r.keyFiles("configmap", v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.DefaultMode, v.ConfigMap.Optional)
		if err != nil {
			return "", err
		}
		return dir, r.atomicWrite(dir, files, 0o777)
	case v.Projected != nil:
		files := map[string]keyFile{}
		for _, src := range v.Projected.Sources {
			var part map[string]keyFile
			var err error
			switch {
			case src.Secret != nil:
				part, err = r.keyFiles("secret", src.Secret.Name, src.Secret.Items, v.Projected.DefaultMode, src.Secret.Optional)
			case src.ConfigMap != nil:
				part, err = r.keyFiles("configmap", src.ConfigMap.Name, src.ConfigMap.Items, v.Projected.DefaultMode, src.ConfigMap.Optional)
			default:
				err = fmt.Errorf("projected source other than secret or configMap is not laid out here")
			}
			if err != nil {
				return "", err
			}
			for k, f := range part {
				files[k] = f
			}
		}
		return dir, r.atomicWrite(dir, files, 0o1777)
	case v.EmptyDir != nil:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			return "", err
		}
		return dir, r.setOwnership(dir, false)
	}
	if host, ok := r.HostVolumes[v.Name]; ok {
		return host, nil
	}
	return "", fmt.Errorf("volume type not laid out here: give its folder in HostVolumes")
}

// keyFiles selects the files of a Secret or ConfigMap volume: every key,
// or the items (path, mode) named.
func (r *PodRun) keyFiles(kind, name string, items []corev1.KeyToPath, defaultMode *int32, optional *bool) (map[string]keyFile, error) {
	var data map[string]string
	var err error
	if kind == "secret" {
		data, err = r.secretData(name, optional)
	} else {
		data, err = r.configMapData(name, optional)
	}
	if err != nil {
		return nil, err
	}
	mode := fs.FileMode(corev1.SecretVolumeSourceDefaultMode)
	if defaultMode != nil {
		mode = fs.FileMode(*defaultMode)
	}
	files := map[string]keyFile{}
	if data == nil {
		return files, nil
	}
	if len(items) == 0 {
		for k, v := range data {
			files[k] = keyFile{data: v, mode: mode}
		}
		return files, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("%s %s has no key %s", kind, name, it.Key)
		}
		if path.IsAbs(it.Path) || strings.Contains("/"+it.Path+"/", "/../") {
			return nil, fmt.Errorf("item path %q must be relative without ..", it.Path)
		}
		m := mode
		if it.Mode != nil {
			m = fs.FileMode(*it.Mode)
		}
		files[path.Clean(it.Path)] = keyFile{data: v, mode: m}
	}
	return files, nil
}

// atomicWrite lays out files as the kubelet's AtomicWriter: the files in a
// timestamped folder, ..data pointing at it, and each top-level name a
// symlink through ..data; owned by root (fsGroup: see setOwnership).
func (r *PodRun) atomicWrite(dir string, files map[string]keyFile, dirMode fs.FileMode) error {
	ts := filepath.Join(dir, atomicDir)
	if err := os.MkdirAll(ts, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, dirMode); err != nil {
		return err
	}
	names := sortedKeys(files)
	top := map[string]bool{}
	for _, n := range names {
		p := filepath.Join(ts, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(files[n].data), 0o600); err != nil {
			return err
		}
		if err := os.Chmod(p, files[n].mode); err != nil {
			return err
		}
		first, _, _ := strings.Cut(n, "/")
		top[first] = true
	}
	if err := os.Symlink(atomicDir, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	tops := make([]string, 0, len(top))
	for t := range top {
		tops = append(tops, t)
	}
	sort.Strings(tops)
	for _, t := range tops {
		if err := os.Symlink(filepath.Join("..data", t), filepath.Join(dir, t)); err != nil {
			return err
		}
	}
	return r.setOwnership(dir, true)
}

// setOwnership is the kubelet's SetVolumeOwnership for the pod's fsGroup:
// everything group-owned by it, files g+r (g+rw when writable), folders
// also g+x and setgid.
func (r *PodRun) setOwnership(dir string, readOnly bool) error {
	sc := r.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil {
		return nil
	}
	gid := int(*sc.FSGroup)
	mask := fs.FileMode(0o660)
	if readOnly {
		mask = 0o440
	}
	return filepath.Walk(dir, func(p string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			return nil
		}
		m := mask
		if info.IsDir() {
			m |= fs.ModeSetgid | 0o110
		}
		return os.Chmod(p, info.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetgid)|m)
	})
}
