package validate

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"hl.dev/hl/generator"
	"hl.dev/hl/internal/config"
	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/testcharts"
	"hl.dev/hl/internal/testharness"
	"hl.dev/hl/secrets"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// hl validate --server against a real kube-apiserver (the control-plane
// harness, a scratch server): the clean base repo has no server finding;
// a custom resource breaking its CRD's CEL rule and a Service port out of
// range — both fine for the offline schemas — are refused, each at its
// object. Without --scratch, objects of a CRD the server lacks are
// reported as not checked (warnings), never as passed.
func TestServerDryRun(t *testing.T) {
	kube := kubets.ForTest(t)
	run := func(t *testing.T, dir string, scratch bool) *Report {
		t.Helper()
		r, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true, Server: kube.RESTConfig(), Scratch: scratch})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	server := func(r *Report) (errs, warns []Finding) {
		for _, f := range r.Findings {
			if f.Policy != PolicyServerDryRun {
				continue
			}
			if f.Severity == SeverityError {
				errs = append(errs, f)
			} else {
				warns = append(warns, f)
			}
		}
		return errs, warns
	}

	t.Run("clean", func(t *testing.T) {
		r := run(t, repoFor(t, ""), true)
		if errs, _ := server(r); len(errs) > 0 {
			t.Fatalf("the clean repo is refused: %v", errs)
		}
		for _, f := range r.Findings {
			if f.Severity == SeverityError {
				t.Errorf("%s", f)
			}
		}
	})

	t.Run("faults", func(t *testing.T) {
		dir := repoFor(t, "_server-faults")
		offline, err := Run(context.Background(), Options{Dir: dir, CacheDir: t.TempDir(), Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range offline.Findings {
			if f.Severity == SeverityError {
				t.Fatalf("offline checks already see a fault (the case must need a server): %s", f)
			}
		}
		errs, _ := server(run(t, dir, true))
		found := map[string]Finding{}
		for _, f := range errs {
			found[f.Resource] = f
		}
		cel, ok := found["Widget/demo/too-many"]
		if !ok || !strings.Contains(cel.Message, "replicas must not exceed maxReplicas") || cel.File != "apps/demo/widgets.yaml" {
			t.Errorf("CEL rule: %+v (all: %v)", cel, errs)
		}
		svc, ok := found["Service/demo/out-of-range"]
		if !ok || !strings.Contains(svc.Message, "65535") || svc.File != "apps/demo/bad-service.yaml" {
			t.Errorf("port range: %+v (all: %v)", svc, errs)
		}
		if _, ok := found["Widget/demo/fine"]; ok || len(errs) != 2 {
			t.Errorf("want exactly the two faults, got %v", errs)
		}
	})

	t.Run("not scratch", func(t *testing.T) {
		// A CRD of its own, not installed on the (shared) server.
		dir := repoFor(t, "_server-faults")
		for _, p := range []string{"apps/demo/widgets-crd.yaml", "apps/demo/widgets.yaml"} {
			data := mustRead(t, dir+"/"+p)
			writeFiles(t, dir, map[string]string{p: strings.ReplaceAll(strings.ReplaceAll(data, "widgets.demo.hl.dev", "gadgets.demo.hl.dev"), "demo.hl.dev", "other.hl.dev")})
		}
		data := mustRead(t, dir+"/apps/demo/widgets-crd.yaml")
		data = strings.NewReplacer("kind: Widget", "kind: Gadget", "plural: widgets", "plural: gadgets", "singular: widget", "singular: gadget", "listKind: WidgetList", "listKind: GadgetList", "name: widgets.other.hl.dev", "name: gadgets.other.hl.dev").Replace(data)
		writeFiles(t, dir, map[string]string{"apps/demo/widgets-crd.yaml": data,
			"apps/demo/widgets.yaml": strings.ReplaceAll(mustRead(t, dir+"/apps/demo/widgets.yaml"), "kind: Widget", "kind: Gadget")})
		_, warns := server(run(t, dir, false))
		unchecked := 0
		for _, f := range warns {
			if strings.HasPrefix(f.Resource, "Gadget/") && strings.Contains(f.Message, "not checked") {
				unchecked++
			}
		}
		if unchecked != 2 {
			t.Errorf("%d Gadgets reported not checked, want 2: %v", unchecked, warns)
		}
	})
}

// hl validate --server on what `hl init --defaults` renders and on the
// full fixture, against a scratch kube-apiserver: the API server accepts
// every object (charts from internal/testcharts, see renderAndValidate
// for which are real). CRs of CRDs that only upstream charts stood in for
// would ship are reported as not checked, never as passed.
func TestServerDryRunRenders(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts generator.Options
	}{
		{"defaults", generator.Options{ConfigPath: "example.yaml", ConfigData: config.Example()}},
		{"full", generator.Options{ConfigPath: filepath.Join("..", "testdata", "config", "valid", "full.yaml")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube := kubets.New(t, kubets.Options{})
			ids, err := secrets.LoadIdentities(filepath.Join("..", "testdata", "age", "test-key.txt"))
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			o := tc.opts
			o.OutDir, o.Identities = dir, ids
			if _, err := generator.Render(t.Context(), o); err != nil {
				t.Fatal(err)
			}
			doc, _, err := config.Load(filepath.Join(dir, "hl.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			cache := t.TempDir()
			testcharts.Catalog(t).Cache(t, cache, doc.Homelab.Spec.Mirrors.Charts...)
			r, err := Run(t.Context(), Options{Dir: dir, CacheDir: cache, Offline: true, Server: kube.RESTConfig(), Scratch: true})
			if err != nil {
				t.Fatal(err)
			}
			checked, unchecked := 0, 0
			for _, f := range r.Findings {
				switch {
				case f.Policy == PolicyServerDryRun && f.Severity == SeverityError:
					t.Errorf("refused: %s", f)
				case f.Policy == PolicyServerDryRun:
					unchecked++
				}
			}
			checked = r.Resources - unchecked
			t.Logf("%d objects dry-run applied, %d not checked (kinds of stand-in charts' CRDs)", checked, unchecked)
			if checked < 100 {
				t.Errorf("only %d objects checked", checked)
			}
		})
	}
}
