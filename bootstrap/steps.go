package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
)

// Names of what bootstrap creates in Gitea and writes into the repo.
const (
	// TopicManaged marks a repository hl created or adopted.
	TopicManaged = "hl-managed"

	// RepoCredsPath holds Argo CD's repository credentials: the read-only
	// token of the reader account and the URL it clones.
	RepoCredsPath = "system/argocd/secrets/repo-creds.sops.yaml"

	ArgoCDWebhookPath     = "system/argocd/secrets/argocd-webhook.sops.yaml"
	WoodpeckerWebhookPath = "platform/woodpecker/secrets/woodpecker-webhook.sops.yaml"
	// BotWebhookPath holds the secret of the bot's webhook (merged PRs and
	// dashboard edits start a run of hl bot serve).
	BotWebhookPath = "platform/hl-bot/secrets/hl-bot-webhook.sops.yaml"
	BotTokenPath   = "platform/hl-bot/secrets/hl-bot-token.sops.yaml"

	// StatusCheckContext is what Woodpecker reports for
	// .woodpecker/validate.yaml on pull requests.
	StatusCheckContext = "ci/woodpecker/pr/validate"
)

// BotScopes are the bot token's scopes: push branches and open, label,
// comment and merge pull requests (repository, issue) and look itself up
// (user). No organization, admin, package or misc access.
var BotScopes = []gitea.AccessTokenScope{"write:repository", "write:issue", "read:user"}

// ReaderScopes are Argo CD's reader token's: clone and fetch, nothing else.
var ReaderScopes = []gitea.AccessTokenScope{"read:repository"}

// Label is one repository label the bot uses.
type Label struct{ Name, Color, Description string }

// Labels are created when missing; existing ones (possibly recoloured by
// the user) are left alone.
var Labels = []Label{
	{"upgrade", "#1d76db", "Version upgrade proposed by the hl bot"},
	{"rotation", "#d93f0b", "Secret rotation proposed by the hl bot"},
	{"major", "#b60205", "Major version update"},
	{"minor", "#fbca04", "Minor version update"},
	{"patch", "#0e8a16", "Patch version update"},
	{"digest", "#c5def5", "Digest-only update (same tag, new image)"},
	{"metal", "#5319e7", "Touches metal/: rolled out node by node on merge"},
}

