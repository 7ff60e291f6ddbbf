package up

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"hl.dev/hl/bootstrap"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/fsutil"
	"hl.dev/hl/internal/kubeclient"
	"hl.dev/hl/metal"
)

// Options configure day one. The CLI fills them from its flags and its
// shared resolution (age identities, SSH key, tokens); tests fill the
// seams.
type Options struct {
	// Dir is the rendered repository; Homelab its hl.yaml.
	Dir     string
	Homelab *config.Homelab
	// Pull is hl metal images pull's options (Dir is set from Dir).
	Pull metal.PullOptions
	// Serve is hl metal serve's options (Dir is set from Dir): the nodes
	// step runs the server until every node has called back, and keeps
	// it running until Close (an installed node that reboots is told to
	// boot its disk).
	Serve metal.ServeOptions
	// Kubeconfig is the file the kubeconfig step writes (0600) and the
	// later steps use.
	Kubeconfig string
	// FetchKubeconfig returns the cluster's admin kubeconfig: the CLI's
	// is metal.Kubeconfig (over SSH, the host key pinned at install).
	FetchKubeconfig func(ctx context.Context) ([]byte, error)
	// Forge seeds a forge outside the cluster (hl bootstrap gitea; Dir is
	// set from Dir). Unused when the forge is the cluster's own Gitea:
	// the cluster step seeds that one.
	Forge bootstrap.Options
	// Cluster is hl bootstrap cluster's options (Dir and Kube are set
	// here; its own wait is off: the sync step waits).
	Cluster bootstrap.ClusterOptions
	// SyncTimeout bounds the wait for Argo CD (30 minutes when zero);
	// Poll is how often the nodes and Applications are looked at (2 s).
	SyncTimeout, Poll time.Duration
	// Log receives progress inside a step (a node that called back, the
	// Applications still syncing).
	Log io.Writer
}

// DayOne is the day-one run of one homelab: its steps and the PXE server
// the nodes step leaves running.
type DayOne struct {
	o Options

	mu     sync.Mutex
	stop   context.CancelFunc
	served chan error
	addr   string
}

