package backup

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io/fs"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	restserver "github.com/restic/rest-server"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	kubets "hl.dev/hl/internal/kube/testserver"
	"hl.dev/hl/internal/kubeclient"
	"hl.dev/hl/secrets"
)

func TestMain(m *testing.M) { kubets.Main(m) }

// resticBin is the Debian package's restic (.ci/run installs it); a
// missing binary fails the drill.
func resticBin(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("restic")
	if err != nil {
		t.Fatalf("restic not found (apt-get install restic; .ci/run does): %v", err)
	}
	return p
}

// restServer serves restic's REST protocol from a temp folder, in-process:
// rest-server's own handler, from its Go module.
func restServer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	h, err := restserver.NewHandler(&restserver.Server{Path: dir, NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	restDirs.Store(srv.URL, dir)
	return srv.URL
}

// restDirs maps a REST server's URL to the folder it serves.
var restDirs sync.Map

func restDir(t *testing.T, url string) string {
	t.Helper()
	d, ok := restDirs.Load(url)
	if !ok {
		t.Fatalf("no REST server at %s", url)
	}
	return d.(string)
}

// runRestic runs restic in dir with exactly the environment of a rendered
// repository Secret (and nothing of the caller's restic settings).
func runRestic(t *testing.T, dir string, env map[string]string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), resticBin(t), args...)
	cmd.Dir = dir
	cmd.Env = environ([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "RESTIC_CACHE_DIR=" + t.TempDir()}, env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes()
}

