// Package wizard owns `hl init`: the huh forms that ask for an hl.yaml
// (basics, network, nodes, OS, apps, forge, secrets, bot, then a review),
// inline validation with exactly the messages of `hl config validate`
// (every check runs config.Parse on the candidate file), editing an
// existing hl.yaml in its YAML node tree so comments and sections the
// wizard does not ask about survive, the user's age identity, and the
// first render. The forms run as a terminal UI or, in huh's accessible
// mode, as plain line prompts that also work with piped input.
package wizard

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/charmbracelet/huh"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
)

//go:embed skeleton.yaml
var skeleton []byte

// Errors Init returns when nothing was written.
var (
	ErrAborted    = errors.New("aborted: nothing written")
	ErrInputEnded = errors.New("input ended before the wizard finished: nothing written")
)

// InvalidError is returned when a non-interactive init would write an
// invalid hl.yaml; nothing was written.
type InvalidError struct{ Problems config.Problems }

func (e *InvalidError) Error() string {
	return fmt.Sprintf("the resulting hl.yaml has %s: nothing written", plural(len(e.Problems.Errors()), "error"))
}

// InitOptions configure one `hl init`.
type InitOptions struct {
	// Dir receives hl.yaml and the rendered repo (default ".").
	Dir string
	// ConfigFile prefills the answers (default: Dir/hl.yaml when it
	// exists, else a fresh skeleton, or the embedded example with
	// Defaults).
	ConfigFile string
	// Defaults takes every prefilled answer without asking.
	Defaults bool
	// Accessible runs huh's accessible mode: one plain prompt per line.
	Accessible bool
	// AgeKey is the age identity file (default ConfigDir/hl/age.key). An
	// existing file is reused, never overwritten.
	AgeKey string
	// Bootstrap seeds the forge after rendering (also asked for Gitea).
	Bootstrap bool
	// NoRender writes hl.yaml (and the identity) only.
	NoRender bool

	In          io.Reader
	Out, ErrOut io.Writer
	Env         Env

	// BootstrapGitea is called after rendering when bootstrap was chosen
	// and the forge is Gitea. It is a hook until the bootstrap package
	// lands; nil prints the command to run instead.
	BootstrapGitea func(ctx context.Context, dir string, h *config.Homelab) error
}

// InitResult says what Init did.
type InitResult struct {
	// Path is the hl.yaml written.
	Path    string
	Written bool
	// Problems of the written file (warnings; errors only when the user
	// chose to write anyway).
	Problems config.Problems
	Identity *Identity
	Rendered bool
	Homelab  *config.Homelab
}

// source is the document the wizard edits.
type source struct {
	doc   *config.Document
	name  string
	fresh bool // the built-in skeleton, prefilled from Env
	// existing: the target hl.yaml was there before this run (its repo
	// may hold credentials set since it was first rendered).
	existing bool
}

func loadSource(opts *InitOptions, target string) (*source, error) {
	var (
		name string
		data []byte
		err  error
	)
	fresh, existing := false, false
	switch {
	case opts.ConfigFile != "":
		name = opts.ConfigFile
		data, err = os.ReadFile(name)
	case fileExists(target):
		name, existing = target, true
		data, err = os.ReadFile(name)
	case opts.Defaults:
		name, data = "example.yaml", config.Example()
	default:
		name, data, fresh = target, skeleton, true
	}
	if err != nil {
		return nil, err
	}
	doc, probs := config.Parse(name, data)
	if doc.Root == nil || len(doc.Root.Content) == 0 || doc.Homelab == nil {
		return nil, fmt.Errorf("%s cannot be edited by hl init; fix it by hand first:\n%s", name, probs.Error())
	}
	return &source{doc: doc, name: name, fresh: fresh, existing: existing}, nil
}

// wizard is one run's state.
type wizard struct {
	opts    *InitOptions
	acc     bool
	in      io.Reader
	lr      *lineReader
	out     io.Writer
	src     *source
	file    string
	a       *Answers
	keyPath string
}

// Init runs `hl init`: prefill from the existing hl.yaml (or --config, the
// skeleton, or the example with Defaults), ask (unless Defaults), review,
// then write the age identity and hl.yaml and render the repo.
func Init(ctx context.Context, opts InitOptions) (*InitResult, error) {
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.ErrOut == nil {
		opts.ErrOut = opts.Out
	}
	if opts.In == nil {
		opts.In = os.Stdin
	}
	target := filepath.Join(opts.Dir, config.FileName)
	src, err := loadSource(&opts, target)
	if err != nil {
		return nil, err
	}
	w := &wizard{opts: &opts, acc: opts.Accessible, in: opts.In, out: opts.Out, src: src, file: target}
	if w.acc {
		w.lr = newLineReader(opts.In)
		w.in = w.lr
	}
	w.keyPath = opts.AgeKey
	if w.keyPath == "" && opts.Env.ConfigDir != "" {
		w.keyPath = secrets.IdentityFileIn(opts.Env.ConfigDir)
	}
	w.a = answersFrom(src.doc.Homelab, src.doc.Root)
	if src.fresh {
		w.prefillFresh()
	}
	w.a.Bootstrap = opts.Bootstrap

	switch {
	case opts.Defaults:
		fmt.Fprintf(w.out, "hl init: taking every answer from %s (--defaults)\n", displayName(src.name))
		if err := w.defaultIdentity(); err != nil {
			return nil, err
		}
	default:
		if err := w.interactive(ctx); err != nil {
			return nil, err
		}
	}
	return w.commit(ctx, target)
}

