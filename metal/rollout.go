package metal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"
)

// Rollout steps, reported through RolloutOptions.OnStep in this order.
const (
	StepCordon    = "cordon"
	StepDrain     = "drain"
	StepForget    = "forget"
	StepMark      = "mark-reinstall"
	StepReboot    = "reboot"
	StepWake      = "wake-on-lan"
	StepReady     = "ready"
	StepUncordon  = "uncordon"
	StepPreflight = "preflight"
)

// Provisioner marks nodes for reinstall and reports install state: the
// API of hl metal serve, or its state file on the same host.
type Provisioner interface {
	Reprovision(ctx context.Context, name string, rejoin bool) error
	Nodes(ctx context.Context) ([]NodeStatus, error)
}

// Rebooter restarts a running node (SSH systemctl reboot).
type Rebooter interface {
	Reboot(ctx context.Context, n Node, hostKey string) error
}

// RolloutOptions configure the execution of a plan.
type RolloutOptions struct {
	Plan        *RolloutPlan
	Kube        kubernetes.Interface
	Provisioner Provisioner
	Rebooter    Rebooter
	// Wake sends Wake-on-LAN to a node that is powered off (not Ready).
	Wake func(n Node) error
	// DrainTimeout bounds cordon+drain of one node (evictions retry while
	// a PodDisruptionBudget forbids them); ReadyTimeout bounds the
	// reinstall until the node is Ready again.
	DrainTimeout time.Duration
	ReadyTimeout time.Duration
	// Poll is the interval of the readiness checks (default 10s).
	Poll time.Duration
	// EvictRetry is the pause between evictions a PDB refused (default 5s).
	EvictRetry time.Duration
	Out        io.Writer
	// OnStep is called when a step of a node starts.
	OnStep func(node, step string)
}

// RolloutError says which node and step failed; the nodes after it were
// not touched.
type RolloutError struct {
	Node string
	Step string
	Err  error
	// Done lists the nodes finished before the failure.
	Done []string
	// Untouched lists the nodes the rollout did not start.
	Untouched []string
}

func (e *RolloutError) Error() string {
	msg := fmt.Sprintf("%s: %s: %v", e.Node, e.Step, e.Err)
	if len(e.Untouched) > 0 {
		msg += fmt.Sprintf(" (stopped; not touched: %s)", strings.Join(e.Untouched, ", "))
	}
	return msg
}

func (e *RolloutError) Unwrap() error { return e.Err }

