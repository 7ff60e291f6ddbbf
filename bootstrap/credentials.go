package bootstrap

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"code.gitea.io/sdk/gitea"

	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
)

// webhook describes one repository webhook and the Secret its shared
// secret is stored in.
type webhook struct {
	name      string
	component string // catalog component whose hostname receives it
	// service is the component's Service (name[:port]) the webhook goes
	// to instead when the forge runs in the cluster too (no ingress, TLS
	// or DNS between).
	service string
	path    string // URL path on that host
	file    string
	events  []string
	secret  secrets.Spec // without Keys
	key     string
	aliases []string // more keys holding the same value
}

// hostname is where a component is served, as the generator renders it.
func (r *runner) hostname(component string) (string, error) {
	if h := r.h.Hostname(component); h != "" {
		return h, nil
	}
	return "", fmt.Errorf("catalog component %s has no hostname", component)
}

// webhookBase is where a webhook goes: Options.ServiceURLs (tests), the
// component's Service when the forge is in the cluster, else its public
// HTTPS hostname.
func (r *runner) webhookBase(w webhook) (string, error) {
	if u, ok := r.opts.ServiceURLs[w.component]; ok {
		return strings.TrimSuffix(u, "/"), nil
	}
	if in, _ := r.h.InClusterForge(); in && w.service != "" {
		cat, err := templates.LoadCatalog()
		if err != nil {
			return "", err
		}
		if c, ok := cat.Component(w.component); ok {
			name, port, _ := strings.Cut(w.service, ":")
			if port != "" {
				port = ":" + port
			}
			return "http://" + name + "." + c.Namespace + ".svc" + port, nil
		}
	}
	host, err := r.hostname(w.component)
	if err != nil {
		return "", err
	}
	return "https://" + host, nil
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
			base, err := r.webhookBase(w)
			if err != nil {
				return false, "", err
			}
			hookURL = base + w.path
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
