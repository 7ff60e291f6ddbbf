// Package e2e holds the end-to-end tests of the rendered repo as it is
// deployed: what the cluster and Woodpecker run (the hl-bot Deployment,
// every Woodpecker step whose image is hl) runs here from hl's real image
// (e2e/hlimage), with exactly its rendered command, arguments,
// environment and mounted Secrets (internal/asrendered), against the real
// servers (Gitea, Helm repositories, an OCI registry, kube-apiserver).
//
// The package's non-test files are the support the tests share and the
// loop test (e2e/loop) imports: Render (an hl.yaml rendered with a fresh
// age key and the test servers as mirrors), Pod (a rendered workload as an
// asrendered.PodRun, its secrets/ decrypted from the repo as the
// hl-secrets plugin does), StartService (the Service seam), PipelineSteps
// and PullRequest (the rendered pipelines' steps and the CI_* metadata a
// Woodpecker server gives them), Git, CommitAll and OpenPath.
// e2e/hlimage builds and extracts hl's image once for every test binary.
//
// Seams — where a test stands in for the cluster or Woodpecker, each also
// named in the doc comment of the test that uses it:
//
//   - Runtime: no container engine or kubelet; asrendered runs a container
//     as a process chrooted into the extracted image, in the host's
//     network and PID namespaces (its doc lists what differs: no
//     capability dropping, seccomp, cgroups, probes, restarts).
//   - Services: no cluster DNS or kube-proxy. StartService listens on a
//     loopback address of its own at the Service's rendered port and
//     forwards to a harness; the Service's names map to that address in
//     the run's /etc/hosts. A pod's own port binds on the host.
//   - Secrets: the repo's SOPS files are decrypted by the image's own hl
//     (asrendered.DecryptSecrets, the hl-secrets plugin's command); the
//     cluster-made sops-age Secret (hl bootstrap cluster) is built by the
//     test from the homelab's age key.
//   - Woodpecker: no server, agent or clone step. The clone is a local
//     git clone in the workspace; the CI_* metadata is what the test gives
//     (PullRequest.CI); what the Kubernetes backend would add to the pod
//     (backend_options' native secrets and service account) is done by
//     asrendered.StepKube from the rendered agent settings, the rendered
//     Secrets of the pipeline namespace and a token the real API server
//     issues for the rendered ServiceAccount; pipeline `when:` filters
//     are not evaluated.
//   - Metal: no nodes and no `hl metal serve` on the home network: the
//     rollout step runs against a real API server (kube-apiserver from
//     the control-plane harness, Node objects made Ready by the test)
//     through cordon, drain and the node's k3s password, and stops at
//     marking the reinstall (metal's own tests drive the rollout against
//     a real sshd, the PXE test installs a VM).
//   - Webhooks: the test delivers Gitea's webhook payload to the bot
//     itself, signed with the rendered secret, instead of Gitea calling
//     the in-cluster Service.
//
// Every test needs root (mount namespaces, overlay, chroot) and fails
// without it, never skips.
package e2e
