package merge

// The diff core: Myers' O(ND) algorithm in its linear-space, divide and
// conquer form (find a "middle snake", recurse on both halves), with the
// same pre- and post-processing git's xdiff applies so that hunks land
// where `git merge-file` and `git diff` put them:
//
//   - common prefix and suffix are trimmed first;
//   - lines that occur nowhere in the other file are marked changed up front
//     and left out of the search, and so are lines with many matches that
//     sit inside such runs (they would only produce spurious alignments);
//   - ties between equally short scripts go to deletions first;
//   - after the search every run of changed lines is slid as far down as it
//     can go, or back up to line up with a change in the other file
//     (git's "compaction", originally GNU diff's shift_boundaries);
//   - a search that gets too expensive settles for the furthest-reaching
//     path instead of the shortest one, which keeps pathological inputs
//     linear-ish at the cost of a slightly longer script.

// edit is one hunk of a two-way diff: lines [a0,a1) of the old file are
// replaced by lines [b0,b1) of the new file. Either range may be empty, not
// both. Consecutive edits are separated by at least one unchanged line.
type edit struct{ a0, a1, b0, b1 int }

const (
	minMaxCost    = 256 // the search cost below which results are always minimal
	maxEqLimit    = 1024
	simscanWindow = 100
	keepMultiRun  = 4
)

// diffIDs returns the edit script turning a into b. nids bounds the line
// ids in both slices.
func diffIDs(a, b []int32, nids int) []edit {
	ca := make([]bool, len(a))
	cb := make([]bool, len(b))

	lo := 0
	for lo < len(a) && lo < len(b) && a[lo] == b[lo] {
		lo++
	}
	aHi, bHi := len(a), len(b)
	for aHi > lo && bHi > lo && a[aHi-1] == b[bHi-1] {
		aHi--
		bHi--
	}
	if lo < aHi || lo < bHi {
		// Counts over the whole files, as xdiff does.
		inA := make([]int32, nids)
		inB := make([]int32, nids)
		for _, id := range a {
			inA[id]++
		}
		for _, id := range b {
			inB[id]++
		}
		ra, ia := reduce(a, lo, aHi, inB, ca)
		rb, ib := reduce(b, lo, bHi, inA, cb)

		m := &myers{
			a: ra, b: rb,
			ca: make([]bool, len(ra)), cb: make([]bool, len(rb)),
			off: len(rb) + 1,
		}
		n := len(ra) + len(rb) + 3
		m.vf = make([]int, n)
		m.vb = make([]int, n)
		m.maxCost = max(bogosqrt(n), minMaxCost)
		m.compare(0, len(ra), 0, len(rb))
		for i, c := range m.ca {
			if c {
				ca[ia[i]] = true
			}
		}
		for i, c := range m.cb {
			if c {
				cb[ib[i]] = true
			}
		}
		compact(a, ca, cb)
		compact(b, cb, ca)
	}
	return script(ca, cb)
}

// bogosqrt is xdiff's cheap power-of-two square root estimate; the
// thresholds below are defined in its terms.
func bogosqrt(n int) int {
	i := 1
	for ; n > 0; n >>= 2 {
		i <<= 1
	}
	return i
}

// reduce returns the lines of x[lo:hi] worth searching for matches, with
// their indices in x, and marks the others changed in cx. other counts the
// occurrences of each id in the other file.
func reduce(x []int32, lo, hi int, other []int32, cx []bool) ([]int32, []int) {
	const (
		none  = 0 // no match in the other file: always changed
		one   = 1 // some matches: searched
		multi = 2 // many matches: searched unless surrounded by unmatched lines
	)
	limit := min(bogosqrt(len(x)), maxEqLimit)
	kind := make([]byte, hi-lo)
	for i := lo; i < hi; i++ {
		switch n := int(other[x[i]]); {
		case n == 0:
			kind[i-lo] = none
		case n >= limit:
			kind[i-lo] = multi
		default:
			kind[i-lo] = one
		}
	}
	ids := make([]int32, 0, hi-lo)
	idx := make([]int, 0, hi-lo)
	for i := range kind {
		if kind[i] == one || (kind[i] == multi && !buriedMulti(kind, i)) {
			ids = append(ids, x[lo+i])
			idx = append(idx, lo+i)
		} else {
			cx[lo+i] = true
		}
	}
	return ids, idx
}

