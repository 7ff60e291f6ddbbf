package metal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// No Kubernetes cluster runs in these tests: the cluster is client-go's
// fake clientset, with an eviction reactor that plays the API server's
// PodDisruptionBudget check. SSH is a real sshd on loopback.

const (
	oldK3s = "v1.33.5+k3s1"
	newK3s = "v1.33.6+k3s1"
)

var debian12 = OSRef{"debian", "12"}

// fakeProvisioner is hl metal serve's state in memory.
type fakeProvisioner struct {
	mu       sync.Mutex
	status   map[string]string
	hostKeys map[string]string
	calls    []string
}

func (p *fakeProvisioner) Reprovision(_ context.Context, name string, rejoin bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status[name] = StatusInstall
	p.calls = append(p.calls, fmt.Sprintf("%s rejoin=%v", name, rejoin))
	return nil
}

func (p *fakeProvisioner) Nodes(context.Context) ([]NodeStatus, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []NodeStatus
	for name, st := range p.status {
		out = append(out, NodeStatus{Name: name, Status: st, HostKey: p.hostKeys[name]})
	}
	return out, nil
}

func (p *fakeProvisioner) installed(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status[name] = StatusInstalled
}

func kubeNode(name string, ready bool, boot string) *corev1.Node {
	st := corev1.ConditionTrue
	if !ready {
		st = corev1.ConditionUnknown
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}},
			NodeInfo:   corev1.NodeSystemInfo{BootID: boot, KubeletVersion: oldK3s, OSImage: "Debian GNU/Linux 12 (bookworm)"},
		},
	}
}

func pod(name, node, owner string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: owner, Name: name + "-owner", Controller: ptr(true)}}},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

func ptr[T any](v T) *T { return &v }

// cluster is the fake cluster of a rollout test.
type cluster struct {
	*fake.Clientset
	mu        sync.Mutex
	evictions map[string]int
	// refuse makes the PDB refuse that many evictions of guarded pods
	// (-1: always).
	refuse int
}

func newCluster(t *testing.T, objs ...runtime.Object) *cluster {
	c := &cluster{Clientset: fake.NewClientset(objs...), evictions: map[string]int{}}
	c.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "v1",
		APIResources: []metav1.APIResource{{Name: "pods/eviction", Kind: "Eviction", Group: "policy", Version: "v1"}},
	}}
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		p, err := c.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), ev.Namespace, ev.Name)
		if err != nil {
			return true, nil, err
		}
		c.mu.Lock()
		c.evictions[ev.Name]++
		n := c.evictions[ev.Name]
		c.mu.Unlock()
		if p.(*corev1.Pod).Labels["pdb"] == "guarded" && (c.refuse < 0 || n <= c.refuse) {
			return true, nil, apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 1)
		}
		return true, nil, c.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ev.Namespace, ev.Name)
	})
	// The fake clientset ignores field selectors; drain lists a node's pods
	// with spec.nodeName=<node>.
	c.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		sel := a.(k8stesting.ListAction).GetListRestrictions().Fields
		if sel == nil || sel.Empty() {
			return false, nil, nil
		}
		obj, err := c.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), a.GetNamespace())
		if err != nil {
			return true, nil, err
		}
		list := obj.(*corev1.PodList)
		var keep []corev1.Pod
		for _, p := range list.Items {
			if sel.Matches(fields.Set{"spec.nodeName": p.Spec.NodeName}) {
				keep = append(keep, p)
			}
		}
		list.Items = keep
		return true, list, nil
	})
	return c
}

// comeBack plays a reinstalled node rejoining: the installer calls back,
// k3s registers the node (a fresh Node object for servers) with a new boot
// ID at the new version.
func comeBack(t *testing.T, c *cluster, prov *fakeProvisioner, name string) {
	prov.installed(name)
	ctx := context.Background()
	n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		n = kubeNode(name, true, "boot-new")
		n.Status.NodeInfo.KubeletVersion = newK3s
		if _, err := c.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Error(err)
		}
		return
	}
	if err != nil {
		t.Error(err)
		return
	}
	n.Status = kubeNode(name, true, "boot-new").Status
	n.Status.NodeInfo.KubeletVersion = newK3s
	if _, err := c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Error(err)
	}
}

