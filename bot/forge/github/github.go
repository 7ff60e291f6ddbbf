// Package github implements forge.Forge on GitHub (github.com or GitHub
// Enterprise) with go-github v60, the REST v3 API.
//
// Every call goes through a bounded, backing-off retrying transport
// (bot/internal/retry: 5xx, 429 and transport errors on idempotent
// requests) and an in-memory ETag cache: a repeated GET carries
// If-None-Match, and GitHub answers an unchanged list with a 304 that does
// not count against the rate limit. Errors name the repository; a 404 wraps
// forge.ErrNotFound. The token is sent as "Authorization: Bearer <token>"
// and never appears in errors.
//
// Mapping to the REST API:
//
//   - FindPR: GET /repos/{o}/{r}/pulls?head={o}:{branch}&state=all, newest
//     with the wanted base. A PR is merged when merged_at is set, closed
//     (by a human, since the bot only closes through ClosePR) when its state
//     is closed and merged_at is null.
//   - CreatePR: POST /repos/{o}/{r}/pulls, then, because that endpoint takes
//     no labels, POST /repos/{o}/{r}/issues/{n}/labels. It looks the head up
//     first (and again after a failed or 422 create), so a retried run never
//     opens a second PR.
//   - ClosePR: POST .../issues/{n}/comments, then PATCH .../pulls/{n}
//     {"state":"closed"}.
//   - CommitStatus: the combined commit status (GET .../commits/{sha}/status)
//     folded with the check runs of the same ref (GET
//     .../commits/{sha}/check-runs): failure beats error beats pending beats
//     success. GitHub reports "pending" for a commit with no status at all;
//     that is StatusNone here.
//   - FindIssue: open issues created by the bot (creator={login}), pull
//     requests skipped, exact title match; UpdateIssue edits it in place.
//
// Unsupported, documented:
//
//   - Auto-merge. GitHub's "merge when checks pass" is the GraphQL mutation
//     enablePullRequestAutoMerge; go-github v60 is REST only. Merge with
//     WhenChecksSucceed therefore merges right away when the PR is open and
//     mergeable and the head's combined status is success, and otherwise
//     returns an error wrapping ErrNotReady (pending checks, mergeability
//     still being computed) or ErrChecksFailed, so the caller can try again
//     on its next run. Nothing is scheduled on GitHub's side.
//   - Merge without WhenChecksSucceed merges now (branch protection still
//     applies on GitHub's side); the head SHA is pinned so a branch pushed
//     in between is not merged blind.
//   - Release listing is not part of forge.Forge; GitHub releases are the
//     github-releases datasource (bot/datasource/github).
//   - GitHub App installation tokens cannot call GET /user; set
//     Options.Login to the app's bot login ("<app>[bot]") for them.
//
// Git over HTTPS (clone/push with go-git) uses basic auth with the user name
// "x-access-token" and the token as password against
// https://github.com/{o}/{r}.git, which works for personal access tokens and
// App installation tokens alike.
package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gh "github.com/google/go-github/v60/github"

	"hl.dev/hl/bot/forge"
	"hl.dev/hl/internal/forgehttp"
)

// Defaults for github.com.
const (
	DefaultAPIURL = "https://api.github.com/"
	DefaultWebURL = "https://github.com"
)

// ErrNotReady is wrapped by Merge when the PR cannot be merged yet (checks
// pending or absent, mergeability not computed): try again later.
var ErrNotReady = errors.New("not ready to merge")

// ErrChecksFailed is wrapped by Merge when the head's checks failed.
var ErrChecksFailed = errors.New("checks failed")

// Options configure New.
type Options struct {
	// APIURL is the REST root (default https://api.github.com/; GitHub
	// Enterprise: https://host/api/v3/).
	APIURL string
	// WebURL is where repositories are cloned from (default
	// https://github.com).
	WebURL             string
	Token, Owner, Repo string
	// Login is the bot's login when GET /user is not available (GitHub App
	// installation tokens); empty = ask GET /user.
	Login string
	// Transport is the base transport under the cache and the retries
	// (tests inject failures here).
	Transport http.RoundTripper
	Attempts  int           // total attempts per request (default 4)
	Backoff   time.Duration // first retry wait, doubled (default 200ms)
	Timeout   time.Duration // per request (default 30s)
	// Logger receives the bodies of the server's error answers at debug
	// level (default slog.Default()).
	Logger *slog.Logger
}

