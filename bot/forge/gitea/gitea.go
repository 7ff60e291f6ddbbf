// Package gitea implements forge.Forge on Gitea with the official SDK.
// Every call goes through a retrying transport (bounded, with backoff), so
// a flaky 5xx is absorbed and a persistent one surfaces as an error.
//
// A Forge is safe for concurrent use: the SDK client's context is
// client-wide, so each call borrows one of a small pool of clients
// (Options.Concurrency) and up to that many requests run at once.
package gitea

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	sdk "code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5/plumbing/transport"

	"hl.dev/hl/bot/forge"
	"hl.dev/hl/internal/forgehttp"
)

// Options configure New.
type Options struct {
	URL, Token, Owner, Repo string
	// Transport is the base transport under the retries (tests inject
	// failures here).
	Transport http.RoundTripper
	Attempts  int
	Backoff   time.Duration
	Timeout   time.Duration // per request (default 30s)
	// Logger receives the bodies of the server's error answers at debug
	// level (default slog.Default()).
	Logger *slog.Logger
	// Concurrency is how many API calls may run at once (default 4).
	Concurrency int
	// MergeWait bounds how long Merge waits for Gitea to finish checking
	// a PR's mergeability when it refuses a merge (default 30s).
	MergeWait time.Duration
}

// Forge is one Gitea repository.
type Forge struct {
	opts Options
	// pool holds the idle SDK clients; a call takes one (the context is
	// client-wide) and puts it back.
	pool chan *sdk.Client

	labelMu sync.Mutex // serialises loading and creating labels
	mu      sync.Mutex // guards labels
	labels  map[string]int64
	login   forge.Login
}

var _ forge.Forge = (*Forge)(nil)

