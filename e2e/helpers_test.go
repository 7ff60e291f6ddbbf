package e2e_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"hl.dev/hl/e2e"
	"hl.dev/hl/e2e/hlimage"
	"hl.dev/hl/internal/asrendered"
	"hl.dev/hl/internal/testharness"
)

func hlImage(t *testing.T) *asrendered.Image {
	t.Helper()
	img, err := hlimage.Get(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// render renders testdata/config/valid/<name>.yaml into a temp folder.
func render(t *testing.T, name string, o e2e.RenderOptions) *e2e.Homelab {
	t.Helper()
	root, err := testharness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	lab, err := e2e.Render(t.Context(), filepath.Join(root, "testdata", "config", "valid", name+".yaml"), filepath.Join(t.TempDir(), "repo"), o)
	if err != nil {
		t.Fatal(err)
	}
	return lab
}

// renderedHLImage is the hl image the rendered bot Deployment runs: the
// pin every hl step of the pipelines shares.
func renderedHLImage(t *testing.T, repo string) string {
	t.Helper()
	objs := decodeFile(t, filepath.Join(repo, "platform", "hl-bot", "deployment.yaml"))
	w, ok := objs.Workloads["Deployment//hl-bot"]
	if !ok {
		t.Fatalf("no Deployment hl-bot/hl-bot in platform/hl-bot/deployment.yaml: %v", keys(objs.Workloads))
	}
	return w.Template.Spec.Containers[0].Image
}

func decodeFile(t *testing.T, p string) *asrendered.Objects {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := asrendered.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return objs
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
