package backup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/templates"
)

// claim is a PersistentVolumeClaim the rendered repo makes exist, and
// what makes it.
type claim struct{ namespace, name, from string }

// renderedClaims lists every claim the manifests create: PersistentVolumeClaim
// objects, and the claims a StatefulSet's volumeClaimTemplates (one per
// replica, <template>-<statefulset>-<ordinal>) or a Prometheus or
// Alertmanager resource's storage.volumeClaimTemplate (the operator's
// StatefulSet <kind>-<name>, template <kind>-<name>-db) make.
func renderedClaims(r *rendered) []claim {
	var out []claim
	for _, m := range r.manifests {
		o := m.Object
		kind, name, ns := str(o, "kind"), str(o, "metadata", "name"), str(o, "metadata", "namespace")
		from := fmt.Sprintf("%s %s/%s (%s:%d)", kind, ns, name, m.File, m.Line)
		replicas := 1
		if spec, ok := o["spec"].(map[string]any); ok {
			if n, ok := spec["replicas"].(int); ok {
				replicas = n
			} else if n, ok := spec["replicas"].(float64); ok {
				replicas = int(n)
			} else if n, ok := spec["replicas"].(int64); ok {
				replicas = int(n)
			}
		}
		switch kind {
		case "PersistentVolumeClaim":
			out = append(out, claim{ns, name, from})
		case "StatefulSet":
			spec, _ := o["spec"].(map[string]any)
			tmpls, _ := spec["volumeClaimTemplates"].([]any)
			for _, t := range tmpls {
				tm, _ := t.(map[string]any)
				for i := 0; i < replicas; i++ {
					out = append(out, claim{ns, fmt.Sprintf("%s-%s-%d", str(tm, "metadata", "name"), name, i), from})
				}
			}
		case "Prometheus", "Alertmanager":
			spec, _ := o["spec"].(map[string]any)
			if _, ok := spec["storage"].(map[string]any)["volumeClaimTemplate"]; ok {
				sts := strings.ToLower(kind) + "-" + name
				for i := 0; i < replicas; i++ {
					out = append(out, claim{ns, fmt.Sprintf("%s-db-%s-%d", sts, sts, i), from})
				}
			}
		}
	}
	return out
}

// appNamespaces maps each rendered app's namespace to its catalog
// component, from the <layer>/<app>/app.yaml files.
func appNamespaces(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*", "*", "app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var a struct{ Name, Namespace string }
		if err := yaml.Unmarshal(b, &a); err != nil {
			t.Fatal(err)
		}
		if prev, ok := out[a.Namespace]; ok && prev != a.Name {
			t.Fatalf("namespace %s holds apps %s and %s: claims cannot be told apart", a.Namespace, prev, a.Name)
		}
		out[a.Namespace] = a.Name
	}
	return out
}

