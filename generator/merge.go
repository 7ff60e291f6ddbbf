package generator

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/merge"
)

// mergePlan decides every file's final content: base (last render), ours
// (the repo now) and theirs (this render) are merged so user edits and bot
// bumps survive and template changes still land.
// Only the paths for which only returns true are merged, so a render can
// merge in two passes (see Render).
func mergePlan(plan *Plan, st *state, opts Options, res *Result, only func(string) bool) error {
	paths := map[string]bool{}
	for p := range plan.Files {
		paths[p] = only(p)
	}
	for p := range st.present {
		paths[p] = only(p)
	}
	for _, p := range sortedKeys(paths) {
		if !paths[p] {
			continue
		}
		ours, err := os.ReadFile(filepath.Join(opts.OutDir, filepath.FromSlash(p)))
		oursExists := err == nil
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		fr := FileResult{Path: p, old: ours, existed: oursExists}
		theirs, rendered := plan.Files[p]
		entry, inState := st.present[p]
		base, inBase := st.base[p]
		switch {
		case rendered && theirs.Secret != nil:
			fr.Secret = true
			fr.new = theirs.Content
			fr.Action = changeAction(oursExists, ours, theirs.Content)
		case !rendered:
			if !inState || !oursExists {
				continue // not hl's file, or already gone
			}
			wrote := entry.Secret && sum(ours) == entry.SHA256 || !entry.Secret && inBase && bytes.Equal(ours, base)
			if r, ok := config.RetiredFolder(p); ok && !wrote {
				// An edit (a bot's chart bump, most often) cannot keep a
				// component that no longer exists: its folder would stay
				// half there, out of Argo CD's hands.
				fr.Action, fr.Note = ActionDelete, fmt.Sprintf("%s was replaced by %s: deleted although edited since the last render", r.Name, r.ReplacedBy)
			} else if wrote {
				fr.Action = ActionDelete
			} else {
				fr.Action, fr.Note, fr.new = ActionKeep, "no longer rendered, but edited since the last render: kept", ours
			}
			fr.Secret = entry.Secret
		default:
			fr.Action, fr.Note, fr.new, fr.Conflicts = merge3(p, base, inBase, ours, oursExists, theirs.Content)
		}
		res.Files = append(res.Files, fr)
	}
	return nil
}

func changeAction(existed bool, old, new []byte) Action {
	switch {
	case !existed:
		return ActionAdd
	case bytes.Equal(old, new):
		return ActionUnchanged
	default:
		return ActionUpdate
	}
}

// merge3 merges one rendered file. new is nil when the file stays absent.
func merge3(p string, base []byte, inBase bool, ours []byte, oursExists bool, theirs []byte) (Action, string, []byte, []string) {
	switch {
	case !oursExists && !inBase:
		return ActionAdd, "", theirs, nil
	case !oursExists:
		if bytes.Equal(theirs, base) {
			return ActionKeep, "deleted in the repo and unchanged by the templates: stays deleted", nil, nil
		}
		return ActionAdd, "deleted in the repo, but the templates changed it: restored", theirs, nil
	case bytes.Equal(ours, theirs):
		return ActionUnchanged, "", ours, nil
	case inBase && bytes.Equal(ours, base):
		return ActionUpdate, "", theirs, nil
	case inBase && bytes.Equal(theirs, base):
		return ActionKeep, "edited in the repo: kept", ours, nil
	}
	if !inBase {
		base = nil // not rendered by hl before: everything differing conflicts
	}
	r := merge.Merge(base, ours, theirs, merge.Options{OursLabel: p + " (repo)", BaseLabel: p + " (last render)", TheirsLabel: p + " (new render)"})
	if r.Clean {
		return ActionUpdate, "merged edits in the repo with template changes", r.Merged, nil
	}
	hunks := make([]string, len(r.Conflicts))
	for i, c := range r.Conflicts {
		hunks[i] = c.Format(p)
	}
	note := fmt.Sprintf("%d conflicting hunks", len(r.Conflicts))
	if !inBase {
		note = "exists but was not rendered by hl; " + note
	}
	return ActionConflict, note, r.Merged, hunks
}
