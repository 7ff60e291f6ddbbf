package config

import (
	"fmt"
	"net/url"
	"strings"

	"hl.dev/hl/templates"
)

// The in-cluster forge is the gitea component; its chart names the HTTP
// Service <release>-http, and the release is the component's name.
const (
	ForgeComponent   = "gitea"
	forgeHTTPService = "gitea-http"
	forgeHTTPPort    = 3000
)

// InClusterForge reports whether spec.forge is this homelab's own Gitea
// (the gitea component, at its host), and the namespace it runs in.
func (h *Homelab) InClusterForge() (bool, string) {
	f := h.Spec.Forge
	if f.Type != ForgeGitea || !h.Enabled(ForgeComponent) {
		return false, ""
	}
	c, ok := templates.MustCatalog().Component(ForgeComponent)
	if !ok {
		return false, ""
	}
	u, err := url.Parse(f.URL)
	if err != nil || u.Hostname() != c.Host+"."+h.Spec.Domain {
		return false, ""
	}
	return true, c.Namespace
}

// ClusterRepoURL is the URL Argo CD clones this repository with: the
// in-cluster Gitea's HTTP Service when the forge is this homelab's own
// (no ingress, TLS, DNS or SSH route needed, and no dependency on the
// apps Argo CD itself deploys in front of it), else the forge's own
// HTTPS URL. Either way with a read-only token (hl bootstrap gitea).
func (h *Homelab) ClusterRepoURL() string {
	f := h.Spec.Forge
	if in, ns := h.InClusterForge(); in {
		return fmt.Sprintf("http://%s.%s.svc:%d/%s/%s.git", forgeHTTPService, ns, forgeHTTPPort, f.Owner, f.Repo)
	}
	return strings.TrimSuffix(f.URL, "/") + "/" + f.Owner + "/" + f.Repo + ".git"
}