// New returns a Forge; it does not contact the server.
func New(opts Options) (*Forge, error) {
	if opts.URL == "" || opts.Owner == "" || opts.Repo == "" {
		return nil, errors.New("gitea: url, owner and repo are required")
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	opts.URL = strings.TrimSuffix(opts.URL, "/")
	hc := &http.Client{
		Timeout:   opts.Timeout,
		Transport: &forgehttp.Transport{Base: opts.Transport, Attempts: opts.Attempts, Backoff: opts.Backoff, Logger: opts.Logger},
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.MergeWait <= 0 {
		opts.MergeWait = 30 * time.Second
	}
	f := &Forge{opts: opts, pool: make(chan *sdk.Client, opts.Concurrency)}
	for range opts.Concurrency {
		c, err := sdk.NewClient(opts.URL, sdk.SetToken(opts.Token), sdk.SetHTTPClient(hc), sdk.SetGiteaVersion(""))
		if err != nil {
			return nil, fmt.Errorf("gitea client: %w", err)
		}
		f.pool <- c
	}
	return f, nil
}

// client borrows an SDK client for one call with ctx; done returns it.
func (f *Forge) client(ctx context.Context) *sdk.Client {
	c := <-f.pool
	c.SetContext(ctx)
	return c
}

func (f *Forge) done(c *sdk.Client) { f.pool <- c }

func wrap(what string, resp *sdk.Response, err error) error {
	if err == nil {
		return nil
	}
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("gitea: %s: %w", what, forge.ErrNotFound)
	}
	return fmt.Errorf("gitea: %s: %w", what, err)
}

// Name implements forge.Forge.
func (f *Forge) Name() string { return "gitea" }

// CloneURL implements forge.Forge.
func (f *Forge) CloneURL() string {
	return f.opts.URL + "/" + f.opts.Owner + "/" + f.opts.Repo + ".git"
}

// Auth implements forge.Forge.
func (f *Forge) Auth() transport.AuthMethod { return forge.TokenAuth("hl-bot", f.opts.Token) }

// BotLogin implements forge.Forge.
func (f *Forge) BotLogin(ctx context.Context) (string, error) {
	return f.login.Get(func() (string, error) {
		c := f.client(ctx)
		defer f.done(c)
		u, resp, err := c.GetMyUserInfo()
		if err != nil {
			return "", wrap("whoami", resp, err)
		}
		return u.UserName, nil
	})
}

// DefaultBranch implements forge.Forge.
func (f *Forge) DefaultBranch(ctx context.Context) (string, error) {
	c := f.client(ctx)
	defer f.done(c)
	r, resp, err := c.GetRepo(f.opts.Owner, f.opts.Repo)
	if err != nil {
		return "", wrap("get repo", resp, err)
	}
	return r.DefaultBranch, nil
}

func toPR(p *sdk.PullRequest) forge.PR {
	out := forge.PR{Number: int(p.Index), Title: p.Title, Body: p.Body, URL: p.HTMLURL, Mergeable: p.Mergeable}
	if p.Head != nil {
		// The label is the head branch. Ref is the branch only while
		// Gitea's branch table lists it (a deleted branch, or one whose
		// record an interrupted push left unsynced, gives
		// refs/pull/N/head), so a PR is known by its label.
		out.Head, out.HeadSHA = p.Head.Name, p.Head.Sha
		if out.Head == "" {
			out.Head = p.Head.Ref
		}
	}
	if p.Base != nil {
		out.Base = p.Base.Ref
	}
	switch {
	case p.HasMerged:
		out.State = forge.StateMerged
	case p.State == sdk.StateClosed:
		out.State = forge.StateClosed
	default:
		out.State = forge.StateOpen
	}
	for _, l := range p.Labels {
		out.Labels = append(out.Labels, l.Name)
	}
	if p.Created != nil {
		out.Created = *p.Created
	}
	if p.Closed != nil {
		out.Closed = *p.Closed
	} else if p.Merged != nil {
		out.Closed = *p.Merged
	}
	return out
}

// ListPRs implements forge.Forge.
func (f *Forge) ListPRs(ctx context.Context, opts forge.ListOptions) ([]forge.PR, error) {
	state := sdk.StateAll
	switch opts.State {
	case forge.StateOpen:
		state = sdk.StateOpen
	case forge.StateClosed:
		state = sdk.StateClosed
	}
	c := f.client(ctx)
	defer f.done(c)
	var out []forge.PR
	for page := 1; ; page++ {
		prs, resp, err := c.ListRepoPullRequests(f.opts.Owner, f.opts.Repo, sdk.ListPullRequestsOptions{
			ListOptions: sdk.ListOptions{Page: page, PageSize: 50}, State: state, Sort: "oldest"})
		if err != nil {
			// Gitea answers 404 while a freshly pushed repo is still
			// flagged empty; the caller has just cloned it, so it exists.
			if resp != nil && resp.StatusCode == http.StatusNotFound && page == 1 {
				return nil, nil
			}
			return nil, wrap("list pull requests", resp, err)
		}
		for _, p := range prs {
			pr := toPR(p)
			if strings.HasPrefix(pr.Head, opts.HeadPrefix) {
				out = append(out, pr)
			}
		}
		if len(prs) < 50 {
			return out, nil
		}
	}
}

// FindPR implements forge.Forge: the newest PR from head into base.
func (f *Forge) FindPR(ctx context.Context, head, base string) (*forge.PR, error) {
	prs, err := f.ListPRs(ctx, forge.ListOptions{HeadPrefix: head})
	if err != nil {
		return nil, err
	}
	var best *forge.PR
	for i := range prs {
		if prs[i].Head == head && prs[i].Base == base && (best == nil || prs[i].Number > best.Number) {
			best = &prs[i]
		}
	}
	if best == nil {
		return nil, fmt.Errorf("gitea: pull request %s → %s: %w", head, base, forge.ErrNotFound)
	}
	return best, nil
}

// CreatePR implements forge.Forge. Gitea refuses a second open PR with the
// same head and base (409), and a failed create looks the head up and
// returns the open PR it finds, so a retry after a lost answer never opens
// a second PR, without listing the PRs before every create.
func (f *Forge) CreatePR(ctx context.Context, n forge.NewPR) (*forge.PR, error) {
	ids, err := f.labelIDs(ctx, n.Labels)
	if err != nil {
		return nil, err
	}
	c := f.client(ctx)
	p, resp, err := c.CreatePullRequest(f.opts.Owner, f.opts.Repo, sdk.CreatePullRequestOption{
		Head: n.Head, Base: n.Base, Title: n.Title, Body: n.Body, Labels: ids})
	f.done(c)
	if err != nil {
		// The server may have created it before failing to answer.
		if pr, ferr := f.FindPR(ctx, n.Head, n.Base); ferr == nil && pr.State == forge.StateOpen {
			return pr, nil
		}
		return nil, wrap("create pull request "+n.Head, resp, err)
	}
	pr := toPR(p)
	return &pr, nil
}

// UpdatePR implements forge.Forge.
func (f *Forge) UpdatePR(ctx context.Context, number int, title, body string) error {
	c := f.client(ctx)
	defer f.done(c)
	_, resp, err := c.EditPullRequest(f.opts.Owner, f.opts.Repo, int64(number), sdk.EditPullRequestOption{Title: title, Body: &body})
	return wrap(fmt.Sprintf("edit pull request #%d", number), resp, err)
}

// ClosePR implements forge.Forge.
func (f *Forge) ClosePR(ctx context.Context, number int, comment string) error {
	c := f.client(ctx)
	defer f.done(c)
	if comment != "" {
		if _, resp, err := c.CreateIssueComment(f.opts.Owner, f.opts.Repo, int64(number), sdk.CreateIssueCommentOption{Body: comment}); err != nil {
			return wrap(fmt.Sprintf("comment on #%d", number), resp, err)
		}
	}
	closed := sdk.StateClosed
	_, resp, err := c.EditPullRequest(f.opts.Owner, f.opts.Repo, int64(number), sdk.EditPullRequestOption{State: &closed})
	return wrap(fmt.Sprintf("close pull request #%d", number), resp, err)
}

// loadLabels lists the repository's labels once; f.labelMu is held.
func (f *Forge) loadLabels(ctx context.Context) (map[string]int64, error) {
	f.mu.Lock()
	m := f.labels
	f.mu.Unlock()
	if m != nil {
		return m, nil
	}
	c := f.client(ctx)
	defer f.done(c)
	m = map[string]int64{}
	for page := 1; ; page++ {
		ls, resp, err := c.ListRepoLabels(f.opts.Owner, f.opts.Repo, sdk.ListLabelsOptions{ListOptions: sdk.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, wrap("list labels", resp, err)
		}
		for _, l := range ls {
			m[l.Name] = l.ID
		}
		if len(ls) < 50 {
			break
		}
	}
	return m, nil
}

var labelColors = map[string]string{"major": "#d73a4a", "minor": "#fbca04", "patch": "#0e8a16", "metal": "#5319e7"}

// EnsureLabels implements forge.Forge.
func (f *Forge) EnsureLabels(ctx context.Context, labels []string) error {
	_, err := f.labelIDs(ctx, labels)
	return err
}

// labelIDs returns the IDs of labels, creating the missing ones. Callers
// are serialised so that concurrent calls never create a label twice.
func (f *Forge) labelIDs(ctx context.Context, labels []string) ([]int64, error) {
	f.labelMu.Lock()
	defer f.labelMu.Unlock()
	known, err := f.loadLabels(ctx)
	if err != nil {
		return nil, err
	}
	// Copy on write: readers of f.labels never see a map being changed.
	var added map[string]int64
	var ids []int64
	for _, name := range labels {
		id, ok := known[name]
		if !ok {
			id, ok = added[name]
		}
		if !ok {
			color := labelColors[name]
			if color == "" {
				color = "#1d76db"
			}
			c := f.client(ctx)
			l, resp, err := c.CreateLabel(f.opts.Owner, f.opts.Repo, sdk.CreateLabelOption{Name: name, Color: color})
			f.done(c)
			if err != nil {
				f.mu.Lock()
				f.labels = nil // another run may have created it; reload next time
				f.mu.Unlock()
				return nil, wrap("create label "+name, resp, err)
			}
			id = l.ID
			if added == nil {
				added = map[string]int64{}
			}
			added[name] = id
		}
		ids = append(ids, id)
	}
	m := known
	if len(added) > 0 {
		m = maps.Clone(known)
		maps.Copy(m, added)
	}
	f.mu.Lock()
	f.labels = m
	f.mu.Unlock()
	return ids, nil
}

// AddLabels implements forge.Forge.
func (f *Forge) AddLabels(ctx context.Context, number int, labels []string) error {
	ids, err := f.labelIDs(ctx, labels)
	if err != nil || len(ids) == 0 {
		return err
	}
	c := f.client(ctx)
	defer f.done(c)
	_, resp, err := c.AddIssueLabels(f.opts.Owner, f.opts.Repo, int64(number), sdk.IssueLabelsOption{Labels: ids})
	return wrap(fmt.Sprintf("label #%d", number), resp, err)
}

// Merge implements forge.Forge.
func (f *Forge) Merge(ctx context.Context, number int, o forge.MergeOptions) error {
	style := sdk.MergeStyle(o.Style)
	if style == "" {
		c := f.client(ctx)
		r, resp, err := c.GetRepo(f.opts.Owner, f.opts.Repo)
		f.done(c)
		if err != nil {
			return wrap("merge settings", resp, err)
		}
		if style = AllowedMergeStyle(r); style == "" {
			return fmt.Errorf("gitea: merge #%d: the repository allows no merge style", number)
		}
	}
	del := o.DeleteBranch
	opt := sdk.MergePullRequestOption{Style: style, Message: o.Message, DeleteBranchAfterMerge: &del, MergeWhenChecksSucceed: o.WhenChecksSucceed}
	code, err := f.merge(ctx, number, opt)
	if err != nil || code == 0 || o.WhenChecksSucceed {
		return err
	}
	// Refused: Gitea refuses a merge while it is still checking the PR's
	// mergeability after a push (405, "try again later"; the PR reads
	// mergeable: false meanwhile), which can take seconds on a busy
	// machine. Wait for the check and merge again, until MergeWait is up;
	// a PR that stays unmergeable (a conflict) ends with the refusal, and
	// so does one refused twice while it reads mergeable (a branch rule,
	// not the check).
	deadline := time.Now().Add(f.opts.MergeWait)
	refusedMergeable := 0
	for wait := 250 * time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, 2*time.Second) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		c := f.client(ctx)
		p, resp, err := c.GetPullRequest(f.opts.Owner, f.opts.Repo, int64(number))
		f.done(c)
		switch {
		case err != nil:
			return wrap(fmt.Sprintf("merge #%d: pull request", number), resp, err)
		case p.HasMerged:
			return nil
		case p.State != sdk.StateOpen:
			return fmt.Errorf("gitea: merge #%d: the pull request is closed", number)
		case !p.Mergeable:
			continue
		}
		if code, err = f.merge(ctx, number, opt); err != nil || code == 0 {
			return err
		}
		if refusedMergeable++; refusedMergeable == 2 {
			break
		}
	}
	return fmt.Errorf("gitea: merge #%d: refused (HTTP %d: not mergeable, e.g. a conflict or a branch rule)", number, code)
}

