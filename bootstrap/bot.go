package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/secrets"
)

// account is a Gitea user hl makes for a machine: the bot (write access,
// opens PRs) and Argo CD's reader (read access, clones). Each gets a
// token of the narrowest scopes it needs, stored SOPS-encrypted in the
// repo for the workload that uses it.
type account struct {
	user, fullName string
	// permission on the repository.
	permission gitea.AccessMode
	scopes     []gitea.AccessTokenScope
	// file is the SOPS file the token goes into, under tokenKey; secret
	// builds its manifest (spec and values) around the token.
	file, tokenKey string
	secret         func(token string) (secrets.Spec, map[string]string)
	// works checks a stored token with a call its scopes allow.
	works func(c *gitea.Client) error
	// stepPrefix names the steps: <prefix>-user, -token, -collaborator.
	stepPrefix string
}

func (a account) email(domain string) string { return a.user + "@noreply." + domain }

// botAccount is the bot's: it pushes branches and opens, labels,
// comments and merges pull requests.
func (r *runner) botAccount() account {
	bot := r.opts.BotUser
	return account{
		user: bot, fullName: "hl bot", permission: gitea.AccessModeWrite, scopes: BotScopes, file: BotTokenPath, tokenKey: "token", stepPrefix: "bot",
		secret: func(tok string) (secrets.Spec, map[string]string) {
			return secrets.Spec{
				Name: "hl-bot-token", Namespace: "hl-bot",
				// Describes the value's shape; it is minted by Gitea.
				Keys:      []secrets.Key{{Name: "token", Generator: secrets.Generator{Kind: secrets.KindHex, Length: 20}}},
				Consumers: []string{"deployment/hl-bot"},
			}, map[string]string{"token": tok, "username": bot, "url": r.apiURL}
		},
		works: func(c *gitea.Client) error {
			u, resp, err := c.GetMyUserInfo()
			if err == nil && !strings.EqualFold(u.UserName, bot) {
				return fmt.Errorf("stored token belongs to %s, not %s", u.UserName, bot)
			}
			return tokenErr(resp, err)
		},
	}
}

// readerAccount is Argo CD's: it clones the repository over HTTP, from
// inside the cluster when the forge is the homelab's own (no SSH route,
// no deploy key), and can do nothing else.
func (r *runner) readerAccount() account {
	user := r.opts.BotUser + "-argocd"
	return account{
		user: user, fullName: "Argo CD (read-only)", permission: gitea.AccessModeRead, scopes: ReaderScopes, file: RepoCredsPath, tokenKey: "password", stepPrefix: "reader",
		secret: func(tok string) (secrets.Spec, map[string]string) {
			return secrets.Spec{
				Name: "repo-creds", Namespace: "argocd",
				Labels:    map[string]string{"argocd.argoproj.io/secret-type": "repository"},
				Keys:      []secrets.Key{{Name: "password", Generator: secrets.Generator{Kind: secrets.KindHex, Length: 20}}},
				Consumers: []string{"statefulset/argocd-application-controller", "deployment/argocd-repo-server"},
			}, map[string]string{"type": "git", "url": r.h.ClusterRepoURL(), "username": user, "password": tok}
		},
		works: func(c *gitea.Client) error {
			_, resp, err := c.GetRepo(r.forge.Owner, r.forge.Repo)
			return tokenErr(resp, err)
		},
	}
}

// errTokenInvalid: a stored token no longer works.
var errTokenInvalid = errors.New("stored token is no longer valid")

func tokenErr(resp *gitea.Response, err error) error {
	switch code := statusOf(resp); {
	case err == nil:
		return nil
	case code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusNotFound:
		return errTokenInvalid
	}
	return err
}

func (r *runner) userStep(a account) step {
	return step{
		name: a.stepPrefix + "-user",
		check: func(context.Context) (bool, string, error) {
			_, resp, err := r.api.GetUserInfo(a.user)
			switch {
			case err == nil:
				return true, "user " + a.user + " exists", nil
			case statusOf(resp) != http.StatusNotFound:
				return false, "", apiErr("get user "+a.user, resp, err)
			}
			return false, "create user " + a.user, nil
		},
		apply: func(context.Context) (Status, string, error) {
			if !r.me.IsAdmin {
				return "", "", fmt.Errorf("%w (%s): creating the user %s needs one", ErrNotAdmin, r.me.UserName, a.user)
			}
			pw, err := r.password()
			if err != nil {
				return "", "", err
			}
			no := false
			// The password is thrown away: the token step sets a fresh one
			// whenever it needs to log in as the user to mint a token.
			_, resp, err := r.api.AdminCreateUser(gitea.CreateUserOption{
				Username: a.user, FullName: a.fullName, Email: a.email(r.h.Spec.Domain), Password: pw, MustChangePassword: &no,
			})
			if err != nil {
				return "", "", apiErr("create user "+a.user, resp, err)
			}
			return StatusCreated, "user " + a.user, nil
		},
	}
}

// password is a throw-away login password.
func (r *runner) password() (string, error) {
	g := secrets.Generator{Kind: secrets.KindPassword, Length: 40}
	v, err := g.Generate("p", r.opts.Rand)
	if err != nil {
		return "", err
	}
	return v["p"], nil
}

func (r *runner) tokenName(a account) string {
	return "hl " + a.stepPrefix + " for " + r.forge.Owner + "/" + r.forge.Repo
}

