package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"code.gitea.io/sdk/gitea"
	"golang.org/x/crypto/ssh"

	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
)

func (r *runner) listDeployKeys() ([]*gitea.DeployKey, error) {
	var out []*gitea.DeployKey
	for page := 1; page > 0; {
		keys, resp, err := r.api.ListDeployKeys(r.forge.Owner, r.forge.Repo, gitea.ListDeployKeysOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, apiErr("list deploy keys", resp, err)
		}
		out = append(out, keys...)
		page = resp.NextPage
	}
	return out, nil
}

func sameKey(a, b string) bool {
	ka, _, _, _, errA := ssh.ParseAuthorizedKey([]byte(a))
	kb, _, _, _, errB := ssh.ParseAuthorizedKey([]byte(b))
	return errA == nil && errB == nil && bytes.Equal(ka.Marshal(), kb.Marshal())
}

func (r *runner) deployKeyStep() step {
	owner, name := r.forge.Owner, r.forge.Repo
	// state is what check found, for apply.
	var (
		pub   string // stored public key, "" when the file is missing
		match *gitea.DeployKey
		stale []*gitea.DeployKey // our title, not the stored key
	)
	return step{
		name: "deploy-key",
		check: func(context.Context) (bool, string, error) {
			pub, match, stale = "", nil, nil
			ann, exists, err := r.readAnnotations(DeployKeyPath)
			if err != nil {
				return false, "", err
			}
			if exists {
				if pub = ann[AnnotationPublicKey]; pub == "" {
					return false, "", fmt.Errorf("%s has no %s annotation; delete it to generate a new deploy key", DeployKeyPath, AnnotationPublicKey)
				}
			}
			if r.repo == nil {
				return false, "generate an ed25519 key, add it read-only, store it in " + DeployKeyPath, nil
			}
			keys, err := r.listDeployKeys()
			if err != nil {
				return false, "", err
			}
			for _, k := range keys {
				switch {
				case pub != "" && sameKey(k.Key, pub):
					match = k
				case k.Title == DeployKeyTitle:
					stale = append(stale, k)
				}
			}
			var todo []string
			switch {
			case pub == "":
				todo = append(todo, "generate an ed25519 key, add it read-only, store it in "+DeployKeyPath)
			case match == nil:
				todo = append(todo, "add the key stored in "+DeployKeyPath+" read-only")
			case !match.ReadOnly:
				todo = append(todo, "make the deploy key read-only")
			}
			if len(stale) > 0 {
				todo = append(todo, fmt.Sprintf("remove %d stale deploy keys titled %q", len(stale), DeployKeyTitle))
			}
			if len(todo) == 0 {
				return true, "read-only deploy key " + match.Fingerprint, nil
			}
			return false, strings.Join(todo, "; "), nil
		},
		apply: func(context.Context) (Status, string, error) {
			del := stale
			if match != nil && !match.ReadOnly {
				del = append(del, match)
				match = nil
			}
			for _, k := range del {
				if resp, err := r.api.DeleteDeployKey(owner, name, k.ID); err != nil {
					return "", "", apiErr("delete deploy key "+k.Fingerprint, resp, err)
				}
			}
			if match != nil { // only stale keys were removed
				return StatusUpdated, fmt.Sprintf("removed %d stale deploy keys", len(stale)), nil
			}
			var vals map[string]string
			if pub == "" {
				g := secrets.Generator{Kind: secrets.KindEd25519SSH}
				var err error
				if vals, err = g.Generate("sshPrivateKey", r.opts.Rand); err != nil {
					return "", "", err
				}
				pub = vals["sshPrivateKey"+secrets.PublicSuffix]
			}
			k, resp, err := r.api.CreateDeployKey(owner, name, gitea.CreateKeyOption{Title: DeployKeyTitle, Key: pub, ReadOnly: true})
			if err != nil {
				return "", "", apiErr("add deploy key", resp, err)
			}
			if vals == nil {
				return StatusUpdated, "re-added the stored deploy key " + k.Fingerprint + " read-only", nil
			}
			vals["type"] = "git"
			vals["url"] = r.res.RepoURL
			spec := secrets.Spec{
				Name: "repo-deploy-key", Namespace: "argocd",
				Labels:      map[string]string{"argocd.argoproj.io/secret-type": "repository"},
				Annotations: map[string]string{AnnotationPublicKey: pub},
				Keys:        []secrets.Key{{Name: "sshPrivateKey", Generator: secrets.Generator{Kind: secrets.KindEd25519SSH}}},
				Consumers:   []string{"statefulset/argocd-application-controller", "deployment/argocd-repo-server"},
			}
			if err := r.writeSecret(DeployKeyPath, spec, vals); err != nil {
				return "", "", err
			}
			return StatusCreated, "read-only deploy key " + k.Fingerprint + " in " + DeployKeyPath, nil
		},
	}
}

// webhook describes one repository webhook and the Secret its shared
// secret is stored in.
type webhook struct {
	name      string
	component string // catalog component whose hostname receives it
	path      string // URL path on that host
	file      string
	events    []string
	secret    secrets.Spec // without Keys
	key       string
	aliases   []string // more keys holding the same value
}

