package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/secrets"
)

// WoodpeckerForgePath holds the OAuth application Woodpecker signs in
// to Gitea with (client-id, client-secret).
const WoodpeckerForgePath = "platform/woodpecker/secrets/woodpecker-forge.sops.yaml"

// AnnotationOAuthClientID records, in cleartext, which Gitea OAuth
// application a stored client secret belongs to, so a run without an age
// identity can still tell whether the stored file matches Gitea. A client
// ID is not a credential.
const AnnotationOAuthClientID = "forge.hl.dev/oauth-client-id"

// oauthName names the OAuth application in Gitea. Gitea lists
// applications per user, and one admin may bootstrap several homelab
// repos, so the name carries the repo.
func (r *runner) oauthName() string {
	return "Woodpecker CI for " + r.forge.Owner + "/" + r.forge.Repo
}

// listOAuth lists the bootstrapping user's OAuth applications.
func (r *runner) listOAuth() ([]*gitea.Oauth2, error) {
	var out []*gitea.Oauth2
	for page := 1; page > 0; {
		apps, resp, err := r.api.ListOauth2(gitea.ListOauth2Option{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, apiErr("list OAuth applications", resp, err)
		}
		out = append(out, apps...)
		page = resp.NextPage
	}
	return out, nil
}

// woodpeckerOAuthStep creates the OAuth application Woodpecker's server
// signs users in with and stores its client ID and secret in
// WoodpeckerForgePath. Gitea shows a client secret once, when it is
// created or regenerated, and has no way to import one, so an
// application whose secret is not stored (an interrupted run, a deleted
// file) gets a new secret instead of a second application.
func (r *runner) woodpeckerOAuthStep() step {
	var (
		redirect string
		keep     *gitea.Oauth2   // the application to keep
		extra    []*gitea.Oauth2 // more of the same name
		mint     bool            // keep (or a new one) needs a new secret
	)
	spec := secrets.Spec{
		Name: "woodpecker-forge", Namespace: "woodpecker",
		// Describes the values' shape; Gitea mints them.
		Keys: []secrets.Key{
			{Name: "client-id"}, // a literal: the application's ID, no secret
			{Name: "client-secret", Generator: secrets.Generator{Kind: secrets.KindHex, Length: 32}},
		},
		Consumers: []string{"statefulset/woodpecker-server"},
	}
	want := func() gitea.CreateOauth2Option {
		return gitea.CreateOauth2Option{Name: r.oauthName(), ConfidentialClient: true, RedirectURIs: []string{redirect}}
	}
	return step{
		name: "oauth-woodpecker",
		check: func(context.Context) (bool, string, error) {
			keep, extra, mint = nil, nil, false
			host, err := r.hostname("woodpecker")
			if err != nil {
				return false, "", err
			}
			// Woodpecker's Gitea login returns to <WOODPECKER_HOST>/authorize.
			redirect = "https://" + host + "/authorize"
			ann, stored, err := r.readAnnotations(WoodpeckerForgePath)
			if err != nil {
				return false, "", err
			}
			storedID := ann[AnnotationOAuthClientID]
			plan := "create OAuth application " + r.oauthName() + " (redirect " + redirect + "), store its client ID and secret in " + WoodpeckerForgePath
			apps, err := r.listOAuth()
			if err != nil {
				return false, "", err
			}
			for _, a := range apps {
				if a.Name != r.oauthName() {
					continue
				}
				switch {
				case keep == nil:
					keep = a
				case storedID != "" && a.ClientID == storedID:
					// The one the stored file belongs to wins.
					extra, keep = append(extra, keep), a
				default:
					extra = append(extra, a)
				}
			}
			var todo []string
			mint = true
			switch {
			case keep == nil:
				todo = append(todo, plan)
			case !stored || keep.ClientID != storedID:
				todo = append(todo, "new client secret for OAuth application "+keep.Name+" (its secret is not stored), stored in "+WoodpeckerForgePath)
			case !keep.ConfidentialClient || !slices.Equal(keep.RedirectURIs, []string{redirect}):
				todo = append(todo, "fix redirect URI/confidentiality of OAuth application "+keep.Name+" (a new client secret, stored in "+WoodpeckerForgePath+")")
			default:
				mint = false
			}
			if len(extra) > 0 {
				todo = append(todo, fmt.Sprintf("remove %d duplicate OAuth applications named %s", len(extra), r.oauthName()))
			}
			if len(todo) == 0 {
				return true, "OAuth application " + keep.Name + " (client " + keep.ClientID + ", secret in " + WoodpeckerForgePath + ")", nil
			}
			return false, strings.Join(todo, "; "), nil
		},
		apply: func(context.Context) (Status, string, error) {
			for _, a := range extra {
				if resp, err := r.api.DeleteOauth2(a.ID); err != nil {
					return "", "", apiErr("delete duplicate OAuth application", resp, err)
				}
			}
			if !mint {
				return StatusUpdated, fmt.Sprintf("removed %d duplicate OAuth applications named %s", len(extra), r.oauthName()), nil
			}
			existed, err := r.fileExists(WoodpeckerForgePath)
			if err != nil {
				return "", "", err
			}
			var (
				app    *gitea.Oauth2
				resp   *gitea.Response
				status = StatusCreated
			)
			if keep == nil {
				app, resp, err = r.api.CreateOauth2(want())
				if err != nil {
					return "", "", apiErr("create OAuth application", resp, err)
				}
			} else {
				// Gitea answers an update with a newly generated secret.
				app, resp, err = r.api.UpdateOauth2(keep.ID, want())
				if err != nil {
					return "", "", apiErr("update OAuth application", resp, err)
				}
				status = StatusUpdated
			}
			if app.ClientID == "" || app.ClientSecret == "" {
				return "", "", fmt.Errorf("OAuth application %s: Gitea returned no client secret", app.Name)
			}
			s := spec
			s.Keys = slices.Clone(spec.Keys)
			s.Keys[0].Generator = secrets.Generator{Kind: secrets.KindLiteral, Value: app.ClientID}
			s.Annotations = map[string]string{AnnotationOAuthClientID: app.ClientID}
			if err := r.writeSecret(WoodpeckerForgePath, s, map[string]string{"client-id": app.ClientID, "client-secret": app.ClientSecret}); err != nil {
				return "", "", err
			}
			if existed && status == StatusUpdated {
				return status, "new client secret of OAuth application " + app.Name + " in " + WoodpeckerForgePath, nil
			}
			return status, "OAuth application " + app.Name + " (redirect " + redirect + "), client ID and secret in " + WoodpeckerForgePath, nil
		},
	}
}
