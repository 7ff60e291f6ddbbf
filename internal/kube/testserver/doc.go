// Package testserver owns the real Kubernetes control plane used by hl's
// tests: it finds the etcd and kube-apiserver built by scripts/build-kube.sh
// (make kube), starts etcd on loopback with a throw-away data folder, then
// kube-apiserver with self-signed serving certificates (--cert-dir), a
// static token file holding an admin token in system:masters, a
// service-account key pair made here, and RBAC; it waits for /readyz, writes
// an admin kubeconfig, and removes everything again on Close.
//
// No kubelet, scheduler or controller-manager runs: objects are stored,
// validated, admitted and authorized for real, but no pod ever starts and no
// controller acts on what is stored: no Deployment gets a ReplicaSet, no
// namespace gets a default ServiceAccount, and the aggregated ClusterRoles
// (admin, edit, view) stay without rules, so tests of least privilege bind
// Roles of their own.
//
// One control plane per test package is the usual pattern:
//
//	func TestMain(m *testing.M) { testserver.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		srv := testserver.ForTest(t)
//		cs, _ := kubernetes.NewForConfig(srv.RESTConfig())
//		...
//	}
//
// A missing binary fails the test (with a hint to run `make kube`); it never
// skips, so a CI run without the binaries cannot pass by accident.
package testserver