// hostname mirrors the generator: hl.yaml's apps.<c>.hostname, else the
// catalog's host label under spec.domain.
func (r *runner) hostname(component string) (string, error) {
	if h := r.h.Spec.Apps[component].Hostname; h != "" {
		return h, nil
	}
	cat, err := templates.LoadCatalog()
	if err != nil {
		return "", err
	}
	c, ok := cat.Component(component)
	if !ok || c.Host == "" {
		return "", fmt.Errorf("catalog component %s has no hostname", component)
	}
	return c.Host + "." + r.h.Spec.Domain, nil
}

func (r *runner) listHooks() ([]*gitea.Hook, error) {
	var out []*gitea.Hook
	for page := 1; page > 0; {
		hooks, resp, err := r.api.ListRepoHooks(r.forge.Owner, r.forge.Repo, gitea.ListHooksOptions{ListOptions: gitea.ListOptions{Page: page, PageSize: 50}})
		if err != nil {
			return nil, apiErr("list webhooks", resp, err)
		}
		out = append(out, hooks...)
		page = resp.NextPage
	}
	return out, nil
}

func hookEventsCover(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func (r *runner) webhookStep(w webhook) step {
	owner, name := r.forge.Owner, r.forge.Repo
	var (
		hookURL string
		hook    *gitea.Hook
		extra   []*gitea.Hook
		stored  bool
	)
	w.secret.Keys = []secrets.Key{{Name: w.key, Generator: secrets.Generator{Kind: secrets.KindHex, Length: 32}}}
	return step{
		name: w.name,
		check: func(context.Context) (bool, string, error) {
			hook, extra = nil, nil
			host, err := r.hostname(w.component)
			if err != nil {
				return false, "", err
			}
			hookURL = "https://" + host + w.path
			if stored, err = r.fileExists(w.file); err != nil {
				return false, "", err
			}
			plan := "create webhook " + hookURL + " (" + strings.Join(w.events, ", ") + ") with a random secret stored in " + w.file
			if r.repo == nil {
				return false, plan, nil
			}
			hooks, err := r.listHooks()
			if err != nil {
				return false, "", err
			}
			for _, h := range hooks {
				if h.Config["url"] != hookURL {
					continue
				}
				if hook == nil {
					hook = h
				} else {
					extra = append(extra, h)
				}
			}
			var todo []string
			switch {
			case hook == nil:
				todo = append(todo, plan)
			case !stored:
				todo = append(todo, "replace webhook "+hookURL+" (its secret is not stored) and store a new secret in "+w.file)
			case !hook.Active || hook.Config["content_type"] != "json" || !hookEventsCover(hook.Events, w.events):
				todo = append(todo, "fix events/content type/active of webhook "+hookURL)
			}
			if len(extra) > 0 {
				todo = append(todo, fmt.Sprintf("remove %d duplicate webhooks to %s", len(extra), hookURL))
			}
			if len(todo) == 0 {
				return true, "webhook " + hookURL + " (secret in " + w.file + ")", nil
			}
			return false, strings.Join(todo, "; "), nil
		},
		apply: func(context.Context) (Status, string, error) {
			for _, h := range extra {
				if resp, err := r.api.DeleteRepoHook(owner, name, h.ID); err != nil {
					return "", "", apiErr("delete duplicate webhook", resp, err)
				}
			}
			cfg := map[string]string{"url": hookURL, "content_type": "json", "http_method": "post"}
			// The stored secret is reused when it can be read, so a hook
			// deleted in Gitea comes back with it. Gitea's API sets a secret
			// only when a hook is created, so a hook whose secret is not
			// stored (an interrupted run) is replaced.
			secret := ""
			if stored && len(r.opts.Identities) > 0 {
				vals, err := r.readSecret(w.file)
				if err != nil {
					return "", "", err
				}
				secret = vals[w.key]
			}
			fresh := !stored || (hook == nil && secret == "")
			if fresh {
				vals, _, err := secrets.Values(w.secret, nil, r.opts.Rand)
				if err != nil {
					return "", "", err
				}
				secret = vals[w.key]
			}
			status := StatusUpdated
			if hook != nil && !stored {
				if resp, err := r.api.DeleteRepoHook(owner, name, hook.ID); err != nil {
					return "", "", apiErr("replace webhook "+hookURL, resp, err)
				}
				hook = nil
			}
			if hook == nil {
				cfg["secret"] = secret
				if _, resp, err := r.api.CreateRepoHook(owner, name, gitea.CreateHookOption{Type: gitea.HookTypeGitea, Config: cfg, Events: w.events, Active: true}); err != nil {
					return "", "", apiErr("create webhook "+hookURL, resp, err)
				}
				status = StatusCreated
			} else {
				active := true
				if resp, err := r.api.EditRepoHook(owner, name, hook.ID, gitea.EditHookOption{Config: cfg, Events: w.events, Active: &active}); err != nil {
					return "", "", apiErr("update webhook "+hookURL, resp, err)
				}
			}
			if !fresh {
				return status, "webhook " + hookURL + " (secret from " + w.file + ")", nil
			}
			vals := map[string]string{w.key: secret}
			for _, a := range w.aliases {
				vals[a] = secret
			}
			if err := r.writeSecret(w.file, w.secret, vals); err != nil {
				return "", "", err
			}
			if stored {
				r.warn("%s: the webhook was gone and no age identity was given to read its stored secret, so %s holds a new one: commit it", w.name, w.file)
			}
			return status, "webhook " + hookURL + " (secret in " + w.file + ")", nil
		},
	}
}
