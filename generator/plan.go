package generator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
)

// File is one entry of the render plan.
type File struct {
	Path    string
	Content []byte
	Mode    fs.FileMode
	// Secret is set for SOPS files: Content is ciphertext decided by
	// resolveSecrets, Spec says how to (re)generate the values.
	Secret *SecretFile
}

// SecretFile is a declared secret waiting to be generated or reused.
type SecretFile struct {
	// Spec.CopyOf is set on a copy: a value two namespaces need (an OIDC
	// client secret in Dex and in the client app).
	Spec secrets.Spec
	// Source is the declaration it came from (for errors).
	Source string
	// ProvidedBy names who writes this secret (e.g. "hl bootstrap gitea"):
	// hl never generates it, keeps it when present and warns when missing.
	ProvidedBy string
}

// Plan is every file a render produces, keyed by slash path.
type Plan struct {
	Files map[string]*File
	// Recipients are the age recipients secrets are encrypted for.
	Recipients []string
	data       *Data
}

// Paths returns the plan's paths, sorted.
func (p *Plan) Paths() []string {
	out := make([]string, 0, len(p.Files))
	for k := range p.Files {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Component is a catalog component as templates see it.
type Component struct {
	templates.Component
	Enabled bool
	// Hostname is the component's FQDN (empty when it has no UI).
	Hostname string
	// URL is https://Hostname.
	URL string
	// Values are the hl.yaml overrides, merged over values.yaml.
	Values map[string]any
}

// Data is what every template sees.
type Data struct {
	Homelab *config.Homelab
	Spec    *config.Spec
	Catalog *templates.Catalog
	// Components holds every catalog component by name.
	Components map[string]*Component
	// Enabled lists enabled components by layer, then name.
	Enabled []*Component
	// Component is set for files under a component directory.
	Component *Component
	// Node is set for per-node files (a path segment "_node_").
	Node *config.Node
	// NodeIndex is Node's position in spec.metal.nodes.
	NodeIndex int
	// FirstServer is the node that initialises the cluster.
	FirstServer config.Node
	// OS is the pinned netboot image for spec.metal.os.
	OS templates.OSImage
}

// layers are the Argo CD app folders, in dependency order.
var layers = []string{"system", "platform", "apps"}

func newData(h *config.Homelab) (*Data, error) {
	cat, err := templates.LoadCatalog()
	if err != nil {
		return nil, err
	}
	d := &Data{Homelab: h, Spec: &h.Spec, Catalog: cat, Components: map[string]*Component{}}
	for _, c := range cat.Components {
		comp := &Component{Component: c, Enabled: h.Enabled(c.Name)}
		comp.Values = h.Spec.Apps[c.Name].Values
		comp.Hostname = h.Hostname(c.Name)
		if comp.Hostname != "" {
			comp.URL = "https://" + comp.Hostname
		}
		d.Components[c.Name] = comp
	}
	for _, l := range layers {
		for _, name := range cat.Names() {
			if c := d.Components[name]; c.Layer == l && c.Enabled {
				d.Enabled = append(d.Enabled, c)
			}
		}
	}
	if s := h.Servers(); len(s) > 0 {
		d.FirstServer = s[0]
	}
	d.OS, _ = cat.OSImage(h.Spec.Metal.OS.Name, h.Spec.Metal.OS.Version)
	return d, nil
}

// Template file conventions in the tree:
const (
	tmplSuffix   = ".tmpl"         // executed with text/template, suffix dropped
	nodeSegment  = "_node_"        // path segment expanded once per node
	secretsDecl  = "_secrets.yaml" // secret declarations (after .tmpl), not output
	secretsDir   = "secrets"       // where a folder's declared secrets are written
	sopsSuffix   = ".sops.yaml"
	keepEmptyTag = "# hl:keep-empty"
)

// BuildPlan executes the template tree for h. It reads nothing from disk
// but the embedded (or given) templates, so it is pure.
func BuildPlan(_ context.Context, h *config.Homelab, opts Options) (*Plan, error) {
	data, err := newData(h)
	if err != nil {
		return nil, err
	}
	tree := opts.Templates
	var paths []string
	err = fs.WalkDir(tree, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk templates: %w", err)
	}
	sort.Strings(paths)
	plan := &Plan{Files: map[string]*File{}, Recipients: h.Spec.Secrets.AgeRecipients, data: data}
	var errs []error
	for _, p := range paths {
		comp, ok := componentOf(p, data)
		if !ok {
			continue // component disabled
		}
		src, err := fs.ReadFile(tree, p)
		if err != nil {
			return nil, err
		}
		mode := fs.FileMode(0o644)
		if info, err := fs.Stat(tree, p); err == nil && info.Mode()&0o111 != 0 {
			mode = 0o755
		}
		targets := []int{-1}
		if hasSegment(p, nodeSegment) {
			targets = targets[:0]
			for i := range h.Spec.Metal.Nodes {
				targets = append(targets, i)
			}
		}
		for _, ni := range targets {
			d := *data
			d.Component = comp
			out := p
			if ni >= 0 {
				n := h.Spec.Metal.Nodes[ni]
				d.Node, d.NodeIndex = &n, ni
				out = replaceSegment(out, nodeSegment, n.Name)
			}
			content := src
			if strings.HasSuffix(out, tmplSuffix) {
				out = strings.TrimSuffix(out, tmplSuffix)
				content, err = execute(p, src, &d)
				if err != nil {
					errs = append(errs, err)
					continue
				}
			}
			if path.Base(out) == secretsDecl {
				if err := declareSecrets(plan, h, path.Dir(out), p, content); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			if len(bytes.TrimSpace(content)) == 0 {
				continue // a template that rendered nothing is a file that does not apply
			}
			content = bytes.ReplaceAll(content, []byte(keepEmptyTag+"\n"), nil)
			if _, dup := plan.Files[out]; dup {
				errs = append(errs, fmt.Errorf("template %s: %s is rendered twice", p, out))
				continue
			}
			plan.Files[out] = &File{Path: out, Content: content, Mode: mode}
		}
	}
	if len(errs) > 0 {
		return nil, joinErrs(errs)
	}
	addAppFiles(plan, data)
	if err := mergeValues(plan, data); err != nil {
		return nil, err
	}
	plan.Files[".sops.yaml"] = &File{Path: ".sops.yaml", Content: secrets.SopsConfig(h.Spec.Secrets.AgeRecipients), Mode: 0o644}
	return plan, nil
}

func execute(name string, src []byte, d *Data) ([]byte, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs()).Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// componentOf returns the component a template path belongs to, and false
// when that component is disabled. Paths outside layer folders belong to
// no component and always render.
func componentOf(p string, d *Data) (*Component, bool) {
	parts := strings.Split(p, "/")
	if len(parts) < 3 {
		return nil, true
	}
	for _, l := range layers {
		if parts[0] == l {
			c, ok := d.Components[parts[1]]
			if !ok {
				return nil, false // a template for a component the catalog lacks: never rendered (caught by tests)
			}
			return c, c.Enabled
		}
	}
	return nil, true
}

func hasSegment(p, seg string) bool {
	for _, s := range strings.Split(p, "/") {
		if s == seg || strings.HasPrefix(s, seg+".") {
			return true
		}
	}
	return false
}

func replaceSegment(p, seg, with string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if s == seg {
			parts[i] = with
		} else if strings.HasPrefix(s, seg+".") {
			parts[i] = with + strings.TrimPrefix(s, seg)
		}
	}
	return strings.Join(parts, "/")
}

// secretDecl is one entry of a _secrets.yaml declaration.
type secretDecl struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
	Type      string `yaml:"type,omitempty"`
	// Keys maps each key to its generator (kind, length, charset, ...).
	Keys map[string]secrets.Generator `yaml:"keys"`
	// RotateAfter overrides spec.secrets.rotateAfter; "never" disables.
	RotateAfter string `yaml:"rotateAfter,omitempty"`
	// Rotatable defaults to true; false when the value also lives in an
	// app's database.
	Rotatable *bool             `yaml:"rotatable,omitempty"`
	Consumers []string          `yaml:"consumers,omitempty"`
	Labels    map[string]string `yaml:"labels,omitempty"`
	// Copies are further Secrets holding the same values (rotated
	// together), e.g. a client secret both Dex and the client app read.
	Copies []secretCopy `yaml:"copies,omitempty"`
	// Provided marks a secret another step writes (its value is not
	// hl's to generate), naming that step; providedKeys lists its keys.
	Provided     string   `yaml:"provided,omitempty"`
	ProvidedKeys []string `yaml:"providedKeys,omitempty"`
}

type secretCopy struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels,omitempty"`
	// Keys maps a key of the copy to the key of the declared secret.
	Keys map[string]string `yaml:"keys"`
	// Dir is the repo folder the copy is written to (default: the
	// declaring folder); a copy for another component goes to that
	// component's folder so its secrets Application applies it.
	Dir string `yaml:"dir,omitempty"`
	// Consumers are the workloads that read the copy (restarted when its
	// values change, as a secret's own consumers are).
	Consumers []string `yaml:"consumers,omitempty"`
}

