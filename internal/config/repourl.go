package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"hl.dev/hl/templates"
)

// The in-cluster forge is the gitea component; its chart names the HTTP
// Service <release>-http, and the release is the component's name.
const (
	ForgeComponent = "gitea"
	forgeHTTPPort  = 3000
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

// ClusterRepoURL is the URL Argo CD clones this repository with. For this
// homelab's own Gitea it is the forge's own hostname at the in-cluster
// HTTP Service's port, http://git.<domain>:3000/owner/repo.git, and
// Argo CD's repo-server resolves that hostname to the Service's fixed
// cluster IP (ForgeServiceIP, a hostAliases entry): no ingress, TLS, DNS
// or SSH route is needed, nor the apps Argo CD itself deploys in front of
// Gitea. The hostname is Gitea's own (its ROOT_URL) so that Gitea's push
// webhook, which names the repository by that URL, matches the
// Applications' repoURL in Argo CD (it compares hostnames, ports aside):
// with the Service's name there instead, every push was ignored and
// changes waited for Argo CD's three-minute poll. Any other forge: its
// own HTTPS URL. Either way with a read-only token (hl bootstrap gitea).
func (h *Homelab) ClusterRepoURL() string {
	f := h.Spec.Forge
	if in, _ := h.InClusterForge(); in {
		u, _ := url.Parse(f.URL)
		return fmt.Sprintf("http://%s:%d/%s/%s.git", u.Hostname(), forgeHTTPPort, f.Owner, f.Repo)
	}
	return strings.TrimSuffix(f.URL, "/") + "/" + f.Owner + "/" + f.Repo + ".git"
}

// ForgeHost is the in-cluster forge's hostname (git.<domain>), "" when
// the forge is not this homelab's own.
func (h *Homelab) ForgeHost() string {
	if in, _ := h.InClusterForge(); !in {
		return ""
	}
	u, _ := url.Parse(h.Spec.Forge.URL)
	return u.Hostname()
}

// forgeServiceOffset places the in-cluster forge's HTTP Service in the
// service CIDR: right after the cluster DNS Service k3s puts at the 10th
// address, inside the low band Kubernetes keeps for fixed cluster IPs
// (it hands out random ones from the rest first).
const forgeServiceOffset = 11

// ForgeServiceIP is the fixed cluster IP of the in-cluster forge's HTTP
// Service (see ClusterRepoURL); "" when the forge is not this homelab's
// own or spec.kubernetes.serviceCIDR is not valid (validation says so).
func (h *Homelab) ForgeServiceIP() string {
	if in, _ := h.InClusterForge(); !in {
		return ""
	}
	p, err := netip.ParsePrefix(h.Spec.Kubernetes.ServiceCIDR)
	if err != nil {
		return ""
	}
	a := p.Masked().Addr()
	for range forgeServiceOffset {
		a = a.Next()
	}
	if !p.Contains(a) {
		return ""
	}
	return a.String()
}
