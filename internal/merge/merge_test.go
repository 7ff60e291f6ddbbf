package merge

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// numbered returns "l1\n" ... "ln\n".
func numbered(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("l%d\n", i+1)
	}
	return out
}

// edited returns a copy of lines with 1-based line n replaced by repl
// (which may be several lines or none).
func edited(lines []string, n int, repl ...string) []string {
	out := append([]string(nil), lines[:n-1]...)
	out = append(out, repl...)
	return append(out, lines[n:]...)
}

// inserted returns a copy of lines with add inserted before 1-based line
// n (n = len+1 appends).
func inserted(lines []string, n int, add ...string) []string {
	out := append([]string(nil), lines[:n-1]...)
	out = append(out, add...)
	return append(out, lines[n-1:]...)
}

func join(lines []string) string { return strings.Join(lines, "") }

// span is a conflict's ranges: ours, base, theirs as [start, end], 1-based
// inclusive, plus the merged line of its "<<<<<<<" marker.
type span struct{ line, o0, o1, b0, b1, t0, t1 int }

func spans(cs []Conflict) []span {
	var out []span
	for _, c := range cs {
		out = append(out, span{c.Line, c.OursStart, c.OursEnd, c.BaseStart, c.BaseEnd, c.TheirsStart, c.TheirsEnd})
	}
	return out
}