// declareSecrets reads a rendered _secrets.yaml (a YAML list of
// declarations) and adds one SOPS file per secret to dir/secrets/.
func declareSecrets(plan *Plan, h *config.Homelab, dir, source string, content []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(content))
	dec.KnownFields(true)
	var decls []secretDecl
	if err := dec.Decode(&decls); err != nil && !errors.Is(err, io.EOF) {
		// EOF: the template declares nothing for this homelab.
		return fmt.Errorf("secrets declared in %s: %w", source, err)
	}
	for _, d := range decls {
		if d.Provided != "" {
			p := path.Join(dir, secretsDir, d.Name+sopsSuffix)
			if len(d.Keys) > 0 || len(d.Copies) > 0 {
				return fmt.Errorf("secrets declared in %s: %s: a provided secret has providedKeys, not keys or copies", source, d.Name)
			}
			if _, dup := plan.Files[p]; dup {
				return fmt.Errorf("secrets declared in %s: %s declared twice", source, p)
			}
			plan.Files[p] = &File{Path: p, Mode: 0o644, Secret: &SecretFile{Spec: secrets.Spec{Name: d.Name, Namespace: d.Namespace}, Source: source, ProvidedBy: d.Provided}}
			continue
		}
		spec := secrets.Spec{Name: d.Name, Namespace: d.Namespace, Type: d.Type, Labels: d.Labels, Consumers: d.Consumers, Rotatable: d.Rotatable == nil || *d.Rotatable}
		ra := string(h.Spec.Secrets.RotateAfter)
		if d.RotateAfter != "" {
			ra = d.RotateAfter
		}
		if ra != "never" {
			dur, err := config.Duration(ra).Parse()
			if err != nil {
				return fmt.Errorf("secrets declared in %s: %s: rotateAfter: %w", source, d.Name, err)
			}
			spec.RotateAfter = dur
		}
		names := make([]string, 0, len(d.Keys))
		for k := range d.Keys {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			spec.Keys = append(spec.Keys, secrets.Key{Name: k, Generator: d.Keys[k]})
		}
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("secrets declared in %s: %s: %w", source, d.Name, err)
		}
		p := path.Join(dir, secretsDir, d.Name+sopsSuffix)
		if _, dup := plan.Files[p]; dup {
			return fmt.Errorf("secrets declared in %s: %s declared twice", source, p)
		}
		plan.Files[p] = &File{Path: p, Mode: 0o644, Secret: &SecretFile{Spec: spec, Source: source}}
		for _, c := range d.Copies {
			cs := secrets.Spec{Name: c.Name, Namespace: c.Namespace, Type: d.Type, Labels: c.Labels, RotateAfter: spec.RotateAfter, Rotatable: spec.Rotatable, Consumers: c.Consumers}
			for _, k := range sortedKeys(c.Keys) {
				g, ok := d.Keys[c.Keys[k]]
				if !ok {
					return fmt.Errorf("secrets declared in %s: copy %s: key %s copies %q, which is not a declared key of %s", source, c.Name, k, c.Keys[k], d.Name)
				}
				cs.Keys = append(cs.Keys, secrets.Key{Name: k, Generator: g})
			}
			cdir := dir
			if c.Dir != "" {
				cdir = c.Dir
			}
			cp := path.Join(cdir, secretsDir, c.Name+sopsSuffix)
			if _, dup := plan.Files[cp]; dup {
				return fmt.Errorf("secrets declared in %s: %s declared twice", source, cp)
			}
			cs.CopyOf, cs.CopyKeys = p, c.Keys
			plan.Files[cp] = &File{Path: cp, Mode: 0o644, Secret: &SecretFile{Spec: cs, Source: source}}
		}
	}
	return nil
}

