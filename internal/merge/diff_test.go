package merge

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	b20 := numbered(20)
	tests := []struct {
		name    string
		a, b    string
		context int
		want    string // "" means: only compare with diff -u
	}{
		{name: "identical", a: join(b20), b: join(b20), context: 3, want: ""},
		{name: "both empty", a: "", b: "", context: 3, want: ""},
		{
			name: "one change", a: join(b20), b: join(edited(b20, 10, "ten\n")), context: 3,
			want: "--- a\n+++ b\n@@ -7,7 +7,7 @@\n l7\n l8\n l9\n-l10\n+ten\n l11\n l12\n l13\n",
		},
		{
			name: "changes 2*context apart share a hunk",
			a:    join(b20), b: join(edited(edited(b20, 5, "x\n"), 12, "y\n")), context: 3,
			want: "--- a\n+++ b\n@@ -2,14 +2,14 @@\n l2\n l3\n l4\n-l5\n+x\n l6\n l7\n l8\n l9\n l10\n l11\n-l12\n+y\n l13\n l14\n l15\n",
		},
		{
			name: "changes further apart get two hunks",
			a:    join(b20), b: join(edited(edited(b20, 5, "x\n"), 13, "y\n")), context: 3,
			want: "--- a\n+++ b\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+x\n l6\n l7\n l8\n" +
				"@@ -10,7 +10,7 @@\n l10\n l11\n l12\n-l13\n+y\n l14\n l15\n l16\n",
		},
		{
			name: "insertion at start", a: join(b20[:5]), b: "new\n" + join(b20[:5]), context: 3,
			want: "--- a\n+++ b\n@@ -1,3 +1,4 @@\n+new\n l1\n l2\n l3\n",
		},
		{
			name: "append at end", a: join(b20[:5]), b: join(b20[:5]) + "new\n", context: 2,
			want: "--- a\n+++ b\n@@ -4,2 +4,3 @@\n l4\n l5\n+new\n",
		},
		{
			name: "new file", a: "", b: "a\nb\n", context: 3,
			want: "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n",
		},
		{
			name: "deleted file", a: "a\nb\n", b: "", context: 3,
			want: "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-a\n-b\n",
		},
		{
			name: "zero context", a: join(b20[:6]), b: join(edited(b20[:6], 3, "x\n")), context: 0,
			want: "--- a\n+++ b\n@@ -3 +3 @@\n-l3\n+x\n",
		},
		{
			name: "zero context insertion", a: join(b20[:6]), b: join(inserted(b20[:6], 4, "x\n")), context: 0,
			want: "--- a\n+++ b\n@@ -3,0 +4 @@\n+x\n",
		},
		{
			name: "zero context deletion", a: join(b20[:6]), b: join(edited(b20[:6], 4)), context: 0,
			want: "--- a\n+++ b\n@@ -4 +3,0 @@\n-l4\n",
		},
		{
			name: "final newline removed", a: "a\nb\n", b: "a\nb", context: 3,
			want: "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n+b\n\\ No newline at end of file\n",
		},
		{
			name: "final newline added", a: "a\nb", b: "a\nb\n", context: 3,
			want: "--- a\n+++ b\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n",
		},
		{
			name: "context line without newline", a: "a\nb\nc", b: "A\nb\nc", context: 3,
			want: "--- a\n+++ b\n@@ -1,3 +1,3 @@\n-a\n+A\n b\n c\n\\ No newline at end of file\n",
		},
		{
			name: "CRLF lines kept verbatim", a: "a\r\nb\r\nc\r\n", b: "a\r\nB\r\nc\r\n", context: 1,
			want: "--- a\n+++ b\n@@ -1,3 +1,3 @@\n a\r\n-b\r\n+B\r\n c\r\n",
		},
		{
			name: "line ending change", a: "a\nb\n", b: "a\r\nb\n", context: 3,
			want: "--- a\n+++ b\n@@ -1,2 +1,2 @@\n-a\n+a\r\n b\n",
		},
		{
			name: "config edit with repeated lines", context: 3,
			a: "apps:\n  - name: a\n    enabled: true\n\n  - name: b\n    enabled: true\n\n  - name: c\n    enabled: true\n",
			b: "apps:\n  - name: a\n    enabled: true\n\n  - name: b\n    enabled: false\n\n  - name: b2\n    enabled: true\n\n  - name: c\n    enabled: true\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Diff([]byte(tc.a), []byte(tc.b), "a", "b", tc.context)
			if tc.want != "" || tc.a == tc.b {
				if got != tc.want {
					t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
				}
			}
			if ref := gnuDiff(t, []byte(tc.a), []byte(tc.b), "a", "b", tc.context); got != ref {
				t.Errorf("differs from diff -u:\n%q\ndiff -u:\n%q", got, ref)
			}
		})
	}
}