func (r *runner) steps() []step {
	ss := []step{r.ownerStep(), r.repoStep()}
	if r.h.Enabled("hl-bot") {
		bot := r.botAccount()
		ss = append(ss, r.userStep(bot), r.collaboratorStep(bot), r.tokenStep(bot))
	} else {
		for _, n := range []string{"bot-user", "bot-collaborator", "bot-token"} {
			ss = append(ss, step{name: n, skip: "hl-bot is disabled in hl.yaml"})
		}
	}
	reader := r.readerAccount()
	// The reader's token is checked by reading the repo: its access first.
	ss = append(ss, r.userStep(reader), r.collaboratorStep(reader), r.tokenStep(reader))
	ss = append(ss, r.webhookStep(webhook{
		name: "webhook-argocd", component: "argocd", service: "argocd-server", path: "/api/webhook", file: ArgoCDWebhookPath,
		events: []string{"push"},
		secret: secrets.Spec{Name: "argocd-webhook", Namespace: "argocd", Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"}},
		// Argo CD treats Gitea as Gogs (Gitea also sends X-Gogs-Event and
		// X-Gogs-Signature) and reads webhook.gogs.secret; reference it
		// from argocd-secret as $argocd-webhook:webhook.gogs.secret.
		key: "webhook.gogs.secret", aliases: []string{"webhook.gitea.secret"},
	}))
	if in, _ := r.h.InClusterForge(); in && r.h.Enabled("hl-bot") {
		ss = append(ss, r.webhookStep(webhook{
			name: "webhook-bot", component: "hl-bot", service: "hl-bot:8080", path: "/webhook", file: BotWebhookPath,
			events: []string{"pull_request", "issues"},
			secret: secrets.Spec{Name: "hl-bot-webhook", Namespace: "hl-bot"},
			key:    "secret",
		}))
	} else {
		ss = append(ss, step{name: "webhook-bot", skip: "the bot runs on its schedule only (no in-cluster forge or hl-bot disabled)"})
	}
	if r.h.Enabled("woodpecker") {
		ss = append(ss, r.webhookStep(webhook{
			name: "webhook-woodpecker", component: "woodpecker", path: "/api/hook", file: WoodpeckerWebhookPath,
			events: []string{"push", "create", "pull_request"},
			secret: secrets.Spec{Name: "woodpecker-webhook", Namespace: "woodpecker"},
			key:    "secret",
		}))
		ss = append(ss, r.woodpeckerOAuthStep())
	} else {
		ss = append(ss, step{name: "webhook-woodpecker", skip: "woodpecker is disabled in hl.yaml"},
			step{name: "oauth-woodpecker", skip: "woodpecker is disabled in hl.yaml"})
	}
	return append(ss, r.labelsStep(), r.renderStep(), r.pushStep(), r.protectionStep())
}

func (r *runner) ownerStep() step {
	owner := r.forge.Owner
	return step{
		name: "owner",
		check: func(context.Context) (bool, string, error) {
			if strings.EqualFold(owner, r.me.UserName) {
				return true, "user namespace of " + r.me.UserName, nil
			}
			org, resp, err := r.api.GetOrg(owner)
			switch {
			case err == nil:
				return true, "organization " + org.UserName + " exists", nil
			case statusOf(resp) != http.StatusNotFound:
				return false, "", apiErr("get organization "+owner, resp, err)
			}
			_, resp, err = r.api.GetUserInfo(owner)
			switch {
			case err == nil:
				return false, "", fmt.Errorf("%s is another user, not an organization: bootstrap into your own namespace (%s) or an organization", owner, r.me.UserName)
			case statusOf(resp) != http.StatusNotFound:
				return false, "", apiErr("get user "+owner, resp, err)
			}
			return false, "create private organization " + owner, nil
		},
		apply: func(context.Context) (Status, string, error) {
			_, resp, err := r.api.CreateOrg(gitea.CreateOrgOption{
				Name:        owner,
				Description: "GitOps homelab, managed by hl",
				Visibility:  gitea.VisibleTypePrivate,
			})
			if err != nil {
				return "", "", apiErr("create organization "+owner, resp, err)
			}
			return StatusCreated, "private organization " + owner, nil
		},
	}
}

func (r *runner) repoStep() step {
	owner, name := r.forge.Owner, r.forge.Repo
	full := owner + "/" + name
	return step{
		name: "repo",
		check: func(context.Context) (bool, string, error) {
			repo, resp, err := r.api.GetRepo(owner, name)
			switch {
			case statusOf(resp) == http.StatusNotFound:
				return false, "create private repository " + full, nil
			case err != nil:
				return false, "", apiErr("get repository "+full, resp, err)
			}
			r.repo = repo
			r.res.HTMLURL = repo.HTMLURL
			topics, resp, err := r.api.ListRepoTopics(owner, name, gitea.ListRepoTopicsOptions{})
			if err != nil {
				return false, "", apiErr("list topics of "+full, resp, err)
			}
			switch {
			case slices.Contains(topics, TopicManaged):
				return true, full + " exists (" + TopicManaged + ")", nil
			case repo.Empty:
				return false, "take over empty repository " + full + " (private, topic " + TopicManaged + ")", nil
			case r.opts.Adopt:
				return false, "adopt existing repository " + full + " (topic " + TopicManaged + ")", nil
			}
			return false, "", fmt.Errorf("%w: %s has commits and no topic %s; re-run with --adopt to manage it anyway (nothing was changed)", ErrNotManaged, full, TopicManaged)
		},
		apply: func(context.Context) (Status, string, error) {
			status, detail := StatusUpdated, ""
			if r.repo == nil {
				opt := gitea.CreateRepoOption{
					Name:             name,
					Description:      r.description(),
					Private:          true,
					DefaultBranch:    r.forge.DefaultBranch,
					ObjectFormatName: "sha1", // what the go-git push writes
				}
				var (
					repo *gitea.Repository
					resp *gitea.Response
					err  error
				)
				if strings.EqualFold(owner, r.me.UserName) {
					repo, resp, err = r.api.CreateRepo(opt)
				} else {
					repo, resp, err = r.api.CreateOrgRepo(owner, opt)
				}
				if err != nil {
					return "", "", apiErr("create repository "+full, resp, err)
				}
				r.repo = repo
				r.res.HTMLURL = repo.HTMLURL
				status, detail = StatusCreated, "private repository "+full
			} else if r.repo.Empty {
				private, desc := true, r.description()
				repo, resp, err := r.api.EditRepo(owner, name, gitea.EditRepoOption{Private: &private, Description: &desc})
				if err != nil {
					return "", "", apiErr("make "+full+" private", resp, err)
				}
				r.repo = repo
				detail = "took over empty repository " + full
			} else {
				if !r.repo.Private {
					r.warn("adopted repository %s is public; Argo CD and the bot do not need that", full)
				}
				detail = "adopted " + full
			}
			if resp, err := r.api.AddRepoTopic(owner, name, TopicManaged); err != nil {
				return "", "", apiErr("add topic "+TopicManaged+" to "+full, resp, err)
			}
			return status, detail, nil
		},
	}
}

func (r *runner) description() string {
	return r.h.Metadata.Name + " homelab: GitOps repository rendered and managed by hl"
}

// renderStep re-renders Dir after the credentials were written, so the
// pushed tree is exactly what `hl render --check` (Woodpecker's validate
// pipeline) expects: e.g. a component's secrets/app.yaml appears once
// bootstrap provided its first secret.
func (r *runner) renderStep() step {
	render := func(ctx context.Context, dry bool) (*generator.Result, error) {
		res, err := generator.Render(ctx, generator.Options{
			ConfigPath: filepath.Join(r.opts.Dir, config.FileName),
			OutDir:     r.opts.Dir,
			Identities: r.opts.Identities,
			Rand:       r.opts.Rand,
			Now:        r.opts.Now,
			DryRun:     dry,
		})
		if errors.Is(err, generator.ErrConflict) {
			return nil, fmt.Errorf("%w: run `hl render` in %s and resolve them first", err, r.opts.Dir)
		}
		return res, err
	}
	changes := func(res *generator.Result) []string {
		var out []string
		for _, f := range res.Files {
			if f.Action != generator.ActionUnchanged && f.Action != generator.ActionKeep {
				out = append(out, f.Path)
			}
		}
		return out
	}
	return step{
		name: "render",
		check: func(ctx context.Context) (bool, string, error) {
			// A run killed while its render moved files into place left
			// a staging folder that a dry render refuses to run over; the
			// real render (apply) rolls it back first and renders again.
			if staged, _ := filepath.Glob(filepath.Join(r.opts.Dir, ".hl", ".staging-*")); len(staged) > 0 {
				return false, fmt.Sprintf("roll back the interrupted render in %s (%s) and re-render", r.opts.Dir, filepath.Base(staged[0])), nil
			}
			res, err := render(ctx, true)
			if err != nil {
				return false, "", err
			}
			if c := changes(res); len(c) > 0 {
				return false, fmt.Sprintf("re-render %d files of %s: %s", len(c), r.opts.Dir, strings.Join(c, ", ")), nil
			}
			return true, r.opts.Dir + " matches a fresh render of hl.yaml", nil
		},
		apply: func(ctx context.Context) (Status, string, error) {
			res, err := render(ctx, false)
			if err != nil {
				return "", "", err
			}
			c := changes(res)
			r.files = append(r.files, c...)
			return StatusUpdated, fmt.Sprintf("re-rendered %d files", len(c)), nil
		},
	}
}

func (r *runner) labelsStep() step {
	owner, name := r.forge.Owner, r.forge.Repo
	var missing []Label
	return step{
		name: "labels",
		check: func(context.Context) (bool, string, error) {
			missing = nil
			have := map[string]bool{}
			if r.repo != nil {
				for page := 1; page > 0; {
					ls, resp, err := r.api.ListRepoLabels(owner, name, gitea.ListLabelsOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
					if err != nil {
						return false, "", apiErr("list labels", resp, err)
					}
					for _, l := range ls {
						have[l.Name] = true
					}
					page = resp.NextPage
				}
			}
			var names []string
			for _, l := range Labels {
				if !have[l.Name] {
					missing = append(missing, l)
					names = append(names, l.Name)
				}
			}
			if len(missing) == 0 {
				return true, fmt.Sprintf("%d labels present", len(Labels)), nil
			}
			return false, "create labels " + strings.Join(names, ", "), nil
		},
		apply: func(context.Context) (Status, string, error) {
			var names []string
			for _, l := range missing {
				if _, resp, err := r.api.CreateLabel(owner, name, gitea.CreateLabelOption{Name: l.Name, Color: l.Color, Description: l.Description}); err != nil {
					return "", "", apiErr("create label "+l.Name, resp, err)
				}
				names = append(names, l.Name)
			}
			return StatusCreated, "labels " + strings.Join(names, ", "), nil
		},
	}
}

// wantProtection is the default branch's rule. Pushes are off for
// everyone (changes arrive as pull requests), Woodpecker's validate
// pipeline must pass, and no approval is required: a single-admin homelab
// has nobody else to approve, and the bot's automerge relies on checks
// alone. The rule covers the default branch only, so the bot (a write
// collaborator) pushes its own branches freely.
func (r *runner) wantProtection() gitea.CreateBranchProtectionOption {
	o := gitea.CreateBranchProtectionOption{
		RuleName:               r.forge.DefaultBranch,
		BranchName:             r.forge.DefaultBranch,
		EnablePush:             false,
		RequiredApprovals:      0,
		BlockOnRejectedReviews: true,
		DismissStaleApprovals:  true,
	}
	if r.h.Enabled("woodpecker") {
		o.EnableStatusCheck = true
		o.StatusCheckContexts = []string{StatusCheckContext}
	}
	return o
}

func protectionDiff(have *gitea.BranchProtection, want gitea.CreateBranchProtectionOption) []string {
	var d []string
	if have.EnablePush != want.EnablePush {
		d = append(d, "direct pushes")
	}
	if have.EnableStatusCheck != want.EnableStatusCheck {
		d = append(d, "status checks")
	}
	a, b := slices.Clone(have.StatusCheckContexts), slices.Clone(want.StatusCheckContexts)
	sort.Strings(a)
	sort.Strings(b)
	if !slices.Equal(a, b) {
		d = append(d, "status check contexts")
	}
	if have.RequiredApprovals != want.RequiredApprovals {
		d = append(d, "required approvals")
	}
	if have.BlockOnRejectedReviews != want.BlockOnRejectedReviews {
		d = append(d, "block on rejected reviews")
	}
	if have.DismissStaleApprovals != want.DismissStaleApprovals {
		d = append(d, "dismiss stale approvals")
	}
	return d
}

func (r *runner) protectionStep() step {
	owner, name, branch := r.forge.Owner, r.forge.Repo, r.forge.DefaultBranch
	want := r.wantProtection()
	var have *gitea.BranchProtection
	describe := func() string {
		s := "pull requests required"
		if want.EnableStatusCheck {
			s += ", status check " + StatusCheckContext + " required"
		}
		return s + fmt.Sprintf(", %d approvals", want.RequiredApprovals)
	}
	return step{
		name: "branch-protection",
		check: func(context.Context) (bool, string, error) {
			have = nil
			if r.repo == nil {
				return false, "protect " + branch + ": " + describe(), nil
			}
			p, resp, err := r.api.GetBranchProtection(owner, name, branch)
			switch {
			case statusOf(resp) == http.StatusNotFound:
				return false, "protect " + branch + ": " + describe(), nil
			case err != nil:
				return false, "", apiErr("get branch protection of "+branch, resp, err)
			}
			have = p
			if d := protectionDiff(p, want); len(d) > 0 {
				return false, "update protection of " + branch + ": " + strings.Join(d, ", "), nil
			}
			return true, branch + " protected: " + describe(), nil
		},
		apply: func(context.Context) (Status, string, error) {
			if have == nil {
				if _, resp, err := r.api.CreateBranchProtection(owner, name, want); err != nil {
					return "", "", apiErr("protect "+branch, resp, err)
				}
				return StatusCreated, branch + " protected: " + describe(), nil
			}
			edit := gitea.EditBranchProtectionOption{
				EnablePush:             &want.EnablePush,
				EnableStatusCheck:      &want.EnableStatusCheck,
				StatusCheckContexts:    want.StatusCheckContexts,
				RequiredApprovals:      &want.RequiredApprovals,
				BlockOnRejectedReviews: &want.BlockOnRejectedReviews,
				DismissStaleApprovals:  &want.DismissStaleApprovals,
			}
			if edit.StatusCheckContexts == nil {
				edit.StatusCheckContexts = []string{}
			}
			if _, resp, err := r.api.EditBranchProtection(owner, name, branch, edit); err != nil {
				return "", "", apiErr("update protection of "+branch, resp, err)
			}
			return StatusUpdated, branch + " protected: " + describe(), nil
		},
	}
}
