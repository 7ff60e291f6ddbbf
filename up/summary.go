package up

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
)

// argocdAdmin is the file and key of Argo CD's local admin password.
const argocdAdmin = "system/argocd/secrets/argocd-secret.sops.yaml"

// Summary is what hl up prints when day one is done: each enabled
// component's URL, the files that hold the sign-in credentials (paths
// only: a value is never printed), the kubeconfig and where day two is
// written down.
func Summary(dir string, h *config.Homelab, kubeconfig string) (string, error) {
	comps, err := generator.EnabledComponents(h)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s is up. Open:\n", h.Metadata.Name)
	for _, c := range comps {
		if c.URL != "" {
			fmt.Fprintf(&b, "  %-26s %s\n", c.Title, c.URL)
		}
	}
	creds, err := filepath.Glob(filepath.Join(dir, "*", "*", "secrets", "*-admin.sops.yaml"))
	if err != nil {
		return "", err
	}
	var rel []string
	for _, c := range creds {
		r, err := filepath.Rel(dir, c)
		if err != nil {
			return "", err
		}
		rel = append(rel, filepath.ToSlash(r))
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(argocdAdmin))); err == nil {
		rel = append(rel, argocdAdmin+" (key admin.plaintext: Argo CD's admin)")
	}
	slices.Sort(rel)
	b.WriteString("Sign-in credentials, SOPS-encrypted in this repository (sops decrypt FILE):\n")
	for _, r := range rel {
		fmt.Fprintf(&b, "  %s\n", r)
	}
	fmt.Fprintf(&b, "Kubeconfig: %s\n", kubeconfig)
	b.WriteString("Day two (upgrades, nodes, apps, restores): docs/day-two.md\n")
	return b.String(), nil
}
