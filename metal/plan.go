package metal

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// RolloutPlan is what a metal change means for the nodes: which ones must
// be reinstalled, in which order, and why.
type RolloutPlan struct {
	// OS and K3s are the new pins; OldOS/OldK3s the base's.
	OS     OSRef  `json:"os"`
	OldOS  OSRef  `json:"oldOS"`
	K3s    string `json:"k3s"`
	OldK3s string `json:"oldK3s"`
	// Nodes to reinstall, in rollout order.
	Nodes []PlannedNode `json:"nodes"`
	// Notes explain what the rollout leaves alone and why.
	Notes []string `json:"notes,omitempty"`
}

// PlannedNode is one node to reinstall.
type PlannedNode struct {
	Node
	Reasons []string `json:"reasons"`
}

// k3sMarker replaces the k3s version when comparing node files, so a
// k3s-only bump does not count as an install change.
const k3sMarker = "@@K3S_VERSION@@"

// PlanRollout compares the metal/ trees of the base and the new revision.
// A node is reinstalled when the pinned OS image, its install files
// (preseed or kickstart, post-install, k3s config, kube-vip, boot script)
// or its index entry changed. A change of the k3s version alone is left to
// the system-upgrade-controller Plans. Servers go first (the control plane
// must not be older than the kubelets), then agents, each in hl.yaml
// order. A node the base did not have is not reinstalled: it installs on
// its first PXE boot.
func PlanRollout(base, head Tree) (*RolloutPlan, error) {
	idx, err := head.Index()
	if err != nil {
		return nil, fmt.Errorf("new revision: %w", err)
	}
	pin, err := head.OS()
	if err != nil {
		return nil, fmt.Errorf("new revision: %w", err)
	}
	plan := &RolloutPlan{OS: pin.Ref(), K3s: idx.K3s}
	var oldIdx *Index
	var oldPin *OSPin
	if _, ok := base[IndexFile]; ok {
		if oldIdx, err = base.Index(); err != nil {
			return nil, fmt.Errorf("base revision: %w", err)
		}
		if oldPin, err = base.OS(); err != nil {
			return nil, fmt.Errorf("base revision: %w", err)
		}
		plan.OldOS, plan.OldK3s = oldPin.Ref(), oldIdx.K3s
	} else {
		plan.Notes = append(plan.Notes, "the base revision has no metal/ index: nothing to reinstall, new nodes install on their first PXE boot")
		return plan, nil
	}
	osReason := ""
	switch {
	case oldPin.Ref() != pin.Ref():
		osReason = fmt.Sprintf("OS %s → %s", oldPin.Ref(), pin.Ref())
	case oldPin.Kernel != pin.Kernel || oldPin.Initrd != pin.Initrd:
		osReason = fmt.Sprintf("%s netboot image re-pinned (kernel %s → %s, initrd %s → %s)", pin.Ref(),
			short(oldPin.Kernel.SHA256), short(pin.Kernel.SHA256), short(oldPin.Initrd.SHA256), short(pin.Initrd.SHA256))
	case oldPin.Repo != pin.Repo:
		osReason = fmt.Sprintf("%s package mirror %s → %s", pin.Ref(), oldPin.Repo, pin.Repo)
	}
	k3sOnly := []string{}
	var servers, agents []PlannedNode
	for _, n := range idx.Nodes {
		old, ok := oldIdx.ByName(n.Name)
		if !ok {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s is new: it installs on its first PXE boot", n.Name))
			continue
		}
		var reasons []string
		if osReason != "" {
			reasons = append(reasons, osReason)
		}
		if old.MAC != n.MAC || old.IP != n.IP || old.Role != n.Role || old.FirstServer != n.FirstServer {
			reasons = append(reasons, fmt.Sprintf("node entry changed (%s)", entryDiff(old, n)))
		}
		changed, onlyK3s := fileChanges(base.NodeFiles(n.Name), head.NodeFiles(n.Name), oldIdx.K3s, idx.K3s)
		if len(changed) > 0 {
			reasons = append(reasons, "install files changed: "+strings.Join(changed, ", "))
		}
		if len(reasons) == 0 {
			if onlyK3s {
				k3sOnly = append(k3sOnly, n.Name)
			}
			continue
		}
		p := PlannedNode{Node: n, Reasons: reasons}
		if n.Role == RoleServer {
			servers = append(servers, p)
		} else {
			agents = append(agents, p)
		}
	}
	plan.Nodes = append(servers, agents...)
	if len(k3sOnly) > 0 {
		plan.Notes = append(plan.Notes, fmt.Sprintf("k3s %s → %s on %s: left to the system-upgrade-controller Plans (no reinstall)", oldIdx.K3s, idx.K3s, strings.Join(k3sOnly, ", ")))
	}
	for _, o := range oldIdx.Nodes {
		if _, ok := idx.ByName(o.Name); !ok {
			plan.Notes = append(plan.Notes, fmt.Sprintf("%s was removed from metal/nodes.yaml: not touched (drain and delete it yourself)", o.Name))
		}
	}
	return plan, nil
}

// fileChanges lists the node files that differ once the k3s version is
// masked, and reports whether anything differed only by the k3s version.
func fileChanges(old, new map[string][]byte, oldK3s, newK3s string) (changed []string, onlyK3s bool) {
	names := map[string]bool{}
	for k := range old {
		names[k] = true
	}
	for k := range new {
		names[k] = true
	}
	for _, f := range sortedKeys(names) {
		a, inOld := old[f]
		b, inNew := new[f]
		switch {
		case !inOld:
			changed = append(changed, f+" (added)")
		case !inNew:
			changed = append(changed, f+" (removed)")
		case bytes.Equal(a, b):
		case bytes.Equal(mask(a, oldK3s), mask(b, newK3s)):
			onlyK3s = true
		default:
			changed = append(changed, f)
		}
	}
	return changed, onlyK3s
}

func mask(b []byte, version string) []byte {
	if version == "" {
		return b
	}
	return bytes.ReplaceAll(b, []byte(version), []byte(k3sMarker))
}

func entryDiff(a, b Node) string {
	var d []string
	if a.MAC != b.MAC {
		d = append(d, "mac "+a.MAC+" → "+b.MAC)
	}
	if a.IP != b.IP {
		d = append(d, "ip "+a.IP+" → "+b.IP)
	}
	if a.Role != b.Role {
		d = append(d, "role "+a.Role+" → "+b.Role)
	}
	if a.FirstServer != b.FirstServer {
		d = append(d, "first server")
	}
	return strings.Join(d, ", ")
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	if sum == "" {
		return "(none)"
	}
	return sum
}

// Names lists the planned nodes in order.
func (p *RolloutPlan) Names() []string {
	out := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		out[i] = n.Name
	}
	return out
}

// Contains reports whether the plan reinstalls the named node.
func (p *RolloutPlan) Contains(name string) bool { return slices.Contains(p.Names(), name) }
