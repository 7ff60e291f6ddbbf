package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Annotations Restore leaves on what it changed, so a run stopped anywhere
// completes (or undoes) when run again.
const (
	// AnnotationReplicas, on a Deployment or StatefulSet Restore scaled to
	// zero, holds its replicas before.
	AnnotationReplicas = "backups.hl.dev/restore-replicas"
	// AnnotationAutomated, on the app's Argo CD Application, holds its
	// spec.syncPolicy.automated (JSON) while self-heal is paused.
	AnnotationAutomated = "backups.hl.dev/restore-automated"
	// ArgoCDNamespace is where the root ApplicationSets create the apps'
	// Applications, each named after its folder.
	ArgoCDNamespace = "argocd"
)

var (
	GVRReplicationDestination = schema.GroupVersionResource{Group: "volsync.backube", Version: "v1alpha1", Resource: "replicationdestinations"}
	GVRApplication            = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	gvrDeployments            = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	gvrStatefulSets           = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	gvrPVCs                   = schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}
	gvrSecrets                = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// RestoreOptions say what to restore from where.
type RestoreOptions struct {
	// Dir is the rendered repository (hl.yaml, system/backups).
	Dir  string
	Kube *rest.Config
	// Identities decrypt the repository Secret; needed with Snapshot only.
	Identities []age.Identity
	App        string
	// Volume picks one of the app's backed-up volumes; "" restores all of
	// them (Snapshot then needs the app to have one).
	Volume string
	// Target is the backup target to restore from (default "local").
	Target string
	// Snapshot is a restic snapshot id (or unique prefix) of the volume's
	// repository; "" restores the latest.
	Snapshot string
	// Restic is the restic binary that looks the snapshot up ("" = PATH).
	Restic string
	// Timeout bounds the wait for VolSync (default 1h); Poll is the
	// interval between looks (default 2s).
	Timeout, Poll time.Duration
	// Now stamps the restore trigger (default time.Now).
	Now func() time.Time
	// Progress receives one line per step; nil discards them.
	Progress func(string)
}

// RestoredVolume is one volume Restore brought back.
type RestoredVolume struct {
	Namespace   string `json:"namespace"`
	PVC         string `json:"pvc"`
	Destination string `json:"replicationDestination"`
	// RestoreAsOf is set when a snapshot was asked for: VolSync restores
	// the newest snapshot at or before it.
	RestoreAsOf string `json:"restoreAsOf,omitempty"`
	Snapshot    string `json:"snapshot,omitempty"`
	SyncedAt    string `json:"syncedAt"`
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	App       string           `json:"app"`
	Namespace string           `json:"namespace"`
	Target    string           `json:"target"`
	Scaled    []string         `json:"scaled"`
	Paused    bool             `json:"pausedSelfHeal"`
	Volumes   []RestoredVolume `json:"volumes"`
}

