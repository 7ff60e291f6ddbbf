package templates

import (
	"fmt"
	"net/url"
	"strings"
)

// BackupTarget is one place every backed-up volume is copied to: a restic
// repository prefix per target, each volume's repository below it at
// <prefix>/<namespace>/<pvc>.
type BackupTarget struct {
	Name string `yaml:"name"`
	// Repository is the default prefix, "{domain}" and "{homelab}"
	// standing for spec.domain and metadata.name; hl.yaml's
	// spec.apps.backups.values.targets.<name>.repository replaces it.
	Repository string `yaml:"repository"`
}

// BackupRepository is the restic repository prefix of a target as a
// render sees it: hl.yaml's override from the backups component's values
// (targets.<target>.repository), else the catalog default filled in.
// Every template that needs a prefix (the ConfigMap, the per-volume
// Secrets, the k3s etcd-s3 settings) asks here, so they cannot disagree.
func (c *Catalog) BackupRepository(target, domain, homelab string, values map[string]any) (string, error) {
	if t, ok := values["targets"].(map[string]any); ok {
		if tv, ok := t[target].(map[string]any); ok {
			if r, ok := tv["repository"].(string); ok && r != "" {
				return r, nil
			}
		}
	}
	for _, t := range c.BackupTargets {
		if t.Name == target {
			return strings.NewReplacer("{domain}", domain, "{homelab}", homelab).Replace(t.Repository), nil
		}
	}
	return "", fmt.Errorf("catalog: no backup target %q", target)
}

// S3Location is a restic S3 repository URL taken apart the way k3s's
// etcd-s3 settings want it.
type S3Location struct {
	// Endpoint is host[:port], without a scheme.
	Endpoint string
	Bucket   string
	// Prefix is the path inside the bucket ("" at its root).
	Prefix string
	// Insecure is set for plain HTTP (a NAS on the LAN).
	Insecure bool
	// Region is read off hosts named s3.<region>.<provider> (Backblaze B2,
	// Wasabi, AWS), which sign requests for it; "" leaves the default.
	Region string
}

// S3Of parses a restic repository of the form s3:[http[s]://]host/bucket[/prefix]
// and returns nil for any other backend (rest:, sftp:, b2:, a path): k3s
// can send etcd snapshots to S3 only.
func (c *Catalog) S3Of(repo string) *S3Location {
	rest, ok := strings.CutPrefix(repo, "s3:")
	if !ok {
		return nil
	}
	loc := &S3Location{}
	switch {
	case strings.HasPrefix(rest, "http://"):
		loc.Insecure = true
	case strings.HasPrefix(rest, "https://"):
	default:
		rest = "https://" + rest // restic's default scheme
	}
	u, err := url.Parse(rest)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil
	}
	path := strings.Trim(u.Path, "/")
	if path == "" {
		return nil
	}
	loc.Endpoint = u.Host
	loc.Bucket, loc.Prefix, _ = strings.Cut(path, "/")
	if labels := strings.Split(u.Hostname(), "."); len(labels) >= 4 && labels[0] == "s3" {
		loc.Region = labels[1]
	}
	return loc
}

// Folder is sub inside the location's prefix: where k3s puts etcd
// snapshots beside the restic repositories (<prefix>/<namespace>/<pvc>).
func (l *S3Location) Folder(sub string) string {
	if l.Prefix == "" {
		return sub
	}
	return l.Prefix + "/" + sub
}
