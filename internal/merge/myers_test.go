package merge

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// checkScript verifies that edits turn a into b: ordered, separated by at
// least one unchanged line, and unchanged lines equal on both sides.
func checkScript(t *testing.T, a, b []int32, edits []edit) {
	t.Helper()
	i, j := 0, 0
	for k, e := range edits {
		if e.a0 < i || e.b0 < j || e.a0-i != e.b0-j || (k > 0 && e.a0 == i) {
			t.Fatalf("edit %d %+v out of step at a=%d b=%d", k, e, i, j)
		}
		if e.a0 == e.a1 && e.b0 == e.b1 {
			t.Fatalf("empty edit %d", k)
		}
		for ; i < e.a0; i, j = i+1, j+1 {
			if a[i] != b[j] {
				t.Fatalf("unchanged a[%d] != b[%d]", i, j)
			}
		}
		i, j = e.a1, e.b1
	}
	if len(a)-i != len(b)-j {
		t.Fatalf("tail out of step: a=%d/%d b=%d/%d", i, len(a), j, len(b))
	}
	for ; i < len(a); i, j = i+1, j+1 {
		if a[i] != b[j] {
			t.Fatalf("unchanged tail a[%d] != b[%d]", i, j)
		}
	}
}

func idsOf(in *interner, lines []string) []int32 {
	return in.intern(newText([]byte(strings.Join(lines, ""))))
}

// TestDiffCoreExpensive drives the search past its cost limit (unrelated
// files of thousands of lines) and checks the script is still valid, and
// still the one git picks.
func TestDiffCoreExpensive(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, alpha := range []int{2, 20, 300, 5000} {
		al, bl := randomLines(r, 3000, alpha), randomLines(r, 3000, alpha)
		in := newInterner(0)
		a, b := idsOf(in, al), idsOf(in, bl)
		checkScript(t, a, b, diffIDs(a, b, in.len()))

		at, bt := []byte(strings.Join(al, "")), []byte(strings.Join(bl, ""))
		got := Diff(at, bt, "a", "b", 3)
		got = got[strings.Index(got, "@@"):]
		if want := gitDiffHunks(t, at, bt, 3); got != want {
			t.Errorf("alphabet %d: differs from git diff (%d vs %d lines)", alpha,
				strings.Count(got, "\n"), strings.Count(want, "\n"))
		}
	}
}

func TestDiffCoreRandomValid(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for range 2000 {
		alpha := 1 + r.IntN(20)
		al := randomLines(r, r.IntN(60), alpha)
		bl := mutateLines(r, al, alpha, r.IntN(15))
		if r.IntN(5) == 0 {
			bl = randomLines(r, r.IntN(60), alpha)
		}
		in := newInterner(0)
		a, b := idsOf(in, al), idsOf(in, bl)
		checkScript(t, a, b, diffIDs(a, b, in.len()))
	}
}

func TestInternLikeAgreesWithIntern(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 200 {
		alpha := 1 + r.IntN(40)
		al := randomLines(r, r.IntN(100), alpha)
		bl := mutateLines(r, al, alpha, r.IntN(20))
		at, bt := newText([]byte(strings.Join(al, ""))), newText([]byte(strings.Join(bl, "")))

		in1 := newInterner(0)
		a1 := in1.intern(at)
		b1 := in1.internLike(bt, at, a1)
		in2 := newInterner(0)
		in2.intern(at)
		b2 := in2.intern(bt)
		if len(b1) != len(b2) || in1.len() != in2.len() {
			t.Fatal("internLike and intern disagree on sizes")
		}
		for i := range b1 {
			if b1[i] != b2[i] {
				t.Fatalf("line %d: internLike id %d, intern id %d", i, b1[i], b2[i])
			}
		}
	}
}

func TestNewText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\n", []string{"\n"}},
		{"a", []string{"a"}},
		{"a\nb", []string{"a\n", "b"}},
		{"a\r\n\r\nb\n", []string{"a\r\n", "\r\n", "b\n"}},
	} {
		tx := newText([]byte(tc.in))
		var got []string
		for i := range tx.len() {
			got = append(got, tx.line(i))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("newText(%q) lines %q, want %q", tc.in, got, tc.want)
		}
		if tx.span(0, tx.len()) != tc.in {
			t.Errorf("span of %q is %q", tc.in, tx.span(0, tx.len()))
		}
	}
}

// TestDiffManyMatchesRegression: a line with many matches between runs of
// unmatched lines is dropped from the search only by xdiff's exact rule
// (the line itself counts on both sides of the ratio); an off-by-one there
// made the diff longer than git's.
func TestDiffManyMatchesRegression(t *testing.T) {
	a := []byte("b\na\nb\r\na\nb\na\nb\nb\r\na\r\na\nb\nb\n")
	b := []byte("c\na\na\nb\r\nb\nb\nb\nb\r\na\r\nd\nd\na\nc\nd\n")
	got := Diff(a, b, "a", "b", 0)
	got = got[strings.Index(got, "@@"):]
	if want := gitDiffHunks(t, a, b, 0); got != want {
		t.Fatalf("got:\n%s\ngit:\n%s", got, want)
	}
}