// Restore brings an app's volumes back from a backup target, the way
// system/backups/README.md describes it by hand:
//
//  1. pause Argo CD's automated sync of the app's Application (else
//     self-heal scales the app back up mid-restore). The pause holds only
//     while the root ApplicationSet leaves the Application's
//     spec.syncPolicy.automated and this annotation alone
//     (ignoreApplicationDifferences, preservedFields in
//     bootstrap/root.yaml): its controller otherwise writes the generated
//     spec back over the Application;
//  2. scale every Deployment and StatefulSet of the namespace that mounts
//     a restored claim to zero and wait until no replica is left;
//  3. per volume, a VolSync ReplicationDestination <pvc>-restore writing
//     into the claim (copyMethod Direct, enableFileDeletion, so the volume
//     ends up equal to the snapshot) from the same repository Secret the
//     ReplicationSource backs up with, as the same user, restoreAsOf the
//     asked snapshot's time (looked up with restic from the laptop);
//  4. wait for VolSync to report the sync, delete the ReplicationDestination;
//  5. scale back up and resume automated sync.
//
// Every change is recorded in an annotation first, so running it again
// after an interruption finishes the job.
func Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	if o.Target == "" {
		o.Target = "local"
	}
	if o.Timeout == 0 {
		o.Timeout = time.Hour
	}
	if o.Poll == 0 {
		o.Poll = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	say := o.Progress
	if say == nil {
		say = func(string) {}
	}
	app, err := LoadApp(o.Dir, o.App, o.Target)
	if err != nil {
		return nil, err
	}
	vols := app.Volumes
	if o.Volume != "" || o.Snapshot != "" {
		v, err := app.Volume(o.Volume)
		if err != nil {
			return nil, err
		}
		vols = []Volume{v}
	}
	res := &RestoreResult{App: app.Name, Namespace: app.Namespace, Target: o.Target}
	asOf := ""
	if o.Snapshot != "" {
		env, err := vols[0].Env(o.Dir, o.Identities)
		if err != nil {
			return nil, err
		}
		snaps, err := Snapshots(ctx, o.Restic, env)
		if err != nil {
			return nil, fmt.Errorf("listing the snapshots of %s/%s on %s: %w", app.Namespace, vols[0].PVC, o.Target, err)
		}
		s, err := FindSnapshot(snaps, o.Snapshot)
		if err != nil {
			return nil, fmt.Errorf("%s/%s on %s: %w", app.Namespace, vols[0].PVC, o.Target, err)
		}
		// VolSync's mover picks the newest snapshot whose time, in whole
		// seconds, is not after restoreAsOf: the snapshot's own second.
		for _, other := range snaps {
			if other.ID != s.ID && other.Time.Unix() == s.Time.Unix() {
				return nil, fmt.Errorf("snapshot %s shares its second (%s) with %s: VolSync cannot pick it by time", s.ShortID, s.Time.UTC().Format(time.RFC3339), other.ShortID)
			}
		}
		asOf = s.Time.UTC().Truncate(time.Second).Format(time.RFC3339)
		res.Volumes = append(res.Volumes, RestoredVolume{Snapshot: s.ID, RestoreAsOf: asOf})
	}

	dyn, err := dynamic.NewForConfig(o.Kube)
	if err != nil {
		return nil, err
	}
	ns := app.Namespace
	for _, v := range vols {
		if _, err := dyn.Resource(gvrPVCs).Namespace(ns).Get(ctx, v.PVC, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("claim %s/%s: %w (a lost volume: let Argo CD create it empty first)", ns, v.PVC, err)
		}
		if _, err := dyn.Resource(gvrSecrets).Namespace(ns).Get(ctx, v.Repository, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("repository Secret %s/%s: %w (Argo CD syncs it from system/backups/secrets)", ns, v.Repository, err)
		}
	}

	paused, err := pauseSelfHeal(ctx, dyn, app.Name)
	if err != nil {
		return nil, err
	}
	res.Paused = paused
	if paused {
		say("paused Argo CD's automated sync of Application " + app.Name)
	}
	scaled, err := scaleDown(ctx, dyn, ns, vols)
	if err != nil {
		return res, err
	}
	res.Scaled = scaled
	for _, w := range scaled {
		say("scaled " + ns + "/" + w + " to 0")
	}
	wctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	if err := waitScaledDown(wctx, dyn, ns, scaled, o.Poll); err != nil {
		return res, err
	}

	trigger := "restore-" + strconv.FormatInt(o.Now().Unix(), 10)
	for i, v := range vols {
		rd := destination(v, trigger, asOf)
		name := rd.GetName()
		rc := dyn.Resource(GVRReplicationDestination).Namespace(ns)
		if _, err := rc.Create(ctx, rd, metav1.CreateOptions{FieldManager: "hl"}); apierrors.IsAlreadyExists(err) {
			say("ReplicationDestination " + ns + "/" + name + " exists: waiting for it (an earlier run)")
		} else if err != nil {
			return res, fmt.Errorf("creating ReplicationDestination %s/%s: %w", ns, name, err)
		} else {
			say("restoring " + ns + "/" + v.PVC + " from " + v.Repository + " (ReplicationDestination " + name + ")")
		}
		synced, err := waitSynced(wctx, rc, name, o.Poll)
		if err != nil {
			return res, err
		}
		if err := rc.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return res, err
		}
		rv := RestoredVolume{Namespace: ns, PVC: v.PVC, Destination: name, SyncedAt: synced}
		if i < len(res.Volumes) {
			rv.Snapshot, rv.RestoreAsOf = res.Volumes[i].Snapshot, res.Volumes[i].RestoreAsOf
			res.Volumes[i] = rv
		} else {
			res.Volumes = append(res.Volumes, rv)
		}
		say("restored " + ns + "/" + v.PVC + " (synced " + synced + ")")
	}

	if err := scaleUp(ctx, dyn, ns); err != nil {
		return res, err
	}
	if err := resumeSelfHeal(ctx, dyn, app.Name); err != nil {
		return res, err
	}
	say("scaled " + ns + " back up; Argo CD syncs " + app.Name + " again")
	return res, nil
}