// merge asks Gitea to merge once: 0 when it did (or scheduled it), else
// the HTTP status of the refusal.
func (f *Forge) merge(ctx context.Context, number int, opt sdk.MergePullRequestOption) (int, error) {
	c := f.client(ctx)
	defer f.done(c)
	ok, resp, err := c.MergePullRequest(f.opts.Owner, f.opts.Repo, int64(number), opt)
	if err != nil {
		return 0, wrap(fmt.Sprintf("merge #%d", number), resp, err)
	}
	// 201 Created: the merge is scheduled for when checks succeed.
	if ok || (resp != nil && resp.StatusCode == http.StatusCreated) {
		return 0, nil
	}
	code := -1
	if resp != nil {
		code = resp.StatusCode
	}
	if opt.MergeWhenChecksSucceed {
		return code, fmt.Errorf("gitea: merge #%d: refused (HTTP %d, e.g. mergeability still being checked)", number, code)
	}
	return code, nil
}

// AllowedMergeStyle is the repository's default merge style when it
// allows it, else the first it allows of merge, squash, rebase,
// rebase-merge and fast-forward-only ("" when none).
func AllowedMergeStyle(r *sdk.Repository) sdk.MergeStyle {
	allowed := map[sdk.MergeStyle]bool{
		sdk.MergeStyleMerge:       r.AllowMerge,
		sdk.MergeStyleSquash:      r.AllowSquash,
		sdk.MergeStyleRebase:      r.AllowRebase,
		sdk.MergeStyleRebaseMerge: r.AllowRebaseMerge,
		"fast-forward-only":       r.AllowFastForwardOnlyMerge,
	}
	if allowed[r.DefaultMergeStyle] {
		return r.DefaultMergeStyle
	}
	for _, s := range []sdk.MergeStyle{sdk.MergeStyleMerge, sdk.MergeStyleSquash, sdk.MergeStyleRebase, sdk.MergeStyleRebaseMerge, "fast-forward-only"} {
		if allowed[s] {
			return s
		}
	}
	return ""
}

