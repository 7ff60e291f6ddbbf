package testcharts_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/getter"
	helmreg "helm.sh/helm/v3/pkg/registry"
	"helm.sh/helm/v3/pkg/repo"
	"sigs.k8s.io/yaml"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/chartcache"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/secrets"
	"hl.dev/hl/templates"
)

// TestCatalog: every chart of the catalog is in the set, under its name
// and version, as the kind the package doc promises; stand-ins without
// content have no templates.
func TestCatalog(t *testing.T) {
	set := testcharts.Catalog(t)
	cat := templates.MustCatalog()
	want := map[string]testcharts.Kind{
		"cert-manager": testcharts.Real, "external-dns": testcharts.Real, "metallb": testcharts.Real, "volsync": testcharts.Real,
		"argo-cd": testcharts.ContentStandIn, "gitea": testcharts.ContentStandIn,
		"kube-prometheus-stack": testcharts.ContentStandIn, "traefik": testcharts.ContentStandIn,
	}
	n := 0
	for _, comp := range cat.Components {
		if comp.Chart == nil {
			continue
		}
		n++
		c, ok := set.Get(comp.Chart.Name)
		if !ok {
			t.Errorf("component %s: chart %s missing", comp.Name, comp.Chart.Name)
			continue
		}
		if c.Component != comp.Name || c.Repository != comp.Chart.Repository || c.Version != comp.Chart.Version {
			t.Errorf("chart %s: component %s %s %s, catalog says %s %s %s", c.Name, c.Component, c.Repository, c.Version, comp.Name, comp.Chart.Repository, comp.Chart.Version)
		}
		ch, err := loader.LoadDir(c.Dir)
		if err != nil {
			t.Errorf("chart %s: %v", c.Name, err)
			continue
		}
		if ch.Name() != comp.Chart.Name || ch.Metadata.Version != comp.Chart.Version {
			t.Errorf("chart folder of %s holds %s %s", comp.Chart.Name, ch.Name(), ch.Metadata.Version)
		}
		kind, ok := want[c.Name]
		if !ok {
			kind = testcharts.EmptyStandIn
		}
		if c.Kind != kind {
			t.Errorf("chart %s is a %s, want a %s", c.Name, c.Kind, kind)
		}
		if c.Source == "" {
			t.Errorf("chart %s does not say where it comes from", c.Name)
		}
		if templ, crds := len(ch.Templates), len(ch.CRDObjects()); (c.Kind == testcharts.EmptyStandIn) != (templ+crds == 0) {
			t.Errorf("chart %s (%s) has %d templates and %d CRDs", c.Name, c.Kind, templ, crds)
		}
	}
	if n != len(set.Charts) {
		t.Errorf("set has %d charts, catalog %d", len(set.Charts), n)
	}
	if c, _ := set.Get("cert-manager"); c != nil {
		if ch, err := loader.LoadDir(c.Dir); err == nil && ch.Metadata.AppVersion != "v1.19.1" {
			t.Errorf("cert-manager appVersion %q: Chart.template.yaml not filled in", ch.Metadata.AppVersion)
		}
	}
	t.Logf("charts:\n%s", set.Summary())
}

// renderedArgoValues renders the full fixture with the generator and
// returns the argo-cd values of its system/argocd/values.yaml.
func renderedArgoValues(t *testing.T) map[string]any {
	t.Helper()
	return renderedValues(t, "system/argocd", "argo-cd")
}

