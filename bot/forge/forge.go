// Package forge owns the bot's view of a code forge (Gitea, GitHub): the
// branches, pull requests, labels, statuses and issues the run loop needs,
// as one small interface with one sub-package per implementation.
//
// Implementations must be safe to call again after a partial failure: every
// method is a lookup or an idempotent write, so a killed run can be re-run.
package forge

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// PR states.
const (
	StateOpen   = "open"
	StateClosed = "closed" // closed without merging
	StateMerged = "merged"
)

// Commit status states (combined).
const (
	StatusPending = "pending"
	StatusSuccess = "success"
	StatusFailure = "failure"
	StatusError   = "error"
	StatusNone    = "" // no status reported yet
)

// ErrNotFound is returned (wrapped) when a looked-up object does not exist.
var ErrNotFound = errors.New("not found")

// PR is a pull request as the bot sees it.
type PR struct {
	Number  int
	Title   string
	Body    string
	Head    string // branch name in the same repository
	Base    string
	State   string // StateOpen, StateClosed, StateMerged
	HeadSHA string
	Labels  []string
	URL     string
	// Mergeable is false when the forge reports a conflict with the base.
	Mergeable bool
	Created   time.Time
	// Closed is when the PR was closed or merged (zero while open).
	Closed time.Time
}

// Issue is an issue (the dependency dashboard).
type Issue struct {
	Number int
	Title  string
	Body   string
	State  string // open, closed
	URL    string
}

// ListOptions filters ListPRs.
type ListOptions struct {
	// State is StateOpen, "closed" (closed or merged) or "all" ("" = all).
	State string
	// HeadPrefix keeps only PRs whose head branch starts with it.
	HeadPrefix string
}

// NewPR is a pull request to open.
type NewPR struct {
	Title, Body, Head, Base string
	Labels                  []string
}

// MergeOptions tunes Merge.
type MergeOptions struct {
	// WhenChecksSucceed schedules the merge for when the head's checks
	// pass instead of merging now.
	WhenChecksSucceed bool
	// Style is merge, rebase, squash; "" picks one the repository
	// allows (its default merge style when it has one).
	Style        string
	DeleteBranch bool
	Message      string
}

// Forge is one repository on one forge.
type Forge interface {
	// Name is the forge type ("gitea", "github").
	Name() string
	// DefaultBranch of the repository.
	DefaultBranch(ctx context.Context) (string, error)
	// CloneURL is the HTTP(S) clone URL, without credentials.
	CloneURL() string
	// Auth authenticates go-git over HTTP (basic auth with the token).
	Auth() transport.AuthMethod
	// BotLogin is the forge login the token belongs to.
	BotLogin(ctx context.Context) (string, error)

	ListPRs(ctx context.Context, opts ListOptions) ([]PR, error)
	// FindPR returns the newest PR with this head and base in any state,
	// or ErrNotFound.
	FindPR(ctx context.Context, head, base string) (*PR, error)
	CreatePR(ctx context.Context, pr NewPR) (*PR, error)
	UpdatePR(ctx context.Context, number int, title, body string) error
	// ClosePR comments (when comment != "") and closes.
	ClosePR(ctx context.Context, number int, comment string) error
	// AddLabels attaches labels, creating missing ones.
	AddLabels(ctx context.Context, number int, labels []string) error
	// EnsureLabels creates the labels that do not exist yet.
	EnsureLabels(ctx context.Context, labels []string) error
	Merge(ctx context.Context, number int, opts MergeOptions) error
	// RequiresChecks reports whether merging into branch requires status
	// checks to pass. Without that, Gitea runs a merge scheduled "when
	// checks succeed" at once, pending checks or not.
	RequiresChecks(ctx context.Context, branch string) (bool, error)
	// CancelAutoMerge cancels a merge scheduled with WhenChecksSucceed
	// (nil when none is): a branch that changed must be judged again
	// before it merges.
	CancelAutoMerge(ctx context.Context, number int) error
	// CommitStatus is the combined status of a commit (StatusNone if none).
	CommitStatus(ctx context.Context, sha string) (string, error)

	// FindIssue returns the open issue with exactly this title, or
	// ErrNotFound.
	FindIssue(ctx context.Context, title string) (*Issue, error)
	CreateIssue(ctx context.Context, title, body string) (*Issue, error)
	UpdateIssue(ctx context.Context, number int, title, body string) error

	// BranchLastCommitAuthor is the author email of the branch tip commit
	// (ErrNotFound when the branch does not exist).
	BranchLastCommitAuthor(ctx context.Context, branch string) (string, error)
}

// TokenAuth is go-git's HTTP basic auth with the token as the password
// (the user name matters only to the forge's logs), nil without a token.
func TokenAuth(user, token string) transport.AuthMethod {
	if token == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: user, Password: token}
}

// Login remembers the login a token belongs to once it was read: it does
// not change while the forge is open. A failed lookup is tried again.
type Login struct {
	mu    sync.Mutex
	login string
}

// Set records a login known beforehand.
func (l *Login) Set(login string) {
	l.mu.Lock()
	l.login = login
	l.mu.Unlock()
}

// Get returns the login, reading it with whoami the first time.
func (l *Login) Get(whoami func() (string, error)) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.login != "" {
		return l.login, nil
	}
	login, err := whoami()
	if err != nil {
		return "", err
	}
	l.login = login
	return login, nil
}