// buriedMulti reports whether the many-matches line kind[i] sits between
// runs made of unmatched and many-matches lines, with unmatched lines on
// both sides and many-matches lines in the minority. Such a line (a blank
// line or a lone "---" inside rewritten text) would only anchor a
// meaningless alignment, so it is treated as changed.
func buriedMulti(kind []byte, i int) bool {
	lo, hi := max(0, i-simscanWindow), min(len(kind)-1, i+simscanWindow)
	// The line itself counts once for each side, as in xdiff.
	unmatched, multis := 0, 2
	for j := i - 1; j >= lo && kind[j] != 1; j-- {
		if kind[j] == 0 {
			unmatched++
		} else {
			multis++
		}
	}
	if unmatched == 0 {
		return false
	}
	after := 0
	for j := i + 1; j <= hi && kind[j] != 1; j++ {
		if kind[j] == 0 {
			after++
		} else {
			multis++
		}
	}
	if after == 0 {
		return false
	}
	unmatched += after
	return multis*keepMultiRun < multis+unmatched
}

// myers holds the state of one search. Diagonal k is x-y in absolute
// coordinates of a and b; vf[off+k] is the furthest x the forward search
// reached on diagonal k, vb[off+k] the smallest x the backward one did.
type myers struct {
	a, b    []int32
	ca, cb  []bool
	vf, vb  []int
	off     int
	maxCost int
}

// compare marks the changed lines of a[aLo:aHi] and b[bLo:bHi].
func (m *myers) compare(aLo, aHi, bLo, bHi int) {
	for aLo < aHi && bLo < bHi && m.a[aLo] == m.b[bLo] {
		aLo++
		bLo++
	}
	for aLo < aHi && bLo < bHi && m.a[aHi-1] == m.b[bHi-1] {
		aHi--
		bHi--
	}
	switch {
	case aLo == aHi:
		for j := bLo; j < bHi; j++ {
			m.cb[j] = true
		}
	case bLo == bHi:
		for i := aLo; i < aHi; i++ {
			m.ca[i] = true
		}
	default:
		x, y := m.split(aLo, aHi, bLo, bHi)
		if (x == aLo && y == bLo) || (x == aHi && y == bHi) {
			// Cannot happen with a correct split; never loop forever.
			for i := aLo; i < aHi; i++ {
				m.ca[i] = true
			}
			for j := bLo; j < bHi; j++ {
				m.cb[j] = true
			}
			return
		}
		m.compare(aLo, x, bLo, y)
		m.compare(x, aHi, y, bHi)
	}
}

// split runs the forward and backward searches in lockstep until they
// meet and returns a point on a shortest path through the box. Both ends
// of the box must already differ (compare trims them).
func (m *myers) split(aLo, aHi, bLo, bHi int) (int, int) {
	const unreached = int(^uint(0) >> 1)
	a, b, vf, vb, o := m.a, m.b, m.vf, m.vb, m.off
	kLo, kHi := aLo-bHi, aHi-bLo // diagonals inside the box
	fMid, bMid := aLo-bLo, aHi-bHi
	odd := (fMid-bMid)&1 != 0
	fLo, fHi, bkLo, bkHi := fMid, fMid, bMid, bMid
	vf[o+fMid] = aLo
	vb[o+bMid] = aHi

	for cost := 1; ; cost++ {
		// Widen the forward range by one diagonal on each side, or
		// narrow it where it would leave the box, keeping the parity.
		// The neighbours just outside get values that lose every
		// comparison below.
		if fLo > kLo {
			fLo--
			vf[o+fLo-1] = -1
		} else {
			fLo++
		}
		if fHi < kHi {
			fHi++
			vf[o+fHi+1] = -1
		} else {
			fHi--
		}
		for k := fHi; k >= fLo; k -= 2 {
			var x int
			if vf[o+k-1] >= vf[o+k+1] {
				x = vf[o+k-1] + 1 // step right: delete a[x]
			} else {
				x = vf[o+k+1] // step down: insert b[y]
			}
			y := x - k
			for x < aHi && y < bHi && a[x] == b[y] {
				x++
				y++
			}
			vf[o+k] = x
			if odd && bkLo <= k && k <= bkHi && vb[o+k] <= x {
				return x, y
			}
		}

		if bkLo > kLo {
			bkLo--
			vb[o+bkLo-1] = unreached
		} else {
			bkLo++
		}
		if bkHi < kHi {
			bkHi++
			vb[o+bkHi+1] = unreached
		} else {
			bkHi--
		}
		for k := bkHi; k >= bkLo; k -= 2 {
			var x int
			if vb[o+k-1] < vb[o+k+1] {
				x = vb[o+k-1]
			} else {
				x = vb[o+k+1] - 1
			}
			y := x - k
			for x > aLo && y > bLo && a[x-1] == b[y-1] {
				x--
				y--
			}
			vb[o+k] = x
			if !odd && fLo <= k && k <= fHi && x <= vf[o+k] {
				return x, y
			}
		}

		if cost < m.maxCost {
			continue
		}
		// Too expensive: split at whichever frontier point got furthest
		// from its corner, forward or backward.
		fBest, fx := -1, 0
		for k := fHi; k >= fLo; k -= 2 {
			x := min(vf[o+k], aHi)
			y := x - k
			if y > bHi {
				x, y = bHi+k, bHi
			}
			if x+y > fBest {
				fBest, fx = x+y, x
			}
		}
		bBest, bx := unreached, 0
		for k := bkHi; k >= bkLo; k -= 2 {
			x := max(vb[o+k], aLo)
			y := x - k
			if y < bLo {
				x, y = bLo+k, bLo
			}
			if x+y < bBest {
				bBest, bx = x+y, x
			}
		}
		if (aHi+bHi)-bBest < fBest-(aLo+bLo) {
			return fx, fBest - fx
		}
		return bx, bBest - bx
	}
}

