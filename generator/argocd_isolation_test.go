package generator

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// Issue 15, finding 8: what a writer of the repository can make Argo CD
// do. On the rendered full fixture:
//   - no kustomize exec or alpha plugins (a pushed KRM exec function would
//     run in the repo-server);
//   - the age key is mounted in the hl-secrets sidecar only, not in the
//     repo-server container, and the sidecar's command is fixed;
//   - every secrets/ Application is rendered by that plugin;
//   - the platform and apps projects may create no cluster-scoped kind but
//     Namespace and deploy only into their own namespaces; no project
//     allows every namespace or every kind;
//   - the repo-server's egress excludes the home network.
//
// The old templates fail every point: kustomize.buildOptions had
// --enable-exec, the repo-server mounted sops-age, and all three projects
// allowed namespace "*" and every cluster-scoped kind.
func TestArgoCDIsolation(t *testing.T) {
	dir := t.TempDir()
	mustRender(t, fixture("full"), dir, nil)
	tree := snapshot(t, dir)

	var values map[string]any
	if err := yaml.Unmarshal(tree["system/argocd/values.yaml"], &values); err != nil {
		t.Fatal(err)
	}
	argo := values["argo-cd"].(map[string]any)
	cm := dig(argo, "configs", "cm")
	for k, v := range cm {
		if s, _ := v.(string); strings.Contains(s, "enable-exec") || strings.Contains(s, "enable-alpha-plugins") {
			t.Errorf("argocd-cm %s = %q: exec plugins on", k, s)
		}
	}
	plugin := dig(argo, "configs", "cmp", "plugins", "hl-secrets", "generate")
	if cmd, _ := plugin["command"].([]any); len(cmd) != 4 || cmd[0] != "hl" || cmd[1] != "secrets" || cmd[2] != "manifests" {
		t.Errorf("hl-secrets plugin command %v", plugin["command"])
	}
	repo := dig(argo, "repoServer")
	if mountsKey(repo["volumeMounts"]) || hasEnv(repo["env"], "SOPS_AGE_KEY_FILE") {
		t.Error("the repo-server container mounts the age key")
	}
	sidecars, _ := repo["extraContainers"].([]any)
	keyed := 0
	for _, c := range sidecars {
		m := c.(map[string]any)
		if mountsKey(m["volumeMounts"]) {
			keyed++
			if m["name"] != "hl-secrets" {
				t.Errorf("container %v mounts the age key", m["name"])
			}
		}
	}
	if keyed != 1 {
		t.Errorf("%d containers mount the age key, want the hl-secrets sidecar", keyed)
	}

	docs := renderedDocs(t, tree)
	sawSecretsSet := false
	projects := map[string]map[string]any{}
	for _, d := range docs {
		var obj map[string]any
		if err := d.node.Decode(&obj); err != nil {
			continue
		}
		md, _ := obj["metadata"].(map[string]any)
		switch {
		case obj["kind"] == "AppProject":
			projects[md["name"].(string)] = obj
		case obj["kind"] == "ApplicationSet" && md["name"] == "secrets":
			sawSecretsSet = true
			if p := dig(obj, "spec", "template", "spec", "source", "plugin"); p["name"] != "hl-secrets" {
				t.Errorf("the secrets ApplicationSet does not use the hl-secrets plugin: %v", p)
			}
		case obj["kind"] == "NetworkPolicy" && md["name"] == "allow-repo-server-fetch":
			for _, e := range dig(obj, "spec")["egress"].([]any) {
				for _, to := range e.(map[string]any)["to"].([]any) {
					ip, _ := to.(map[string]any)["ipBlock"].(map[string]any)
					if ip == nil {
						continue
					}
					except, _ := ip["except"].([]any)
					if ip["cidr"] == "0.0.0.0/0" && !slices.Contains(except, any("192.168.0.0/16")) {
						t.Errorf("repo-server egress to %v without excepting the home network", ip["cidr"])
					}
				}
			}
		}
	}
	if !sawSecretsSet {
		t.Fatal("no secrets ApplicationSet rendered")
	}
	for _, name := range []string{"system", "platform", "apps"} {
		p := projects[name]
		if p == nil {
			t.Fatalf("no AppProject %s", name)
		}
		spec := p["spec"].(map[string]any)
		var nss []string
		for _, d := range spec["destinations"].([]any) {
			nss = append(nss, d.(map[string]any)["namespace"].(string))
		}
		if slices.Contains(nss, "*") || len(nss) == 0 {
			t.Errorf("project %s destinations %v", name, nss)
		}
		var kinds []string
		for _, k := range spec["clusterResourceWhitelist"].([]any) {
			m := k.(map[string]any)
			kinds = append(kinds, m["group"].(string)+"/"+m["kind"].(string))
		}
		if slices.Contains(kinds, "*/*") {
			t.Errorf("project %s allows every cluster-scoped kind", name)
		}
		if name == "system" {
			continue
		}
		if !slices.Equal(kinds, []string{"/Namespace"}) {
			t.Errorf("project %s cluster-scoped kinds %v, want Namespace only", name, kinds)
		}
		for _, forbidden := range []string{"argocd", "kube-system", "gitea"} {
			if name == "platform" && forbidden == "gitea" {
				continue
			}
			if slices.Contains(nss, forbidden) {
				t.Errorf("project %s may deploy into %s", name, forbidden)
			}
		}
	}
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return map[string]any{}
		}
		m = next
	}
	return m
}

func mountsKey(v any) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if m, _ := x.(map[string]any); m != nil && m["name"] == "sops-age" {
			return true
		}
	}
	return false
}

func hasEnv(v any, name string) bool {
	list, _ := v.([]any)
	for _, x := range list {
		if m, _ := x.(map[string]any); m != nil && m["name"] == name {
			return true
		}
	}
	return false
}
