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
	// StatusInstall: the node is to be installed. Its install window is
	// open (Window set), or opens when it PXE-boots from its address (a
	// node the state has never seen installed).
	StatusInstall = "install"
	// StatusInstalled: the installer called back; PXE boots the local disk.
	StatusInstalled = "installed"
	// StatusExpired: an install window closed without a callback; PXE
	// boots the local disk until hl metal reprovision opens a new one.
	StatusExpired = "expired"
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
	// Window is the open install window (nil when none is open).
	Window *Window `json:"window,omitempty"`
	// Callback is the callback token that recorded the last install (its
	// hash): a retry of that callback is answered as recorded.
	Callback *Spent `json:"callback,omitempty"`
}

// State is the state file: node states by normalised MAC.
type State struct {
	Version int                   `json:"version"`
	Nodes   map[string]*NodeState `json:"nodes"`
}

// Node returns the state of mac, the default (install, no window yet)
// when unknown.
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

// Effective is the node's status at now: an install whose window has run
// out counts as expired even before a request recorded it.
func (n NodeState) Effective(now time.Time) string {
	if n.Status == StatusInstall && n.Window != nil && !now.Before(n.Window.ExpiresAt) {
		return StatusExpired
	}
	if n.Status == "" {
		return StatusInstall
	}
	return n.Status
}

// expire closes a window that has run out; it reports whether it did.
func (n *NodeState) expire(now time.Time) bool {
	if n.Effective(now) != StatusExpired || n.Status == StatusExpired {
		return false
	}
	n.Status, n.Window = StatusExpired, nil
	return true
}

// StateFile is the JSON state file, shared by the server and the CLI on
// the same host: every change is read-modify-write under an exclusive
// lock and lands atomically (rename), so a crash never leaves half a file.
// It holds token hashes only, and is written 0600 all the same.
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

// Update applies fn to the state under the lock and writes the result;
// nothing is written when fn fails.
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

// MarkReprovision marks mac for reinstall and opens its install window
// now, for the given length: the node must PXE-boot and call back within
// it. A window still open is replaced (its tokens die with it).
func (f StateFile) MarkReprovision(mac, name string, rejoin bool, now time.Time, length time.Duration) error {
	return f.Update(func(s *State) error {
		n := s.ensure(mac, name)
		n.Status, n.Rejoin, n.ReprovisionAt = StatusInstall, rejoin, now.UTC()
		n.Window = openWindow(OpenedReprovision, now, length)
		return nil
	})
}