// destination is the ReplicationDestination restoring v.
func destination(v Volume, trigger, asOf string) *unstructured.Unstructured {
	restic := map[string]any{
		"repository":         v.Repository,
		"destinationPVC":     v.PVC,
		"copyMethod":         "Direct",
		"enableFileDeletion": true,
	}
	if v.MoverSecurityContext != nil {
		restic["moverSecurityContext"] = v.MoverSecurityContext
	}
	if asOf != "" {
		restic["restoreAsOf"] = asOf
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "volsync.backube/v1alpha1",
		"kind":       "ReplicationDestination",
		"metadata": map[string]any{
			"name":      v.PVC + "-restore",
			"namespace": v.Namespace,
			"labels":    map[string]any{"app.kubernetes.io/managed-by": "hl", "backups.hl.dev/restore": "true"},
		},
		"spec": map[string]any{
			"trigger": map[string]any{"manual": trigger},
			"restic":  restic,
		},
	}}
}

// waitSynced waits until VolSync reports the destination's manual trigger
// done (status.lastManualSync equal to spec.trigger.manual, or a
// lastSyncTime), failing on a failed mover.
func waitSynced(ctx context.Context, rc dynamic.ResourceInterface, name string, poll time.Duration) (string, error) {
	for {
		rd, err := rc.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("ReplicationDestination %s: %w", name, err)
		}
		result, _, _ := unstructured.NestedString(rd.Object, "status", "latestMoverStatus", "result")
		if result == "Failed" {
			logs, _, _ := unstructured.NestedString(rd.Object, "status", "latestMoverStatus", "logs")
			return "", fmt.Errorf("ReplicationDestination %s: the restic mover failed: %s", name, logs)
		}
		trigger, _, _ := unstructured.NestedString(rd.Object, "spec", "trigger", "manual")
		manual, _, _ := unstructured.NestedString(rd.Object, "status", "lastManualSync")
		at, _, _ := unstructured.NestedString(rd.Object, "status", "lastSyncTime")
		if at != "" && manual == trigger {
			return at, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for ReplicationDestination %s to sync: %w", name, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// mounts says whether a pod template (or a StatefulSet's claim templates)
// gives the workload one of the claims.
func mounts(obj *unstructured.Unstructured, claims map[string]bool) bool {
	vols, _, _ := unstructured.NestedSlice(obj.Object, "spec", "template", "spec", "volumes")
	for _, v := range vols {
		if c, _, _ := unstructured.NestedString(asMap(v), "persistentVolumeClaim", "claimName"); claims[c] {
			return true
		}
	}
	if obj.GetKind() == "StatefulSet" {
		tmpls, _, _ := unstructured.NestedSlice(obj.Object, "spec", "volumeClaimTemplates")
		replicas := replicasOf(obj)
		if r, ok := obj.GetAnnotations()[AnnotationReplicas]; ok {
			replicas, _ = strconv.ParseInt(r, 10, 64)
		}
		for _, t := range tmpls {
			n, _, _ := unstructured.NestedString(asMap(t), "metadata", "name")
			for i := int64(0); i < replicas; i++ {
				if claims[fmt.Sprintf("%s-%s-%d", n, obj.GetName(), i)] {
					return true
				}
			}
		}
	}
	return false
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

func replicasOf(obj *unstructured.Unstructured) int64 {
	r, found, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
	if !found {
		return 1 // the API default
	}
	return r
}

// scaleDown scales the namespace's workloads that mount a claim of vols to
// zero, recording their replicas first; it returns kind/name of each.
func scaleDown(ctx context.Context, dyn dynamic.Interface, ns string, vols []Volume) ([]string, error) {
	claims := map[string]bool{}
	for _, v := range vols {
		claims[v.PVC] = true
	}
	var out []string
	for _, gvr := range []schema.GroupVersionResource{gvrDeployments, gvrStatefulSets} {
		list, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return out, fmt.Errorf("listing %s in %s: %w", gvr.Resource, ns, err)
		}
		for i := range list.Items {
			w := &list.Items[i]
			if !mounts(w, claims) {
				continue
			}
			ann := map[string]any{}
			if _, ok := w.GetAnnotations()[AnnotationReplicas]; !ok {
				ann[AnnotationReplicas] = strconv.FormatInt(replicasOf(w), 10)
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}, "spec": map[string]any{"replicas": 0}})
			if _, err := dyn.Resource(gvr).Namespace(ns).Patch(ctx, w.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "hl"}); err != nil {
				return out, fmt.Errorf("scaling %s/%s down: %w", ns, w.GetName(), err)
			}
			out = append(out, w.GetKind()+"/"+w.GetName())
		}
	}
	return out, nil
}