// Rollout reinstalls the planned nodes one at a time: check the other
// nodes are Ready, cordon, drain through the eviction API (PDBs respected,
// bounded by DrainTimeout), forget the node's k3s identity, mark it for
// reinstall, reboot it (SSH, or Wake-on-LAN when it is off), wait until it
// called back installed and is Ready with a new boot ID at the expected
// k3s and OS versions, uncordon. It stops at the first failure and leaves
// the remaining nodes untouched (the failed node stays cordoned).
func Rollout(ctx context.Context, o RolloutOptions) ([]string, error) {
	if o.Poll == 0 {
		o.Poll = 10 * time.Second
	}
	if o.EvictRetry == 0 {
		o.EvictRetry = 5 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 10 * time.Minute
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 45 * time.Minute
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	var done []string
	for i, p := range o.Plan.Nodes {
		if step, err := o.node(ctx, p); err != nil {
			return done, &RolloutError{Node: p.Name, Step: step, Err: err, Done: done, Untouched: o.Plan.Names()[i+1:]}
		}
		done = append(done, p.Name)
	}
	return done, nil
}

func (o *RolloutOptions) step(node, step, format string, args ...any) {
	if o.OnStep != nil {
		o.OnStep(node, step)
	}
	fmt.Fprintf(o.Out, "%s: %s: %s\n", node, step, fmt.Sprintf(format, args...))
}

func (o *RolloutOptions) node(ctx context.Context, p PlannedNode) (string, error) {
	nodes := o.Kube.CoreV1().Nodes()
	o.step(p.Name, StepPreflight, "checking the other nodes are Ready")
	if err := o.othersReady(ctx, p.Name); err != nil {
		return StepPreflight, err
	}
	kn, err := nodes.Get(ctx, p.Name, metav1.GetOptions{})
	present := err == nil
	if err != nil && !apierrors.IsNotFound(err) {
		return StepPreflight, err
	}
	wasReady, oldBoot := false, ""
	if present {
		wasReady, oldBoot = isReady(kn), kn.Status.NodeInfo.BootID
	}
	helper := &drain.Helper{
		Ctx: ctx, Client: o.Kube, Force: false, GracePeriodSeconds: -1,
		IgnoreAllDaemonSets: true, DeleteEmptyDirData: true, Timeout: o.DrainTimeout,
		EvictErrorRetryDelay: o.EvictRetry,
		// A NotReady node's pods never finish terminating: do not wait for
		// those longer than a minute (kubectl drain's approach).
		SkipWaitForDeleteTimeoutSeconds: 60,
		Out:                             o.Out, ErrOut: o.Out,
	}
	if present {
		o.step(p.Name, StepCordon, "marking unschedulable")
		if err := drain.RunCordonOrUncordon(helper, kn, true); err != nil {
			return StepCordon, err
		}
		o.step(p.Name, StepDrain, "evicting pods (PodDisruptionBudgets respected, timeout %s)", o.DrainTimeout)
		if err := drainNode(helper, p.Name); err != nil {
			return StepDrain, err
		}
	}
	o.step(p.Name, StepForget, "removing the node's k3s password%s", map[bool]string{true: " and Node object (its etcd member goes with it)", false: ""}[p.Role == RoleServer])
	if err := o.forget(ctx, p); err != nil {
		return StepForget, err
	}
	rejoin := p.FirstServer && p.Rejoin != ""
	o.step(p.Name, StepMark, "next PXE boot installs %s%s", o.Plan.OS, map[bool]string{true: " (joining the running cluster)", false: ""}[rejoin])
	if err := o.Provisioner.Reprovision(ctx, p.Name, rejoin); err != nil {
		return StepMark, err
	}
	if wasReady {
		o.step(p.Name, StepReboot, "systemctl reboot over SSH")
		if err := o.Rebooter.Reboot(ctx, p.Node, o.hostKey(ctx, p.Name)); err != nil {
			return StepReboot, err
		}
	} else {
		if o.Wake == nil {
			return StepWake, errors.New("the node is not Ready (powered off?) and no Wake-on-LAN sender is configured")
		}
		o.step(p.Name, StepWake, "node is not Ready: sending Wake-on-LAN to %s", p.MAC)
		if err := o.Wake(p.Node); err != nil {
			return StepWake, err
		}
	}
	o.step(p.Name, StepReady, "waiting for the install callback and Ready at k3s %s on %s (timeout %s)", o.Plan.K3s, o.Plan.OS, o.ReadyTimeout)
	kn, err = o.waitReady(ctx, p, oldBoot)
	if err != nil {
		return StepReady, err
	}
	o.step(p.Name, StepUncordon, "schedulable again")
	if err := drain.RunCordonOrUncordon(helper, kn, false); err != nil {
		return StepUncordon, err
	}
	return "", nil
}

func drainNode(h *drain.Helper, name string) error {
	list, errs := h.GetPodsForDeletion(name)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Eviction only: deleting pods would bypass PodDisruptionBudgets.
	if gv, err := drain.CheckEvictionSupport(h.Client); err != nil {
		return err
	} else if gv.Empty() {
		return errors.New("the API server does not offer the eviction API; refusing to delete pods past their PodDisruptionBudgets")
	}
	return h.DeleteOrEvictPods(list.Pods())
}

// forget removes what would stop the reinstalled node from rejoining: k3s'
// node password (a new install has a new one) and, for servers, the Node
// object, whose deletion makes k3s remove the old etcd member (the new
// install joins as a new one).
func (o *RolloutOptions) forget(ctx context.Context, p PlannedNode) error {
	err := o.Kube.CoreV1().Secrets("kube-system").Delete(ctx, p.Name+".node-password.k3s", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if p.Role == RoleServer {
		err := o.Kube.CoreV1().Nodes().Delete(ctx, p.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

func (o *RolloutOptions) hostKey(ctx context.Context, name string) string {
	sts, err := o.Provisioner.Nodes(ctx)
	if err != nil {
		return ""
	}
	for _, s := range sts {
		if s.Name == name {
			return s.HostKey
		}
	}
	return ""
}

// othersReady fails when a node of the index other than name is not Ready:
// never take a second node down while one is already out.
func (o *RolloutOptions) othersReady(ctx context.Context, name string) error {
	list, err := o.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var bad []string
	for i := range list.Items {
		n := &list.Items[i]
		if n.Name != name && !isReady(n) {
			bad = append(bad, n.Name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not Ready: %s; fix them before reinstalling %s", strings.Join(bad, ", "), name)
	}
	return nil
}

func (o *RolloutOptions) waitReady(ctx context.Context, p PlannedNode, oldBoot string) (*corev1.Node, error) {
	ctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	last := "no news yet"
	for {
		kn, why := o.readyNow(ctx, p, oldBoot)
		if why == "" {
			return kn, nil
		}
		last = why
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("not back after %s: %s", o.ReadyTimeout, last)
		case <-time.After(o.Poll):
		}
	}
}

// readyNow returns the node when it is back as expected, else why not.
func (o *RolloutOptions) readyNow(ctx context.Context, p PlannedNode, oldBoot string) (*corev1.Node, string) {
	sts, err := o.Provisioner.Nodes(ctx)
	if err != nil {
		return nil, "hl metal serve: " + err.Error()
	}
	status := ""
	for _, s := range sts {
		if s.Name == p.Name {
			status = s.Status
		}
	}
	switch status {
	case StatusInstalled:
	case StatusExpired:
		return nil, "its install window closed without the installer's callback (did it PXE-boot? hl metal serve --install-timeout)"
	default:
		return nil, "the installer has not called back yet"
	}
	kn, err := o.Kube.CoreV1().Nodes().Get(ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		return nil, "node: " + err.Error()
	}
	info := kn.Status.NodeInfo
	switch {
	case oldBoot != "" && info.BootID == oldBoot:
		return nil, "still the boot from before the reinstall"
	case !isReady(kn):
		return nil, "not Ready"
	case info.KubeletVersion != o.Plan.K3s:
		return nil, fmt.Sprintf("kubelet %s, want %s", info.KubeletVersion, o.Plan.K3s)
	case !osMatches(info.OSImage, o.Plan.OS):
		return nil, fmt.Sprintf("OS %q, want %s", info.OSImage, o.Plan.OS)
	}
	return kn, ""
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// osMatches checks a node's reported OS image (/etc/os-release
// PRETTY_NAME) against the pinned OS.
func osMatches(image string, want OSRef) bool {
	switch want.Name {
	case "debian":
		return strings.HasPrefix(image, "Debian GNU/Linux "+want.Version+" ")
	}
	return strings.Contains(strings.ToLower(image), want.Name)
}