// Forge is one GitHub repository.
type Forge struct {
	opts Options
	c    *gh.Client

	labelMu sync.Mutex // serialises EnsureLabels
	mu      sync.Mutex // guards labels
	labels  map[string]bool
	login   forge.Login
}

var _ forge.Forge = (*Forge)(nil)

// New returns a Forge; it does not contact the server.
func New(opts Options) (*Forge, error) {
	if opts.Owner == "" || opts.Repo == "" {
		return nil, errors.New("github: owner and repo are required")
	}
	if opts.APIURL == "" {
		opts.APIURL = DefaultAPIURL
	}
	if !strings.HasSuffix(opts.APIURL, "/") {
		opts.APIURL += "/"
	}
	api, err := url.Parse(opts.APIURL)
	if err != nil {
		return nil, fmt.Errorf("github: api url: %w", err)
	}
	if opts.WebURL == "" {
		opts.WebURL = DefaultWebURL
	}
	opts.WebURL = strings.TrimSuffix(opts.WebURL, "/")
	if opts.Attempts <= 0 {
		opts.Attempts = 4
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	hc := &http.Client{
		Timeout: opts.Timeout,
		Transport: &etagCache{
			base:    &forgehttp.Transport{Base: opts.Transport, Attempts: opts.Attempts, Backoff: opts.Backoff, Logger: opts.Logger},
			entries: map[string]*cached{},
		},
	}
	c := gh.NewClient(hc)
	if opts.Token != "" {
		c = c.WithAuthToken(opts.Token)
	}
	c.BaseURL = api
	f := &Forge{opts: opts, c: c}
	f.login.Set(opts.Login)
	return f, nil
}

func (f *Forge) repo() string { return f.opts.Owner + "/" + f.opts.Repo }

// wrap turns a go-github error into one naming the repository and the
// operation; 404 wraps forge.ErrNotFound, 5xx says the retries gave up.
func (f *Forge) wrap(what string, resp *gh.Response, err error) error {
	if err == nil {
		return nil
	}
	code := 0
	if resp != nil && resp.Response != nil {
		code = resp.StatusCode
	}
	msg := err.Error()
	var er *gh.ErrorResponse
	if errors.As(err, &er) && er.Message != "" {
		msg = er.Message
	}
	switch {
	case code == http.StatusNotFound:
		return fmt.Errorf("github %s: %s: %w (repository missing, or the token cannot see it)", f.repo(), what, forge.ErrNotFound)
	case code >= 500:
		// forgehttp's one line names the request, status and attempts.
		return fmt.Errorf("github %s: %s: %s", f.repo(), what, msg)
	case code != 0:
		return fmt.Errorf("github %s: %s: HTTP %d: %s", f.repo(), what, code, msg)
	}
	return fmt.Errorf("github %s: %s: %w", f.repo(), what, err)
}

// Name implements forge.Forge.
func (f *Forge) Name() string { return "github" }

// CloneURL implements forge.Forge.
func (f *Forge) CloneURL() string { return f.opts.WebURL + "/" + f.repo() + ".git" }

// Auth implements forge.Forge: x-access-token:<token>.
func (f *Forge) Auth() transport.AuthMethod { return forge.TokenAuth("x-access-token", f.opts.Token) }

// BotLogin implements forge.Forge.
func (f *Forge) BotLogin(ctx context.Context) (string, error) {
	return f.login.Get(func() (string, error) {
		u, resp, err := f.c.Users.Get(ctx, "")
		if err != nil {
			return "", f.wrap("whoami (GET /user; set Options.Login for App tokens)", resp, err)
		}
		return u.GetLogin(), nil
	})
}

// DefaultBranch implements forge.Forge.
func (f *Forge) DefaultBranch(ctx context.Context) (string, error) {
	r, resp, err := f.c.Repositories.Get(ctx, f.opts.Owner, f.opts.Repo)
	if err != nil {
		return "", f.wrap("get repository", resp, err)
	}
	return r.GetDefaultBranch(), nil
}

func toPR(p *gh.PullRequest) forge.PR {
	out := forge.PR{
		Number: p.GetNumber(), Title: p.GetTitle(), Body: p.GetBody(), URL: p.GetHTMLURL(),
		Head: p.GetHead().GetRef(), HeadSHA: p.GetHead().GetSHA(), Base: p.GetBase().GetRef(),
		// List answers carry no mergeable (null = not known): only an
		// explicit false is a conflict.
		Mergeable: p.Mergeable == nil || *p.Mergeable,
		Created:   p.GetCreatedAt().Time,
		Closed:    p.GetClosedAt().Time,
	}
	switch {
	case p.MergedAt != nil || p.GetMerged():
		out.State = forge.StateMerged
	case p.GetState() == "closed":
		out.State = forge.StateClosed
	default:
		out.State = forge.StateOpen
	}
	for _, l := range p.Labels {
		out.Labels = append(out.Labels, l.GetName())
	}
	return out
}

const perPage = 100

// ListPRs implements forge.Forge.
func (f *Forge) ListPRs(ctx context.Context, opts forge.ListOptions) ([]forge.PR, error) {
	state := "all"
	switch opts.State {
	case forge.StateOpen:
		state = "open"
	case forge.StateClosed, forge.StateMerged:
		state = "closed"
	}
	lo := &gh.PullRequestListOptions{State: state, Sort: "created", Direction: "asc", ListOptions: gh.ListOptions{PerPage: perPage}}
	var out []forge.PR
	for {
		prs, resp, err := f.c.PullRequests.List(ctx, f.opts.Owner, f.opts.Repo, lo)
		if err != nil {
			return nil, f.wrap("list pull requests", resp, err)
		}
		for _, p := range prs {
			pr := toPR(p)
			if strings.HasPrefix(pr.Head, opts.HeadPrefix) {
				out = append(out, pr)
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		lo.Page = resp.NextPage
	}
}

// FindPR implements forge.Forge: the newest PR from head (in this
// repository) into base, in any state.
func (f *Forge) FindPR(ctx context.Context, head, base string) (*forge.PR, error) {
	lo := &gh.PullRequestListOptions{Head: f.opts.Owner + ":" + head, State: "all"}
	var best *forge.PR
	for {
		prs, resp, err := f.c.PullRequests.List(ctx, f.opts.Owner, f.opts.Repo, lo)
		if err != nil {
			return nil, f.wrap("find pull request "+head, resp, err)
		}
		for _, p := range prs {
			pr := toPR(p)
			if pr.Head == head && pr.Base == base && (best == nil || pr.Number > best.Number) {
				best = &pr
			}
		}
		if resp.NextPage == 0 {
			break
		}
		lo.Page = resp.NextPage
	}
	if best == nil {
		return nil, fmt.Errorf("github %s: pull request %s → %s: %w", f.repo(), head, base, forge.ErrNotFound)
	}
	return best, nil
}

// CreatePR implements forge.Forge: create, then label through the Issues
// API. An open PR for the same head and base is returned as is.
func (f *Forge) CreatePR(ctx context.Context, n forge.NewPR) (*forge.PR, error) {
	if pr, err := f.FindPR(ctx, n.Head, n.Base); err == nil && pr.State == forge.StateOpen {
		return pr, nil
	} else if err != nil && !errors.Is(err, forge.ErrNotFound) {
		return nil, err
	}
	p, resp, err := f.c.PullRequests.Create(ctx, f.opts.Owner, f.opts.Repo, &gh.NewPullRequest{
		Title: gh.String(n.Title), Head: gh.String(n.Head), Base: gh.String(n.Base), Body: gh.String(n.Body)})
	var pr forge.PR
	if err != nil {
		// The server may have created it before failing to answer, or a
		// concurrent run did (422 "A pull request already exists").
		found, ferr := f.FindPR(ctx, n.Head, n.Base)
		if ferr != nil || found.State != forge.StateOpen {
			return nil, f.wrap("create pull request "+n.Head, resp, err)
		}
		pr = *found
	} else {
		pr = toPR(p)
	}
	if len(n.Labels) > 0 {
		labels, err := f.addLabels(ctx, pr.Number, n.Labels)
		if err != nil {
			return &pr, err
		}
		pr.Labels = labels
	}
	return &pr, nil
}

// UpdatePR implements forge.Forge.
func (f *Forge) UpdatePR(ctx context.Context, number int, title, body string) error {
	_, resp, err := f.c.PullRequests.Edit(ctx, f.opts.Owner, f.opts.Repo, number, &gh.PullRequest{Title: gh.String(title), Body: gh.String(body)})
	return f.wrap(fmt.Sprintf("edit pull request #%d", number), resp, err)
}

// ClosePR implements forge.Forge.
func (f *Forge) ClosePR(ctx context.Context, number int, comment string) error {
	if comment != "" {
		if _, resp, err := f.c.Issues.CreateComment(ctx, f.opts.Owner, f.opts.Repo, number, &gh.IssueComment{Body: gh.String(comment)}); err != nil {
			return f.wrap(fmt.Sprintf("comment on #%d", number), resp, err)
		}
	}
	_, resp, err := f.c.PullRequests.Edit(ctx, f.opts.Owner, f.opts.Repo, number, &gh.PullRequest{State: gh.String("closed")})
	return f.wrap(fmt.Sprintf("close pull request #%d", number), resp, err)
}

var labelColors = map[string]string{"major": "d73a4a", "minor": "fbca04", "patch": "0e8a16", "metal": "5319e7"}

// EnsureLabels implements forge.Forge.
// Calls are serialised, and the known set is copied before it grows, so
// concurrent callers never create a label twice or race on the set.
func (f *Forge) EnsureLabels(ctx context.Context, labels []string) error {
	f.labelMu.Lock()
	defer f.labelMu.Unlock()
	f.mu.Lock()
	known := f.labels
	f.mu.Unlock()
	if slices.ContainsFunc(labels, func(l string) bool { return !known[l] }) {
		known = maps.Clone(known)
	}
	if known == nil {
		known = map[string]bool{}
		lo := &gh.ListOptions{PerPage: perPage}
		for {
			ls, resp, err := f.c.Issues.ListLabels(ctx, f.opts.Owner, f.opts.Repo, lo)
			if err != nil {
				return f.wrap("list labels", resp, err)
			}
			for _, l := range ls {
				known[l.GetName()] = true
			}
			if resp.NextPage == 0 {
				break
			}
			lo.Page = resp.NextPage
		}
	}
	for _, name := range labels {
		if known[name] {
			continue
		}
		color := labelColors[name]
		if color == "" {
			color = "1d76db"
		}
		_, resp, err := f.c.Issues.CreateLabel(ctx, f.opts.Owner, f.opts.Repo, &gh.Label{Name: gh.String(name), Color: gh.String(color)})
		// 422 already_exists: a concurrent run created it.
		if err != nil && (resp == nil || resp.StatusCode != http.StatusUnprocessableEntity) {
			return f.wrap("create label "+name, resp, err)
		}
		known[name] = true
	}
	f.mu.Lock()
	f.labels = known
	f.mu.Unlock()
	return nil
}

// AddLabels implements forge.Forge.
func (f *Forge) AddLabels(ctx context.Context, number int, labels []string) error {
	_, err := f.addLabels(ctx, number, labels)
	return err
}

func (f *Forge) addLabels(ctx context.Context, number int, labels []string) ([]string, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	if err := f.EnsureLabels(ctx, labels); err != nil {
		return nil, err
	}
	ls, resp, err := f.c.Issues.AddLabelsToIssue(ctx, f.opts.Owner, f.opts.Repo, number, labels)
	if err != nil {
		return nil, f.wrap(fmt.Sprintf("label #%d", number), resp, err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, l.GetName())
	}
	return out, nil
}

// RequiresChecks implements forge.Forge: Merge checks the head's status
// itself on GitHub and never schedules, so the answer changes nothing.
func (f *Forge) RequiresChecks(context.Context, string) (bool, error) { return true, nil }

// CancelAutoMerge implements forge.Forge: Merge never schedules one on
// GitHub (auto-merge needs GraphQL), so there is none to cancel.
func (f *Forge) CancelAutoMerge(context.Context, int) error { return nil }

// Merge implements forge.Forge; see the package doc for WhenChecksSucceed.
func (f *Forge) Merge(ctx context.Context, number int, o forge.MergeOptions) error {
	p, resp, err := f.c.PullRequests.Get(ctx, f.opts.Owner, f.opts.Repo, number)
	if err != nil {
		return f.wrap(fmt.Sprintf("get pull request #%d", number), resp, err)
	}
	what := fmt.Sprintf("merge #%d", number)
	switch {
	case p.GetMerged() || p.MergedAt != nil:
		return nil
	case p.GetState() != "open":
		return fmt.Errorf("github %s: %s: pull request is closed", f.repo(), what)
	}
	if o.WhenChecksSucceed {
		if p.Mergeable == nil {
			return fmt.Errorf("github %s: %s: mergeability still being computed: %w", f.repo(), what, ErrNotReady)
		}
		if !*p.Mergeable {
			return fmt.Errorf("github %s: %s: conflicts with %s: %w", f.repo(), what, p.GetBase().GetRef(), ErrNotReady)
		}
		st, err := f.CommitStatus(ctx, p.GetHead().GetSHA())
		if err != nil {
			return err
		}
		switch st {
		case forge.StatusSuccess:
		case forge.StatusFailure, forge.StatusError:
			return fmt.Errorf("github %s: %s: checks on %.12s are %s: %w", f.repo(), what, p.GetHead().GetSHA(), st, ErrChecksFailed)
		default:
			return fmt.Errorf("github %s: %s: checks on %.12s are %q (GitHub auto-merge needs GraphQL; retry on the next run): %w",
				f.repo(), what, p.GetHead().GetSHA(), st, ErrNotReady)
		}
	}
	style := o.Style
	if style == "" {
		if style, err = f.allowedMergeStyle(ctx); err != nil {
			return fmt.Errorf("github %s: %s: %w", f.repo(), what, err)
		}
	}
	res, resp, err := f.c.PullRequests.Merge(ctx, f.opts.Owner, f.opts.Repo, number, o.Message,
		&gh.PullRequestOptions{SHA: p.GetHead().GetSHA(), MergeMethod: style})
	if err != nil {
		return f.wrap(what, resp, err)
	}
	if !res.GetMerged() {
		return fmt.Errorf("github %s: %s: refused: %s", f.repo(), what, res.GetMessage())
	}
	if o.DeleteBranch && p.GetHead().GetRepo().GetFullName() == f.repo() {
		resp, err := f.c.Git.DeleteRef(ctx, f.opts.Owner, f.opts.Repo, "heads/"+p.GetHead().GetRef())
		// 422 "Reference does not exist": GitHub's own auto-delete won.
		if err != nil && (resp == nil || resp.StatusCode != http.StatusUnprocessableEntity) {
			return f.wrap("delete branch "+p.GetHead().GetRef(), resp, err)
		}
	}
	return nil
}

// allowedMergeStyle is the first merge method the repository allows, in
// the order merge, squash, rebase (a repository can switch any of them
// off; a merge with one it forbids is refused with 405).
func (f *Forge) allowedMergeStyle(ctx context.Context) (string, error) {
	r, resp, err := f.c.Repositories.Get(ctx, f.opts.Owner, f.opts.Repo)
	if err != nil {
		return "", f.wrap("get repository", resp, err)
	}
	for _, m := range []struct {
		style   string
		allowed *bool
	}{{"merge", r.AllowMergeCommit}, {"squash", r.AllowSquashMerge}, {"rebase", r.AllowRebaseMerge}} {
		// A token without admin rights may not see the settings (null):
		// merge commits, GitHub's default, are then tried.
		if m.allowed == nil && m.style == "merge" || m.allowed != nil && *m.allowed {
			return m.style, nil
		}
	}
	return "", errors.New("the repository allows no merge method (merge commits, squash and rebase are all off)")
}

var rank = map[string]int{forge.StatusNone: 0, forge.StatusSuccess: 1, forge.StatusPending: 2, forge.StatusError: 3, forge.StatusFailure: 4}

func worse(a, b string) string {
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// CommitStatus implements forge.Forge: combined status and check runs.
func (f *Forge) CommitStatus(ctx context.Context, sha string) (string, error) {
	st, resp, err := f.c.Repositories.GetCombinedStatus(ctx, f.opts.Owner, f.opts.Repo, sha, &gh.ListOptions{PerPage: perPage})
	if err != nil {
		return "", f.wrap("status of "+sha, resp, err)
	}
	out := forge.StatusNone
	if st.GetTotalCount() > 0 || len(st.Statuses) > 0 {
		out = st.GetState()
	}
	lo := &gh.ListCheckRunsOptions{ListOptions: gh.ListOptions{PerPage: perPage}}
	for {
		runs, resp, err := f.c.Checks.ListCheckRunsForRef(ctx, f.opts.Owner, f.opts.Repo, sha, lo)
		if err != nil {
			return "", f.wrap("check runs of "+sha, resp, err)
		}
		for _, r := range runs.CheckRuns {
			if r.GetStatus() != "completed" {
				out = worse(out, forge.StatusPending)
				continue
			}
			switch r.GetConclusion() {
			case "success", "neutral", "skipped":
				out = worse(out, forge.StatusSuccess)
			case "action_required", "stale":
				out = worse(out, forge.StatusPending)
			default: // failure, cancelled, timed_out, startup_failure
				out = worse(out, forge.StatusFailure)
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		lo.Page = resp.NextPage
	}
}

func toIssue(i *gh.Issue) *forge.Issue {
	return &forge.Issue{Number: i.GetNumber(), Title: i.GetTitle(), Body: i.GetBody(), State: i.GetState(), URL: i.GetHTMLURL()}
}

// FindIssue implements forge.Forge: open issues opened by the bot.
func (f *Forge) FindIssue(ctx context.Context, title string) (*forge.Issue, error) {
	login, err := f.BotLogin(ctx)
	if err != nil {
		return nil, err
	}
	lo := &gh.IssueListByRepoOptions{State: "open", Creator: login, ListOptions: gh.ListOptions{PerPage: perPage}}
	var found []*gh.Issue
	for {
		is, resp, err := f.c.Issues.ListByRepo(ctx, f.opts.Owner, f.opts.Repo, lo)
		if err != nil {
			return nil, f.wrap("list issues", resp, err)
		}
		for _, i := range is {
			if !i.IsPullRequest() && i.GetTitle() == title {
				found = append(found, i)
			}
		}
		if resp.NextPage == 0 {
			break
		}
		lo.Page = resp.NextPage
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("github %s: issue %q: %w", f.repo(), title, forge.ErrNotFound)
	}
	// The oldest one, so duplicates never move the dashboard around.
	sort.Slice(found, func(a, b int) bool { return found[a].GetNumber() < found[b].GetNumber() })
	return toIssue(found[0]), nil
}

// CreateIssue implements forge.Forge.
func (f *Forge) CreateIssue(ctx context.Context, title, body string) (*forge.Issue, error) {
	i, resp, err := f.c.Issues.Create(ctx, f.opts.Owner, f.opts.Repo, &gh.IssueRequest{Title: gh.String(title), Body: gh.String(body)})
	if err != nil {
		return nil, f.wrap("create issue", resp, err)
	}
	return toIssue(i), nil
}

// UpdateIssue implements forge.Forge.
func (f *Forge) UpdateIssue(ctx context.Context, number int, title, body string) error {
	_, resp, err := f.c.Issues.Edit(ctx, f.opts.Owner, f.opts.Repo, number, &gh.IssueRequest{Title: gh.String(title), Body: gh.String(body)})
	return f.wrap(fmt.Sprintf("edit issue #%d", number), resp, err)
}

// BranchLastCommitAuthor implements forge.Forge (author email).
func (f *Forge) BranchLastCommitAuthor(ctx context.Context, branch string) (string, error) {
	b, resp, err := f.c.Repositories.GetBranch(ctx, f.opts.Owner, f.opts.Repo, branch, 1)
	if err != nil {
		return "", f.wrap("branch "+branch, resp, err)
	}
	return b.GetCommit().GetCommit().GetAuthor().GetEmail(), nil
}
