package e2e

import (
	"fmt"
	"time"

	"hl.dev/hl/secrets"
)

// MakeDue makes one secret of a freshly rendered repo due for rotation,
// honestly: the first generated, rotatable secret (no copy) that match
// accepts is rotated by secrets.RotateSecret, the bot's own rotation, with
// a clock daysAgo days back, so its hl.dev/generated-at is that old. It
// fails when any secret is due before, or any other one after. It returns
// the secret as scanned before the rotation.
func MakeDue(dir string, daysAgo int, match func(secrets.Secret) bool) (secrets.Secret, error) {
	now := time.Now()
	all, err := secrets.Scan(dir, now)
	if err != nil {
		return secrets.Secret{}, err
	}
	var pick *secrets.Secret
	for i, s := range all {
		if s.Generated && s.Due {
			return secrets.Secret{}, fmt.Errorf("%s is due right after the render", s.File)
		}
		if pick == nil && s.Generated && s.Rotatable && s.CopyOf == "" && match(s) {
			pick = &all[i]
		}
	}
	if pick == nil {
		return secrets.Secret{}, fmt.Errorf("no generated, rotatable secret matches")
	}
	old := now.AddDate(0, 0, -daysAgo)
	if _, err := secrets.RotateSecret(dir, *pick, all, secrets.Options{Now: func() time.Time { return old }}); err != nil {
		return secrets.Secret{}, err
	}
	after, err := secrets.Scan(dir, now)
	if err != nil {
		return secrets.Secret{}, err
	}
	var due []string
	for _, s := range after {
		if s.Generated && s.Due {
			due = append(due, s.File)
		}
	}
	if len(due) != 1 || due[0] != pick.File {
		return secrets.Secret{}, fmt.Errorf("due after the rotation %d days back: %v, want only %s", daysAgo, due, pick.File)
	}
	return *pick, nil
}
