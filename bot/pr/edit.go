package pr

import (
	"cmp"
	"fmt"
	"slices"

	"hl.dev/hl/bot"
)

// Edit replaces the bytes at Range with New.
type Edit struct {
	Range bot.Range
	// Old, when set, must be the bytes at Range (a stale scan is an error).
	Old string
	New string
}

// EditsFor returns the edits of updates in one file: the version and every
// related range.
func EditsFor(updates []bot.Update, file string) ([]Edit, error) {
	var out []Edit
	for _, u := range updates {
		d := u.Dependency
		if d.File != file {
			continue
		}
		out = append(out, Edit{Range: d.Range, Old: d.Current, New: u.NewValue})
		for role, r := range d.Related {
			v, ok := u.Related[role]
			if !ok {
				return nil, fmt.Errorf("%s: %s: no new value for related %q", d.File, d.Package, role)
			}
			out = append(out, Edit{Range: r, New: v})
		}
	}
	return out, nil
}

// Apply rewrites content, touching only the bytes inside the edits'
// ranges. Identical duplicate edits are merged; overlapping different ones
// are an error.
func Apply(content []byte, edits []Edit) ([]byte, error) {
	es := slices.Clone(edits)
	slices.SortFunc(es, func(a, b Edit) int {
		return cmp.Or(cmp.Compare(a.Range.Start, b.Range.Start), cmp.Compare(a.Range.End, b.Range.End))
	})
	es = slices.CompactFunc(es, func(a, b Edit) bool { return a.Range == b.Range && a.New == b.New })
	out := make([]byte, 0, len(content)+64)
	pos := 0
	for _, e := range es {
		r := e.Range
		if r.Start < pos || r.End < r.Start || r.End > len(content) {
			return nil, fmt.Errorf("edit [%d,%d) overlaps another or lies outside the file (%d bytes)", r.Start, r.End, len(content))
		}
		if e.Old != "" && string(content[r.Start:r.End]) != e.Old {
			return nil, fmt.Errorf("bytes [%d,%d) are %q, expected %q: file changed since the scan", r.Start, r.End, content[r.Start:r.End], e.Old)
		}
		out = append(out, content[pos:r.Start]...)
		out = append(out, e.New...)
		pos = r.End
	}
	return append(out, content[pos:]...), nil
}
