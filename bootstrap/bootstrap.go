package bootstrap

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"code.gitea.io/sdk/gitea"
	"filippo.io/age"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/forgehttp"
	"hl.dev/hl/secrets"
)

// DefaultBotUser is the bot account's name unless Options.BotUser says
// otherwise.
const DefaultBotUser = "hl-bot"

// Options configure one bootstrap run.
type Options struct {
	// Dir is the rendered repository: hl.yaml and .hl/state.yaml inside.
	Dir string
	// URL, Owner, Repo and Branch override hl.yaml's spec.forge (url,
	// owner, repo, defaultBranch). The files written into the repo keep
	// using spec.forge, which is what the rendered templates point at.
	URL, Owner, Repo, Branch string
	// Token is a Gitea access token of a site administrator: it creates
	// the organisation, the repository and the bot user.
	Token string
	// BotUser names the bot account (default DefaultBotUser).
	BotUser string
	// Adopt manages an existing non-empty repository that hl did not
	// create; without it such a repository is refused.
	Adopt bool
	// DryRun checks every step and changes nothing.
	DryRun bool
	// Identities decrypt credentials stored by an earlier run, so they
	// are verified (bot token) and reused (webhook secrets) instead of
	// replaced. Optional.
	Identities []age.Identity
	// HTTPClient carries every Gitea API call (default: a client with a
	// 60s timeout that retries transient failures, forgehttp). A given
	// client is used without retries (tests inject faults through it).
	// Either way a server's error answer becomes one line naming the
	// request; its body goes to Logger at debug level. The git push uses
	// go-git's own HTTP transport.
	HTTPClient *http.Client
	// Logger gets the debug log (default slog.Default()).
	Logger *slog.Logger
	// Rand is the entropy for keys and secrets (crypto/rand when nil).
	Rand io.Reader
	// Now is the clock for generated-at dates and the commit time.
	Now func() time.Time
	// Progress, when set, is called when a step starts (StatusRunning)
	// and when it ends.
	Progress func(StepResult)
	// ServiceURLs overrides, by catalog component, the base URL its
	// webhook goes to (tests: the component runs on loopback).
	ServiceURLs map[string]string
}

// Status is the outcome of one step.
type Status string

// Step statuses.
const (
	StatusRunning   Status = "running" // only reported through Progress
	StatusUnchanged Status = "unchanged"
	StatusCreated   Status = "created"
	StatusUpdated   Status = "updated"
	StatusPlanned   Status = "planned" // dry run: Apply would run
	StatusSkipped   Status = "skipped" // not applicable to this config
	StatusFailed    Status = "failed"
)

// StepResult is what one step found or did.
type StepResult struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Detail says what was found, done or (dry run) would be done.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
	// Files lists repo files the step wrote.
	Files []string `json:"files,omitempty"`
}

// Result is the outcome of a run.
type Result struct {
	URL    string `json:"url"`
	Owner  string `json:"owner"`
	Repo   string `json:"repo"`
	Branch string `json:"branch"`
	// HTMLURL is the repository's web page, once it exists.
	HTMLURL string `json:"htmlURL,omitempty"`
	// RepoURL is the URL Argo CD clones with (config ClusterRepoURL).
	RepoURL string `json:"repoURL"`
	DryRun  bool   `json:"dryRun"`
	// Changed is set when any step applied (or tried to apply) a change.
	Changed  bool         `json:"changed"`
	Steps    []StepResult `json:"steps"`
	Warnings []string     `json:"warnings,omitempty"`
}

// Sentinel errors, wrapped with details.
var (
	// ErrAuth: Gitea rejected the token. Nothing was changed.
	ErrAuth = errors.New("gitea rejected the token")
	// ErrNotManaged: the repository exists, is not empty and was not
	// created by hl. Nothing was changed.
	ErrNotManaged = errors.New("repository exists, is not empty and was not created by hl")
	// ErrNotAdmin: a step needs a site administrator's token.
	ErrNotAdmin = errors.New("token user is not a Gitea site administrator")
	// ErrNotRendered: Dir holds no rendered repository.
	ErrNotRendered = errors.New("no rendered repository")
)