// group is a run [start,end) of changed lines; it may be empty. Groups are
// separated by single unchanged lines, so the i-th group of one file
// corresponds to the i-th group of the other.
type group struct{ start, end int }

func firstGroup(c []bool) group {
	g := group{}
	for g.end < len(c) && c[g.end] {
		g.end++
	}
	return g
}

func (g *group) next(c []bool) bool {
	if g.end == len(c) {
		return false
	}
	g.start = g.end + 1
	g.end = g.start
	for g.end < len(c) && c[g.end] {
		g.end++
	}
	return true
}

func (g *group) prev(c []bool) bool {
	if g.start == 0 {
		return false
	}
	g.end = g.start - 1
	g.start = g.end
	for g.start > 0 && c[g.start-1] {
		g.start--
	}
	return true
}

// slideDown moves the group one line down if the line after it equals its
// first line, absorbing any group it runs into.
func (g *group) slideDown(ids []int32, c []bool) bool {
	if g.end >= len(c) || ids[g.start] != ids[g.end] {
		return false
	}
	c[g.start], c[g.end] = false, true
	g.start++
	g.end++
	for g.end < len(c) && c[g.end] {
		g.end++
	}
	return true
}

// slideUp moves the group one line up if the line before it equals its
// last line, absorbing any group it runs into.
func (g *group) slideUp(ids []int32, c []bool) bool {
	if g.start == 0 || ids[g.start-1] != ids[g.end-1] {
		return false
	}
	g.start--
	g.end--
	c[g.start], c[g.end] = true, false
	for g.start > 0 && c[g.start-1] {
		g.start--
	}
	return true
}

// compact moves every run of changed lines in x (flags cx) to its
// canonical position: as low as it can slide, unless some position lines
// it up with a change in the other file (flags co), in which case the
// lowest such position. Runs that touch while sliding merge.
func compact(x []int32, cx, co []bool) {
	g, o := firstGroup(cx), firstGroup(co)
	for {
		if g.end > g.start {
			var size, earliestEnd int
			matchEnd := -1
			for {
				size = g.end - g.start
				matchEnd = -1
				for g.slideUp(x, cx) {
					o.prev(co)
				}
				earliestEnd = g.end
				if o.end > o.start {
					matchEnd = g.end
				}
				for g.slideDown(x, cx) {
					o.next(co)
					if o.end > o.start {
						matchEnd = g.end
					}
				}
				if size == g.end-g.start {
					break
				}
			}
			if g.end != earliestEnd && matchEnd >= 0 {
				for o.end == o.start {
					g.slideUp(x, cx)
					o.prev(co)
				}
			}
		}
		if !g.next(cx) {
			return
		}
		o.next(co)
	}
}

// script turns per-line change flags into edits.
func script(ca, cb []bool) []edit {
	var edits []edit
	i, j := 0, 0
	for i < len(ca) || j < len(cb) {
		if i < len(ca) && j < len(cb) && !ca[i] && !cb[j] {
			i++
			j++
			continue
		}
		e := edit{a0: i, b0: j}
		for i < len(ca) && ca[i] {
			i++
		}
		for j < len(cb) && cb[j] {
			j++
		}
		e.a1, e.b1 = i, j
		if e.a0 == e.a1 && e.b0 == e.b1 {
			// Unchanged lines out of step: the flags are inconsistent.
			// Cannot happen; stop rather than loop.
			break
		}
		edits = append(edits, e)
	}
	return edits
}