func (r *runner) tokenStep(a account) step {
	scopes := make([]string, len(a.scopes))
	for i, s := range a.scopes {
		scopes[i] = string(s)
	}
	return step{
		name: a.stepPrefix + "-token",
		check: func(context.Context) (bool, string, error) {
			exists, err := r.fileExists(a.file)
			if err != nil || !exists {
				return false, "create token (" + strings.Join(scopes, ", ") + ") for " + a.user + ", store it in " + a.file, err
			}
			if len(r.opts.Identities) == 0 {
				return true, "stored in " + a.file + " (not verified: no age identity)", nil
			}
			vals, err := r.readSecret(a.file)
			if err != nil {
				return false, "", err
			}
			_, want := a.secret(vals[a.tokenKey])
			for k, v := range want {
				if vals[k] != v {
					return false, fmt.Sprintf("stored %s is out of date (%s): replace it", a.file, k), nil
				}
			}
			c, err := r.client(gitea.SetToken(vals[a.tokenKey]))
			if err != nil {
				return false, "", err
			}
			switch err := a.works(c); {
			case err == nil:
				return true, "stored token of " + a.user + " works", nil
			case errors.Is(err, errTokenInvalid):
				return false, "stored token is no longer valid: replace it", nil
			default:
				return false, err.Error() + ": replace it", nil
			}
		},
		apply: func(context.Context) (Status, string, error) {
			if !r.me.IsAdmin {
				return "", "", fmt.Errorf("%w (%s): minting the token of %s needs one", ErrNotAdmin, r.me.UserName, a.user)
			}
			existed, _ := r.fileExists(a.file)
			// Gitea mints tokens only for a password login, so the user
			// gets a fresh throw-away password first.
			pw, err := r.password()
			if err != nil {
				return "", "", err
			}
			no := false
			if resp, err := r.api.AdminEditUser(a.user, gitea.EditUserOption{LoginName: a.user, Password: pw, MustChangePassword: &no}); err != nil {
				return "", "", apiErr("set a password for "+a.user, resp, err)
			}
			bc, err := r.client(gitea.SetBasicAuth(a.user, pw))
			if err != nil {
				return "", "", err
			}
			// A token of this name left by an interrupted run is useless
			// (its value is shown only once): replace it.
			toks, resp, err := bc.ListAccessTokens(gitea.ListAccessTokensOptions{ListOptions: gitea.ListOptions{PageSize: 50}})
			if err != nil {
				return "", "", apiErr("list tokens of "+a.user, resp, err)
			}
			for _, t := range toks {
				if t.Name == r.tokenName(a) {
					if resp, err := bc.DeleteAccessToken(t.ID); err != nil {
						return "", "", apiErr("delete stale token of "+a.user, resp, err)
					}
				}
			}
			tok, resp, err := bc.CreateAccessToken(gitea.CreateAccessTokenOption{Name: r.tokenName(a), Scopes: a.scopes})
			if err != nil {
				return "", "", apiErr("create token for "+a.user, resp, err)
			}
			spec, vals := a.secret(tok.Token)
			if err := r.writeSecret(a.file, spec, vals); err != nil {
				return "", "", err
			}
			if existed {
				return StatusUpdated, "replaced the token of " + a.user + " in " + a.file, nil
			}
			return StatusCreated, "token (" + strings.Join(scopes, ", ") + ") of " + a.user + " in " + a.file, nil
		},
	}
}

// client is another SDK client on the same HTTP client (fault injection
// and timeouts apply to it too).
func (r *runner) client(auth gitea.ClientOption) (*gitea.Client, error) {
	return gitea.NewClient(r.apiURL, auth, gitea.SetHTTPClient(r.opts.HTTPClient), gitea.SetContext(r.ctx), gitea.SetUserAgent("hl-bootstrap"), gitea.SetGiteaVersion(""))
}

// rank orders access modes.
var rank = map[gitea.AccessMode]int{gitea.AccessModeNone: 0, gitea.AccessModeRead: 1, gitea.AccessModeWrite: 2, gitea.AccessModeAdmin: 3, gitea.AccessModeOwner: 4}

func (r *runner) collaboratorStep(a account) step {
	owner, name := r.forge.Owner, r.forge.Repo
	perm := a.permission
	return step{
		name: a.stepPrefix + "-collaborator",
		check: func(context.Context) (bool, string, error) {
			plan := "add " + a.user + " as collaborator with " + string(perm) + " access"
			if r.repo == nil {
				return false, plan, nil
			}
			is, resp, err := r.api.IsCollaborator(owner, name, a.user)
			if err != nil && statusOf(resp) != http.StatusNotFound {
				return false, "", apiErr("check collaborator "+a.user, resp, err)
			}
			if !is {
				return false, plan, nil
			}
			p, resp, err := r.api.CollaboratorPermission(owner, name, a.user)
			if err != nil {
				return false, "", apiErr("get permission of "+a.user, resp, err)
			}
			// Exactly the permission asked for: a reader with write access
			// is as wrong as a bot with read access.
			if have := p.Permission; rank[have] == rank[perm] || (perm == gitea.AccessModeWrite && rank[have] > rank[perm]) {
				return true, a.user + " is a collaborator (" + string(p.Permission) + ")", nil
			}
			return false, "give " + a.user + " " + string(perm) + " access (has " + string(p.Permission) + ")", nil
		},
		apply: func(context.Context) (Status, string, error) {
			if resp, err := r.api.AddCollaborator(owner, name, a.user, gitea.AddCollaboratorOption{Permission: &perm}); err != nil {
				return "", "", apiErr("add collaborator "+a.user, resp, err)
			}
			return StatusCreated, a.user + " has " + string(perm) + " access", nil
		},
	}
}
