// Package validate is the engine behind `hl validate` and `hl charts pull`.
//
// Run walks a rendered homelab repository, renders every Argo CD app the way
// Argo CD would — Helm wrapper charts with the Helm v3 SDK (client-only, the
// cluster's Kubernetes version as capabilities, dependencies from a local
// chart cache) and kustomizations with the kustomize API (krusty) in-process
// — and checks every resulting manifest: built-in kinds by strict decoding
// into the k8s.io/api types, custom resources against the JSON schemas in
// schemas/crds (or the CRDs the repo itself renders), and a set of policies
// (plaintext secrets, unpinned images and charts, missing default-deny
// NetworkPolicies, ...). Every file of the repository, deployed by an app
// or not, is also scanned for plaintext Secrets, private keys, age
// identities and credentials (secretscan.go): git publishes them all the
// same. Every problem is a Finding with a policy id, a severity and a
// repo-relative file:line; Policies lists the ids.
//
// PullCharts fills the chart cache from the repositories named in the
// wrapper charts' Chart.yaml (HTTP repositories and OCI registries),
// honouring the chart mirrors of hl.yaml; Run with Offline set uses only the
// cache and reports what is missing.
package validate

//go:generate go run ./internal/crdgen -out ../schemas/crds
