package merge

import (
	"strconv"
	"strings"
)

// Diff returns a unified diff from a to b, as `diff -u` prints it, with
// "--- nameA" and "+++ nameB" headers and context lines of context around
// each change (negative means 0). Changes separated by at most 2*context
// unchanged lines share a hunk. A line without a trailing newline is
// followed by "\ No newline at end of file". Identical inputs give "".
func Diff(a, b []byte, nameA, nameB string, context int) string {
	context = max(context, 0)
	at, bt := newText(a), newText(b)
	in := newInterner(at.len() + 64)
	ai := in.intern(at)
	bi := in.internLike(bt, at, ai)
	edits := diffIDs(ai, bi, in.len())
	if len(edits) == 0 {
		return ""
	}

	var sb strings.Builder
	sb.WriteString("--- " + nameA + "\n+++ " + nameB + "\n")
	line := func(prefix byte, l string) {
		sb.WriteByte(prefix)
		sb.WriteString(l)
		if !hasEOL(l) {
			sb.WriteString("\n\\ No newline at end of file\n")
		}
	}
	for len(edits) > 0 {
		// Take edits while the gap to the next one is at most 2*context.
		n := 1
		for n < len(edits) && edits[n].a0-edits[n-1].a1 <= 2*context {
			n++
		}
		hunk := edits[:n]
		edits = edits[n:]

		first, last := hunk[0], hunk[n-1]
		// Lines before the first edit and after the last are unchanged on
		// both sides, so the context is the same length in a and b.
		lead := min(context, first.a0)
		trail := min(context, at.len()-last.a1)
		a0, a1 := first.a0-lead, last.a1+trail
		b0, b1 := first.b0-lead, last.b1+trail

		sb.WriteString("@@ -" + hunkRange(a0, a1) + " +" + hunkRange(b0, b1) + " @@\n")
		lines := func(prefix byte, t *text, lo, hi int) {
			for i := lo; i < hi; i++ {
				line(prefix, t.line(i))
			}
		}
		pos := a0
		for _, e := range hunk {
			lines(' ', at, pos, e.a0)
			lines('-', at, e.a0, e.a1)
			lines('+', bt, e.b0, e.b1)
			pos = e.a1
		}
		lines(' ', at, pos, a1)
	}
	return sb.String()
}

// hunkRange formats the 0-based half-open range [lo,hi) the way unified
// diffs do: "start,count" with a 1-based start, just "start" for one line,
// and for an empty range the line after which the text goes, ",0".
func hunkRange(lo, hi int) string {
	switch n := hi - lo; n {
	case 0:
		return strconv.Itoa(lo) + ",0"
	case 1:
		return strconv.Itoa(lo + 1)
	default:
		return strconv.Itoa(lo+1) + "," + strconv.Itoa(n)
	}
}