// addSecretApps writes, for every component secrets folder, the
// secrets/app.yaml the root "secrets" ApplicationSet makes an Application
// of: the component's namespace and layer (its AppProject) and a sync wave
// just before the component's, so its Secrets exist when it starts. The
// folder's SOPS files are decrypted by Argo CD's hl-secrets plugin.
func addSecretApps(plan *Plan, d *Data) {
	dirs := map[string]bool{}
	for _, p := range plan.Paths() {
		f := plan.Files[p]
		if f.Secret == nil {
			continue
		}
		if f.Content == nil {
			delete(plan.Files, p) // a provided secret not written yet
			continue
		}
		dir := path.Dir(p)
		parts := strings.Split(dir, "/")
		if len(parts) != 3 || !isLayer(parts[0]) {
			continue // metal/ secrets are read by hl metal serve, not applied
		}
		dirs[dir] = true
	}
	for dir := range dirs {
		parts := strings.Split(dir, "/")
		c, ok := d.Components[parts[1]]
		if !ok || c.Layer != parts[0] {
			continue
		}
		name := c.Name + "-secrets"
		content := fmt.Sprintf("# Read by the root ApplicationSet \"secrets\" (bootstrap/root.yaml): this folder is\n# the Argo CD Application %q; the hl-secrets plugin decrypts its SOPS files.\nname: %s\nnamespace: %s\nlayer: %s\nsyncWave: %q\n", name, name, c.Namespace, c.Layer, fmt.Sprint(syncWave(c)-1))
		plan.Files[dir+"/app.yaml"] = &File{Path: dir + "/app.yaml", Content: []byte(content), Mode: 0o644}
	}
}