func displayName(name string) string {
	if name == "example.yaml" {
		return "the embedded example"
	}
	return name
}

// prefillFresh suggests values for a new hl.yaml from the machine.
func (w *wizard) prefillFresh() {
	a, env := w.a, w.opts.Env
	a.Timezone = config.DefaultTimezone
	if env.Timezone != "" {
		a.Timezone = env.Timezone
	}
	a.SSHKey = env.SSHKey
	if env.LAN.IsValid() {
		a.NodeCIDR = env.LAN.String()
		w.suggestNetwork()
	}
}

// suggestNetwork fills the network addresses that are empty or outside
// the node CIDR with the suggestions for it.
func (w *wizard) suggestNetwork() {
	a := w.a
	s, err := config.SuggestNetwork(a.NodeCIDR)
	if err != nil {
		return
	}
	fix := func(v *string, sugg string) {
		if !config.InCIDR(a.NodeCIDR, *v) {
			*v = sugg
		}
	}
	fix(&a.Gateway, s.Gateway)
	fix(&a.ControlPlaneVIP, s.ControlPlaneVIP)
	fix(&a.LoadBalancerRange, s.LoadBalancerRange)
	if h := w.opts.Env.Host; h.IsValid() && config.InCIDR(a.NodeCIDR, h.String()) && h.String() != a.Gateway {
		s.PXEAddress = h.String()
	}
	fix(&a.PXEAddress, s.PXEAddress)
	for i := range a.Nodes {
		if n := &a.Nodes[i]; !config.InCIDR(a.NodeCIDR, n.IP) {
			used := []string{a.Gateway, a.ControlPlaneVIP, a.PXEAddress}
			for _, o := range a.Nodes {
				used = append(used, o.IP)
			}
			n.IP = s.NodeIP(used)
		}
	}
	if a.DNSServers != "" && !slices.ContainsFunc(splitList(a.DNSServers), func(d string) bool { return config.InCIDR(a.NodeCIDR, d) }) {
		// Servers outside the LAN (1.1.1.1) are fine; only clear a list
		// that pointed at the old LAN's private addresses.
		if isPrivateList(a.DNSServers) {
			a.DNSServers = ""
		}
	}
}

// candidate applies the answers to a copy of the source tree and parses
// the result exactly as `hl config validate` would.
func (w *wizard) candidate() ([]byte, *config.Document, config.Problems) {
	root := cloneNode(w.src.doc.Root)
	apply(root, w.a)
	data, err := encode(root)
	if err != nil {
		return nil, nil, config.Problems{{File: w.file, Message: err.Error(), Severity: config.SeverityError}}
	}
	doc, probs := config.Parse(w.file, data)
	return data, doc, probs
}

// check returns the errors at paths (or inside them) of the candidate
// file, worded as `hl config validate` words them.
func (w *wizard) check(paths ...string) error {
	return w.checkFn(func(p config.Problem) bool { return len(config.Problems{p}.At(paths...)) > 0 })
}

func (w *wizard) checkFn(match func(config.Problem) bool) error {
	_, _, probs := w.candidate()
	var msgs []string
	for _, p := range probs.Errors() {
		if match(p) {
			msgs = append(msgs, p.Path+": "+p.Message)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// encode writes a node tree as hl.yaml bytes, schema modeline first.
func encode(root *yaml.Node) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("encode hl.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode hl.yaml: %w", err)
	}
	return withModeline(buf.Bytes(), config.SchemaModeline), nil
}

// form runs one huh form in the chosen mode.
func (w *wizard) form(groups ...*huh.Group) error {
	f := huh.NewForm(groups...).
		WithAccessible(w.acc).
		WithInput(w.in).
		WithOutput(w.out).
		WithShowHelp(!w.acc)
	err := f.Run()
	switch {
	case errors.Is(err, huh.ErrUserAborted):
		return ErrAborted
	case err != nil:
		return err
	case w.lr != nil && w.lr.eof:
		return ErrInputEnded
	}
	w.a.trim()
	return nil
}

// ask runs the form build returns until check passes. huh's accessible
// selects would loop forever on a failing Validate at end of input, so
// choices are checked here, after the form, and asked again.
func (w *wizard) ask(build func() []*huh.Group, check func() error) error {
	for {
		if err := w.form(build()...); err != nil {
			return err
		}
		if check == nil {
			return nil
		}
		err := check()
		if err == nil {
			return nil
		}
		fmt.Fprintln(w.out, err)
	}
}

func (a *Answers) trim() {
	for _, p := range []*string{&a.Name, &a.Domain, &a.Timezone, &a.Email, &a.NodeCIDR, &a.Gateway, &a.DNSServers,
		&a.LoadBalancerRange, &a.ControlPlaneVIP, &a.PXEAddress, &a.SSHKey, &a.ForgeURL, &a.ForgeOwner, &a.ForgeRepo, &a.BotSchedule} {
		*p = strings.TrimSpace(*p)
	}
	for i := range a.Nodes {
		n := &a.Nodes[i]
		for _, p := range []*string{&n.Name, &n.MAC, &n.IP, &n.Disk, &n.Interface} {
			*p = strings.TrimSpace(*p)
		}
		n.MAC = normMAC(n.MAC)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
