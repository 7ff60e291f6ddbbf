// Package extracttest holds the assertions every extractor's table tests
// share: each dependency's range must slice exactly its current value out
// of the file, and related ranges must slice what the test expects.
package extracttest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"hl.dev/hl/bot"
)

// Want is the expected dependency: "datasource registry package current"
// fields compared, plus the text of each related range. It is an alias of
// an unnamed struct so tables can list values positionally.
type Want = struct {
	Datasource, Registry, Package, Current string
	Related                                map[string]string
}

func str(w Want) string {
	return fmt.Sprintf("%s %s %s %s", w.Datasource, w.Registry, w.Package, w.Current)
}

// Check asserts deps against want (in order) and that every range slices
// the content correctly.
func Check(t *testing.T, file, manager, content string, deps []bot.Dependency, want []Want) {
	t.Helper()
	var got []string
	for _, d := range deps {
		got = append(got, str(Want{d.Datasource, d.RegistryURL, d.Package, d.Current, nil}))
	}
	var exp []string
	for _, w := range want {
		exp = append(exp, str(w))
	}
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Fatalf("dependencies:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(exp, "\n     "))
	}
	for i, d := range deps {
		if d.File != file || d.Manager != manager {
			t.Errorf("dep %d: file/manager = %s/%s, want %s/%s", i, d.File, d.Manager, file, manager)
		}
		if d.Versioning == "" {
			t.Errorf("dep %d: no versioning", i)
		}
		if s := Slice(content, d.Range); s != d.Current {
			t.Errorf("dep %d: content[%d:%d] = %q, want %q", i, d.Range.Start, d.Range.End, s, d.Current)
		}
		if want[i].Related == nil {
			continue
		}
		var roles []string
		for role, r := range d.Related {
			roles = append(roles, role+"="+Slice(content, r))
		}
		var wantRoles []string
		for role, v := range want[i].Related {
			wantRoles = append(wantRoles, role+"="+v)
		}
		sort.Strings(roles)
		sort.Strings(wantRoles)
		if strings.Join(roles, "\n") != strings.Join(wantRoles, "\n") {
			t.Errorf("dep %d related:\n got %s\nwant %s", i, strings.Join(roles, "\n     "), strings.Join(wantRoles, "\n     "))
		}
	}
}

// Slice returns content[r.Start:r.End] or a marker when out of bounds.
func Slice(content string, r bot.Range) string {
	if r.Start < 0 || r.End > len(content) || r.Start > r.End {
		return fmt.Sprintf("<bad range %d-%d>", r.Start, r.End)
	}
	return content[r.Start:r.End]
}