func isLayer(s string) bool {
	for _, l := range layers {
		if s == l {
			return true
		}
	}
	return false
}

func joinErrs(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return fmt.Errorf("render failed:\n  %s", strings.Join(msgs, "\n  "))
}

// isSecretPath reports whether p is a SOPS-encrypted secret file (the
// .sops.yaml config at the root is not).
func isSecretPath(p string) bool {
	return strings.HasSuffix(p, sopsSuffix) && path.Base(p) != sopsSuffix
}

// syncWaves orders layers: system first, then platform, then apps.
var syncWaves = map[string]int{"system": 0, "platform": 10, "apps": 20}

// syncWave is a component's Argo CD sync wave: its layer's, one earlier
// for what everything else needs (CRDs, addresses; Traefik's Middleware
// and IngressRouteTCP CRDs).
func syncWave(c *Component) int {
	wave := syncWaves[c.Layer]
	if c.Name == "argocd" || c.Name == "cert-manager" || c.Name == "metallb" || c.Name == "traefik" {
		wave--
	}
	return wave
}

// addAppFiles writes <layer>/<component>/app.yaml for every enabled
// component with templates: the root ApplicationSet's files generator
// reads it, so a component exists in the cluster exactly when its folder
// has one.
func addAppFiles(plan *Plan, d *Data) {
	for _, c := range d.Enabled {
		dir := c.Layer + "/" + c.Name
		has := false
		for p := range plan.Files {
			if strings.HasPrefix(p, dir+"/") {
				has = true
				break
			}
		}
		if !has {
			continue
		}
		content := fmt.Sprintf("# Read by the root ApplicationSet (bootstrap/root.yaml): this folder is the\n# Argo CD Application %q.\nname: %s\nnamespace: %s\nlayer: %s\nsyncWave: %q\n", c.Name, c.Name, c.Namespace, c.Layer, fmt.Sprint(syncWave(c)))
		plan.Files[dir+"/app.yaml"] = &File{Path: dir + "/app.yaml", Content: []byte(content), Mode: 0o644}
	}
}