func TestMerge(t *testing.T) {
	b20 := numbered(20)
	yamlBase := "apps:\n" +
		"  - name: grafana\n" +
		"    version: 7.0.0\n" +
		"    replicas: 1\n" +
		"\n" +
		"  - name: loki\n" +
		"    version: 2.9.0\n" +
		"    replicas: 1\n"

	tests := []struct {
		name                string
		base, ours, theirs  string
		want                string
		conflicts           []span
		oursC, baseC, thC   []string // lines of the first conflict, when checked
		skipConflictContent bool
	}{
		{
			name:   "user edit and template change far apart",
			base:   join(b20),
			ours:   join(edited(b20, 3, "user\n")),
			theirs: join(edited(b20, 17, "template\n")),
			want:   join(edited(edited(b20, 3, "user\n"), 17, "template\n")),
		},
		{
			name:   "edits two lines apart merge cleanly",
			base:   join(b20),
			ours:   join(edited(b20, 10, "user\n")),
			theirs: join(edited(b20, 12, "template\n")),
			want:   join(edited(edited(b20, 10, "user\n"), 12, "template\n")),
		},
		{
			name:   "edits on adjacent lines conflict as one chunk",
			base:   join(b20),
			ours:   join(edited(b20, 10, "user\n")),
			theirs: join(edited(b20, 11, "template\n")),
			want: join(b20[:9]) +
				"<<<<<<< ours\nuser\nl11\n||||||| base\nl10\nl11\n=======\nl10\ntemplate\n>>>>>>> theirs\n" +
				join(b20[11:]),
			conflicts: []span{{10, 10, 11, 10, 11, 10, 11}},
			oursC:     []string{"user", "l11"}, baseC: []string{"l10", "l11"}, thC: []string{"l10", "template"},
		},
		{
			name:   "same line edited differently",
			base:   join(b20),
			ours:   join(edited(b20, 5, "five-ours\n")),
			theirs: join(edited(b20, 5, "five-theirs\n", "extra\n")),
			want: join(b20[:4]) +
				"<<<<<<< ours\nfive-ours\n||||||| base\nl5\n=======\nfive-theirs\nextra\n>>>>>>> theirs\n" +
				join(b20[5:]),
			conflicts: []span{{5, 5, 5, 5, 5, 5, 6}},
			oursC:     []string{"five-ours"}, baseC: []string{"l5"}, thC: []string{"five-theirs", "extra"},
		},
		{
			name:   "bot bump and template bump of the same version",
			base:   yamlBase,
			ours:   strings.Replace(yamlBase, "7.0.0", "7.0.3", 1),
			theirs: strings.Replace(yamlBase, "7.0.0", "7.1.0", 1),
			want: "apps:\n  - name: grafana\n" +
				"<<<<<<< ours\n    version: 7.0.3\n||||||| base\n    version: 7.0.0\n=======\n    version: 7.1.0\n>>>>>>> theirs\n" +
				"    replicas: 1\n\n  - name: loki\n    version: 2.9.0\n    replicas: 1\n",
			conflicts: []span{{3, 3, 3, 3, 3, 3, 3}},
		},
		{
			name:   "bot bump in one app, template adds a field to another",
			base:   yamlBase,
			ours:   strings.Replace(yamlBase, "7.0.0", "7.0.3", 1),
			theirs: yamlBase + "    storage: 10Gi\n",
			want:   strings.Replace(yamlBase, "7.0.0", "7.0.3", 1) + "    storage: 10Gi\n",
		},
		{
			name:   "two conflicts, second marker line accounts for the first block",
			base:   join(b20),
			ours:   join(edited(edited(b20, 2, "a\n"), 15, "c\n")),
			theirs: join(edited(edited(b20, 2, "b\n"), 15, "d\n")),
			want: "l1\n<<<<<<< ours\na\n||||||| base\nl2\n=======\nb\n>>>>>>> theirs\n" +
				join(b20[2:14]) +
				"<<<<<<< ours\nc\n||||||| base\nl15\n=======\nd\n>>>>>>> theirs\n" +
				join(b20[15:]),
			conflicts: []span{{2, 2, 2, 2, 2, 2, 2}, {21, 15, 15, 15, 15, 15, 15}},
		},
		{
			name:   "ours deletes a block, theirs edits elsewhere",
			base:   join(b20),
			ours:   join(append(append([]string(nil), b20[:4]...), b20[8:]...)),
			theirs: join(edited(b20, 15, "x\n")),
			want:   join(edited(append(append([]string(nil), b20[:4]...), b20[8:]...), 11, "x\n")),
		},
		{
			name:   "theirs deletes a line ours edited",
			base:   join(b20),
			ours:   join(edited(b20, 7, "seven\n")),
			theirs: join(edited(b20, 7)),
			want: join(b20[:6]) +
				"<<<<<<< ours\nseven\n||||||| base\nl7\n=======\n>>>>>>> theirs\n" +
				join(b20[7:]),
			conflicts: []span{{7, 7, 7, 7, 7, 7, 6}},
			oursC:     []string{"seven"}, baseC: []string{"l7"}, thC: []string{},
		},
		{
			name:   "both delete the same line",
			base:   join(b20),
			ours:   join(edited(b20, 7)),
			theirs: join(edited(edited(b20, 7), 18, "x\n")),
			want:   join(edited(edited(b20, 7), 18, "x\n")),
		},
		{
			name:   "insertion at start and at end",
			base:   join(b20),
			ours:   join(inserted(b20, 1, "# header\n")),
			theirs: join(inserted(b20, 21, "tail\n")),
			want:   join(inserted(inserted(b20, 1, "# header\n"), 22, "tail\n")),
		},
		{
			name:   "different insertions at the end conflict",
			base:   join(b20),
			ours:   join(inserted(b20, 21, "ours\n")),
			theirs: join(inserted(b20, 21, "theirs\n")),
			want: join(b20) +
				"<<<<<<< ours\nours\n||||||| base\n=======\ntheirs\n>>>>>>> theirs\n",
			conflicts: []span{{21, 21, 21, 21, 20, 21, 21}},
			oursC:     []string{"ours"}, baseC: []string{}, thC: []string{"theirs"},
		},
		{
			name:   "different insertions at the start conflict",
			base:   join(b20),
			ours:   join(inserted(b20, 1, "ours\n")),
			theirs: join(inserted(b20, 1, "theirs\n")),
			want: "<<<<<<< ours\nours\n||||||| base\n=======\ntheirs\n>>>>>>> theirs\n" +
				join(b20),
			conflicts: []span{{1, 1, 1, 1, 0, 1, 1}},
		},
		{
			name:   "identical changes on both sides plus one-sided ones",
			base:   join(b20),
			ours:   join(edited(edited(b20, 4, "same\n"), 9, "ours\n")),
			theirs: join(edited(edited(b20, 4, "same\n"), 16, "theirs\n")),
			want:   join(edited(edited(edited(b20, 4, "same\n"), 9, "ours\n"), 16, "theirs\n")),
		},
		{
			name:   "empty base, both sides add the same file",
			base:   "",
			ours:   "a: 1\nb: 2\n",
			theirs: "a: 1\nb: 2\n",
			want:   "a: 1\nb: 2\n",
		},
		{
			name:      "empty base, both sides add different files",
			base:      "",
			ours:      "a: 1\nb: 2\n",
			theirs:    "a: 1\nb: 3\n",
			want:      "<<<<<<< ours\na: 1\nb: 2\n||||||| base\n=======\na: 1\nb: 3\n>>>>>>> theirs\n",
			conflicts: []span{{1, 1, 2, 1, 0, 1, 2}},
			oursC:     []string{"a: 1", "b: 2"}, baseC: []string{}, thC: []string{"a: 1", "b: 3"},
		},
		{
			name:   "empty base, only theirs adds",
			base:   "",
			ours:   "",
			theirs: "new\n",
			want:   "new\n",
		},
		{
			name:      "ours deletes the whole file, theirs edits it",
			base:      "a\nb\n",
			ours:      "",
			theirs:    "a\nc\n",
			want:      "<<<<<<< ours\n||||||| base\na\nb\n=======\na\nc\n>>>>>>> theirs\n",
			conflicts: []span{{1, 1, 0, 1, 2, 1, 2}},
		},
		{
			name:   "missing final newline kept when the other side edits elsewhere",
			base:   "a\nb\nc\nd\ne",
			ours:   "A\nb\nc\nd\ne",
			theirs: "a\nb\nc\nd\nE",
			want:   "A\nb\nc\nd\nE",
		},
		{
			name:      "conflict on a last line without newline gets one inside the block",
			base:      "a\nb\nc",
			ours:      "a\nb\nC",
			theirs:    "a\nb\nc2",
			want:      "a\nb\n<<<<<<< ours\nC\n||||||| base\nc\n=======\nc2\n>>>>>>> theirs\n",
			conflicts: []span{{3, 3, 3, 3, 3, 3, 3}},
		},
		{
			name:      "adding the final newline touches the last line",
			base:      "a\nb\nc\nd",
			ours:      "a\nb\nc\nd\n",
			theirs:    "a\nb\nC\nd",
			want:      "a\nb\n<<<<<<< ours\nc\nd\n||||||| base\nc\nd\n=======\nC\nd\n>>>>>>> theirs\n",
			conflicts: []span{{3, 3, 4, 3, 4, 3, 4}},
		},
		{
			name:   "CRLF preserved, markers follow the file's line endings",
			base:   "a\r\nb\r\nc\r\nd\r\ne\r\n",
			ours:   "a\r\nB\r\nc\r\nd\r\ne\r\n",
			theirs: "a\r\nb2\r\nc\r\nd\r\nE\r\n",
			want: "a\r\n<<<<<<< ours\r\nB\r\n||||||| base\r\nb\r\n=======\r\nb2\r\n>>>>>>> theirs\r\n" +
				"c\r\nd\r\nE\r\n",
			conflicts: []span{{2, 2, 2, 2, 2, 2, 2}},
			oursC:     []string{"B"}, baseC: []string{"b"}, thC: []string{"b2"},
		},
		{
			name:   "CRLF file with one LF line: both stay as they are",
			base:   "a\r\nb\r\nc\r\nd\r\ne\r\n",
			ours:   "a\r\nb\nc\r\nd\r\ne\r\n",
			theirs: "a\r\nb\r\nc\r\nd\r\nE\r\n",
			want:   "a\r\nb\nc\r\nd\r\nE\r\n",
		},
		{
			name:      "CRLF versus LF on the same line conflicts",
			base:      "a\nb\nc\n",
			ours:      "a\r\nb\nc\n",
			theirs:    "a2\nb\nc\n",
			want:      "<<<<<<< ours\na\r\n||||||| base\na\n=======\na2\n>>>>>>> theirs\nb\nc\n",
			conflicts: []span{{1, 1, 1, 1, 1, 1, 1}},
		},
		{
			name:   "overlapping multi-line edits form one conflict",
			base:   join(b20),
			ours:   join(append(append(append([]string(nil), b20[:4]...), "o5\n", "o6\n", "o7\n"), b20[7:]...)),
			theirs: join(append(append(append([]string(nil), b20[:5]...), "t6\n", "t7\n", "t8\n", "t9\n"), b20[9:]...)),
			want: join(b20[:4]) +
				"<<<<<<< ours\no5\no6\no7\nl8\nl9\n||||||| base\nl5\nl6\nl7\nl8\nl9\n=======\nl5\nt6\nt7\nt8\nt9\n>>>>>>> theirs\n" +
				join(b20[9:]),
			conflicts: []span{{5, 5, 9, 5, 9, 5, 9}},
		},
		{
			name:   "empty inputs",
			base:   "",
			ours:   "",
			theirs: "",
			want:   "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Merge([]byte(tc.base), []byte(tc.ours), []byte(tc.theirs), refOpts)
			if string(res.Merged) != tc.want {
				t.Errorf("merged:\n%s\nwant:\n%s", res.Merged, tc.want)
			}
			if got := spans(res.Conflicts); !reflect.DeepEqual(got, tc.conflicts) {
				t.Errorf("conflicts %+v, want %+v", got, tc.conflicts)
			}
			if res.Clean != (len(tc.conflicts) == 0) {
				t.Errorf("Clean = %v with %d conflicts", res.Clean, len(res.Conflicts))
			}
			if tc.oursC != nil {
				c := res.Conflicts[0]
				if !reflect.DeepEqual(c.Ours, tc.oursC) || !reflect.DeepEqual(c.Base, tc.baseC) || !reflect.DeepEqual(c.Theirs, tc.thC) {
					t.Errorf("conflict lines ours %q base %q theirs %q, want %q %q %q",
						c.Ours, c.Base, c.Theirs, tc.oursC, tc.baseC, tc.thC)
				}
			}
			// The reference: git merge-file on the same inputs.
			want, n := gitMergeFile(t, []byte(tc.base), []byte(tc.ours), []byte(tc.theirs))
			if !bytes.Equal(res.Merged, want) {
				t.Errorf("differs from git merge-file:\n%q\ngit:\n%q", res.Merged, want)
			}
			if n != len(res.Conflicts) {
				t.Errorf("%d conflicts, git merge-file found %d", len(res.Conflicts), n)
			}
		})
	}
}

