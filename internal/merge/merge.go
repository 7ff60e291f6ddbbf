// Package merge owns hl's line-based text merging and diffing: the diff3
// three-way merge that reconciles a re-render with the repository (base =
// last render, ours = the repo now with user edits and bot version bumps,
// theirs = the new render), and the unified diffs printed by
// `hl render --diff`. Both sit on one Myers diff core.
//
// The merge follows `git merge-file --diff3`: the same hunks, the same
// rule that changes from the two sides conflict when they overlap or touch
// (edits on lines 10 and 11 conflict, edits on lines 10 and 12 do not),
// identical changes on both sides merge cleanly, and conflicts are written
// with diff3-style markers that include the base text. Line endings are
// preserved byte for byte: lines compare exactly, terminators included,
// so a missing final newline or a CRLF line is a change like any other and
// unchanged lines are copied verbatim. The tests compare Merge with
// `git merge-file -p --diff3` and Diff with `diff -u` and `git diff`.
//
// One deliberate difference from git: where both sides changed the same
// region, git declares the changes identical only if each side's hunks
// pair up one for one; Merge compares the resulting text of the region,
// so two sides that arrive at the same lines through differently aligned
// hunks do not conflict. With the same diff on both sides (the usual
// case) the two rules agree.
package merge

import (
	"bytes"
	"fmt"
	"strings"
)

// MarkerSize is the length of the conflict marker runs (<<<<<<< etc.).
const MarkerSize = 7

// Options configures Merge.
type Options struct {
	// Labels written after the conflict markers: "<<<<<<< OursLabel",
	// "||||||| BaseLabel", ">>>>>>> TheirsLabel". Empty labels default to
	// "ours", "base" and "theirs".
	OursLabel, BaseLabel, TheirsLabel string
}

func (o Options) labels() [3]string {
	l := [3]string{o.OursLabel, o.BaseLabel, o.TheirsLabel}
	for i, def := range [3]string{"ours", "base", "theirs"} {
		if l[i] == "" {
			l[i] = def
		}
	}
	return l
}

// Result is the outcome of Merge.
type Result struct {
	// Merged is the merged text. When Clean is false it contains a
	// marker block for every conflict.
	Merged []byte
	// Conflicts lists the conflicts in file order.
	Conflicts []Conflict
	// Clean reports whether there were no conflicts.
	Clean bool
}

// Conflict is a region both sides changed differently. Line ranges are
// 1-based and inclusive, each in its own file; an empty range has
// End == Start-1, Start being the line the text would have occupied.
type Conflict struct {
	// Line is the 1-based line of the "<<<<<<<" marker in Result.Merged.
	Line int

	OursStart, OursEnd     int
	BaseStart, BaseEnd     int
	TheirsStart, TheirsEnd int

	// The conflicting lines of each side, without line terminators.
	Ours, Base, Theirs []string

	labels [3]string
}

// Format renders the conflict as a diff3-style hunk for error output:
//
//	path:LINE: conflict: ours lines 12-13, base line 12, theirs lines 12-14
//	<<<<<<< ours
//	...
//	||||||| base
//	...
//	=======
//	...
//	>>>>>>> theirs
//
// LINE is Conflict.Line, the marker's line in the merged text. The result
// ends in a newline.
func (c Conflict) Format(file string) string {
	labels := Options{c.labels[0], c.labels[1], c.labels[2]}.labels()
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s:%d: conflict: %s %s, %s %s, %s %s\n", file, c.Line,
		labels[0], describeRange(c.OursStart, c.OursEnd),
		labels[1], describeRange(c.BaseStart, c.BaseEnd),
		labels[2], describeRange(c.TheirsStart, c.TheirsEnd))
	section := func(marker byte, label string, lines []string) {
		sb.WriteString(strings.Repeat(string(marker), MarkerSize))
		if label != "" {
			sb.WriteString(" " + label)
		}
		sb.WriteByte('\n')
		for _, l := range lines {
			sb.WriteString(l)
			sb.WriteByte('\n')
		}
	}
	section('<', labels[0], c.Ours)
	section('|', labels[1], c.Base)
	section('=', "", c.Theirs)
	sb.WriteString(strings.Repeat(">", MarkerSize) + " " + labels[2] + "\n")
	return sb.String()
}

func describeRange(start, end int) string {
	switch {
	case end < start:
		return fmt.Sprintf("empty at line %d", start)
	case end == start:
		return fmt.Sprintf("line %d", start)
	default:
		return fmt.Sprintf("lines %d-%d", start, end)
	}
}

// Merge merges the changes base→ours and base→theirs line by line, like
// `git merge-file -p --diff3 ours base theirs`. If one side did not change
// base, or both made the same change, the result is the other side (or
// that change) byte for byte. Merged never aliases the inputs.
func Merge(base, ours, theirs []byte, opts Options) Result {
	switch {
	case bytes.Equal(ours, theirs), bytes.Equal(base, theirs):
		return Result{Merged: bytes.Clone(ours), Clean: true}
	case bytes.Equal(base, ours):
		return Result{Merged: bytes.Clone(theirs), Clean: true}
	}

	bt, ot, tt := newText(base), newText(ours), newText(theirs)
	in := newInterner(bt.len() + 64)
	bi := in.intern(bt)
	oi, ti := in.internLike(ot, bt, bi), in.internLike(tt, bt, bi)
	m := &merger{
		base: bt, ours: ot, theirs: tt,
		labels: opts.labels(),
		out:    make([]byte, 0, max(len(ours), len(theirs))+len(theirs)/8),
	}
	m.run(diffIDs(bi, oi, in.len()), diffIDs(bi, ti, in.len()))
	return Result{Merged: m.out, Conflicts: m.conflicts, Clean: len(m.conflicts) == 0}
}