func testPlan() *RolloutPlan {
	return &RolloutPlan{OS: debian12, OldOS: debian12, K3s: newK3s, OldK3s: oldK3s, Nodes: []PlannedNode{
		{Node: Node{Name: "srv1", Role: RoleServer, MAC: "52:54:00:00:00:01", IP: "127.0.0.1", FirstServer: true}, Reasons: []string{"test"}},
		{Node: Node{Name: "ag1", Role: RoleAgent, MAC: "52:54:00:00:00:02", IP: "127.0.0.1"}, Reasons: []string{"test"}},
		{Node: Node{Name: "ag2", Role: RoleAgent, MAC: "52:54:00:00:00:03", IP: "127.0.0.1"}, Reasons: []string{"test"}},
	}}
}

type stepLog struct {
	mu    sync.Mutex
	steps map[string][]string
	order []string
}

func (s *stepLog) add(node, step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.steps == nil {
		s.steps = map[string][]string{}
	}
	s.steps[node] = append(s.steps[node], step)
	s.order = append(s.order, node+":"+step)
}

func (s *stepLog) of(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.steps[node], " ")
}

func rolloutFixture(t *testing.T, sshd *testSSHD, hostKeys map[string]string) (*cluster, *fakeProvisioner, *stepLog, RolloutOptions) {
	c := newCluster(t,
		kubeNode("srv1", true, "boot-srv1"), kubeNode("ag1", true, "boot-ag1"), kubeNode("ag2", true, "boot-ag2"),
		pod("web-1", "ag1", "ReplicaSet", map[string]string{"pdb": "guarded"}),
		pod("log-agent-ag1", "ag1", "DaemonSet", nil),
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "log-agent-ag1-owner", Namespace: "apps"}},
		pod("web-2", "ag2", "ReplicaSet", nil),
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ag1.node-password.k3s", Namespace: "kube-system"}},
	)
	prov := &fakeProvisioner{status: map[string]string{"srv1": StatusInstalled, "ag1": StatusInstalled, "ag2": StatusInstalled}, hostKeys: hostKeys}
	steps := &stepLog{}
	o := RolloutOptions{
		Plan: testPlan(), Kube: c, Provisioner: prov,
		Rebooter:     &SSHRebooter{SSH: SSH{User: "root", Signer: sshd.Signer, Addr: func(Node) string { return sshd.Addr }, Timeout: 10 * time.Second}, Command: "reboot-now"},
		DrainTimeout: 5 * time.Second, ReadyTimeout: 5 * time.Second, Poll: 10 * time.Millisecond, EvictRetry: 10 * time.Millisecond,
		OnStep: func(node, step string) {
			steps.add(node, step)
			if step == StepReady {
				comeBack(t, c, prov, node)
			}
		},
	}
	return c, prov, steps, o
}

const fullSteps = "preflight cordon drain forget mark-reinstall reboot ready uncordon"

