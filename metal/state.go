package metal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"hl.dev/hl/internal/fsutil"
)

// Install states of a node.
const (
	// StatusInstall: the next PXE boot installs the OS (the default for a
	// MAC the state has never seen).
	StatusInstall = "install"
	// StatusInstalled: the installer called back; PXE boots the local disk.
	StatusInstalled = "installed"
)

// NodeState is what the controller remembers about one MAC.
type NodeState struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Rejoin asks the next install of the first server to join the
	// running cluster instead of initialising a new one.
	Rejoin bool `json:"rejoin,omitempty"`
	// HostKey is the SSH host public key the installed system reported.
	HostKey       string    `json:"hostKey,omitempty"`
	InstalledAt   time.Time `json:"installedAt,omitzero"`
	ReprovisionAt time.Time `json:"reprovisionAt,omitzero"`
	// Installs counts completed installs.
	Installs int `json:"installs,omitempty"`
}

// State is the state file: node states by normalised MAC.
type State struct {
	Version int                   `json:"version"`
	Nodes   map[string]*NodeState `json:"nodes"`
}

// Node returns the state of mac, the default (install) when unknown.
func (s *State) Node(mac, name string) NodeState {
	if n, ok := s.Nodes[mac]; ok && n != nil {
		return *n
	}
	return NodeState{Name: name, Status: StatusInstall}
}

func (s *State) ensure(mac, name string) *NodeState {
	if s.Nodes == nil {
		s.Nodes = map[string]*NodeState{}
	}
	n, ok := s.Nodes[mac]
	if !ok || n == nil {
		n = &NodeState{Name: name, Status: StatusInstall}
		s.Nodes[mac] = n
	}
	n.Name = name
	return n
}

// StateFile is the JSON state file, shared by the server and the CLI on
// the same host: every change is read-modify-write under an exclusive
// lock and lands atomically (rename), so a crash never leaves half a file.
type StateFile struct {
	Path string
}

// Load reads the state (empty when the file does not exist yet).
func (f StateFile) Load() (*State, error) {
	unlock, err := lockFile(f.Path+".lock", false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return f.read()
}

func (f StateFile) read() (*State, error) {
	st := &State{Version: 1, Nodes: map[string]*NodeState{}}
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", f.Path, err)
	}
	if st.Nodes == nil {
		st.Nodes = map[string]*NodeState{}
	}
	return st, nil
}

// Update applies fn to the state under the lock and writes the result.
func (f StateFile) Update(fn func(*State) error) error {
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return err
	}
	unlock, err := lockFile(f.Path+".lock", true)
	if err != nil {
		return err
	}
	defer unlock()
	st, err := f.read()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(f.Path, append(b, '\n'), 0o600)
}

// MarkInstalled records a completed install of mac.
func (f StateFile) MarkInstalled(mac, name, hostKey string, now time.Time) error {
	return f.Update(func(s *State) error {
		n := s.ensure(mac, name)
		n.Status, n.Rejoin, n.InstalledAt = StatusInstalled, false, now.UTC()
		n.Installs++
		if hostKey != "" {
			n.HostKey = hostKey
		}
		return nil
	})
}

// MarkReprovision marks mac for reinstall on its next PXE boot.
func (f StateFile) MarkReprovision(mac, name string, rejoin bool, now time.Time) error {
	return f.Update(func(s *State) error {
		n := s.ensure(mac, name)
		n.Status, n.Rejoin, n.ReprovisionAt = StatusInstall, rejoin, now.UTC()
		return nil
	})
}
