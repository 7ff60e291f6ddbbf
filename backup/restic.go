package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Snapshot is one restic snapshot, as `restic snapshots --json` lists it.
type Snapshot struct {
	ID      string    `json:"id"`
	ShortID string    `json:"short_id"`
	Time    time.Time `json:"time"`
	Paths   []string  `json:"paths"`
}

// Snapshots lists the snapshots of the repository env names (the
// decrypted repository Secret), oldest first, with the restic binary at
// bin ("" is restic on PATH).
func Snapshots(ctx context.Context, bin string, env map[string]string) ([]Snapshot, error) {
	out, err := restic(ctx, bin, env, "snapshots", "--json")
	if err != nil {
		return nil, err
	}
	var snaps []Snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("restic snapshots --json: %w", err)
	}
	return snaps, nil
}

// FindSnapshot returns the snapshot whose id or short id is id (a unique
// prefix, as restic takes it) and whether a later one exists.
func FindSnapshot(snaps []Snapshot, id string) (Snapshot, error) {
	var found []Snapshot
	for _, s := range snaps {
		if id != "" && strings.HasPrefix(s.ID, id) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return Snapshot{}, fmt.Errorf("no snapshot %q in the repository (%d snapshots)", id, len(snaps))
	case 1:
		return found[0], nil
	}
	return Snapshot{}, fmt.Errorf("snapshot id %q is ambiguous: %d snapshots start with it", id, len(found))
}

// restic runs restic with the repository environment and returns stdout.
// Its error names the command and restic's own message, never the
// environment (it holds the repository password).
func restic(ctx context.Context, bin string, env map[string]string, args ...string) ([]byte, error) {
	if bin == "" {
		bin = "restic"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = environ(os.Environ(), env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("restic %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