// RequiresChecks implements forge.Forge: a protection rule matching the
// branch (by name or glob) with status checks enabled.
func (f *Forge) RequiresChecks(ctx context.Context, branch string) (bool, error) {
	c := f.client(ctx)
	defer f.done(c)
	rules, resp, err := c.ListBranchProtections(f.opts.Owner, f.opts.Repo, sdk.ListBranchProtectionsOptions{})
	if err != nil {
		return false, wrap("branch protections", resp, err)
	}
	for _, r := range rules {
		name := r.RuleName
		if name == "" {
			name = r.BranchName
		}
		if ok, _ := path.Match(name, branch); (ok || name == branch) && r.EnableStatusCheck {
			return true, nil
		}
	}
	return false, nil
}

// CancelAutoMerge implements forge.Forge.
func (f *Forge) CancelAutoMerge(ctx context.Context, number int) error {
	c := f.client(ctx)
	defer f.done(c)
	resp, err := c.CancelScheduledAutoMerge(f.opts.Owner, f.opts.Repo, int64(number))
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil // none scheduled
	}
	if err != nil {
		return wrap(fmt.Sprintf("cancel the scheduled merge of #%d", number), resp, err)
	}
	return nil
}

// CommitStatus implements forge.Forge.
func (f *Forge) CommitStatus(ctx context.Context, sha string) (string, error) {
	c := f.client(ctx)
	defer f.done(c)
	st, resp, err := c.GetCombinedStatus(f.opts.Owner, f.opts.Repo, sha)
	if err != nil {
		return "", wrap("status of "+sha, resp, err)
	}
	if st.TotalCount == 0 && len(st.Statuses) == 0 {
		return forge.StatusNone, nil
	}
	return string(st.State), nil
}