// tree reads every file, folder and link under root: path → mode and
// content (a link's target).
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link " + target
		case d.IsDir():
			out[rel] = "dir " + info.Mode().Perm().String()
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = "file " + info.Mode().Perm().String() + " " + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func write(t *testing.T, root, rel string, data []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestoreDrill is the restore drill of issue 19: the full fixture is
// rendered with its local backup target at a real restic REST server
// (rest-server's handler from its Go module, in-process); paperless's
// volume is backed up twice with the Debian restic, from the rendered,
// SOPS-encrypted repository Secret the ReplicationSource names (its
// RESTIC_REPOSITORY and RESTIC_PASSWORD, decrypted with the test age key,
// nothing else); then Restore (hl backup restore paperless --volume
// paperless-data --snapshot <first>) runs against the real control plane
// and the first snapshot comes back byte for byte, modes and links too.
//
// Seams, where a cluster would run pods (no kubelet here):
//
//   - the backups are made by the test with restic, as VolSync's mover
//     would (`restic backup --host volsync .` in the volume), from a
//     folder that stands in for the volume;
//   - the restore is made by the test with restic from what Restore put
//     in the ReplicationDestination (its repository Secret, as stored in
//     the API server; the snapshot VolSync's mover would pick for
//     restoreAsOf: the newest not after it, in whole seconds) into an
//     empty folder standing in for the claim (Debian's restic 0.14 has no
//     --delete, which enableFileDeletion passes); the test then reports
//     the sync in the ReplicationDestination's status, as VolSync does;
//   - paperless's Argo CD Application is created by the test in the shape
//     the root ApplicationSet renders (automated prune and self-heal),
//     and the Deployments report no replicas because none ever start.
func TestRestoreDrill(t *testing.T) {
	ctx := t.Context()
	base := restServer(t)
	// rest-server serves repositories at most two folders deep: the
	// prefix is its root, each volume's repository /<namespace>/<pvc>.
	prefix := "rest:" + base
	r := renderFull(t, prefix)
	ids := identities(t)

	vol, env := paperlessData(t, r)
	if want := prefix + "/paperless/paperless-data"; env["RESTIC_REPOSITORY"] != want {
		t.Fatalf("rendered RESTIC_REPOSITORY %q, want %q (the local prefix from hl.yaml + namespace/pvc)", env["RESTIC_REPOSITORY"], want)
	}
	if len(env["RESTIC_PASSWORD"]) < 32 {
		t.Fatalf("rendered RESTIC_PASSWORD is %d characters", len(env["RESTIC_PASSWORD"]))
	}

	// Two backups of the volume, the second after a change.
	data := t.TempDir()
	write(t, data, "media/documents/originals/0000001.pdf", random(t, 3<<20+17), 0o644)
	write(t, data, "data/db.sqlite3", random(t, 64<<10), 0o600)
	write(t, data, "data/index/MAIN_1.toc", []byte("toc\n"), 0o640)
	write(t, data, "data/empty", nil, 0o644)
	if err := os.Symlink("documents/originals/0000001.pdf", filepath.Join(data, "media", "latest.pdf")); err != nil {
		t.Fatal(err)
	}
	want := tree(t, data)
	runRestic(t, data, env, "init")
	runRestic(t, data, env, "backup", "--host", "volsync", "--time", "2026-03-01 03:00:00", ".")
	write(t, data, "data/db.sqlite3", random(t, 64<<10), 0o600)
	write(t, data, "media/documents/originals/0000002.pdf", random(t, 1<<20), 0o644)
	if err := os.Remove(filepath.Join(data, "data", "empty")); err != nil {
		t.Fatal(err)
	}
	runRestic(t, data, env, "backup", "--host", "volsync", "--time", "2026-03-02 03:00:00", ".")
	snaps, err := Snapshots(ctx, "", env)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots, want 2", len(snaps))
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].Time.Before(snaps[j].Time) })
	first := snaps[0]

	// The cluster side: CRDs, the app's rendered objects, the repository
	// Secret as the hl-secrets plugin hands it to Argo CD.
	kube := kubets.ForTest(t)
	ap, err := kubeclient.NewApplier(kube.RESTConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var crds []string
	for _, m := range r.manifests {
		if str(m.Object, "kind") == "CustomResourceDefinition" {
			switch n := str(m.Object, "metadata", "name"); n {
			case "replicationdestinations.volsync.backube", "applications.argoproj.io":
				if _, err := ap.Apply(ctx, m.Object, false); err != nil {
					t.Fatal(err)
				}
				crds = append(crds, n)
			}
		}
	}
	if len(crds) != 2 {
		t.Fatalf("the render has CRDs %v, want VolSync's ReplicationDestination and Argo CD's Application", crds)
	}
	if err := ap.WaitEstablished(ctx, crds, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"paperless", ArgoCDNamespace} {
		if _, err := ap.Apply(ctx, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}, false); err != nil {
			t.Fatal(err)
		}
	}
	replicas := map[string]int64{}
	users := map[string]bool{} // the workloads that mount paperless-data
	for _, m := range r.manifests {
		if m.App != "apps/paperless" {
			continue
		}
		switch k := str(m.Object, "kind"); k {
		case "Deployment", "StatefulSet", "PersistentVolumeClaim":
			if _, err := ap.Apply(ctx, m.Object, false); err != nil {
				t.Fatalf("%s:%d: %v", m.File, m.Line, err)
			}
			if k != "PersistentVolumeClaim" {
				u := unstructured.Unstructured{Object: m.Object}
				replicas[k+"/"+u.GetName()] = replicasOf(&u)
				vols, _, _ := unstructured.NestedSlice(m.Object, "spec", "template", "spec", "volumes")
				for _, v := range vols {
					if str(v.(map[string]any), "persistentVolumeClaim", "claimName") == "paperless-data" {
						users[k+"/"+u.GetName()] = true
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := secrets.Manifests(filepath.Join(r.dir, filepath.FromSlash(SecretsDir)), ids, &buf); err != nil {
		t.Fatal(err)
	}
	applied := false
	for _, doc := range strings.Split(buf.String(), "\n---\n") {
		var o map[string]any
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			t.Fatal(err)
		}
		if str(o, "metadata", "name") == vol.Repository && str(o, "metadata", "namespace") == "paperless" {
			if _, err := ap.Apply(ctx, o, false); err != nil {
				t.Fatal(err)
			}
			applied = true
		}
	}
	if !applied {
		t.Fatalf("no Secret %s in %s", vol.Repository, SecretsDir)
	}
	automated := map[string]any{"prune": true, "selfHeal": true}
	if _, err := ap.Apply(ctx, map[string]any{
		"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
		"metadata": map[string]any{"name": "paperless", "namespace": ArgoCDNamespace},
		"spec": map[string]any{
			"project":     "apps",
			"source":      map[string]any{"repoURL": "https://git.home.example.com/homelab/cluster.git", "path": "apps/paperless", "targetRevision": "main"},
			"destination": map[string]any{"server": "https://kubernetes.default.svc", "namespace": "paperless"},
			"syncPolicy":  map[string]any{"automated": automated},
		},
	}, false); err != nil {
		t.Fatal(err)
	}

	dyn := ap.Dynamic()
	now := time.Date(2026, 3, 5, 9, 30, 0, 0, time.UTC)
	type outcome struct {
		res *RestoreResult
		err error
	}
	done := make(chan outcome, 1)
	var progress []string
	go func() {
		res, err := Restore(ctx, RestoreOptions{
			Dir: r.dir, Kube: kube.RESTConfig(), Identities: ids, App: "paperless", Volume: "paperless-data",
			Snapshot: first.ShortID, Poll: 50 * time.Millisecond, Timeout: 2 * time.Minute,
			Now: func() time.Time { return now }, Progress: func(s string) { progress = append(progress, s) },
		})
		done <- outcome{res, err}
	}()

	// VolSync's part: wait for the ReplicationDestination, check what it
	// asks for, restore as its mover would, report the sync.
	rdc := dyn.Resource(GVRReplicationDestination).Namespace("paperless")
	var rd *unstructured.Unstructured
	for rd == nil {
		select {
		case o := <-done:
			t.Fatalf("Restore returned before creating a ReplicationDestination: %+v, %v", o.res, o.err)
		case <-time.After(50 * time.Millisecond):
		}
		got, err := rdc.Get(ctx, "paperless-data-restore", metav1.GetOptions{})
		if err == nil {
			rd = got
		}
	}
	spec, _, _ := unstructured.NestedMap(rd.Object, "spec", "restic")
	asOf := first.Time.UTC().Format(time.RFC3339)
	for k, want := range map[string]any{
		"repository": vol.Repository, "destinationPVC": "paperless-data", "copyMethod": "Direct",
		"enableFileDeletion": true, "restoreAsOf": asOf,
	} {
		if spec[k] != want {
			t.Errorf("ReplicationDestination spec.restic.%s = %v, want %v", k, spec[k], want)
		}
	}
	if msc, _ := spec["moverSecurityContext"].(map[string]any); msc["runAsUser"] != int64(1000) || msc["runAsNonRoot"] != true {
		t.Errorf("moverSecurityContext %v: want the ReplicationSource's (runAsUser 1000, non-root)", msc)
	}
	if trig, _, _ := unstructured.NestedString(rd.Object, "spec", "trigger", "manual"); trig != "restore-1772703000" {
		t.Errorf("trigger.manual %q", trig)
	}
	// While it restores, nothing runs the app and Argo CD does not heal it.
	for kn, n := range replicas {
		w, err := getWorkload(ctx, dyn, "paperless", kn)
		if err != nil {
			t.Fatal(err)
		}
		r := replicasOf(w)
		switch {
		case users[kn] && (r != 0 || w.GetAnnotations()[AnnotationReplicas] == ""):
			t.Errorf("%s mounts the volume; during the restore: %d replicas (was %d), annotations %v", kn, r, n, w.GetAnnotations())
		case !users[kn] && r != n:
			t.Errorf("%s does not mount the volume but was scaled to %d (was %d)", kn, r, n)
		}
	}
	if len(users) == 0 {
		t.Fatal("apps/paperless rendered no workload mounting paperless-data")
	}
	a, err := dyn.Resource(GVRApplication).Namespace(ArgoCDNamespace).Get(ctx, "paperless", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := unstructured.NestedMap(a.Object, "spec", "syncPolicy", "automated"); found {
		t.Error("Application paperless still syncs automatically during the restore")
	}

	// The mover: the repository Secret as the API server holds it, the
	// snapshot restoreAsOf selects.
	sec, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("paperless").Get(ctx, vol.Repository, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	moverEnv := map[string]string{}
	if sd, found, _ := unstructured.NestedStringMap(sec.Object, "stringData"); found {
		for k, v := range sd {
			moverEnv[k] = v
		}
	}
	if d, found, _ := unstructured.NestedStringMap(sec.Object, "data"); found {
		for k, v := range d {
			b, err := decodeB64(v)
			if err != nil {
				t.Fatal(err)
			}
			moverEnv[k] = string(b)
		}
	}
	if moverEnv["RESTIC_REPOSITORY"] != env["RESTIC_REPOSITORY"] || moverEnv["RESTIC_PASSWORD"] != env["RESTIC_PASSWORD"] {
		t.Fatal("the Secret in the cluster does not hold the rendered repository and password")
	}
	limit, err := time.Parse(time.RFC3339, spec["restoreAsOf"].(string))
	if err != nil {
		t.Fatal(err)
	}
	pick := ""
	for _, s := range snaps {
		if s.Time.Unix() <= limit.Unix() {
			pick = s.ID
		}
	}
	if pick != first.ID {
		t.Fatalf("restoreAsOf %s selects %q, want the first snapshot %s", limit, pick, first.ID)
	}
	volume := t.TempDir()
	runRestic(t, volume, moverEnv, "restore", pick, "-t", ".", "--host", "volsync")
	status := map[string]any{
		"lastSyncTime":      now.Add(time.Minute).Format(time.RFC3339),
		"lastManualSync":    "restore-1772703000",
		"latestMoverStatus": map[string]any{"result": "Successful", "logs": "restored"},
	}
	rd.Object["status"] = status
	if _, err := rdc.UpdateStatus(ctx, rd, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	var o outcome
	select {
	case o = <-done:
	case <-time.After(time.Minute):
		t.Fatal("Restore did not return after the ReplicationDestination synced")
	}
	if o.err != nil {
		t.Fatal(o.err)
	}
	if len(o.res.Scaled) != len(users) {
		t.Errorf("scaled %v, want the workloads mounting the volume %v", o.res.Scaled, users)
	}
	for _, kn := range o.res.Scaled {
		if !users[kn] {
			t.Errorf("scaled %s, which does not mount the volume", kn)
		}
	}
	if len(o.res.Volumes) != 1 || o.res.Volumes[0].Snapshot != first.ID || o.res.Volumes[0].RestoreAsOf != asOf || !o.res.Paused {
		t.Errorf("result %+v", o.res)
	}

	got := tree(t, volume)
	if len(got) != len(want) {
		t.Errorf("restored %d entries, backed up %d", len(got), len(want))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: restored %.60q, backed up %.60q", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s restored but not in the first snapshot", p)
		}
	}

	// After: the destination is gone, the app back at its replicas, Argo CD
	// syncing it again with its own policy.
	if _, err := rdc.Get(ctx, "paperless-data-restore", metav1.GetOptions{}); err == nil {
		t.Error("ReplicationDestination paperless-data-restore left behind")
	}
	for kn, n := range replicas {
		w, err := getWorkload(ctx, dyn, "paperless", kn)
		if err != nil {
			t.Fatal(err)
		}
		if r := replicasOf(w); r != n {
			t.Errorf("%s after the restore: %d replicas, want %d", kn, r, n)
		}
		if _, ok := w.GetAnnotations()[AnnotationReplicas]; ok {
			t.Errorf("%s keeps %s", kn, AnnotationReplicas)
		}
	}
	a, err = dyn.Resource(GVRApplication).Namespace(ArgoCDNamespace).Get(ctx, "paperless", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if auto, _, _ := unstructured.NestedMap(a.Object, "spec", "syncPolicy", "automated"); auto["selfHeal"] != true || auto["prune"] != true {
		t.Errorf("Application paperless after the restore: automated %v", auto)
	}
	t.Logf("restored %d entries of snapshot %s (restoreAsOf %s); steps:\n%s", len(got), first.ShortID, asOf, strings.Join(progress, "\n"))
}

// paperlessData is paperless-data's volume on the local target and its
// decrypted repository Secret, as LoadApp reads them off the render.
func paperlessData(t *testing.T, r *rendered) (Volume, map[string]string) {
	t.Helper()
	app, err := LoadApp(r.dir, "paperless", "local")
	if err != nil {
		t.Fatal(err)
	}
	vol, err := app.Volume("paperless-data")
	if err != nil {
		t.Fatal(err)
	}
	env, err := vol.Env(r.dir, identities(t))
	if err != nil {
		t.Fatal(err)
	}
	return vol, env
}

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(s)
}
