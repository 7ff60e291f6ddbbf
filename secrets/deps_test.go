package secrets

import (
	"os/exec"
	"strings"
	"testing"
)

// The sops library's root package imports its key service, which links the
// AWS, GCP, Azure, Vault and HuaweiCloud KMS SDKs and gRPC into any binary
// that uses it. This package implements the file format itself and may
// only link sops' age key source (and the logging package that imports).
func TestNoSopsKeyServiceInImportGraph(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the import graph: %v", err)
	}
	allowed := map[string]bool{
		"github.com/getsops/sops/v3/age":     true,
		"github.com/getsops/sops/v3/logging": true,
	}
	forbidden := map[string]bool{
		"github.com/getsops/sops/v3":            true,
		"github.com/getsops/sops/v3/keyservice": true,
	}
	for _, pkg := range []string{"hl.dev/hl/secrets", "hl.dev/hl/cmd/hl"} {
		out, err := exec.Command(goTool, "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %q", pkg, deps)
		}
		for _, d := range deps {
			if forbidden[d] {
				t.Errorf("%s imports %s", pkg, d)
			}
			if pkg == "hl.dev/hl/secrets" && strings.HasPrefix(d, "github.com/getsops/sops/v3") && !allowed[d] {
				t.Errorf("%s imports %s; only sops' age key source is allowed outside tests", pkg, d)
			}
		}
	}
}