// step is one idempotent unit of a bootstrap.
type step struct {
	name string
	// skip, when set, says why the step does not apply to this config.
	skip string
	// check reports whether the step is done and describes what was found
	// (done) or what apply would do (not done).
	check func(ctx context.Context) (done bool, detail string, err error)
	// apply does it; it runs only after check said not done.
	apply func(ctx context.Context) (Status, string, error)
}

// runner holds one run's state; steps fill in what later steps need.
type runner struct {
	ctx    context.Context // of Run: every API call carries it
	opts   Options
	h      *config.Homelab
	forge  config.Forge // effective: hl.yaml's spec.forge with overrides
	apiURL string
	api    *gitea.Client
	me     *gitea.User
	// recipients encrypt the files written into the repo.
	recipients []string
	today      string
	res        *Result
	// files collects repo files written by the current step.
	files []string

	repo *gitea.Repository // nil until it exists
	tree *localTree        // built by the push step
}

// Run bootstraps the rendered repository in opts.Dir into Gitea. The
// Result lists every step, also when an error stopped the run.
func Run(ctx context.Context, opts Options) (*Result, error) {
	r, err := newRunner(opts)
	if err != nil {
		return nil, err
	}
	r.ctx = ctx
	if err := r.connect(ctx); err != nil {
		return r.res, err
	}
	for _, s := range r.steps() {
		if err := r.runStep(ctx, s); err != nil {
			return r.res, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return r.res, nil
}

func newRunner(opts Options) (*runner, error) {
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BotUser == "" {
		opts.BotUser = DefaultBotUser
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: &forgehttp.Transport{Logger: opts.Logger}}
	} else {
		hc := *opts.HTTPClient
		hc.Transport = &forgehttp.Transport{Base: hc.Transport, Attempts: 1, Logger: opts.Logger}
		opts.HTTPClient = &hc
	}
	if opts.Token == "" {
		return nil, errors.New("no Gitea token given")
	}
	cfgPath := filepath.Join(opts.Dir, config.FileName)
	if _, err := os.Stat(filepath.Join(opts.Dir, ".hl", "state.yaml")); err != nil {
		return nil, fmt.Errorf("%w in %s (no .hl/state.yaml): run `hl render` first", ErrNotRendered, opts.Dir)
	}
	doc, _, err := config.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", cfgPath, err)
	}
	h := doc.Homelab
	f := h.Spec.Forge
	if f.Type != "" && f.Type != config.ForgeGitea {
		return nil, fmt.Errorf("%s: spec.forge.type is %q; hl bootstrap gitea needs gitea", cfgPath, f.Type)
	}
	override := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	override(&f.URL, opts.URL)
	override(&f.Owner, opts.Owner)
	override(&f.Repo, opts.Repo)
	override(&f.DefaultBranch, opts.Branch)
	if f.DefaultBranch == "" {
		f.DefaultBranch = "main"
	}
	if f.URL == "" || f.Owner == "" || f.Repo == "" {
		return nil, errors.New("forge URL, owner and repo are needed (spec.forge or --url/--owner/--repo)")
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("forge URL %q is not an http(s) URL", f.URL)
	}
	if len(h.Spec.Secrets.AgeRecipients) == 0 {
		return nil, fmt.Errorf("%s: spec.secrets.ageRecipients is empty; the credentials bootstrap stores need a recipient", cfgPath)
	}
	r := &runner{
		opts:       opts,
		h:          h,
		forge:      f,
		apiURL:     strings.TrimSuffix(f.URL, "/"),
		recipients: h.Spec.Secrets.AgeRecipients,
		today:      opts.Now().UTC().Format(secrets.DateLayout),
	}
	r.res = &Result{
		URL: r.apiURL, Owner: f.Owner, Repo: f.Repo, Branch: f.DefaultBranch,
		RepoURL: h.ClusterRepoURL(), DryRun: opts.DryRun, Steps: []StepResult{},
	}
	spec := h.Spec.Forge
	if !strings.EqualFold(strings.TrimSuffix(spec.URL, "/"), r.apiURL) || spec.Owner != f.Owner || spec.Repo != f.Repo {
		r.warn("bootstrapping %s/%s/%s while hl.yaml's spec.forge says %s/%s/%s: the rendered Argo CD URLs (and the repository credentials) point at hl.yaml's",
			r.apiURL, f.Owner, f.Repo, strings.TrimSuffix(spec.URL, "/"), spec.Owner, spec.Repo)
	}
	return r, nil
}