type merger struct {
	base, ours, theirs *text
	labels             [3]string
	out                []byte
	outLines           int
	conflicts          []Conflict
}

// emit copies lines [lo,hi) of t to the output.
func (m *merger) emit(t *text, lo, hi int) {
	m.out = append(m.out, t.span(lo, hi)...)
	m.outLines += hi - lo
}

// run walks both edit scripts in base order and groups edits into chunks:
// a chunk is a maximal run of edits from either side whose base ranges
// overlap or touch. Base lines outside every chunk are unchanged on both
// sides (diff3's stable chunks) and copied through.
func (m *merger) run(eo, et []edit) {
	pos := 0               // next base line to copy
	dOurs, dTheirs := 0, 0 // ours/theirs line index minus base line index, before the chunk
	i, j := 0, 0
	for i < len(eo) || j < len(et) {
		lo := m.base.len() + 1
		if i < len(eo) {
			lo = eo[i].a0
		}
		if j < len(et) {
			lo = min(lo, et[j].a0)
		}
		hi := lo
		i0, j0 := i, j
		for {
			if i < len(eo) && eo[i].a0 <= hi {
				hi = max(hi, eo[i].a1)
				i++
			} else if j < len(et) && et[j].a0 <= hi {
				hi = max(hi, et[j].a1)
				j++
			} else {
				break
			}
		}
		m.emit(m.base, pos, lo)
		pos = hi

		o0, t0 := lo+dOurs, lo+dTheirs
		for _, e := range eo[i0:i] {
			dOurs += (e.b1 - e.b0) - (e.a1 - e.a0)
		}
		for _, e := range et[j0:j] {
			dTheirs += (e.b1 - e.b0) - (e.a1 - e.a0)
		}
		o1, t1 := hi+dOurs, hi+dTheirs
		// Equal spans are equal line sequences: lines end after '\n'.
		ours, theirs, base := m.ours.span(o0, o1), m.theirs.span(t0, t1), m.base.span(lo, hi)

		switch {
		case i == i0, ours == base:
			m.emit(m.theirs, t0, t1)
		case j == j0, theirs == base, ours == theirs:
			m.emit(m.ours, o0, o1)
		default:
			m.conflict(lo, hi, o0, o1, t0, t1)
		}
	}
	m.emit(m.base, pos, m.base.len())
}

// conflict writes a diff3 marker block and records the conflict. Like git,
// markers and a newline added after a side's last line that lacks one use
// CRLF when the surrounding lines do.
func (m *merger) conflict(b0, b1, o0, o1, t0, t1 int) {
	eol := "\n"
	if m.needsCR(o0, t0) {
		eol = "\r\n"
	}
	m.conflicts = append(m.conflicts, Conflict{
		Line:      m.outLines + 1,
		OursStart: o0 + 1, OursEnd: o1,
		BaseStart: b0 + 1, BaseEnd: b1,
		TheirsStart: t0 + 1, TheirsEnd: t1,
		Ours:   m.ours.lines(o0, o1),
		Base:   m.base.lines(b0, b1),
		Theirs: m.theirs.lines(t0, t1),
		labels: m.labels,
	})
	marker := func(c byte, label string) {
		for range MarkerSize {
			m.out = append(m.out, c)
		}
		if label != "" {
			m.out = append(m.out, ' ')
			m.out = append(m.out, label...)
		}
		m.out = append(m.out, eol...)
		m.outLines++
	}
	side := func(t *text, lo, hi int) {
		m.emit(t, lo, hi)
		if hi > lo && !hasEOL(t.line(hi-1)) {
			m.out = append(m.out, eol...)
		}
	}
	marker('<', m.labels[0])
	side(m.ours, o0, o1)
	marker('|', m.labels[1])
	side(m.base, b0, b1)
	marker('=', "")
	side(m.theirs, t0, t1)
	marker('>', m.labels[2])
}

// needsCR decides the conflict's line ending as git does: CRLF only if the
// line before the conflict (or the first line) in ours and in theirs and
// the first line of base all end in CRLF, where a file without a
// determinable style does not vote.
func (m *merger) needsCR(o0, t0 int) bool {
	vote := eolCRLF(m.ours, max(o0-1, 0))
	if vote != 0 {
		vote = eolCRLF(m.theirs, max(t0-1, 0))
	}
	if vote != 0 {
		vote = eolCRLF(m.base, 0)
	}
	return vote > 0
}

// eolCRLF reports whether line i of t ends in CRLF (1) or LF (0), or -1 if
// that cannot be told: empty file, or a sole line without newline. A last
// line without newline takes the style of the line before it.
func eolCRLF(t *text, i int) int {
	if t.len() == 0 {
		return -1
	}
	if !hasEOL(t.line(i)) {
		if i == 0 {
			return -1
		}
		i--
	}
	if strings.HasSuffix(t.line(i), "\r\n") {
		return 1
	}
	return 0
}