// TestEveryClaimBackedUp renders the full fixture (every catalog app on)
// with internal/testcharts' charts and lists every PersistentVolumeClaim
// it creates; each must be in its component's catalog `volumes`, backed
// up on every target (a ReplicationSource and a repository Secret per
// target) or skipped with the reason written there. Every catalog volume
// must render in turn, unless it is `declared`: its chart is a stand-in
// here (no Go module ships it), and the entry names the chart
// version its name was read off, which must be the catalog's pin, so a
// chart bump fails this test until someone reads the name again.
//
// Seam: charts other than the real ones of testcharts (cert-manager,
// external-dns, metallb, volsync) are stand-ins here (content stand-ins
// for argo-cd and gitea, which render gitea's claim, empty or CRD-only
// ones for the rest); the claims those charts make upstream are the
// `declared` ones.
func TestEveryClaimBackedUp(t *testing.T) {
	r := renderFull(t, "")
	cat := templates.MustCatalog()
	byNS := appNamespaces(t, r.dir)
	kinds := map[string]testcharts.Kind{}
	for _, c := range r.charts.Charts {
		kinds[c.Component] = c.Kind
	}

	// What backs each (namespace, pvc) up, per target.
	sources := map[string]map[string]bool{}
	secretsSeen := map[string]bool{}
	for _, m := range r.manifests {
		o := m.Object
		ns, name := str(o, "metadata", "namespace"), str(o, "metadata", "name")
		switch str(o, "kind") {
		case "ReplicationSource":
			k := ns + "/" + str(o, "spec", "sourcePVC")
			if sources[k] == nil {
				sources[k] = map[string]bool{}
			}
			target := str(o, "metadata", "labels", "backups.hl.dev/target")
			sources[k][target] = true
			if repo := str(o, "spec", "restic", "repository"); repo != "volsync-"+str(o, "spec", "sourcePVC")+"-"+target {
				t.Errorf("ReplicationSource %s/%s: repository Secret %q", ns, name, repo)
			}
		case "Secret":
			secretsSeen[ns+"/"+name] = true
		}
	}

	rendered := map[string]claim{}
	for _, c := range renderedClaims(r) {
		rendered[c.namespace+"/"+c.name] = c
	}
	if len(rendered) < 3 {
		t.Fatalf("only %d claims rendered: the render lost its workloads", len(rendered))
	}
	var lines []string
	for _, k := range sortedKeys(rendered) {
		c := rendered[k]
		comp, ok := cat.Component(byNS[c.namespace])
		if !ok {
			t.Errorf("claim %s (from %s) is in namespace %s, which no catalog app owns", k, c.from, c.namespace)
			continue
		}
		v, ok := volume(comp, c.name)
		switch {
		case !ok:
			t.Errorf("claim %s (from %s) is not in %s's volumes in templates/catalog.yaml: back it up or write why not (skip)", k, c.from, comp.Name)
		case v.Declared != nil:
			t.Errorf("claim %s renders (from %s): drop its `declared` in templates/catalog.yaml, the test sees it", k, c.from)
		}
		lines = append(lines, k+" ← "+c.from)
	}

	for _, comp := range cat.Components {
		if len(comp.Volumes) == 0 {
			continue
		}
		if !r.enabled(comp.Name) {
			t.Errorf("component %s has volumes but is off in the full fixture: this test cannot see them", comp.Name)
			continue
		}
		ns := ""
		for n, c := range byNS {
			if c == comp.Name {
				ns = n
			}
		}
		for _, v := range comp.Volumes {
			k := ns + "/" + v.Name
			if _, ok := rendered[k]; !ok {
				switch {
				case v.Declared == nil:
					t.Errorf("catalog volume %s of %s renders nowhere: no workload creates it", k, comp.Name)
				case comp.Chart == nil || kinds[comp.Name] == testcharts.Real:
					t.Errorf("catalog volume %s is declared, but %s's upstream chart renders here and does not create it", k, comp.Name)
				case v.Declared.Chart != comp.Chart.Version:
					t.Errorf("catalog volume %s was read off %s chart %s, the catalog pins %s: check the name again and update declared.chart", k, comp.Name, v.Declared.Chart, comp.Chart.Version)
				}
			}
			for _, tg := range cat.BackupTargets {
				has := sources[k][tg.Name]
				sec := secretsSeen[ns+"/volsync-"+v.Name+"-"+tg.Name]
				switch {
				case v.Skip == "" && !has:
					t.Errorf("volume %s: no ReplicationSource to target %s", k, tg.Name)
				case v.Skip == "" && !sec:
					t.Errorf("volume %s: no repository Secret volsync-%s-%s in %s", k, v.Name, tg.Name, ns)
				case v.Skip != "" && (has || sec):
					t.Errorf("volume %s is skipped (%s) but still has a ReplicationSource or Secret to %s", k, v.Skip, tg.Name)
				}
			}
			state := "backed up"
			if v.Skip != "" {
				state = "skipped: " + v.Skip
			}
			if v.Declared != nil {
				state += " [declared: " + comp.Chart.Name + " " + v.Declared.Chart + ", " + v.Declared.From + "]"
			}
			lines = append(lines, k+": "+state)
		}
	}
	t.Logf("claims and their backups:\n%s", strings.Join(lines, "\n"))
}

func (r *rendered) enabled(component string) bool {
	for _, layer := range []string{"system", "platform", "apps"} {
		if _, err := os.Stat(filepath.Join(r.dir, layer, component, "app.yaml")); err == nil {
			return true
		}
	}
	return false
}

func volume(c templates.Component, name string) (templates.Volume, bool) {
	for _, v := range c.Volumes {
		if v.Name == name {
			return v, true
		}
	}
	return templates.Volume{}, false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