// waitScaledDown waits until the scaled workloads report no replica: the
// volume must not be written while it is restored.
func waitScaledDown(ctx context.Context, dyn dynamic.Interface, ns string, scaled []string, poll time.Duration) error {
	for {
		left := ""
		for _, kn := range scaled {
			w, err := getWorkload(ctx, dyn, ns, kn)
			if err != nil {
				return err
			}
			if n, _, _ := unstructured.NestedInt64(w.Object, "status", "replicas"); n > 0 {
				left = kn
				break
			}
		}
		if left == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s/%s to stop: %w", ns, left, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// getWorkload gets a Deployment or StatefulSet by kind/name, as
// RestoreResult.Scaled names them.
func getWorkload(ctx context.Context, dyn dynamic.Interface, ns, kindName string) (*unstructured.Unstructured, error) {
	gvr := gvrDeployments
	name, sts := strings.CutPrefix(kindName, "StatefulSet/")
	if sts {
		gvr = gvrStatefulSets
	} else {
		name = strings.TrimPrefix(kindName, "Deployment/")
	}
	return dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// scaleUp puts back the replicas of every workload scaleDown annotated.
func scaleUp(ctx context.Context, dyn dynamic.Interface, ns string) error {
	for _, gvr := range []schema.GroupVersionResource{gvrDeployments, gvrStatefulSets} {
		list, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, w := range list.Items {
			r, ok := w.GetAnnotations()[AnnotationReplicas]
			if !ok {
				continue
			}
			n, err := strconv.ParseInt(r, 10, 64)
			if err != nil {
				return fmt.Errorf("%s/%s: annotation %s=%q: %w", ns, w.GetName(), AnnotationReplicas, r, err)
			}
			patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{AnnotationReplicas: nil}}, "spec": map[string]any{"replicas": n}})
			if _, err := dyn.Resource(gvr).Namespace(ns).Patch(ctx, w.GetName(), types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "hl"}); err != nil {
				return fmt.Errorf("scaling %s/%s back up: %w", ns, w.GetName(), err)
			}
		}
	}
	return nil
}

// pauseSelfHeal drops the Application's automated sync policy, keeping it
// in an annotation; false when there is no such Application (no Argo CD,
// or the app is not Argo CD's).
func pauseSelfHeal(ctx context.Context, dyn dynamic.Interface, name string) (bool, error) {
	ac := dyn.Resource(GVRApplication).Namespace(ArgoCDNamespace)
	a, err := ac.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("Argo CD Application %s: %w", name, err)
	}
	if _, ok := a.GetAnnotations()[AnnotationAutomated]; ok {
		return true, nil // paused by an earlier run
	}
	auto, found, _ := unstructured.NestedMap(a.Object, "spec", "syncPolicy", "automated")
	if !found {
		return false, nil // nothing would scale the app back up
	}
	saved, err := json.Marshal(auto)
	if err != nil {
		return false, err
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationAutomated: string(saved)}},
		"spec":     map[string]any{"syncPolicy": map[string]any{"automated": nil}},
	})
	if _, err := ac.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "hl"}); err != nil {
		return false, fmt.Errorf("pausing Argo CD's sync of %s: %w", name, err)
	}
	return true, nil
}

// resumeSelfHeal puts back what pauseSelfHeal kept.
func resumeSelfHeal(ctx context.Context, dyn dynamic.Interface, name string) error {
	ac := dyn.Resource(GVRApplication).Namespace(ArgoCDNamespace)
	a, err := ac.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return err
	}
	saved, ok := a.GetAnnotations()[AnnotationAutomated]
	if !ok {
		return nil
	}
	var auto map[string]any
	if err := json.Unmarshal([]byte(saved), &auto); err != nil {
		return fmt.Errorf("Application %s: annotation %s: %w", name, AnnotationAutomated, err)
	}
	patch, _ := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationAutomated: nil}},
		"spec":     map[string]any{"syncPolicy": map[string]any{"automated": auto}},
	})
	if _, err := ac.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "hl"}); err != nil {
		return fmt.Errorf("resuming Argo CD's sync of %s: %w", name, err)
	}
	return nil
}
