// Package testserver owns the real Argo CD used by hl's tests: it finds the
// multi-call argocd binary, helm and kustomize built by
// scripts/build-argocd.sh (make argocd) and runs Argo CD's components as
// local processes against a Kubernetes API server (the control-plane harness
// of internal/kube/testserver, or any kubeconfig), the shape of Argo CD's own
// Procfile: redis-server (Debian) on loopback, argocd-repo-server (with helm,
// kustomize and git on its PATH), argocd-application-controller,
// argocd-applicationset-controller, argocd-server (plain HTTP on loopback, so
// tests can deliver Gitea push webhooks to /api/webhook) and one
// argocd-cmp-server per Config Management Plugin.
//
// Before the components start, the namespace gets what applying
// install.yaml gives it and it lacks (argocd-cm, argocd-cmd-params-cm,
// argocd-secret, ...; objects a test created first are kept), and the
// install's init step runs: `argocd admin redis-initial-password`.
//
// Each component reads its settings the way the real Deployments do: the
// env entries of its container in the module's manifests/install.yaml are
// resolved against the API server (argocd-cmd-params-cm, argocd-cm, the
// argocd-redis Secret), so a test exercises what a rendered install
// configures. Only what a pod would get from its surroundings is the
// harness's own: listen addresses and ports (free loopback ports), the
// redis and repo-server addresses (flags, which win over the ConfigMap's
// env as they would over a Service name), the data folders (under the
// server's Dir) and GPG, which is off as in the Procfile.
//
// No pod ever runs here (no kubelet): Argo CD applies manifests to the API
// server for real, so sync status is real, but the health of workloads stays
// Progressing or Missing. Tests assert sync status, not health.
//
// Usage, on the control plane of internal/kube/testserver:
//
//	kube := kubets.ForTest(t)
//	argo := testserver.New(t, testserver.Options{Kubeconfig: kube.Kubeconfig, InstallCRDs: true})
//	// create a repository Secret and an Application in argo.Namespace
//	st, err := argo.WaitApplication(ctx, argo.Namespace, "demo", testserver.Synced(""))
//
// Argo CDs that share one API server (tests of a package on its shared
// control plane) see each other's objects: Argo CD tracks what it applied
// by Application name, so give Applications names unique on the API server
// (or set installationID in each argocd-cm).
//
// A missing binary fails the test with a hint to run `make argocd`; it
// never skips.
package testserver