func TestRolloutOneNodeAtATime(t *testing.T) {
	sshd := startSSHD(t)
	keys := map[string]string{"srv1": sshd.HostKey, "ag1": sshd.HostKey, "ag2": sshd.HostKey}
	c, prov, steps, o := rolloutFixture(t, sshd, keys)
	c.refuse = 2 // the PDB refuses two evictions, then the replacement is up
	done, err := Rollout(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(done, ",") != "srv1,ag1,ag2" {
		t.Fatalf("done %v", done)
	}
	for _, n := range []string{"srv1", "ag1", "ag2"} {
		if got := steps.of(n); got != fullSteps {
			t.Errorf("%s steps: %s", n, got)
		}
	}
	// Strictly one node after the other.
	want := []string{}
	for _, n := range []string{"srv1", "ag1", "ag2"} {
		for _, s := range strings.Fields(fullSteps) {
			want = append(want, n+":"+s)
		}
	}
	if strings.Join(steps.order, " ") != strings.Join(want, " ") {
		t.Errorf("order:\n%v", steps.order)
	}
	// Three real SSH sessions ran the reboot command.
	if got := sshd.Commands(t); len(got) != 3 || got[0] != "reboot-now" {
		t.Errorf("sshd ran %v", got)
	}
	// Eviction, not deletion: the guarded pod was retried past the PDB;
	// the DaemonSet pod stays.
	if c.evictions["web-1"] != 3 || c.evictions["web-2"] != 1 {
		t.Errorf("evictions %v", c.evictions)
	}
	ctx := context.Background()
	if _, err := c.CoreV1().Pods("apps").Get(ctx, "log-agent-ag1", metav1.GetOptions{}); err != nil {
		t.Errorf("DaemonSet pod evicted: %v", err)
	}
	if _, err := c.CoreV1().Secrets("kube-system").Get(ctx, "ag1.node-password.k3s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node password kept: %v", err)
	}
	for _, n := range []string{"srv1", "ag1", "ag2"} {
		kn, err := c.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil || kn.Spec.Unschedulable || kn.Status.NodeInfo.KubeletVersion != newK3s {
			t.Errorf("%s after rollout: %v %+v", n, err, kn)
		}
	}
	// ag1 was cordoned before its first eviction.
	cordoned, evicted := -1, -1
	for i, a := range c.Actions() {
		if a.Matches("patch", "nodes") && a.(k8stesting.PatchAction).GetName() == "ag1" && cordoned < 0 {
			cordoned = i
		}
		if a.Matches("create", "pods") && a.GetSubresource() == "eviction" && evicted < 0 {
			if a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction).Name == "web-1" {
				evicted = i
			}
		}
	}
	if cordoned < 0 || evicted < 0 || cordoned > evicted {
		t.Errorf("cordon at action %d, first eviction at %d", cordoned, evicted)
	}
	if strings.Join(prov.calls, ",") != "srv1 rejoin=false,ag1 rejoin=false,ag2 rejoin=false" {
		t.Errorf("reprovision calls %v", prov.calls)
	}
}

func TestRolloutStopsAtFirstFailure(t *testing.T) {
	sshd := startSSHD(t)
	// ag1's recorded host key is not the one its sshd presents: the
	// reboot is refused, and the rollout stops there.
	other := startSSHD(t)
	keys := map[string]string{"srv1": sshd.HostKey, "ag1": other.HostKey, "ag2": sshd.HostKey}
	c, prov, steps, o := rolloutFixture(t, sshd, keys)
	done, err := Rollout(context.Background(), o)
	var re *RolloutError
	if !errors.As(err, &re) || re.Node != "ag1" || re.Step != StepReboot || strings.Join(re.Untouched, ",") != "ag2" {
		t.Fatalf("err %v", err)
	}
	if strings.Join(done, ",") != "srv1" {
		t.Errorf("done %v", done)
	}
	if got := steps.of("ag1"); got != "preflight cordon drain forget mark-reinstall reboot" {
		t.Errorf("ag1 steps %s", got)
	}
	if got := steps.of("ag2"); got != "" {
		t.Errorf("ag2 was touched: %s", got)
	}
	if got := sshd.Commands(t); len(got) != 1 {
		t.Errorf("reboots %v", got)
	}
	ctx := context.Background()
	ag2, _ := c.CoreV1().Nodes().Get(ctx, "ag2", metav1.GetOptions{})
	if ag2.Spec.Unschedulable {
		t.Error("ag2 cordoned")
	}
	if _, err := c.CoreV1().Pods("apps").Get(ctx, "web-2", metav1.GetOptions{}); err != nil {
		t.Errorf("ag2's pod evicted: %v", err)
	}
	ag1, _ := c.CoreV1().Nodes().Get(ctx, "ag1", metav1.GetOptions{})
	if !ag1.Spec.Unschedulable {
		t.Error("the failed node must stay cordoned")
	}
	if strings.Join(prov.calls, ",") != "srv1 rejoin=false,ag1 rejoin=false" {
		t.Errorf("reprovision calls %v", prov.calls)
	}
}

