package merge

import (
	"hash/maphash"
	"strings"
)

// A line is kept with its terminator ("\n", "\r\n", or nothing for a last
// line without a newline), so lines compare byte-exactly and output is
// reassembled byte-for-byte: "x" and "x\n" are different lines, as are
// "x\n" and "x\r\n". This is what git merge-file does without --ignore-*
// flags.

// text is a file cut after every '\n'; a final segment without a newline
// is a line of its own and an empty file has no lines. Line i is
// s[start(i):ends[i]]. Keeping offsets rather than a []string keeps the
// per-line cost to one int and the garbage collector out of the way.
type text struct {
	s    string
	ends []int
}

func newText(b []byte) *text {
	s := string(b)
	ends := make([]int, 0, strings.Count(s, "\n")+1)
	for off := 0; off < len(s); {
		i := strings.IndexByte(s[off:], '\n')
		if i < 0 {
			ends = append(ends, len(s))
			break
		}
		off += i + 1
		ends = append(ends, off)
	}
	return &text{s: s, ends: ends}
}

func (t *text) len() int { return len(t.ends) }

// start returns the offset of line i; start(len()) is the end of the text.
func (t *text) start(i int) int {
	if i == 0 {
		return 0
	}
	return t.ends[i-1]
}

func (t *text) line(i int) string { return t.s[t.start(i):t.ends[i]] }

// span returns lines [lo,hi) as one string.
func (t *text) span(lo, hi int) string { return t.s[t.start(lo):t.start(hi)] }

// lines returns lines [lo,hi) without their terminators.
func (t *text) lines(lo, hi int) []string {
	out := make([]string, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, stripEOL(t.line(i)))
	}
	return out
}

// interner maps equal lines to equal small integers so the diff core
// compares int32s instead of strings and counts occurrences in slices. It
// is an open-addressing hash table of ids, which holds no pointers but the
// one representative string per distinct line.
type interner struct {
	seed  maphash.Seed
	slots []int32 // id+1, 0 for empty; the length is a power of two
	reps  []string
}

func newInterner(distinctHint int) *interner {
	n := 64
	for n < 2*distinctHint {
		n <<= 1
	}
	return &interner{seed: maphash.MakeSeed(), slots: make([]int32, n), reps: make([]string, 0, distinctHint)}
}

func (in *interner) len() int { return len(in.reps) }

func (in *interner) id(l string) int32 {
	mask := len(in.slots) - 1
	for i := int(maphash.String(in.seed, l)) & mask; ; i = (i + 1) & mask {
		s := in.slots[i]
		if s == 0 {
			id := int32(len(in.reps))
			in.reps = append(in.reps, l)
			in.slots[i] = id + 1
			if 2*len(in.reps) > len(in.slots) {
				in.grow()
			}
			return id
		}
		if in.reps[s-1] == l {
			return s - 1
		}
	}
}

func (in *interner) grow() {
	in.slots = make([]int32, 2*len(in.slots))
	mask := len(in.slots) - 1
	for id, l := range in.reps {
		i := int(maphash.String(in.seed, l)) & mask
		for in.slots[i] != 0 {
			i = (i + 1) & mask
		}
		in.slots[i] = int32(id) + 1
	}
}

func (in *interner) intern(t *text) []int32 {
	ids := make([]int32, t.len())
	for i := range ids {
		ids[i] = in.id(t.line(i))
	}
	return ids
}

// internLike interns t, which is mostly the same as ref (already interned
// as refIDs) in the same order. It follows the alignment between the two
// and copies ref's id whenever the line at the current offset is equal,
// which costs a string comparison instead of a hash lookup; after a lookup
// it re-aligns on lines that occur once in ref. The ids are the ones
// intern would give, only cheaper to get.
func (in *interner) internLike(t, ref *text, refIDs []int32) []int32 {
	// where[id] is the index of id's only occurrence in ref, -1 if none,
	// -2 if several.
	where := make([]int32, in.len())
	for i := range where {
		where[i] = -1
	}
	for j, id := range refIDs {
		if where[id] == -1 {
			where[id] = int32(j)
		} else {
			where[id] = -2
		}
	}
	ids := make([]int32, t.len())
	d := 0 // index in ref minus index in t
	for i := range ids {
		l := t.line(i)
		if j := i + d; j >= 0 && j < ref.len() && ref.line(j) == l {
			ids[i] = refIDs[j]
			continue
		}
		id := in.id(l)
		ids[i] = id
		if int(id) < len(where) && where[id] >= 0 {
			d = int(where[id]) - i
		}
	}
	return ids
}

// stripEOL removes a trailing "\n" or "\r\n".
func stripEOL(l string) string {
	if !strings.HasSuffix(l, "\n") {
		return l
	}
	return strings.TrimSuffix(l[:len(l)-1], "\r")
}

func hasEOL(l string) bool { return strings.HasSuffix(l, "\n") }
