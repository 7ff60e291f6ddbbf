package metal

import (
	"fmt"
	"net/url"
	"time"
)

// ListenAddr is where hl metal serve listens when not told: the port of
// the server URL metal/nodes.yaml gives the nodes, on every address.
func ListenAddr(dir string) (string, error) {
	idx, err := LoadIndex(dir)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(idx.Server)
	if err != nil || u.Port() == "" {
		return "", fmt.Errorf("%s: server %q has no port; pass --listen", IndexFile, idx.Server)
	}
	return ":" + u.Port(), nil
}

// NewProvisioner is the API of a running hl metal serve at server
// (authenticated with token; the server's own window length applies), or
// the local state file when server is "" (windows of the given length).
func NewProvisioner(dir, server, token string, sf StateFile, window time.Duration) (Provisioner, error) {
	if server == "" {
		return &LocalProvisioner{Dir: dir, State: sf, InstallWindow: window}, nil
	}
	if token == "" {
		return nil, fmt.Errorf("no API token for %s", server)
	}
	return &APIClient{BaseURL: server, Token: token}, nil
}

// RolloutInput says which change a rollout is about: the repo at Dir
// against the revision Base of its git history, or against the checkout
// at BaseDir.
type RolloutInput struct {
	Dir, Base, BaseDir string
}

// PreparedRollout is a planned rollout with what it was planned from.
type PreparedRollout struct {
	Plan *RolloutPlan
	// Index is the head's metal/nodes.yaml.
	Index *Index
	// BaseName names what the head was compared with (a revision or a
	// folder), for the printed plan.
	BaseName string
}

// PrepareRollout reads metal/ of the head and of the base and plans the
// reinstalls.
func PrepareRollout(in RolloutInput) (*PreparedRollout, error) {
	head, err := ReadTree(in.Dir)
	if err != nil {
		return nil, err
	}
	var base Tree
	name := in.Base
	if in.BaseDir != "" {
		name = in.BaseDir
		base, err = ReadTree(in.BaseDir)
	} else {
		base, err = ReadTreeAt(in.Dir, in.Base)
	}
	if err != nil {
		return nil, err
	}
	plan, err := PlanRollout(base, head)
	if err != nil {
		return nil, err
	}
	idx, err := head.Index()
	if err != nil {
		return nil, err
	}
	return &PreparedRollout{Plan: plan, Index: idx, BaseName: name}, nil
}

// Server is the hl metal serve a rollout talks to: override, else the
// server nodes.yaml names, unless a local state file was asked for.
func (p *PreparedRollout) Server(override string, localState bool) string {
	if override != "" || localState {
		return override
	}
	return p.Index.Server
}

// WakeAddr is the Wake-on-LAN destination: override, else the broadcast
// address of the node CIDR.
func (p *PreparedRollout) WakeAddr(override string) (string, error) {
	if override != "" {
		return override, nil
	}
	return BroadcastAddr(p.Index.NodeCIDR)
}
