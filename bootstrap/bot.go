package bootstrap

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/secrets"
)

// botEmail is unique per bot name; Gitea needs one but never mails it.
func (r *runner) botEmail() string {
	return r.opts.BotUser + "@noreply." + r.h.Spec.Domain
}

func (r *runner) botUserStep() step {
	bot := r.opts.BotUser
	return step{
		name: "bot-user",
		check: func(context.Context) (bool, string, error) {
			_, resp, err := r.api.GetUserInfo(bot)
			switch {
			case err == nil:
				return true, "user " + bot + " exists", nil
			case statusOf(resp) != http.StatusNotFound:
				return false, "", apiErr("get user "+bot, resp, err)
			}
			return false, "create user " + bot, nil
		},
		apply: func(context.Context) (Status, string, error) {
			if !r.me.IsAdmin {
				return "", "", fmt.Errorf("%w (%s): creating the bot user %s needs one", ErrNotAdmin, r.me.UserName, bot)
			}
			pw, err := r.password()
			if err != nil {
				return "", "", err
			}
			no := false
			// The password is thrown away: the token step sets a fresh one
			// whenever it needs to log in as the bot to mint a token.
			_, resp, err := r.api.AdminCreateUser(gitea.CreateUserOption{
				Username: bot, FullName: "hl bot", Email: r.botEmail(), Password: pw, MustChangePassword: &no,
			})
			if err != nil {
				return "", "", apiErr("create user "+bot, resp, err)
			}
			return StatusCreated, "user " + bot, nil
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

func (r *runner) tokenName() string {
	return "hl bot for " + r.forge.Owner + "/" + r.forge.Repo
}

func (r *runner) botTokenStep() step {
	bot := r.opts.BotUser
	scopes := make([]string, len(BotScopes))
	for i, s := range BotScopes {
		scopes[i] = string(s)
	}
	return step{
		name: "bot-token",
		check: func(context.Context) (bool, string, error) {
			exists, err := r.fileExists(BotTokenPath)
			if err != nil || !exists {
				return false, "create token (" + strings.Join(scopes, ", ") + ") for " + bot + ", store it in " + BotTokenPath, err
			}
			if len(r.opts.Identities) == 0 {
				return true, "stored in " + BotTokenPath + " (not verified: no age identity)", nil
			}
			vals, err := r.readSecret(BotTokenPath)
			if err != nil {
				return false, "", err
			}
			c, err := r.client(gitea.SetToken(vals["token"]))
			if err != nil {
				return false, "", err
			}
			u, resp, err := c.GetMyUserInfo()
			switch {
			case err == nil && strings.EqualFold(u.UserName, bot):
				return true, "stored token of " + bot + " works", nil
			case err == nil:
				return false, "stored token belongs to " + u.UserName + ", not " + bot + ": replace it", nil
			case statusOf(resp) == http.StatusUnauthorized:
				return false, "stored token is no longer valid: replace it", nil
			}
			return false, "", apiErr("check the stored bot token", resp, err)
		},
		apply: func(context.Context) (Status, string, error) {
			if !r.me.IsAdmin {
				return "", "", fmt.Errorf("%w (%s): minting the bot token needs one", ErrNotAdmin, r.me.UserName)
			}
			existed, _ := r.fileExists(BotTokenPath)
			// Gitea mints tokens only for a password login, so the bot gets
			// a fresh throw-away password first.
			pw, err := r.password()
			if err != nil {
				return "", "", err
			}
			no := false
			if resp, err := r.api.AdminEditUser(bot, gitea.EditUserOption{LoginName: bot, Password: pw, MustChangePassword: &no}); err != nil {
				return "", "", apiErr("set a password for "+bot, resp, err)
			}
			bc, err := r.client(gitea.SetBasicAuth(bot, pw))
			if err != nil {
				return "", "", err
			}
			// A token of this name left by an interrupted run is useless
			// (its value is shown only once): replace it.
			toks, resp, err := bc.ListAccessTokens(gitea.ListAccessTokensOptions{ListOptions: gitea.ListOptions{PageSize: 50}})
			if err != nil {
				return "", "", apiErr("list tokens of "+bot, resp, err)
			}
			for _, t := range toks {
				if t.Name == r.tokenName() {
					if resp, err := bc.DeleteAccessToken(t.ID); err != nil {
						return "", "", apiErr("delete stale token of "+bot, resp, err)
					}
				}
			}
			tok, resp, err := bc.CreateAccessToken(gitea.CreateAccessTokenOption{Name: r.tokenName(), Scopes: BotScopes})
			if err != nil {
				return "", "", apiErr("create token for "+bot, resp, err)
			}
			spec := secrets.Spec{
				Name: "hl-bot-token", Namespace: "hl-bot",
				// Describes the value's shape; it is minted by Gitea.
				Keys:      []secrets.Key{{Name: "token", Generator: secrets.Generator{Kind: secrets.KindHex, Length: 20}}},
				Consumers: []string{"cronjob/hl-bot"},
			}
			vals := map[string]string{"token": tok.Token, "username": bot, "url": r.apiURL}
			if err := r.writeSecret(BotTokenPath, spec, vals); err != nil {
				return "", "", err
			}
			if existed {
				return StatusUpdated, "replaced the token of " + bot + " in " + BotTokenPath, nil
			}
			return StatusCreated, "token (" + strings.Join(scopes, ", ") + ") of " + bot + " in " + BotTokenPath, nil
		},
	}
}

// client is another SDK client on the same HTTP client (fault injection
// and timeouts apply to it too).
func (r *runner) client(auth gitea.ClientOption) (*gitea.Client, error) {
	return gitea.NewClient(r.apiURL, auth, gitea.SetHTTPClient(r.opts.HTTPClient), gitea.SetContext(r.ctx), gitea.SetUserAgent("hl-bootstrap"), gitea.SetGiteaVersion(""))
}

func (r *runner) collaboratorStep() step {
	owner, name, bot := r.forge.Owner, r.forge.Repo, r.opts.BotUser
	write := gitea.AccessModeWrite
	return step{
		name: "bot-collaborator",
		check: func(context.Context) (bool, string, error) {
			plan := "add " + bot + " as collaborator with write access"
			if r.repo == nil {
				return false, plan, nil
			}
			is, resp, err := r.api.IsCollaborator(owner, name, bot)
			if err != nil && statusOf(resp) != http.StatusNotFound {
				return false, "", apiErr("check collaborator "+bot, resp, err)
			}
			if !is {
				return false, plan, nil
			}
			p, resp, err := r.api.CollaboratorPermission(owner, name, bot)
			if err != nil {
				return false, "", apiErr("get permission of "+bot, resp, err)
			}
			switch p.Permission {
			case gitea.AccessModeWrite, gitea.AccessModeAdmin, gitea.AccessModeOwner:
				return true, bot + " is a collaborator (" + string(p.Permission) + ")", nil
			}
			return false, "give " + bot + " write access (has " + string(p.Permission) + ")", nil
		},
		apply: func(context.Context) (Status, string, error) {
			if resp, err := r.api.AddCollaborator(owner, name, bot, gitea.AddCollaboratorOption{Permission: &write}); err != nil {
				return "", "", apiErr("add collaborator "+bot, resp, err)
			}
			return StatusCreated, bot + " has write access", nil
		},
	}
}