// renderedValues renders the full fixture with the generator and returns
// what the wrapper chart in folder passes to its subchart key.
func renderedValues(t *testing.T, folder, key string) map[string]any {
	t.Helper()
	root := filepath.Join("..", "..")
	ids, err := secrets.LoadIdentities(filepath.Join(root, "testdata", "age", "test-key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, err := generator.Render(context.Background(), generator.Options{
		ConfigPath: filepath.Join(root, "testdata", "config", "valid", "full.yaml"), OutDir: out, Identities: ids,
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(folder), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper, err := chartutil.ReadValues(b)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := wrapper.Table(key)
	if err != nil {
		t.Fatal(err)
	}
	return vals
}

type object struct {
	kind, name string
	body       map[string]any
}

// render renders a chart as `helm template --include-crds` does, hooks
// included.
func render(chartDir, release string, vals map[string]any, apiVersions ...string) ([]object, error) {
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		return nil, err
	}
	inst := action.NewInstall(&action.Configuration{})
	inst.ClientOnly, inst.DryRun, inst.Replace, inst.IncludeCRDs = true, true, true, true
	inst.ReleaseName, inst.Namespace = release, "argocd"
	inst.APIVersions = chartutil.VersionSet(apiVersions)
	// The cluster's Kubernetes: the catalog's k3s (the SDK's default is
	// older than the charts allow).
	kv, err := chartutil.ParseKubeVersion(templates.MustCatalog().K3s)
	if err != nil {
		return nil, err
	}
	inst.KubeVersion = kv
	rel, err := inst.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	manifest := rel.Manifest
	for _, h := range rel.Hooks {
		manifest += "\n---\n" + h.Manifest
	}
	var out []object
	for _, doc := range strings.Split(manifest, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			return nil, fmt.Errorf("%w in\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		meta, _ := m["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		kind, _ := m["kind"].(string)
		out = append(out, object{kind, name, m})
	}
	return out, nil
}

func find(objs []object, kind, name string) map[string]any {
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o.body
		}
	}
	return nil
}