func (r *runner) connect(ctx context.Context) error {
	api, err := gitea.NewClient(r.apiURL,
		gitea.SetToken(r.opts.Token),
		gitea.SetHTTPClient(r.opts.HTTPClient),
		gitea.SetContext(ctx),
		gitea.SetUserAgent("hl-bootstrap"),
		// Versions are checked once below, not lazily before some calls.
		gitea.SetGiteaVersion(""),
	)
	if err != nil {
		return err
	}
	r.api = api
	me, resp, err := api.GetMyUserInfo()
	switch code := statusOf(resp); {
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w at %s (HTTP 401): check HL_GITEA_TOKEN; nothing was changed", ErrAuth, r.apiURL)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w at %s (HTTP 403: %v): the token needs the scopes write:admin, write:organization, write:repository, write:issue and read:user; nothing was changed", ErrAuth, r.apiURL, err)
	case err != nil:
		return apiErr("connect to Gitea at "+r.apiURL, resp, err)
	}
	r.me = me
	return r.checkAdmin()
}

// checkAdmin fails early, before anything is created, when the bot user or
// its token still has to be made and the token is not a site admin's:
// only an admin creates users and sets the password the bot's token is
// minted with.
func (r *runner) checkAdmin() error {
	if r.me.IsAdmin || !r.h.Enabled("hl-bot") {
		return nil
	}
	need := ""
	if ok, err := r.fileExists(BotTokenPath); err != nil {
		return err
	} else if !ok {
		need = "minting the bot's token"
	}
	if _, resp, err := r.api.GetUserInfo(r.opts.BotUser); statusOf(resp) == http.StatusNotFound {
		need = "creating the bot user " + r.opts.BotUser
	} else if err != nil {
		return apiErr("get user "+r.opts.BotUser, resp, err)
	}
	if need == "" {
		return nil
	}
	return fmt.Errorf("%w (%s): %s needs one; nothing was changed", ErrNotAdmin, r.me.UserName, need)
}

func (r *runner) runStep(ctx context.Context, s step) error {
	r.files = nil
	return runStep(ctx, s, stepEnv{dryRun: r.opts.DryRun, progress: r.opts.Progress, changed: &r.res.Changed, steps: &r.res.Steps,
		files: func() []string { return r.files }})
}

// stepEnv is where runStep reports: the forge and the cluster bootstrap
// run their steps the same way.
type stepEnv struct {
	dryRun   bool
	progress func(StepResult)
	changed  *bool
	steps    *[]StepResult
	// files lists the repo files the step wrote (nil: none tracked).
	files func() []string
}

// runStep checks a step, applies it when needed (not in a dry run) and
// records the outcome.
func runStep(ctx context.Context, s step, env stepEnv) error {
	sr := StepResult{Name: s.name}
	emit := func() {
		if env.progress != nil {
			env.progress(sr)
		}
	}
	if s.skip != "" {
		sr.Status, sr.Detail = StatusSkipped, s.skip
		*env.steps = append(*env.steps, sr)
		emit()
		return nil
	}
	sr.Status = StatusRunning
	emit()
	done, detail, err := s.check(ctx)
	switch {
	case err != nil:
	case done:
		sr.Status, sr.Detail = StatusUnchanged, detail
	case env.dryRun:
		sr.Status, sr.Detail = StatusPlanned, detail
	default:
		// A failed apply may have changed something before failing.
		*env.changed = true
		sr.Status, sr.Detail, err = s.apply(ctx)
	}
	if env.files != nil {
		sr.Files = env.files()
	}
	if err != nil {
		sr.Status, sr.Error = StatusFailed, err.Error()
	}
	*env.steps = append(*env.steps, sr)
	emit()
	return err
}

func (r *runner) warn(format string, args ...any) {
	r.res.Warnings = append(r.res.Warnings, fmt.Sprintf(format, args...))
}

// statusOf is the HTTP status of an SDK response, 0 without one.
func statusOf(resp *gitea.Response) int {
	if resp == nil || resp.Response == nil {
		return 0
	}
	return resp.StatusCode
}

// apiErr adds the operation and HTTP status to an SDK error.
func apiErr(op string, resp *gitea.Response, err error) error {
	if code := statusOf(resp); code != 0 {
		return fmt.Errorf("%s: HTTP %d: %w", op, code, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
