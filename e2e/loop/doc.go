// Package loop holds the loop test: the product's whole loop, from
// `hl init --defaults` to Argo CD applying what the bot merged, against the
// real servers this machine can run.
//
// The seams, where a real homelab has something that cannot run here:
//
//   - Pods: no kubelet runs, so no workload starts. Argo CD's components
//     (application-controller, applicationset-controller, repo-server,
//     argocd-server and the hl-secrets plugin's cmp-server, all from the
//     Argo CD module; redis-server from Debian) run as processes of the
//     Argo CD harness, against the same API server, with the ConfigMaps and
//     Secrets `hl bootstrap cluster` applied. The plugin's configuration is
//     the rendered argocd-cmp-cm as the API server holds it; its age key is
//     the sops-age Secret's, written to a file at a temporary path instead
//     of the rendered mount path. Health stays Progressing or Missing where
//     a workload would have to run, unless the status seam below reports it.
//   - The in-cluster Gitea: the Gitea harness (same release as the chart's
//     image) plays it. Its site administrator is made from the rendered
//     gitea-admin Secret, as the chart does at start; waiting for its pods
//     returns at once; hl reaches its API at the harness's URL instead of a
//     port-forward.
//   - Admission webhooks: served by pods; a stand-in that allows
//     everything listens on this machine's own address and is published
//     as each webhook Service's EndpointSlice, as the EndpointSlice
//     controller would publish the webhook pod (kube-apiserver runs with
//     aggregator routing, as k3s does, so it calls an endpoint, not the
//     cluster IP); its CA is injected into the webhook configurations as
//     cainjector would (webhooks_test.go).
//   - Service DNS: the in-cluster forge's HTTP Service is a TCP proxy on a
//     loopback address at the rendered port (3000) that forwards to the
//     Gitea harness. Argo CD's processes run in mount namespaces of their
//     own whose /etc/hosts gives that address to gitea-http.gitea.svc and
//     to the hostnames of the repo-server's rendered hostAliases (Gitea's
//     own, git.<domain>, which the repo URL names; in a cluster they lead
//     to the Service's fixed cluster IP). The loop checks that the
//     gitea-http Service Argo CD applies has that cluster IP.
//   - The forge's URL: the Gitea harness's ROOT_URL is its loopback URL,
//     so its push webhooks name the repository by it; a relay rewrites
//     that prefix to https://git.<domain>/ as a homelab's Gitea would send
//     it, signs the payload again with the webhook secret, and forwards it
//     to the harness's argocd-server (Gitea runs outside the namespace
//     trick, so the hook is re-pointed at the relay).
//   - Chart sources: hl.yaml's spec.mirrors.charts point every catalog
//     chart repository at internal/testcharts' local Helm repositories and
//     OCI registry (real charts where a Go module ships them, stand-ins
//     under the catalog's names and versions for the rest).
//   - Workload status: no kube-controller-manager and no kubelet, so the
//     test writes the status a ready Deployment, StatefulSet or DaemonSet,
//     a succeeded Job and a Bound claim would have, and cert-manager's
//     Ready condition on certificates and issuers, and a LoadBalancer
//     Service the address MetalLB would assign (reportReady); Argo CD
//     waits for each sync wave's resources to be healthy before the next.
//
// Chaos inside the loop: the hl-bot container is SIGKILLed (an OOM kill,
// its node losing power) after a seeded number of requests through the
// forge's Service, then started again as a kubelet restarts a container;
// the upgrade PRs it opens then are one per change, in any state, with no
// bot branch lacking its PR (CHAOS_SEED picks another moment). A proxy
// between the Service and the Gitea harness counts the requests and
// passes everything on unchanged; the restart is the test's.
//
// The test is behind the build tag loop so that `go test ./...` does not
// run it beside every other package; `make loop` runs it alone and
// `make test` runs that target.
package loop