// TestMergeByteIdentity checks the shortcuts return the winning side byte
// for byte, whatever its line endings.
func TestMergeByteIdentity(t *testing.T) {
	x := []byte("a\r\nb\n\nc\r\nno newline")
	y := []byte("a\r\nB\n\nc\r\nno newline\n")
	for _, tc := range []struct {
		name               string
		base, ours, theirs []byte
		want               []byte
	}{
		{"ours==theirs", x, y, y, y},
		{"base==ours", x, x, y, y},
		{"base==theirs", x, y, x, y},
		{"all equal", x, x, x, x},
	} {
		res := Merge(tc.base, tc.ours, tc.theirs, Options{})
		if !res.Clean || !bytes.Equal(res.Merged, tc.want) {
			t.Errorf("%s: got %q clean=%v, want %q", tc.name, res.Merged, res.Clean, tc.want)
		}
	}
}

func TestMergeDoesNotAliasInputs(t *testing.T) {
	base := []byte("a\n")
	ours := []byte("a\n")
	theirs := []byte("b\n")
	res := Merge(base, ours, theirs, Options{})
	theirs[0] = 'X'
	if string(res.Merged) != "b\n" {
		t.Fatalf("Merged aliases theirs: %q", res.Merged)
	}
}

func TestMergeDefaultLabels(t *testing.T) {
	res := Merge([]byte("a\n"), []byte("b\n"), []byte("c\n"), Options{})
	want := "<<<<<<< ours\nb\n||||||| base\na\n=======\nc\n>>>>>>> theirs\n"
	if string(res.Merged) != want {
		t.Fatalf("got:\n%s\nwant:\n%s", res.Merged, want)
	}
}

