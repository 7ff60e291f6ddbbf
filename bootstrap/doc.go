// Package bootstrap owns seeding a forge and a cluster with a rendered
// homelab.
//
// hl bootstrap gitea (Run): for Gitea it creates the organisation and the
// private repository, the bot user with a scoped token, Argo CD's reader
// (a user with read access and a read:repository token: Argo CD clones
// over HTTP, from inside the cluster when the forge is the homelab's own —
// no deploy key, no SSH route), the Argo CD, bot and Woodpecker webhooks,
// Woodpecker's OAuth application (its client ID and secret minted by Gitea
// and written into the repo), the labels the bot uses, pushes the rendered tree as the first commit
// (go-git over HTTP with token auth) and protects the default branch.
//
// hl bootstrap cluster (Cluster): from a kubeconfig to Argo CD syncing:
// namespaces, the age key where it is read, Argo CD's CRDs and Argo CD
// (rendered in-process as hl validate renders), the in-cluster Gitea
// installed before Argo CD needs it and seeded with Run, signed in with
// the administrator credentials the generator made for it, Argo CD's own
// secrets and the root ApplicationSets. It applies server-side (field
// manager hl), so every step is idempotent. What needs running pods —
// waiting for Gitea and reaching it — goes through ClusterOptions.Ready
// and ClusterOptions.Forge: a port-forward in production, the tests' own
// Gitea in tests.
//
// # Steps
//
// A bootstrap is an ordered list of steps. Each step has a Check (is it
// done? what would Apply do?) and an Apply. A run checks every step in
// order and applies only those not done, so a second run reports every
// step unchanged and a run interrupted anywhere (a failed API call, a
// killed process) completes on the next run without duplicates. --dry-run
// only checks.
//
// # Credentials written into the repo
//
// The credentials Gitea holds a copy of (reader and bot tokens, webhook
// secrets) are written SOPS-encrypted into the rendered repo before the first
// commit, next to the files hl render generates:
//
//	system/argocd/secrets/repo-creds.sops.yaml             Argo CD repository Secret (type, url, username, password)
//	system/argocd/secrets/argocd-webhook.sops.yaml         webhook.gogs.secret (+ webhook.gitea.secret alias)
//	platform/woodpecker/secrets/woodpecker-webhook.sops.yaml  secret
//	platform/woodpecker/secrets/woodpecker-forge.sops.yaml    client-id, client-secret (OAuth application)
//	platform/hl-bot/secrets/hl-bot-webhook.sops.yaml        secret
//	platform/hl-bot/secrets/hl-bot-token.sops.yaml          token (+ username, url)
//
// hl render leaves them alone: it either never declared these paths (user
// files to it) or declares them as provided by bootstrap and only lists
// them for Argo CD's hl-secrets plugin. Bootstrap re-renders after writing them (step render), so
// the pushed tree is exactly what `hl render --check` expects. They are
// marked hl.dev/rotatable: false: the value also lives in Gitea, so changing
// it in git alone would break it.
//
// Each Gitea object is created before its file is written. A run stopped
// in between finds the object without a file and replaces it (new key, new
// token, new webhook: Gitea's API sets a webhook secret only on creation;
// the OAuth application keeps its client ID and gets a new secret),
// so no credential exists only on one side. With an age identity the
// stored tokens are verified against Gitea (and replaced when they no
// longer work or point elsewhere) and a lost webhook gets its stored
// secret back.
//
// # What marks a repo as hl's
//
// The repository topic hl-managed (set when hl creates or adopts it) and
// .hl/state.yaml in its tree. An existing empty repository is taken over;
// an existing non-empty one without the topic is refused unless Adopt.
package bootstrap