func TestDiffNegativeContext(t *testing.T) {
	a, b := []byte("a\nb\nc\n"), []byte("a\nB\nc\n")
	if got, want := Diff(a, b, "x", "y", -1), Diff(a, b, "x", "y", 0); got != want {
		t.Fatalf("negative context: got %q, want %q", got, want)
	}
}

// TestDiffAppliesWithPatch: whatever alignment Diff picks, `patch` must
// turn a into b with it, byte for byte.
func TestDiffAppliesWithPatch(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	iters := 150
	if testing.Short() {
		iters = 30
	}
	dir := t.TempDir()
	for i := range iters {
		alpha := 2 + r.IntN(30)
		al := randomLines(r, r.IntN(150), alpha)
		a := randomText(r, al)
		b := randomText(r, mutateLines(r, al, alpha, r.IntN(12)))
		d := Diff(a, b, "a", "b", r.IntN(5))
		if d == "" {
			if string(a) != string(b) {
				t.Fatalf("case %d: empty diff of different inputs %q and %q", i, a, b)
			}
			continue
		}
		target := writeTemp(t, dir, "target", a)
		cmd := exec.Command("patch", "--quiet", "--force", "--batch", "-o", filepath.Join(dir, "out"), target)
		cmd.Stdin = strings.NewReader(d)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch: %v\n%s\na %q\nb %q\ndiff:\n%s", i, err, out, a, b, d)
		}
		got, err := os.ReadFile(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(b) {
			t.Fatalf("case %d: patched a is %q, want %q\ndiff:\n%s", i, got, b, d)
		}
	}
}

var funcContext = regexp.MustCompile(`(?m)^(@@ [^@]* @@).*$`)

// gitDiffHunks returns the hunks of `git diff --no-index` (without the
// indent heuristic, which git merge-file does not use either), function
// context stripped from the @@ lines.
func gitDiffHunks(t testing.TB, a, b []byte, context int) string {
	t.Helper()
	dir := t.TempDir()
	pa := writeTemp(t, dir, "a", a)
	pb := writeTemp(t, dir, "b", b)
	cmd := exec.Command("git", "-c", "diff.indentHeuristic=false", "diff", "--no-index", "--no-color",
		"-U"+strconv.Itoa(context), pa, pb)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
		t.Fatalf("git diff: %v", err)
	}
	s := string(out)
	i := strings.Index(s, "\n@@ ")
	if i < 0 {
		return ""
	}
	return funcContext.ReplaceAllString(s[i+1:], "$1")
}

// TestDiffMatchesGitRandom compares hunks with git's on ambiguous random
// inputs. (GNU diff breaks ties between equally short scripts differently
// on such inputs, so it is only the reference for the unambiguous cases in
// TestDiff; hl follows git, whose merge the package mirrors.)
func TestDiffMatchesGitRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for i := range iters {
		alpha := 2 + r.IntN(30)
		al := randomLines(r, r.IntN(200), alpha)
		a := randomText(r, al)
		b := randomText(r, mutateLines(r, al, alpha, r.IntN(12)))
		ctx := r.IntN(5)
		got := Diff(a, b, "a", "b", ctx)
		if j := strings.Index(got, "@@"); j >= 0 {
			got = got[j:]
		}
		if want := gitDiffHunks(t, a, b, ctx); got != want {
			t.Fatalf("case %d differs from git diff\na %q\nb %q\ngot:\n%s\ngit:\n%s", i, a, b, got, want)
		}
	}
}