func TestConflictFormat(t *testing.T) {
	base := "apps:\n  grafana: 7.0.0\n  loki: 2.9.0\n"
	ours := "apps:\n  grafana: 7.0.3\n  loki: 2.9.0\n"
	theirs := "apps:\n  grafana: 7.1.0\n  grafana-agent: 1.0.0\n  loki: 2.9.0\n"
	res := Merge([]byte(base), []byte(ours), []byte(theirs), Options{
		OursLabel: "repo", BaseLabel: "last render", TheirsLabel: "new render",
	})
	if len(res.Conflicts) != 1 {
		t.Fatalf("want 1 conflict, got %d", len(res.Conflicts))
	}
	got := res.Conflicts[0].Format("clusters/home/apps.yaml")
	want := `clusters/home/apps.yaml:2: conflict: repo line 2, last render line 2, new render lines 2-3
<<<<<<< repo
  grafana: 7.0.3
||||||| last render
  grafana: 7.0.0
=======
  grafana: 7.1.0
  grafana-agent: 1.0.0
>>>>>>> new render
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// An empty side is described by where it would go, and a Conflict
	// built by hand formats with the default labels.
	c := Conflict{Line: 7, OursStart: 7, OursEnd: 6, BaseStart: 5, BaseEnd: 5, TheirsStart: 5, TheirsEnd: 5,
		Base: []string{"x"}, Theirs: []string{"y"}}
	want = `f:7: conflict: ours empty at line 7, base line 5, theirs line 5
<<<<<<< ours
||||||| base
x
=======
y
>>>>>>> theirs
`
	if got := c.Format("f"); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestMergeSymmetric: swapping the sides swaps the conflicts and nothing
// else.
func TestMergeSymmetric(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		base, ours, theirs := randomTriple(r)
		a := Merge(base, ours, theirs, Options{})
		b := Merge(base, theirs, ours, Options{})
		if a.Clean != b.Clean || len(a.Conflicts) != len(b.Conflicts) {
			t.Fatalf("asymmetric merge of\n%q\n%q\n%q", base, ours, theirs)
		}
		if a.Clean && !bytes.Equal(a.Merged, b.Merged) {
			t.Fatalf("clean merges differ: %q vs %q", a.Merged, b.Merged)
		}
		for i := range a.Conflicts {
			x, y := a.Conflicts[i], b.Conflicts[i]
			if x.OursStart != y.TheirsStart || x.OursEnd != y.TheirsEnd || x.BaseStart != y.BaseStart ||
				x.BaseEnd != y.BaseEnd || !reflect.DeepEqual(x.Ours, y.Theirs) || !reflect.DeepEqual(x.Base, y.Base) {
				t.Fatalf("conflict %d not mirrored: %+v vs %+v", i, x, y)
			}
		}
	}
}

// TestMergeMatchesGitRandom compares whole outputs with git merge-file on
// random edits of files with many repeated lines, mixed line endings and
// missing final newlines: the inputs where diff alignment is ambiguous and
// implementations disagree most easily.
func TestMergeMatchesGitRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	iters := 400
	if testing.Short() {
		iters = 60
	}
	for i := range iters {
		base, ours, theirs := randomTriple(r)
		got := Merge(base, ours, theirs, refOpts)
		want, n := gitMergeFile(t, base, ours, theirs)
		if !bytes.Equal(got.Merged, want) || n != len(got.Conflicts) {
			t.Fatalf("case %d differs from git merge-file\nbase %q\nours %q\ntheirs %q\ngot (%d conflicts) %q\ngit (%d) %q",
				i, base, ours, theirs, len(got.Conflicts), got.Merged, n, want)
		}
		// Conflict ranges must point at the marker blocks.
		lines := strings.SplitAfter(string(got.Merged), "\n")
		for _, c := range got.Conflicts {
			if !strings.HasPrefix(lines[c.Line-1], "<<<<<<< ours") {
				t.Fatalf("case %d: line %d is %q, not a marker", i, c.Line, lines[c.Line-1])
			}
			if len(c.Ours) != c.OursEnd-c.OursStart+1 || len(c.Base) != c.BaseEnd-c.BaseStart+1 ||
				len(c.Theirs) != c.TheirsEnd-c.TheirsStart+1 {
				t.Fatalf("case %d: ranges and lines disagree: %+v", i, c)
			}
		}
	}
}

// randomTriple returns a base of up to 200 lines drawn from a small
// alphabet and two independent random edits of it.
func randomTriple(r *rand.Rand) (base, ours, theirs []byte) {
	alpha := 2 + r.IntN(30)
	b := randomLines(r, r.IntN(200), alpha)
	return randomText(r, b), randomText(r, mutateLines(r, b, alpha, r.IntN(10))),
		randomText(r, mutateLines(r, b, alpha, r.IntN(10)))
}

func randomLine(r *rand.Rand, alpha int) string {
	l := string(rune('a' + r.IntN(alpha)))
	if r.IntN(10) == 0 {
		return l + "\r\n"
	}
	return l + "\n"
}

func randomLines(r *rand.Rand, n, alpha int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = randomLine(r, alpha)
	}
	return out
}

// mutateLines applies n random single-line deletions, insertions and
// replacements, sometimes in runs.
func mutateLines(r *rand.Rand, lines []string, alpha, n int) []string {
	out := append([]string(nil), lines...)
	for range n {
		for run := 1 + r.IntN(3); run > 0; run-- {
			switch r.IntN(3) {
			case 0:
				if len(out) > 0 {
					i := r.IntN(len(out))
					out = append(out[:i], out[i+1:]...)
				}
			case 1:
				i := r.IntN(len(out) + 1)
				out = append(out[:i], append([]string{randomLine(r, alpha+2)}, out[i:]...)...)
			default:
				if len(out) > 0 {
					out[r.IntN(len(out))] = randomLine(r, alpha+2)
				}
			}
		}
	}
	return out
}

// randomText joins lines, dropping the final newline one time in four.
func randomText(r *rand.Rand, lines []string) []byte {
	s := strings.Join(lines, "")
	if r.IntN(4) == 0 {
		s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	}
	return []byte(s)
}

// TestMergeFalseConflictDeviation pins the one place Merge deliberately
// differs from git merge-file: both sides rewrite "a a" to "c a" but their
// diffs align the change differently, so git, which only accepts hunks
// that pair up one for one, reports a conflict whose sides are identical.
// Merge compares the text and takes it.
func TestMergeFalseConflictDeviation(t *testing.T) {
	base := []byte("a\na\nb\nb\n")
	ours := []byte("c\na\nb\nb\nb\na\n")
	theirs := []byte("c\na\nb\nd\nb\nc\n")

	tail := "<<<<<<< ours\nb\na\n||||||| base\n=======\nc\n>>>>>>> theirs\n"
	res := Merge(base, ours, theirs, refOpts)
	if want := "c\na\nb\nd\nb\n" + tail; string(res.Merged) != want {
		t.Errorf("merged:\n%s\nwant:\n%s", res.Merged, want)
	}
	if len(res.Conflicts) != 1 {
		t.Errorf("%d conflicts, want 1", len(res.Conflicts))
	}

	gitOut, n := gitMergeFile(t, base, ours, theirs)
	gitWant := "<<<<<<< ours\nc\na\n||||||| base\na\na\n=======\nc\na\n>>>>>>> theirs\nb\nd\nb\n" + tail
	if string(gitOut) != gitWant || n != 2 {
		t.Errorf("git merge-file changed its mind (%d conflicts):\n%s", n, gitOut)
	}
}
