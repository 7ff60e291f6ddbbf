package generator

import (
	"fmt"
	"sort"
	"strings"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/templates"
)

// MirrorChart rewrites a chart repository URL through spec.mirrors.charts
// (longest matching prefix wins).
func (d *Data) MirrorChart(url string) string {
	if to, ok := config.RewritePrefix(url, d.Spec.Mirrors.Charts); ok {
		return to
	}
	return url
}

// MirrorImage rewrites an image reference through spec.mirrors.registries.
// Bare Docker Hub names are expanded first so "docker.io" mirrors apply.
func (d *Data) MirrorImage(ref string) string {
	ref = config.NormaliseImage(ref)
	if to, ok := config.RewritePrefix(ref, d.Spec.Mirrors.Registries); ok {
		return to
	}
	return ref
}

// Image returns the pinned, mirrored "repository:tag" of the current
// component's catalog image key.
func (d *Data) Image(key string) (string, error) {
	if d.Component == nil {
		return "", fmt.Errorf("Image %q used outside a component", key)
	}
	return d.ImageOf(d.Component.Name, key)
}

// ImageOf is Image for a named component.
func (d *Data) ImageOf(component, key string) (string, error) {
	img, err := d.image(component, key)
	if err != nil {
		return "", err
	}
	return d.MirrorImage(img.Repository) + ":" + img.Tag, nil
}

// ImageRepo and ImageTag split a pinned image for charts that take them
// apart.
func (d *Data) ImageRepo(key string) (string, error) {
	img, err := d.image(d.Component.Name, key)
	if err != nil {
		return "", err
	}
	return d.MirrorImage(img.Repository), nil
}

// ImageTag returns the pinned tag of the current component's image key.
func (d *Data) ImageTag(key string) (string, error) {
	img, err := d.image(d.Component.Name, key)
	return img.Tag, err
}

func (d *Data) image(component, key string) (templates.Image, error) {
	c, ok := d.Components[component]
	if !ok {
		return templates.Image{}, fmt.Errorf("unknown component %q", component)
	}
	img, ok := c.Images[key]
	if !ok {
		return templates.Image{}, fmt.Errorf("catalog: component %s has no image %q", component, key)
	}
	return img, nil
}

// Chart returns the current component's pinned chart with the repository
// mirrored.
func (d *Data) Chart() (templates.Chart, error) {
	if d.Component == nil || d.Component.Chart == nil {
		return templates.Chart{}, fmt.Errorf("no chart for this template")
	}
	c := *d.Component.Chart
	c.Repository = d.MirrorChart(c.Repository)
	return c, nil
}

// Host returns a component's hostname ("" when it has none).
func (d *Data) Host(component string) string {
	if c, ok := d.Components[component]; ok {
		return c.Hostname
	}
	return ""
}

// On reports whether a component is enabled.
func (d *Data) On(component string) bool {
	c, ok := d.Components[component]
	return ok && c.Enabled
}

// IngressAddress is the LoadBalancer address Traefik's Service asks
// MetalLB for: the first of spec.network.loadBalancerRange, so the front
// door keeps one address (the router's port forwards, DNS) when its
// Service is made again, as it is when Traefik replaces ingress-nginx.
func (d *Data) IngressAddress() string {
	first, _, _ := strings.Cut(d.Spec.Network.LoadBalancerRange, "-")
	return strings.TrimSpace(first)
}

// Namespaces lists the namespaces of enabled components, sorted.
func (d *Data) Namespaces() []string {
	seen := map[string]bool{}
	for _, c := range d.Enabled {
		seen[c.Namespace] = true
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// RepoURL is the URL Argo CD clones this repo with (see
// config.Homelab.ClusterRepoURL).
func (d *Data) RepoURL() string { return d.Homelab.ClusterRepoURL() }

// HLImage is the pinned hl image pipelines and the in-cluster bot run.
func (d *Data) HLImage() (string, error) { return d.ImageOf("hl-bot", "hl") }

// LayerNamespaces are the namespaces a layer's AppProject may deploy to:
// its enabled components' own. The system layer may also deploy to every
// other enabled component's (backups put their ReplicationSources and
// repository secrets beside the volumes they back up) and to kube-system
// (the monitoring stack's kubelet Service).
func (d *Data) LayerNamespaces(layer string) []string {
	seen := map[string]bool{}
	for _, c := range d.Enabled {
		if c.Layer == layer || layer == "system" {
			seen[c.Namespace] = true
		}
	}
	if layer == "system" {
		seen["kube-system"] = true
	}
	out := make([]string, 0, len(seen))
	for ns := range seen {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// ForgeServiceIP is the in-cluster forge's fixed HTTP Service IP.
func (d *Data) ForgeServiceIP() string { return d.Homelab.ForgeServiceIP() }

// ForgeHost is the in-cluster forge's hostname.
func (d *Data) ForgeHost() string { return d.Homelab.ForgeHost() }

// ForgeInCluster reports whether spec.forge is the homelab's own Gitea.
func (d *Data) ForgeInCluster() bool {
	in, _ := d.Homelab.InClusterForge()
	return in
}

// ServiceHost is a component's in-cluster Service host: <service>.<namespace>.svc.
func (d *Data) ServiceHost(component, service string) string {
	c, ok := d.Components[component]
	if !ok {
		return ""
	}
	return service + "." + c.Namespace + ".svc"
}

// WebhookHosts are the hosts the in-cluster forge may send webhooks to
// (Gitea's [webhook] ALLOWED_HOST_LIST): Argo CD's and the bot's Services,
// and the CI's hostname when those components are on.
func (d *Data) WebhookHosts() string {
	hosts := []string{d.ServiceHost("argocd", "argocd-server")}
	if d.On("hl-bot") {
		hosts = append(hosts, d.ServiceHost("hl-bot", "hl-bot"))
	}
	if d.On("woodpecker") {
		hosts = append(hosts, d.Host("woodpecker"))
	}
	return strings.Join(hosts, ",")
}

// BotForgeURL is the forge URL the deployed bot talks to: the in-cluster
// Gitea's Service when the forge is the homelab's own (no ingress, TLS or
// DNS in between), else spec.forge.url.
func (d *Data) BotForgeURL() string {
	if d.ForgeInCluster() {
		return "http://" + d.ServiceHost(config.ForgeComponent, "gitea-http") + ":3000"
	}
	return d.Spec.Forge.URL
}