func get(m map[string]any, path ...string) any {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

func names(l any) []string {
	items, _ := l.([]any)
	var out []string
	for _, it := range items {
		if m, ok := it.(map[string]any); ok {
			n, _ := m["name"].(string)
			out = append(out, n)
		}
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func yamlEqual(a, b any) bool {
	ya, _ := yaml.Marshal(a)
	yb, _ := yaml.Marshal(b)
	return bytes.Equal(ya, yb)
}

// TestArgoCDStandInRendersBootstrapValues renders the argo-cd stand-in
// with the values a rendered repo's system/argocd/values.yaml holds and
// checks each mapping against those values (nothing here is a literal of
// the template: a changed template changes what is expected).
func TestArgoCDStandInRendersBootstrapValues(t *testing.T) {
	set := testcharts.Catalog(t)
	c, ok := set.Get("argo-cd")
	if !ok {
		t.Fatal("no argo-cd chart")
	}
	vals := renderedArgoValues(t)
	objs, err := render(c.Dir, testcharts.ArgoCDRelease, vals)
	if err != nil {
		t.Fatal(err)
	}
	v := chartutil.Values(vals)

	domain, _ := v.PathValue("global.domain")
	cm := find(objs, "ConfigMap", "argocd-cm")
	if cm == nil {
		t.Fatal("no argocd-cm")
	}
	wantCM, _ := v.Table("configs.cm")
	if len(wantCM) == 0 {
		t.Fatal("the rendered values set no configs.cm")
	}
	for k, want := range wantCM {
		if got := get(cm, "data", k); got != fmt.Sprint(want) {
			t.Errorf("argocd-cm %s = %v, want %v", k, got, want)
		}
	}
	if got := get(cm, "data", "url"); got != fmt.Sprintf("https://%v", domain) {
		t.Errorf("argocd-cm url = %v (global.domain %v)", got, domain)
	}
	if get(cm, "data", "resource.exclusions") == nil {
		t.Error("argocd-cm lacks install.yaml's resource.exclusions")
	}
	for _, tc := range []struct{ values, configMap string }{
		{"configs.params", "argocd-cmd-params-cm"},
		{"configs.rbac", "argocd-rbac-cm"},
	} {
		want, _ := v.Table(tc.values)
		if len(want) == 0 {
			t.Errorf("the rendered values set no %s", tc.values)
		}
		got := find(objs, "ConfigMap", tc.configMap)
		for k, w := range want {
			if d := get(got, "data", k); d != fmt.Sprint(w) {
				t.Errorf("%s %s = %v, want %v", tc.configMap, k, d, w)
			}
		}
	}

	if create, err := v.PathValue("configs.secret.createSecret"); err != nil || create != false {
		t.Fatalf("configs.secret.createSecret = %v (%v): the test expects hl's false", create, err)
	}
	if find(objs, "Secret", "argocd-secret") != nil {
		t.Error("argocd-secret rendered with configs.secret.createSecret false")
	}
	if dex, _ := v.PathValue("dex.enabled"); dex != false {
		t.Fatalf("dex.enabled = %v: the test expects hl's false", dex)
	}
	for _, o := range objs {
		if strings.Contains(o.name, "dex") {
			t.Errorf("%s %s rendered with dex.enabled false", o.kind, o.name)
		}
	}

	rs := find(objs, "Deployment", "argocd-repo-server")
	if rs == nil {
		t.Fatal("no Deployment argocd-repo-server")
	}
	pod := get(rs, "spec", "template", "spec").(map[string]any)
	added := 0
	for _, list := range []struct{ values, pod string }{
		{"repoServer.initContainers", "initContainers"},
		{"repoServer.extraContainers", "containers"},
		{"repoServer.volumes", "volumes"},
	} {
		want, _ := v.PathValue(list.values)
		for _, n := range names(want) {
			added++
			if !contains(names(pod[list.pod]), n) {
				t.Errorf("repo-server %s lacks %s from %s", list.pod, n, list.values)
			}
		}
	}
	if added == 0 {
		t.Fatal("the rendered values add no container or volume to the repo-server")
	}
	var main map[string]any
	for _, ctr := range pod["containers"].([]any) {
		if m := ctr.(map[string]any); m["name"] == "repo-server" {
			main = m
		}
	}
	if main == nil {
		t.Fatalf("no container repo-server in %v", names(pod["containers"]))
	}
	for _, list := range []struct{ values, field string }{{"repoServer.env", "env"}, {"repoServer.volumeMounts", "volumeMounts"}} {
		want, _ := v.PathValue(list.values)
		if want == nil {
			continue // hl's values add none to the main container
		}
		got, _ := main[list.field].([]any)
		for _, w := range want.([]any) {
			found := false
			for _, g := range got {
				found = found || yamlEqual(g, w)
			}
			if !found {
				t.Errorf("repo-server %s lacks %v", list.field, w)
			}
		}
	}
	if want, err := v.Table("repoServer.resources"); err != nil || len(want) == 0 || !yamlEqual(main["resources"], want) {
		t.Errorf("repo-server resources %v, want %v", main["resources"], want)
	}

	for kind, name := range map[string]string{
		"StatefulSet": "argocd-application-controller", "Service": "argocd-server",
	} {
		if find(objs, kind, name) == nil {
			t.Errorf("no %s %s", kind, name)
		}
	}
	for _, n := range []string{"argocd-server", "argocd-applicationset-controller", "argocd-redis", "argocd-notifications-controller"} {
		if find(objs, "Deployment", n) == nil {
			t.Errorf("no Deployment %s", n)
		}
	}
	for _, crd := range []string{"applications.argoproj.io", "applicationsets.argoproj.io", "appprojects.argoproj.io"} {
		if find(objs, "CustomResourceDefinition", crd) == nil {
			t.Errorf("no CRD %s", crd)
		}
	}
	if on, _ := v.PathValue("server.ingress.enabled"); on == true {
		ing := find(objs, "Ingress", "argocd-server")
		if got := get(ing, "spec", "rules"); got == nil || !strings.Contains(fmt.Sprint(got), fmt.Sprint(domain)) {
			t.Errorf("Ingress argocd-server rules %v, want host %v", got, domain)
		}
	} else {
		t.Error("the rendered values do not enable the server Ingress")
	}
	for _, comp := range []struct{ values, service string }{
		{"controller", "argocd-application-controller-metrics"}, {"server", "argocd-server-metrics"},
		{"repoServer", "argocd-repo-server-metrics"}, {"applicationSet", "argocd-applicationset-controller-metrics"},
	} {
		on, _ := v.PathValue(comp.values + ".metrics.enabled")
		if got := find(objs, "Service", comp.service) != nil; got != (on == true) {
			t.Errorf("Service %s rendered %v with %s.metrics.enabled %v", comp.service, got, comp.values, on)
		}
	}
	for _, o := range objs {
		if o.kind == "CustomResourceDefinition" || o.kind == "ClusterRole" || o.kind == "ClusterRoleBinding" {
			continue
		}
		if ns := get(o.body, "metadata", "namespace"); ns != "argocd" {
			t.Errorf("%s %s in namespace %v", o.kind, o.name, ns)
		}
	}
	t.Logf("%d objects rendered from %s", len(objs), c.Source)
}

// TestArgoCDStandInValues: each value the stand-in maps switches what it
// maps, against the chart's defaults.
func TestArgoCDStandInValues(t *testing.T) {
	set := testcharts.Catalog(t)
	c, _ := set.Get("argo-cd")
	plugin := map[string]any{"generate": map[string]any{"command": []any{"hl", "secrets", "manifests"}}}
	tests := []struct {
		name   string
		values string
		api    []string
		check  func(t *testing.T, objs []object)
	}{
		{"defaults", "", nil, func(t *testing.T, objs []object) {
			for _, want := range [][2]string{{"Secret", "argocd-secret"}, {"Deployment", "argocd-dex-server"}, {"Deployment", "argocd-notifications-controller"}, {"Job", "argocd-redis-secret-init"}} {
				if find(objs, want[0], want[1]) == nil {
					t.Errorf("no %s %s by default", want[0], want[1])
				}
			}
			for _, absent := range [][2]string{{"ConfigMap", "argocd-cmp-cm"}, {"Ingress", "argocd-server"}, {"Service", "argocd-repo-server-metrics"}, {"NetworkPolicy", "argocd-server"}, {"ClusterRole", "argocd-applicationset-controller"}} {
				if find(objs, absent[0], absent[1]) != nil {
					t.Errorf("%s %s rendered by default", absent[0], absent[1])
				}
			}
			if u := get(find(objs, "ConfigMap", "argocd-cm"), "data", "url"); u != "https://argocd.example.com" {
				t.Errorf("default url %v", u)
			}
		}},
		{"cmp plugin", "configs:\n  cmp:\n    create: true\n    plugins:\n      hl-secrets:\n        generate:\n          command: [hl, secrets, manifests]\n", nil, func(t *testing.T, objs []object) {
			doc, _ := get(find(objs, "ConfigMap", "argocd-cmp-cm"), "data", "hl-secrets.yaml").(string)
			var p map[string]any
			if err := yaml.Unmarshal([]byte(doc), &p); err != nil || p["kind"] != "ConfigManagementPlugin" || get(p, "metadata", "name") != "hl-secrets" || !yamlEqual(p["spec"], plugin) {
				t.Errorf("argocd-cmp-cm hl-secrets.yaml = %q (%v)", doc, err)
			}
		}},
		{"components off", "notifications:\n  enabled: false\nredis:\n  enabled: false\nredisSecretInit:\n  enabled: false\n", nil, func(t *testing.T, objs []object) {
			for _, o := range objs {
				if strings.Contains(o.name, "notifications") || strings.Contains(o.name, "redis") {
					t.Errorf("%s %s rendered with its component off", o.kind, o.name)
				}
			}
			if s := get(find(objs, "ConfigMap", "argocd-cmd-params-cm"), "data", "redis.server"); s != nil {
				t.Errorf("redis.server preset %v with redis off", s)
			}
		}},
		{"service monitors need the CRD", "server:\n  metrics:\n    enabled: true\n    serviceMonitor:\n      enabled: true\n", nil, func(t *testing.T, objs []object) {
			if find(objs, "Service", "argocd-server-metrics") == nil {
				t.Error("no metrics Service")
			}
			if find(objs, "ServiceMonitor", "argocd-server") != nil {
				t.Error("ServiceMonitor rendered for a cluster without monitoring.coreos.com/v1")
			}
		}},
		{"service monitors", "server:\n  metrics:\n    enabled: true\n    serviceMonitor:\n      enabled: true\n", []string{"monitoring.coreos.com/v1"}, func(t *testing.T, objs []object) {
			sm := find(objs, "ServiceMonitor", "argocd-server")
			svc := find(objs, "Service", "argocd-server-metrics")
			sel, _ := get(sm, "spec", "selector", "matchLabels").(map[string]any)
			labels, _ := get(svc, "metadata", "labels").(map[string]any)
			if len(sel) == 0 {
				t.Fatalf("ServiceMonitor argocd-server selects nothing: %v", sm)
			}
			for k, v := range sel {
				if labels[k] != v {
					t.Errorf("ServiceMonitor selects %s=%v, the metrics Service has %v", k, v, labels[k])
				}
			}
		}},
		{"network policies and copyutil resources", "global:\n  networkPolicy:\n    create: true\nrepoServer:\n  copyutil:\n    resources:\n      requests: {cpu: 5m}\n", nil, func(t *testing.T, objs []object) {
			if find(objs, "NetworkPolicy", "argocd-repo-server") == nil {
				t.Error("no NetworkPolicy argocd-repo-server")
			}
			pod, _ := get(find(objs, "Deployment", "argocd-repo-server"), "spec", "template", "spec").(map[string]any)
			for _, ic := range pod["initContainers"].([]any) {
				if m := ic.(map[string]any); m["name"] == "copyutil" && get(m, "resources", "requests", "cpu") != "5m" {
					t.Errorf("copyutil resources %v", m["resources"])
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(tt.values))
			if err != nil {
				t.Fatal(err)
			}
			objs, err := render(c.Dir, testcharts.ArgoCDRelease, vals, tt.api...)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, objs)
		})
	}
	if _, err := render(c.Dir, "other", nil); err == nil || !strings.Contains(err.Error(), "release") {
		t.Errorf("release name other: err = %v, want a refusal naming the release", err)
	}
}

// TestBuildArgoCDBadInput: an install.yaml the mapping does not fit is
// refused with what is missing.
func TestBuildArgoCDBadInput(t *testing.T) {
	tests := []struct{ name, install, want string }{
		{"missing objects", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n", "lacks"},
		{"no name", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "without kind or name"},
		{"template delimiters", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-gpg-keys-cm\ndata:\n  x: '{{ .Values }}'\n", "template delimiters"},
		{"not YAML", "kind: [", "install.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testcharts.BuildArgoCD([]byte(tt.install), "9.1.3", "v3.2.11")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestGiteaStandIn: the Service upstream names <release>-http answers on
// 3000 and selects the Deployment's pods.
func TestGiteaStandIn(t *testing.T) {
	set := testcharts.Catalog(t)
	c, _ := set.Get("gitea")
	objs, err := render(c.Dir, "gitea", map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": "100m"}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := find(objs, "Service", "gitea-http")
	if svc == nil {
		t.Fatalf("no Service gitea-http in %v", objs)
	}
	ports, _ := get(svc, "spec", "ports").([]any)
	if len(ports) != 1 || get(ports[0].(map[string]any), "port") != float64(3000) {
		t.Errorf("gitea-http ports %v", ports)
	}
	dep := find(objs, "Deployment", "gitea")
	podLabels, _ := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := get(svc, "spec", "selector").(map[string]any)
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("gitea-http selects %s=%v, pods have %v", k, v, podLabels[k])
		}
	}
	if find(objs, "PersistentVolumeClaim", "gitea-shared-storage") == nil {
		t.Error("no PVC gitea-shared-storage")
	}
	other, err := render(c.Dir, "forge", nil)
	if err != nil {
		t.Fatal(err)
	}
	if find(other, "Service", "forge-gitea-http") == nil {
		t.Error("release forge: no Service forge-gitea-http")
	}
}

// TestTraefikStandIn renders the traefik stand-in with the full fixture's
// values: the CRDs hl's Middlewares and IngressRouteTCP need, a
// LoadBalancer Service whose ports reach the pod ports the NetworkPolicies
// and templates/flows.yaml name (8000, 8443, 2222, metrics 9100), the
// router metrics the SLO rules read, the default IngressClass traefik, and
// the chart's refusal of a ServiceMonitor without the Prometheus
// Operator's API.
func TestTraefikStandIn(t *testing.T) {
	set := testcharts.Catalog(t)
	c, ok := set.Get("traefik")
	if !ok {
		t.Fatal("no traefik chart")
	}
	vals := renderedValues(t, "system/traefik", "traefik")
	objs, err := render(c.Dir, "traefik", vals, "monitoring.coreos.com/v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, crd := range []string{"middlewares.traefik.io", "ingressroutetcps.traefik.io", "ingressroutes.traefik.io", "tlsoptions.traefik.io"} {
		if find(objs, "CustomResourceDefinition", crd) == nil {
			t.Errorf("no CRD %s", crd)
		}
	}
	svc := find(objs, "Service", "traefik")
	if svc == nil {
		t.Fatalf("no Service traefik in %v", objs)
	}
	if typ := get(svc, "spec", "type"); typ != "LoadBalancer" {
		t.Errorf("Service type %v", typ)
	}
	if ip := get(svc, "metadata", "annotations", "metallb.io/loadBalancerIPs"); ip != "192.168.10.200" {
		t.Errorf("Service asks MetalLB for %v, want the range's first address", ip)
	}
	dep := find(objs, "Deployment", "traefik")
	if dep == nil {
		t.Fatal("no Deployment traefik")
	}
	containers, _ := get(dep, "spec", "template", "spec", "containers").([]any)
	if len(containers) != 1 {
		t.Fatalf("containers %v", containers)
	}
	ctr := containers[0].(map[string]any)
	podPorts := map[string]float64{}
	cports, _ := ctr["ports"].([]any)
	for _, p := range cports {
		m := p.(map[string]any)
		podPorts[m["name"].(string)] = m["containerPort"].(float64)
	}
	// Service port → the pod port it reaches by name.
	want := map[float64]float64{80: 8000, 443: 8443, 22: 2222}
	sports, _ := get(svc, "spec", "ports").([]any)
	if len(sports) != len(want) {
		t.Errorf("Service ports %v, want %v", sports, want)
	}
	for _, p := range sports {
		m := p.(map[string]any)
		target, _ := m["targetPort"].(string)
		if got, ok := podPorts[target]; !ok || got != want[m["port"].(float64)] {
			t.Errorf("Service port %v → %q = pod port %v, want %v", m["port"], target, got, want[m["port"].(float64)])
		}
	}
	if podPorts["metrics"] != 9100 {
		t.Errorf("metrics on %v, want 9100", podPorts["metrics"])
	}
	podLabels, _ := get(dep, "spec", "template", "metadata", "labels").(map[string]any)
	if podLabels["app.kubernetes.io/name"] != "traefik" {
		t.Errorf("pod labels %v: the NetworkPolicies select app.kubernetes.io/name=traefik", podLabels)
	}
	sel, _ := get(svc, "spec", "selector").(map[string]any)
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("Service selects %s=%v, pods have %v", k, v, podLabels[k])
		}
	}
	var args []string
	for _, a := range ctr["args"].([]any) {
		args = append(args, a.(string))
	}
	for _, a := range []string{"--metrics.prometheus.addRoutersLabels=true", "--entryPoints.web.http.redirections.entryPoint.to=:443", "--entryPoints.websecure.http.tls=true", "--entryPoints.ssh.address=:2222/tcp", "--providers.kubernetescrd", "--providers.kubernetesingress.ingressendpoint.publishedservice=argocd/traefik"} {
		if !contains(args, a) {
			t.Errorf("args lack %s: %v", a, args)
		}
	}
	ic := find(objs, "IngressClass", "traefik")
	if ic == nil || get(ic, "metadata", "annotations", "ingressclass.kubernetes.io/is-default-class") != "true" || get(ic, "spec", "controller") != "traefik.io/ingress-controller" {
		t.Errorf("IngressClass traefik %v", ic)
	}
	if find(objs, "ServiceMonitor", "traefik") == nil || find(objs, "Service", "traefik-metrics") == nil {
		t.Error("no ServiceMonitor traefik and Service traefik-metrics")
	}
	for _, o := range []struct{ kind, name string }{{"ServiceAccount", "traefik"}, {"ClusterRole", "traefik-argocd"}, {"ClusterRoleBinding", "traefik-argocd"}, {"PodDisruptionBudget", "traefik"}} {
		if find(objs, o.kind, o.name) == nil {
			t.Errorf("no %s %s", o.kind, o.name)
		}
	}
	if _, err := render(c.Dir, "traefik", vals); err == nil || !strings.Contains(err.Error(), "monitoring.coreos.com/v1") {
		t.Errorf("ServiceMonitor without the Prometheus Operator's API: %v", err)
	}
	other, err := render(c.Dir, "edge", nil)
	if err != nil {
		t.Fatal(err)
	}
	if find(other, "Service", "edge-traefik") == nil || find(other, "IngressClass", "edge-traefik") == nil {
		t.Error("release edge: no Service and IngressClass edge-traefik")
	}
}

// TestServe: every chart is found through helm's repo package (index.yaml
// and archive from the local server, reached through the mirror of its
// upstream URL) or pulled from the OCI registry, byte for byte what the
// set packaged.
func TestServe(t *testing.T) {
	set := testcharts.Catalog(t)
	r := set.Serve(t)
	getters := getter.All(cli.New())
	oci, err := helmreg.NewClient(helmreg.ClientOptPlainHTTP(), helmreg.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range set.Charts {
		local, ok := r.Local(c.Repository)
		if !ok {
			t.Errorf("no mirror for %s", c.Repository)
			continue
		}
		if c.OCI() {
			ref := strings.TrimPrefix(local, "oci://") + "/" + c.Name + ":" + c.Version
			res, err := oci.Pull(ref, helmreg.PullOptWithChart(true), helmreg.PullOptIgnoreMissingProv(true))
			if err != nil {
				t.Errorf("pull %s: %v", ref, err)
				continue
			}
			if !bytes.Equal(res.Chart.Data, c.Package(t)) {
				t.Errorf("%s: pulled chart differs from the packaged one", ref)
			}
			continue
		}
		u, err := repo.FindChartInRepoURL(local, c.Name, c.Version, "", "", "", getters)
		if err != nil {
			t.Errorf("%s %s in %s: %v", c.Name, c.Version, local, err)
			continue
		}
		if !strings.HasPrefix(u, r.URL+"/") {
			t.Errorf("%s resolves to %s, not the local server", c.Name, u)
		}
		g, err := getters.ByScheme("http")
		if err != nil {
			t.Fatal(err)
		}
		buf, err := g.Get(u)
		if err != nil {
			t.Errorf("download %s: %v", u, err)
			continue
		}
		if !bytes.Equal(buf.Bytes(), c.Package(t)) {
			t.Errorf("%s: downloaded archive differs from the packaged one", u)
		}
	}
	if r.Hits("/charts.jetstack.io/index.yaml") == 0 || r.Hits("/charts.jetstack.io/cert-manager-v1.19.1.tgz") == 0 {
		t.Error("the jetstack repository was not served from /charts.jetstack.io")
	}
	froms := map[string]bool{}
	for _, m := range r.Mirrors {
		froms[m.From] = true
	}
	for _, c := range set.Charts {
		if !froms[chartcache.NormRepo(c.Repository)] {
			t.Errorf("no spec.mirrors.charts entry from %s", c.Repository)
		}
	}
}

// TestCache: each chart lands where the chart cache looks for it, under
// the upstream URL and under a mirror's.
func TestCache(t *testing.T) {
	set := testcharts.Catalog(t)
	dir := t.TempDir()
	mirror := config.Mirror{From: "https://charts.jetstack.io", To: "https://charts.mirror.example/jetstack"}
	set.Cache(t, dir, mirror)
	for _, c := range set.Charts {
		b, err := os.ReadFile(chartcache.Path(dir, c.Repository, c.Name, c.Version))
		if err != nil || !bytes.Equal(b, c.Package(t)) {
			t.Errorf("%s not cached under %s: %v", c.Name, c.Repository, err)
		}
	}
	if _, err := os.Stat(chartcache.Path(dir, mirror.To, "cert-manager", "v1.19.1")); err != nil {
		t.Errorf("cert-manager not cached under its mirror: %v", err)
	}
}

// TestPublish: a version published after Serve is found next to the
// catalog's, over HTTP (index.yaml) and OCI (a new tag), with the new
// version inside the archive.
func TestPublish(t *testing.T) {
	set := testcharts.Catalog(t)
	r := set.Serve(t)
	getters := getter.All(cli.New())
	oci, err := helmreg.NewClient(helmreg.ClientOptPlainHTTP(), helmreg.ClientOptCredentialsFile(filepath.Join(t.TempDir(), "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	var httpDone, ociDone bool
	for _, c := range set.Charts {
		if (c.OCI() && ociDone) || (!c.OCI() && httpDone) {
			continue
		}
		const next = "99.0.0"
		r.Publish(t, c, next)
		local, _ := r.Local(c.Repository)
		var data []byte
		if c.OCI() {
			ociDone = true
			res, err := oci.Pull(strings.TrimPrefix(local, "oci://")+"/"+c.Name+":"+next, helmreg.PullOptWithChart(true), helmreg.PullOptIgnoreMissingProv(true))
			if err != nil {
				t.Fatalf("%s %s: %v", c.Name, next, err)
			}
			data = res.Chart.Data
		} else {
			httpDone = true
			for _, v := range []string{c.Version, next} {
				if _, err := repo.FindChartInRepoURL(local, c.Name, v, "", "", "", getters); err != nil {
					t.Errorf("%s %s after Publish: %v", c.Name, v, err)
				}
			}
			u, err := repo.FindChartInRepoURL(local, c.Name, next, "", "", "", getters)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := getters.ByScheme("http")
			buf, err := g.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			data = buf.Bytes()
		}
		ch, err := loader.LoadArchive(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if ch.Metadata.Version != next || ch.Name() != c.Name {
			t.Errorf("published %s %s holds %s %s", c.Name, next, ch.Name(), ch.Metadata.Version)
		}
	}
	if !httpDone || !ociDone {
		t.Fatalf("the catalog lacks an HTTP (%v) or an OCI (%v) chart to publish", httpDone, ociDone)
	}
}