// NewDayOne checks the options.
func NewDayOne(o Options) (*DayOne, error) {
	if o.Homelab == nil {
		return nil, errors.New("hl up: no hl.yaml")
	}
	if o.Kubeconfig == "" {
		return nil, errors.New("hl up: no kubeconfig file to write")
	}
	if o.SyncTimeout <= 0 {
		o.SyncTimeout = 30 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.Pull.Dir, o.Serve.Dir, o.Forge.Dir, o.Cluster.Dir = o.Dir, o.Dir, o.Dir, o.Dir
	o.Cluster.Wait = false
	return &DayOne{o: o}, nil
}

// Steps are day one's steps in order.
func (d *DayOne) Steps() []Step {
	forge := Step{Name: "forge", Check: d.forgeHolds, Run: d.forge}
	if in, _ := d.o.Homelab.InClusterForge(); in {
		forge = Step{Name: "forge", Skip: "the cluster's own Gitea: the cluster step seeds it"}
	}
	return []Step{
		{Name: "images", Check: d.imagesHold, Run: d.images},
		{Name: "nodes", Check: d.nodesHold, Run: d.nodes},
		{Name: "kubeconfig", Check: d.kubeconfigHolds, Run: d.kubeconfig},
		forge,
		{Name: "cluster", Check: d.clusterHolds, Run: d.cluster},
		{Name: "sync", Check: d.syncHolds, Run: d.sync},
	}
}

// Close stops the PXE server the nodes step started.
func (d *DayOne) Close() {
	d.mu.Lock()
	stop, served := d.stop, d.served
	d.stop, d.served, d.addr = nil, nil, ""
	d.mu.Unlock()
	if stop != nil {
		stop()
		<-served
	}
}

func (d *DayOne) logf(format string, args ...any) {
	fmt.Fprintf(d.o.Log, format+"\n", args...)
}

// images pulls the pinned kernel and initrd (hl metal images pull). A
// cached file that no longer hashes to its pin is removed first: Pull
// trusts a cache entry by its name and would keep it.
func (d *DayOne) images(ctx context.Context) (string, error) {
	if _, _, err := d.verifyImages(true); err != nil {
		return "", err
	}
	res, err := metal.Pull(ctx, d.o.Pull)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, r := range res {
		state := "downloaded"
		if r.Cached {
			state = "cached"
		}
		parts = append(parts, fmt.Sprintf("%s %s (sha256 %s)", r.Name, state, r.SHA256[:12]))
	}
	return strings.Join(parts, ", "), nil
}

// imagesHold hashes the cached files again: a cache entry is named by its
// sum, but a disk error or a hand edit would not rename it.
func (d *DayOne) imagesHold(context.Context) (bool, string, error) {
	return d.verifyImages(false)
}

// verifyImages checks the cached kernel and initrd against their pins,
// removing each file that does not match when told to.
func (d *DayOne) verifyImages(remove bool) (bool, string, error) {
	pin, err := metal.LoadOSPin(d.o.Dir)
	if err != nil {
		return false, "", err
	}
	var bad []string
	for _, a := range []metal.Artifact{pin.Kernel, pin.Initrd} {
		p, err := metal.CachePath(d.o.Pull.CacheDir, a.SHA256)
		if err != nil {
			return false, "", err
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			bad = append(bad, filepath.Base(a.URL)+" is not in the image cache")
			continue
		}
		if err != nil {
			return false, "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return false, "", err
		}
		if hex.EncodeToString(h.Sum(nil)) == strings.ToLower(a.SHA256) {
			continue
		}
		bad = append(bad, p+" does not match its sha256")
		if remove {
			if err := os.Remove(p); err != nil {
				return false, "", err
			}
			d.logf("removed %s from the image cache: it does not match its sha256", p)
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; "), nil
	}
	return true, pin.Ref().String() + " kernel and initrd verified", nil
}

// installed lists the nodes and says which have not called back.
func (d *DayOne) installed(ctx context.Context) (done []string, waiting []string, err error) {
	nodes, err := (&metal.LocalProvisioner{Dir: d.o.Dir, State: metal.StateFile{Path: d.o.Serve.StateFile}, Now: d.o.Serve.Now}).Nodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range nodes {
		if n.Status == metal.StatusInstalled {
			done = append(done, n.Name)
		} else {
			waiting = append(waiting, n.Name+" ("+n.Status+")")
		}
	}
	return done, waiting, nil
}

func (d *DayOne) nodesHold(ctx context.Context) (bool, string, error) {
	done, waiting, err := d.installed(ctx)
	if err != nil {
		return false, "", err
	}
	if len(waiting) > 0 {
		return false, "not installed: " + strings.Join(waiting, ", "), nil
	}
	return true, fmt.Sprintf("%d nodes installed", len(done)), nil
}

// nodes runs hl metal serve until every node of metal/nodes.yaml has
// called back installed.
func (d *DayOne) nodes(ctx context.Context) (string, error) {
	if ok, detail, err := d.nodesHold(ctx); err != nil || ok {
		return detail, err
	}
	if err := d.serve(ctx); err != nil {
		return "", err
	}
	d.mu.Lock()
	served := d.served
	d.mu.Unlock()
	last := ""
	tick := time.NewTicker(d.o.Poll)
	defer tick.Stop()
	for {
		done, waiting, err := d.installed(ctx)
		if err != nil {
			return "", err
		}
		if len(waiting) == 0 {
			return fmt.Sprintf("%d nodes installed", len(done)), nil
		}
		if now := strings.Join(waiting, ", "); now != last {
			d.logf("waiting for %s to call back (%d of %d installed): power them on with network boot first", now, len(done), len(done)+len(waiting))
			last = now
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case err := <-served:
			return "", fmt.Errorf("hl metal serve stopped: %w", err)
		case <-tick.C:
		}
	}
}

// serve starts the PXE server once; it runs until Close.
func (d *DayOne) serve(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stop != nil {
		return nil
	}
	srv, err := metal.NewServer(d.o.Serve)
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	if err := srv.Start(sctx); err != nil {
		stop()
		return err
	}
	d.logf("hl metal serve: http on %s, state %s", srv.Addr(), d.o.Serve.StateFile)
	served := make(chan error, 1)
	go func() { served <- srv.Wait(sctx) }()
	d.stop, d.served, d.addr = stop, served, srv.Addr()
	return nil
}

// ServerAddr is the address the PXE server listens on ("" when the nodes
// step has not started it).
func (d *DayOne) ServerAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}

// kubeconfig fetches the admin kubeconfig and writes it 0600. A different
// file already there is kept: it may be another cluster's.
func (d *DayOne) kubeconfig(ctx context.Context) (string, error) {
	data, err := d.o.FetchKubeconfig(ctx)
	if err != nil {
		return "", err
	}
	out := d.o.Kubeconfig
	if old, err := os.ReadFile(out); err == nil && !bytes.Equal(old, data) {
		return "", fmt.Errorf("%s exists and differs from the cluster's kubeconfig: move it away, or pass --kubeconfig elsewhere", out)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return "", err
	}
	if err := fsutil.WriteFileAtomic(out, data, 0o600); err != nil {
		return "", err
	}
	return "wrote " + out + " (0600)", nil
}

func (d *DayOne) kube() (*rest.Config, error) {
	return kubeclient.Config(d.o.Kubeconfig)
}

func (d *DayOne) kubeconfigHolds(ctx context.Context) (bool, string, error) {
	if _, err := os.Stat(d.o.Kubeconfig); err != nil {
		return false, err.Error(), nil
	}
	cfg, err := d.kube()
	if err != nil {
		return false, "", err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.Timeout = 15 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return false, "the API server does not answer with " + d.o.Kubeconfig + ": " + err.Error(), nil
	}
	return true, d.o.Kubeconfig + " reaches Kubernetes " + v.GitVersion, nil
}

// unchanged reports whether a dry run found nothing to do.
func unchanged(steps []bootstrap.StepResult) (bool, string) {
	var todo []string
	for _, s := range steps {
		if s.Status != bootstrap.StatusUnchanged && s.Status != bootstrap.StatusSkipped {
			todo = append(todo, strings.TrimSpace(s.Name+" "+s.Detail))
		}
	}
	if len(todo) > 0 {
		return false, "would change: " + strings.Join(todo, "; ")
	}
	return true, "a dry run changes nothing"
}

// forge seeds a forge outside the cluster (hl bootstrap gitea).
func (d *DayOne) forge(ctx context.Context) (string, error) {
	res, err := bootstrap.Run(ctx, d.o.Forge)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s/%s/%s", res.URL, res.Owner, res.Repo), nil
}

func (d *DayOne) forgeHolds(ctx context.Context) (bool, string, error) {
	o := d.o.Forge
	o.DryRun, o.Progress = true, nil
	res, err := bootstrap.Run(ctx, o)
	if err != nil {
		return false, "", err
	}
	ok, detail := unchanged(res.Steps)
	return ok, detail, nil
}

func (d *DayOne) clusterOptions(dryRun bool) (bootstrap.ClusterOptions, error) {
	o := d.o.Cluster
	cfg, err := d.kube()
	if err != nil {
		return o, err
	}
	o.Kube, o.DryRun = cfg, dryRun
	if dryRun {
		o.Progress = nil
	}
	return o, nil
}

// cluster runs hl bootstrap cluster (without its own wait).
func (d *DayOne) cluster(ctx context.Context) (string, error) {
	o, err := d.clusterOptions(false)
	if err != nil {
		return "", err
	}
	res, err := bootstrap.Cluster(ctx, o)
	if res != nil {
		for _, w := range res.Warnings {
			d.logf("warning: %s", w)
		}
	}
	if err != nil {
		return "", err
	}
	return "Argo CD runs and owns the cluster from here on", nil
}

func (d *DayOne) clusterHolds(ctx context.Context) (bool, string, error) {
	o, err := d.clusterOptions(true)
	if err != nil {
		return false, "", err
	}
	res, err := bootstrap.Cluster(ctx, o)
	if err != nil {
		return false, "", err
	}
	ok, detail := unchanged(res.Steps)
	return ok, detail, nil
}

func (d *DayOne) syncHolds(ctx context.Context) (bool, string, error) {
	cfg, err := d.kube()
	if err != nil {
		return false, "", err
	}
	w, err := NewAppWait(cfg, d.o.Dir)
	if err != nil {
		return false, "", err
	}
	bad, err := w.NotReady(ctx)
	if err != nil {
		return false, "", err
	}
	if len(bad) > 0 {
		return false, "not ready: " + strings.Join(bad, "; "), nil
	}
	return true, fmt.Sprintf("%d Applications Synced and Healthy", len(w.Want)), nil
}

// sync waits until Argo CD reports every Application Synced and Healthy.
func (d *DayOne) sync(ctx context.Context) (string, error) {
	cfg, err := d.kube()
	if err != nil {
		return "", err
	}
	w, err := NewAppWait(cfg, d.o.Dir)
	if err != nil {
		return "", err
	}
	w.Poll, w.Log = d.o.Poll, d.o.Log
	if err := w.Wait(ctx, d.o.SyncTimeout); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d Applications Synced and Healthy", len(w.Want)), nil
}
