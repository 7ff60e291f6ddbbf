// Package testcharts owns the Helm charts hl's tests render a generated
// repository with, offline: one chart folder for every chart of
// templates/catalog.yaml, under the catalog's name and version, and two
// ways to hand them to a test — a chart cache in the layout `hl validate`
// reads ((*Set).Cache, internal/chartcache) and Helm repositories served
// over HTTP and OCI ((*Set).Serve, with the spec.mirrors.charts entries
// that point a rendered repo at them).
//
// Catalog(t) builds each chart as one of three kinds, recorded in
// Chart.Kind so tests and notes can say which they rendered:
//
//   - Real: the upstream chart itself, where it ships in a Go module
//     (downloaded with `go mod download -json`): cert-manager v1.19.1 from
//     github.com/cert-manager/cert-manager@v1.19.1 deploy/charts/cert-manager
//     (its Chart.template.yaml filled in as the release does), external-dns
//     1.19.0 from sigs.k8s.io/external-dns@v0.20.0 charts/external-dns,
//     metallb 0.16.2 from go.universe.tf/metallb@v0.16.2 charts/metallb
//     (with its crds subchart and vendored frr-k8s archive) and volsync
//     0.14.0 from github.com/backube/volsync@v0.14.0 helm/volsync.
//   - ContentStandIn: a chart written here that renders real objects under
//     the names the upstream chart gives them: argo-cd, gitea and traefik
//     (below, gitea's doc in gitea.go, traefik's in traefik.go, with the
//     traefik.io CRDs from github.com/traefik/traefik/v3@v3.7.11), and
//     kube-prometheus-stack as its CRDs
//     only (crds/ from github.com/prometheus-operator/prometheus-operator@v0.86.1
//     example/prometheus-operator-crd, the operator release the chart
//     installs), so the ServiceMonitors, PrometheusRules and Probes hl
//     renders apply. A content stand-in is a seam: what it
//     renders is what hl's values make of it here, not what the upstream
//     chart would render in every detail.
//   - EmptyStandIn: the catalog's name and version and no templates, so
//     only the wrapper chart's own manifests and values render: every
//     other chart. longhorn's module is not served at the catalog's
//     version, loki's chart ships in
//     github.com/grafana/loki/v3, which the project does not use (AGPL),
//     and kube-prometheus-stack, kured, woodpecker, zot, dex and traefik
//     keep their charts in chart repositories of their own.
//
// A builder knows the one version it provides; when the catalog pins
// another, Catalog fails the test and names the chart, so a bump of the
// catalog cannot silently render an old chart.
//
// # The argo-cd stand-in
//
// Chart argo-cd 9.1.3 (the catalog's pin of argo-helm's chart) with
// appVersion v3.2.11 — the Argo CD release internal/argocd/testserver runs
// — built by BuildArgoCD from that release's manifests/install.yaml in
// the github.com/argoproj/argo-cd/v3 module. The CRDs go into the chart's
// crds/ folder; every other object of install.yaml becomes a template,
// with the values hl sets mapped the way argo-helm's chart maps them
// (checked once, when this was written, against argo-helm's
// charts/argo-cd at 9.1.3 by rendering both with the bootstrap and
// system/argocd values of the full fixture and with the defaults: the same
// kinds and names but for the differences listed below, identical
// argocd-cm, argocd-cmd-params-cm and argocd-rbac-cm data, the same
// containers, resources, env names, volumes and mounts per workload; the
// tests cannot repeat that check, argo-helm's chart is not to be had
// offline):
//
//   - configs.cm → data of argocd-cm: install.yaml's data and argo-helm's
//     defaults (application.instanceLabelKey argocd.argoproj.io/instance,
//     admin.enabled, exec.enabled, timeout.reconciliation 180s,
//     timeout.hard.reconciliation 0s, statusbadge.enabled,
//     application.sync.impersonation.enabled) as values defaults, url
//     https://<global.domain> preset, empty values dropped;
//     configs.cm.create and .annotations.
//   - configs.params → argocd-cmd-params-cm, over argo-helm's presets
//     (repo.server, redis.server when redis.enabled, server.dex.server and
//     server.dex.server.strict.tls when dex.enabled, server.repo.server.strict.tls,
//     applicationsetcontroller.enable.leader.election, <component>.log.format
//     and .log.level); configs.params.create and .annotations.
//   - configs.rbac → argocd-rbac-cm (policy.default, policy.csv, scopes,
//     policy.matchMode defaults as argo-helm); .create and .annotations.
//   - configs.cmp.create and configs.cmp.plugins → argocd-cmp-cm, one
//     <plugin>.yaml ConfigManagementPlugin per plugin, its spec the
//     plugin's value.
//   - configs.secret.createSecret: false → no argocd-secret (true: the
//     empty argocd-secret of install.yaml; no other configs.secret key is
//     mapped).
//   - global.domain → argocd-cm url and the Ingress host;
//     global.networkPolicy.create → install.yaml's NetworkPolicies, named
//     <workload> as argo-helm names them (install.yaml: <workload>-network-policy).
//   - For each component (controller, server, repoServer, applicationSet,
//     notifications, redis, dex): <component>.resources on its container,
//     .env and .volumeMounts appended to the container's, .volumes,
//     .extraContainers and .initContainers appended to the pod's;
//     install.yaml's copyutil init containers get
//     repoServer.copyutil.resources (dex.initImage.resources) or else the
//     component's resources, as in argo-helm. Containers carry argo-helm's names (application-controller,
//     applicationset-controller, server, repo-server, notifications-controller,
//     redis, dex-server; install.yaml: argocd-<…> and dex).
//   - server.ingress (enabled, hostname, ingressClassName, annotations,
//     path, pathType, tls, extraTls) → Ingress argocd-server to Service
//     argocd-server port 80, TLS secret argocd-server-tls.
//   - dex.enabled: false → no dex objects; notifications.enabled: false →
//     no notifications objects (ConfigMap, Secret, Deployment, RBAC,
//     metrics Service); redis.enabled: false → no redis objects.
//   - <component>.metrics.enabled → the metrics Service argo-helm names
//     <workload>-metrics: argocd-application-controller-metrics
//     (install.yaml: argocd-metrics), argocd-server-metrics,
//     argocd-repo-server-metrics and argocd-applicationset-controller-metrics
//     (install.yaml serves those two ports on the main Services, which keep
//     only their other ports here), argocd-notifications-controller-metrics;
//     with .metrics.serviceMonitor.enabled (.interval, .additionalLabels)
//     and the cluster serving monitoring.coreos.com/v1, as argo-helm
//     checks, a ServiceMonitor <workload>.
//   - applicationSet.allowAnyNamespace → the applicationset-controller's
//     ClusterRole and ClusterRoleBinding (argo-helm renders them only then).
//   - redisSecretInit.enabled and .resources → argo-helm's pre-install,
//     pre-upgrade hook Job argocd-redis-secret-init (with its
//     ServiceAccount, Role and RoleBinding — install.yaml's argocd-redis
//     ones, renamed) running install.yaml's secret-init init container of
//     the redis Deployment, which is dropped; redis runs as the default
//     ServiceAccount, as in argo-helm.
//
// Every object carries argo-helm's labels (helm.sh/chart argo-cd-9.1.3,
// app.kubernetes.io/instance argocd, managed-by Helm, part-of argocd,
// version v3.2.11) besides install.yaml's, and the instance label joins
// the selectors (but redis's Deployment selector, as in argo-helm).
// Namespaced objects get the release namespace.
//
// Differences from argo-helm 9.1.3 a test must not rely on:
//
//   - Only release name "argocd" renders (ArgoCDRelease, what hl uses);
//     object names are fixed, not derived from the release.
//   - Images are install.yaml's (quay.io/argoproj/argocd:v3.2.11, its redis
//     and dex images); argo-helm 9.1.3 defaults to Argo CD v3.2.0. No
//     image, replicas, probes, affinity, securityContext or service-type
//     values are mapped; pod specs are install.yaml's.
//   - argo-helm also renders ClusterRole and ClusterRoleBinding
//     argocd-notifications-controller, an empty Role and RoleBinding
//     argocd-repo-server, ConfigMap argocd-redis-health-configmap (redis
//     health probes) and, by default, its CRDs from templates/ (crds.install)
//     with helm.sh/resource-policy: keep; the stand-in renders none of
//     these and ships the CRDs in crds/ (rendered with --include-crds, as
//     kustomize's includeCRDs, Argo CD and hl validate do).
//   - Service port names are install.yaml's (metrics, server, webhook;
//     argo-helm: http-metrics, tcp-repo-server, http-webhook) and the
//     ServiceMonitors scrape port metrics.
//   - install.yaml's argocd-redis init container is gone and the hook Job
//     replaces it: without a kubelet the Job never completes, and Argo CD
//     runs a Helm pre-install hook as a PreSync hook, so an Argo CD sync of
//     this chart waits on it as it would on argo-helm's (a test that syncs
//     it needs redisSecretInit.enabled: false or must finish the Job itself,
//     and says so).
//
// No pod of any of these charts runs here; rendering, applying and syncing
// them is real, what their containers would do is not.
package testcharts