func TestRolloutDrainTimeoutStops(t *testing.T) {
	sshd := startSSHD(t)
	keys := map[string]string{"srv1": sshd.HostKey, "ag1": sshd.HostKey, "ag2": sshd.HostKey}
	c, prov, steps, o := rolloutFixture(t, sshd, keys)
	c.refuse = -1 // the PDB never allows the eviction
	o.DrainTimeout = 300 * time.Millisecond
	_, err := Rollout(context.Background(), o)
	var re *RolloutError
	if !errors.As(err, &re) || re.Node != "ag1" || re.Step != StepDrain {
		t.Fatalf("err %v", err)
	}
	if got := steps.of("ag1"); got != "preflight cordon drain" {
		t.Errorf("ag1 steps %s", got)
	}
	if strings.Join(prov.calls, ",") != "srv1 rejoin=false" {
		t.Errorf("ag1 must not be marked for reinstall: %v", prov.calls)
	}
}

func TestRolloutPreflightAndWakeOnLAN(t *testing.T) {
	sshd := startSSHD(t)
	keys := map[string]string{"srv1": sshd.HostKey, "ag1": sshd.HostKey, "ag2": sshd.HostKey}

	// ag2 is down: nothing else may be taken down.
	c, prov, _, o := rolloutFixture(t, sshd, keys)
	n, _ := c.CoreV1().Nodes().Get(context.Background(), "ag2", metav1.GetOptions{})
	n.Status.Conditions[0].Status = corev1.ConditionUnknown
	c.CoreV1().Nodes().Update(context.Background(), n, metav1.UpdateOptions{})
	_, err := Rollout(context.Background(), o)
	var re *RolloutError
	if !errors.As(err, &re) || re.Node != "srv1" || re.Step != StepPreflight || !strings.Contains(err.Error(), "ag2") || len(prov.calls) != 0 {
		t.Fatalf("err %v, calls %v", err, prov.calls)
	}

	// A plan of only the powered-off ag2 wakes it instead of SSH.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	o.Plan = &RolloutPlan{OS: debian12, K3s: newK3s, Nodes: []PlannedNode{testPlan().Nodes[2]}}
	o.Wake = func(n Node) error { return SendWakeOnLAN(n.MAC, pc.LocalAddr().String()) }
	steps := &stepLog{}
	prev := o.OnStep
	o.OnStep = func(node, step string) { steps.add(node, step); prev(node, step) }
	if _, err := Rollout(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if got := steps.of("ag2"); got != "preflight cordon drain forget mark-reinstall wake-on-lan ready uncordon" {
		t.Errorf("steps %s", got)
	}
	buf := make([]byte, 200)
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	nr, _, err := pc.ReadFrom(buf)
	want, _ := MagicPacket("52:54:00:00:00:03")
	if err != nil || string(buf[:nr]) != string(want) {
		t.Errorf("magic packet: %v %x", err, buf[:nr])
	}
	if got := sshd.Commands(t); len(got) != 0 {
		t.Errorf("ssh used: %v", got)
	}
}

func TestBroadcastAddr(t *testing.T) {
	for in, want := range map[string]string{"172.16.10.0/24": "172.16.10.255:9", "10.0.0.0/8": "10.255.255.255:9", "192.168.1.64/26": "192.168.1.127:9"} {
		if got, err := BroadcastAddr(in); err != nil || got != want {
			t.Errorf("%s: %s %v", in, got, err)
		}
	}
}
