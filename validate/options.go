package validate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/client-go/rest"

	"hl.dev/hl/internal/config"
)

// Options configure Run and PullCharts.
type Options struct {
	// Dir is the repository root (default ".").
	Dir string
	// CacheDir is the chart cache (default DefaultCacheDir()).
	CacheDir string
	// Offline uses only the chart cache; missing charts are chart-missing
	// findings. Otherwise Run pulls what the cache lacks first.
	Offline bool
	// KubeVersion the charts are rendered for and the built-in kinds are
	// checked against, e.g. v1.33.5 or v1.33.5+k3s1 (default: hl.yaml's
	// spec.kubernetes.k3sVersion, else Helm's default).
	KubeVersion string
	// Policies maps a policy id to error, warning or off; it overrides
	// hl.yaml's spec.validation.policies (for --policy flags).
	Policies map[string]string
	// PrivilegedAllowed adds namespace/name patterns (path.Match globs) of
	// workloads allowed privileged containers to hl.yaml's list.
	PrivilegedAllowed []string
	// Mirrors adds chart repository prefix rewrites to hl.yaml's
	// spec.mirrors.charts (tried first).
	Mirrors []config.Mirror
	// ConfigFile is hl.yaml (default <Dir>/hl.yaml; a missing file only
	// disables the checks that need it).
	ConfigFile string
	// PlainHTTP talks to OCI registries over plain HTTP (always done for
	// loopback hosts).
	PlainHTTP bool
	// Jobs bounds how many charts render at once (default GOMAXPROCS).
	Jobs int
	// Log receives progress lines (chart pulls); nil discards them.
	Log io.Writer
	// Server, when set, is an API server every rendered object is
	// dry-run applied against after the offline checks (hl validate
	// --server): it catches what schemas cannot — CRD CEL rules, value
	// ranges, immutable fields, admission.
	Server *rest.Config
	// Scratch says Server is a throw-away server: the CRDs and namespaces
	// the repo renders are created for real on it first, so every object
	// can be checked. Without it, objects whose namespace or CRD the
	// server lacks are reported as not checked (warnings).
	Scratch bool

	// retryBackoff is the first wait before a chart request is retried
	// (default pullBackoff); tests shorten it.
	retryBackoff time.Duration
}

// DefaultCacheDir is $HL_CHART_CACHE, else <user cache dir>/hl/charts.
func DefaultCacheDir() string {
	if d := os.Getenv("HL_CHART_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "hl", "charts")
	}
	return filepath.Join(os.TempDir(), "hl", "charts")
}

// settings are Options resolved against the repository and hl.yaml.
type settings struct {
	Options
	dir        string
	cacheDir   string
	doc        *config.Document
	homelab    *config.Homelab
	configRel  string
	configErrs []Finding
	severity   map[string]Severity
	kube       chartutil.KubeVersion
	mirrors    []config.Mirror
	privileged []string
	log        io.Writer
}

func resolve(opts Options) (*settings, error) {
	s := &settings{Options: opts, log: opts.Log}
	if s.log == nil {
		s.log = io.Discard
	}
	dir := opts.Dir
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	s.dir = abs
	s.cacheDir = opts.CacheDir
	if s.cacheDir == "" {
		s.cacheDir = DefaultCacheDir()
	}
	if s.Jobs <= 0 {
		s.Jobs = runtime.GOMAXPROCS(0)
	}

	cfgPath := opts.ConfigFile
	if cfgPath == "" {
		cfgPath = filepath.Join(abs, config.FileName)
	}
	s.configRel = relTo(abs, cfgPath)
	if _, err := os.Stat(cfgPath); err == nil {
		doc, probs, _ := config.Load(cfgPath)
		for _, p := range probs {
			sev := Severity("")
			if p.Severity == config.SeverityWarning {
				sev = SeverityWarning
			}
			s.configErrs = append(s.configErrs, Finding{
				Policy: PolicySchema, Severity: sev, File: s.configRel, Line: p.Line,
				Path: p.Path, Message: p.Message,
			})
		}
		if doc != nil && doc.Homelab != nil {
			s.doc, s.homelab = doc, doc.Homelab
		}
	} else if opts.ConfigFile != "" {
		return nil, err
	}

	// Severities: defaults, then hl.yaml, then the options.
	s.severity = map[string]Severity{}
	for _, p := range Policies {
		s.severity[p.ID] = p.Default
	}
	if s.homelab != nil {
		for id, v := range s.homelab.Spec.Validation.Policies {
			if _, ok := LookupPolicy(id); !ok {
				line := s.doc.PosOf("spec.validation.policies." + id).Line
				s.configErrs = append(s.configErrs, Finding{Policy: PolicySchema, File: s.configRel, Line: line,
					Path: "spec.validation.policies." + id, Message: fmt.Sprintf("unknown policy %q (known: %s)", id, strings.Join(PolicyIDs(), ", "))})
				continue
			}
			if sev, err := ParseSeverity(v); err == nil {
				s.severity[id] = sev
			}
		}
		s.privileged = append(s.privileged, s.homelab.Spec.Validation.PrivilegedAllowed...)
	}
	var bad []error
	for id, v := range opts.Policies {
		if _, ok := LookupPolicy(id); !ok {
			bad = append(bad, fmt.Errorf("unknown policy %q (known: %s)", id, strings.Join(PolicyIDs(), ", ")))
			continue
		}
		sev, err := ParseSeverity(v)
		if err != nil {
			bad = append(bad, fmt.Errorf("policy %s: %w", id, err))
			continue
		}
		s.severity[id] = sev
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	s.privileged = append(s.privileged, opts.PrivilegedAllowed...)

	s.mirrors = append(s.mirrors, opts.Mirrors...)
	if s.homelab != nil {
		s.mirrors = append(s.mirrors, s.homelab.Spec.Mirrors.Charts...)
	}

	kv := opts.KubeVersion
	if kv == "" && s.homelab != nil {
		kv = s.homelab.Spec.Kubernetes.K3sVersion
	}
	s.kube = chartutil.DefaultCapabilities.KubeVersion
	if kv != "" {
		if i := strings.IndexByte(kv, '+'); i >= 0 {
			kv = kv[:i]
		}
		v, err := chartutil.ParseKubeVersion(kv)
		if err != nil {
			return nil, fmt.Errorf("kubernetes version %q: %w", kv, err)
		}
		s.kube = *v
	}
	return s, nil
}

// relTo returns p relative to dir with forward slashes (p itself when it is
// outside dir).
func relTo(dir, p string) string {
	r, err := filepath.Rel(dir, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}