// FindIssue implements forge.Forge.
//
// Only the bot's own issues count: a repository moving from Renovate has
// Renovate's "Dependency Dashboard", which the bot must not take over.
func (f *Forge) FindIssue(ctx context.Context, title string) (*forge.Issue, error) {
	login, err := f.BotLogin(ctx)
	if err != nil {
		return nil, err
	}
	c := f.client(ctx)
	defer f.done(c)
	for page := 1; ; page++ {
		is, resp, err := c.ListRepoIssues(f.opts.Owner, f.opts.Repo, sdk.ListIssueOption{
			ListOptions: sdk.ListOptions{Page: page, PageSize: 50}, State: sdk.StateOpen, Type: sdk.IssueTypeIssue})
		if err != nil {
			return nil, wrap("list issues", resp, err)
		}
		for _, i := range is {
			if i.Title == title && i.Poster != nil && strings.EqualFold(i.Poster.UserName, login) {
				return &forge.Issue{Number: int(i.Index), Title: i.Title, Body: i.Body, State: string(i.State), URL: i.HTMLURL}, nil
			}
		}
		if len(is) < 50 {
			return nil, fmt.Errorf("gitea: issue %q: %w", title, forge.ErrNotFound)
		}
	}
}

// CreateIssue implements forge.Forge.
func (f *Forge) CreateIssue(ctx context.Context, title, body string) (*forge.Issue, error) {
	c := f.client(ctx)
	defer f.done(c)
	i, resp, err := c.CreateIssue(f.opts.Owner, f.opts.Repo, sdk.CreateIssueOption{Title: title, Body: body})
	if err != nil {
		return nil, wrap("create issue", resp, err)
	}
	return &forge.Issue{Number: int(i.Index), Title: i.Title, Body: i.Body, State: string(i.State), URL: i.HTMLURL}, nil
}

// UpdateIssue implements forge.Forge.
func (f *Forge) UpdateIssue(ctx context.Context, number int, title, body string) error {
	c := f.client(ctx)
	defer f.done(c)
	_, resp, err := c.EditIssue(f.opts.Owner, f.opts.Repo, int64(number), sdk.EditIssueOption{Title: title, Body: &body})
	return wrap(fmt.Sprintf("edit issue #%d", number), resp, err)
}

// BranchLastCommitAuthor implements forge.Forge (author email).
func (f *Forge) BranchLastCommitAuthor(ctx context.Context, branch string) (string, error) {
	c := f.client(ctx)
	defer f.done(c)
	b, resp, err := c.GetRepoBranch(f.opts.Owner, f.opts.Repo, branch)
	if err != nil {
		return "", wrap("branch "+branch, resp, err)
	}
	if b.Commit == nil || b.Commit.Author == nil {
		return "", nil
	}
	return b.Commit.Author.Email, nil
}
