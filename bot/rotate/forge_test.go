package rotate

import (
	"context"
	"fmt"
	"strings"

	"code.gitea.io/sdk/gitea"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"hl.dev/hl/bot/forge"
)

// testForge is the part of forge.Forge the rotation pass uses, straight
// over the Gitea SDK (independent of bot/forge/gitea, which has its own
// tests).
type testForge struct {
	forge.Forge // unimplemented methods panic
	c           *gitea.Client
	url, token  string
	owner, repo string
}

func (f *testForge) Name() string { return "gitea" }
func (f *testForge) DefaultBranch(context.Context) (string, error) {
	r, _, err := f.c.GetRepo(f.owner, f.repo)
	if err != nil {
		return "", err
	}
	return r.DefaultBranch, nil
}
func (f *testForge) CloneURL() string { return fmt.Sprintf("%s/%s/%s.git", f.url, f.owner, f.repo) }
func (f *testForge) Auth() transport.AuthMethod {
	return &githttp.BasicAuth{Username: "admin", Password: f.token}
}

func toPR(p *gitea.PullRequest) *forge.PR {
	st := forge.StateOpen
	if p.State == gitea.StateClosed {
		st = forge.StateClosed
		if p.HasMerged {
			st = forge.StateMerged
		}
	}
	out := &forge.PR{Number: int(p.Index), Title: p.Title, Body: p.Body, Head: p.Head.Ref, Base: p.Base.Ref, State: st, URL: p.HTMLURL}
	if p.Created != nil {
		out.Created = *p.Created
	}
	if p.Closed != nil {
		out.Closed = *p.Closed
	}
	return out
}

func (f *testForge) FindPR(_ context.Context, head, base string) (*forge.PR, error) {
	prs, _, err := f.c.ListRepoPullRequests(f.owner, f.repo, gitea.ListPullRequestsOptions{State: gitea.StateAll, ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		return nil, err
	}
	var best *gitea.PullRequest
	for _, p := range prs {
		if p.Head.Ref == head && p.Base.Ref == base && (best == nil || p.Index > best.Index) {
			best = p
		}
	}
	if best == nil {
		return nil, forge.ErrNotFound
	}
	return toPR(best), nil
}

func (f *testForge) ListPRs(_ context.Context, o forge.ListOptions) ([]forge.PR, error) {
	prs, _, err := f.c.ListRepoPullRequests(f.owner, f.repo, gitea.ListPullRequestsOptions{State: gitea.StateAll, ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		return nil, err
	}
	var out []forge.PR
	for _, p := range prs {
		if strings.HasPrefix(p.Head.Ref, o.HeadPrefix) {
			out = append(out, *toPR(p))
		}
	}
	return out, nil
}

func (f *testForge) CreatePR(_ context.Context, pr forge.NewPR) (*forge.PR, error) {
	p, _, err := f.c.CreatePullRequest(f.owner, f.repo, gitea.CreatePullRequestOption{Head: pr.Head, Base: pr.Base, Title: pr.Title, Body: pr.Body})
	if err != nil {
		return nil, err
	}
	return toPR(p), nil
}

func (f *testForge) FindIssue(_ context.Context, title string) (*forge.Issue, error) {
	is, _, err := f.c.ListRepoIssues(f.owner, f.repo, gitea.ListIssueOption{State: gitea.StateOpen, Type: gitea.IssueTypeIssue, ListOptions: gitea.ListOptions{PageSize: 50}})
	if err != nil {
		return nil, err
	}
	for _, i := range is {
		if i.Title == title {
			return &forge.Issue{Number: int(i.Index), Title: i.Title, Body: i.Body, State: string(i.State), URL: i.HTMLURL}, nil
		}
	}
	return nil, forge.ErrNotFound
}

func (f *testForge) CreateIssue(_ context.Context, title, body string) (*forge.Issue, error) {
	i, _, err := f.c.CreateIssue(f.owner, f.repo, gitea.CreateIssueOption{Title: title, Body: body})
	if err != nil {
		return nil, err
	}
	return &forge.Issue{Number: int(i.Index), Title: i.Title, Body: i.Body, State: string(i.State), URL: i.HTMLURL}, nil
}
