// Package config owns the hl.yaml model: the typed Homelab document, strict
// loading with file:line:column and field paths, defaults (applied in one
// place), validation that reports every problem in one pass, versioned
// migrations and the JSON schema generated from these types.
package config

// APIVersion and Kind identify the current hl.yaml format.
const (
	APIGroup   = "hl.dev"
	Version    = "v1alpha1"
	APIVersion = APIGroup + "/" + Version
	Kind       = "Homelab"
)

// FileName is hl.yaml's name at the root of a rendered repo.
const FileName = "hl.yaml"

// Homelab is the whole hl.yaml document.
type Homelab struct {
	APIVersion string   `json:"apiVersion" yaml:"apiVersion" jsonschema:"enum=hl.dev/v1alpha1"`
	Kind       string   `json:"kind" yaml:"kind" jsonschema:"enum=Homelab"`
	Metadata   Metadata `json:"metadata" yaml:"metadata"`
	Spec       Spec     `json:"spec" yaml:"spec"`
}

// Metadata names the homelab.
type Metadata struct {
	// Name of the homelab: a DNS label, used for the cluster and repo names.
	Name string `json:"name" yaml:"name"`
}

// Spec is everything hl renders from.
type Spec struct {
	// Domain under which every app gets a hostname (app.domain).
	Domain string `json:"domain" yaml:"domain"`
	// Timezone as an IANA name, e.g. Europe/Berlin.
	Timezone string `json:"timezone,omitempty" yaml:"timezone,omitempty"`
	// Email for ACME (Let's Encrypt) registration and alerts.
	Email      string     `json:"email" yaml:"email"`
	Network    Network    `json:"network" yaml:"network"`
	Metal      Metal      `json:"metal" yaml:"metal"`
	Kubernetes Kubernetes `json:"kubernetes,omitempty" yaml:"kubernetes,omitempty"`
	Forge      Forge      `json:"forge" yaml:"forge"`
	// DNS says where external-dns writes the records of spec.domain and how
	// cert-manager proves the domain to Let's Encrypt (DNS-01).
	DNS DNS `json:"dns,omitempty" yaml:"dns,omitempty"`
	// Apps switches catalog components on or off and overrides their values.
	// Keys are catalog component names; components not listed keep their
	// catalog default.
	Apps    map[string]App `json:"apps,omitempty" yaml:"apps,omitempty"`
	Secrets Secrets        `json:"secrets" yaml:"secrets"`
	Mirrors Mirrors        `json:"mirrors,omitempty" yaml:"mirrors,omitempty"`
	Bot     Bot            `json:"bot,omitempty" yaml:"bot,omitempty"`
	// SLO lists availability objectives; monitoring renders recording and
	// burn-rate alerting rules from them.
	SLO []SLO `json:"slo,omitempty" yaml:"slo,omitempty"`
	// Alerting says who Alertmanager notifies. Without receivers every
	// alert goes nowhere.
	Alerting Alerting `json:"alerting,omitempty" yaml:"alerting,omitempty"`
	// People get an account in single sign-on (Dex), and through it in
	// every app that signs in there. Each gets a generated password, kept
	// SOPS-encrypted in platform/sso/secrets/dex-people.sops.yaml.
	People []Person `json:"people,omitempty" yaml:"people,omitempty"`
	// Validation tunes `hl validate` for this repo (kept here so CI and
	// humans run the same policy set).
	Validation Validation `json:"validation,omitempty" yaml:"validation,omitempty"`
}

// Network describes the node network.
type Network struct {
	// NodeCIDR is the LAN the nodes live on, e.g. 192.168.1.0/24.
	NodeCIDR string `json:"nodeCIDR" yaml:"nodeCIDR"`
	Gateway  string `json:"gateway" yaml:"gateway"`
	// DNSServers the nodes resolve with.
	DNSServers []string `json:"dnsServers,omitempty" yaml:"dnsServers,omitempty"`
	// LoadBalancerRange is the inclusive range handed to LoadBalancer
	// services, "first-last", e.g. 192.168.1.220-192.168.1.239.
	LoadBalancerRange string `json:"loadBalancerRange" yaml:"loadBalancerRange"`
	// ControlPlaneVIP is the floating Kubernetes API address (kube-vip).
	ControlPlaneVIP string `json:"controlPlaneVIP" yaml:"controlPlaneVIP"`
}

// DHCP modes of the PXE controller.
const (
	DHCPProxy = "proxy"
	DHCPFull  = "full"
)

// Operating systems: the metal installer supports Debian. Fedora is named
// only to refuse it with the way out (no Fedora netboot image is pinned).
const (
	OSDebian = "debian"
	OSFedora = "fedora"
)

// Node roles.
const (
	RoleServer = "server"
	RoleAgent  = "agent"
)

// Metal describes the machines and how they are installed.
type Metal struct {
	PXE PXE `json:"pxe" yaml:"pxe"`
	OS  OS  `json:"os,omitempty" yaml:"os,omitempty"`
	// SSHAuthorizedKeys are installed for the admin user on every node.
	SSHAuthorizedKeys []string `json:"sshAuthorizedKeys" yaml:"sshAuthorizedKeys"`
	Nodes             []Node   `json:"nodes" yaml:"nodes"`
}

// PXE is the network-boot controller.
type PXE struct {
	// Address of the host running `hl metal serve` (inside the node CIDR
	// unless DHCP is relayed).
	Address string `json:"address" yaml:"address"`
	// DHCPMode is proxy (an existing router keeps handing out leases) or full
	// (hl's dnsmasq is the DHCP server).
	DHCPMode string `json:"dhcpMode,omitempty" yaml:"dhcpMode,omitempty" jsonschema:"enum=proxy,enum=full"`
	// Port of the HTTP server (default 8080).
	Port int `json:"port,omitempty" yaml:"port,omitempty" jsonschema:"minimum=1,maximum=65535"`
}

// OS selects the operating system installed on nodes.
type OS struct {
	Name    string `json:"name,omitempty" yaml:"name,omitempty" jsonschema:"enum=debian"`
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
}

// Node is one machine.
type Node struct {
	Name string `json:"name" yaml:"name"`
	Role string `json:"role" yaml:"role" jsonschema:"enum=server,enum=agent"`
	// MAC of the PXE-booting interface; normalised to lower case with colons.
	MAC string `json:"mac" yaml:"mac"`
	IP  string `json:"ip" yaml:"ip"`
	// Disk to install to, e.g. /dev/sda or /dev/nvme0n1.
	Disk string `json:"disk,omitempty" yaml:"disk,omitempty"`
	// Interface name in the installed OS, e.g. eno1.
	Interface string `json:"interface,omitempty" yaml:"interface,omitempty"`
}

// Kubernetes holds k3s settings.
type Kubernetes struct {
	// K3sVersion, e.g. v1.36.5+k3s1.
	K3sVersion string `json:"k3sVersion,omitempty" yaml:"k3sVersion,omitempty"`
	// Disable lists k3s packaged components to turn off because a catalog
	// component replaces them.
	Disable []string `json:"disable,omitempty" yaml:"disable,omitempty"`
	// SecretsEncryption turns on encryption at rest of Secrets (default true).
	SecretsEncryption *bool  `json:"secretsEncryption,omitempty" yaml:"secretsEncryption,omitempty"`
	ClusterCIDR       string `json:"clusterCIDR,omitempty" yaml:"clusterCIDR,omitempty"`
	ServiceCIDR       string `json:"serviceCIDR,omitempty" yaml:"serviceCIDR,omitempty"`
}

// Forge types.
const (
	ForgeGitea  = "gitea"
	ForgeGitHub = "github"
)

// Forge is where the rendered repo lives.
type Forge struct {
	Type          string `json:"type" yaml:"type" jsonschema:"enum=gitea,enum=github"`
	URL           string `json:"url" yaml:"url"`
	Owner         string `json:"owner" yaml:"owner"`
	Repo          string `json:"repo" yaml:"repo"`
	DefaultBranch string `json:"defaultBranch,omitempty" yaml:"defaultBranch,omitempty"`
}

// App switches one catalog component and overrides its values.
type App struct {
	Enabled *bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// Hostname overrides the default <app>.<domain>.
	Hostname string `json:"hostname,omitempty" yaml:"hostname,omitempty"`
	// Values are merged over the component's rendered values.yaml.
	Values map[string]any `json:"values,omitempty" yaml:"values,omitempty"`
}

// Secrets configures generated credentials.
type Secrets struct {
	// AgeRecipients every SOPS file is encrypted for (age1...).
	AgeRecipients []string `json:"ageRecipients" yaml:"ageRecipients"`
	// RotateAfter is the default rotation period, e.g. 90d.
	RotateAfter Duration `json:"rotateAfter,omitempty" yaml:"rotateAfter,omitempty"`
}

// Mirrors rewrites upstream locations (air-gapped or cached installs).
type Mirrors struct {
	// Charts rewrites chart repository URLs (HTTP or oci://) by prefix.
	Charts []Mirror `json:"charts,omitempty" yaml:"charts,omitempty"`
	// Registries rewrites image registries by prefix, e.g. docker.io.
	Registries []Mirror `json:"registries,omitempty" yaml:"registries,omitempty"`
}

// Mirror maps one prefix to another.
type Mirror struct {
	From string `json:"from" yaml:"from"`
	To   string `json:"to" yaml:"to"`
}

// Update types the bot classifies.
const (
	UpdateMajor  = "major"
	UpdateMinor  = "minor"
	UpdatePatch  = "patch"
	UpdateDigest = "digest"
)

// Bot is the companion bot's policy.
type Bot struct {
	// Schedule is a cron expression (5 fields or a descriptor like @daily).
	Schedule string `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	// Timezone the schedule is read in (IANA); defaults to spec.timezone.
	Timezone string `json:"timezone,omitempty" yaml:"timezone,omitempty"`
	// Automerge lists update types merged once checks pass.
	Automerge []string `json:"automerge,omitempty" yaml:"automerge,omitempty" jsonschema:"uniqueItems=true"`
	// MinimumReleaseAge waits before proposing a freshly published version.
	MinimumReleaseAge Duration `json:"minimumReleaseAge,omitempty" yaml:"minimumReleaseAge,omitempty"`
	Limits            Limits   `json:"limits,omitempty" yaml:"limits,omitempty"`
	Groups            []Group  `json:"groups,omitempty" yaml:"groups,omitempty"`
	Ignore            []Ignore `json:"ignore,omitempty" yaml:"ignore,omitempty"`
	// Rules set policy per package; the first rule matching a package
	// applies.
	Rules []Rule `json:"rules,omitempty" yaml:"rules,omitempty"`
	// HelmRepositories are the URLs of the chart repositories Chart.yaml
	// dependencies name by alias ("@bitnami", "alias:bitnami"), as
	// `helm repo add NAME URL` did where the chart was written.
	HelmRepositories map[string]string `json:"helmRepositories,omitempty" yaml:"helmRepositories,omitempty"`
	// RotateDataKeys re-encrypts every SOPS file with a fresh data key on
	// this period (same values); empty disables it.
	RotateDataKeys Duration `json:"rotateDataKeys,omitempty" yaml:"rotateDataKeys,omitempty"`
}

// Limits bounds how much the bot opens.
type Limits struct {
	MaxOpenPRs    int `json:"maxOpenPRs,omitempty" yaml:"maxOpenPRs,omitempty" jsonschema:"minimum=0"`
	MaxPRsPerRun  int `json:"maxPRsPerRun,omitempty" yaml:"maxPRsPerRun,omitempty" jsonschema:"minimum=0"`
	MaxPRsPerHour int `json:"maxPRsPerHour,omitempty" yaml:"maxPRsPerHour,omitempty" jsonschema:"minimum=0"`
}

// Group batches matching updates into one PR.
type Group struct {
	Name string `json:"name" yaml:"name"`
	// UpdateTypes matched (empty: all).
	UpdateTypes []string `json:"updateTypes,omitempty" yaml:"updateTypes,omitempty"`
	// Packages are glob patterns on package names (empty: all).
	Packages []string `json:"packages,omitempty" yaml:"packages,omitempty"`
}

// Ignore suppresses updates.
type Ignore struct {
	// Package is a glob on the package name.
	Package string `json:"package" yaml:"package"`
	// UpdateTypes ignored (empty: all).
	UpdateTypes []string `json:"updateTypes,omitempty" yaml:"updateTypes,omitempty"`
	// Versions is a semver constraint of versions never proposed.
	Versions string `json:"versions,omitempty" yaml:"versions,omitempty"`
}

// Rule is policy for the packages it matches.
type Rule struct {
	// Packages are glob patterns on package names (image repositories,
	// chart names, owner/repo).
	Packages []string `json:"packages" yaml:"packages"`
	// Versioning orders the packages' versions: semver, docker, k3s,
	// kubernetes (one minor at a time), loose, or regex:<pattern> whose
	// named groups major, minor, patch, build, revision, prerelease and
	// compatibility read a tag (e.g. linuxserver's 4.0.5-ls219:
	// regex:^(?<major>\d+)\.(?<minor>\d+)\.(?<patch>\d+)-ls(?<build>\d+)$).
	Versioning string `json:"versioning,omitempty" yaml:"versioning,omitempty"`
}

// BotVersionings are the named versioning schemes a rule may pick
// (bot/versioning registers them; its tests hold the lists equal).
var BotVersionings = []string{"semver", "docker", "k3s", "kubernetes", "loose"}

// RegexVersioningPrefix starts a versioning made from a pattern.
const RegexVersioningPrefix = "regex:"

// DNS providers.
const (
	// DNSCloudflare: a Cloudflare zone, through its API with a token.
	DNSCloudflare = "cloudflare"
	// DNSRFC2136: the homelab's own authoritative DNS server (BIND, Knot,
	// PowerDNS, a router's), through dynamic updates signed with a TSIG
	// key. No cloud account.
	DNSRFC2136 = "rfc2136"
)

// DNS is the DNS provider.
type DNS struct {
	// Provider is cloudflare (the default) or rfc2136.
	Provider string `json:"provider,omitempty" yaml:"provider,omitempty" jsonschema:"enum=cloudflare,enum=rfc2136"`
	// RFC2136 configures the rfc2136 provider.
	RFC2136 *RFC2136 `json:"rfc2136,omitempty" yaml:"rfc2136,omitempty"`
}

// RFC2136 is a DNS server that takes dynamic updates (RFC 2136) signed
// with a TSIG key (RFC 8945). hl generates the key's secret; the server
// is configured with it once (system/cert-manager/README.md).
type RFC2136 struct {
	// Server is the primary server's IP address (NetworkPolicies allow
	// the updates to it by address).
	Server string `json:"server" yaml:"server"`
	// Port is its DNS port (default 53).
	Port int `json:"port,omitempty" yaml:"port,omitempty" jsonschema:"minimum=1,maximum=65535"`
	// Zone is the zone the records go into (default spec.domain); it must
	// contain spec.domain.
	Zone string `json:"zone,omitempty" yaml:"zone,omitempty"`
	// TSIGKeyName is the name of the key the server accepts updates
	// signed with (default hl-<metadata.name>).
	TSIGKeyName string `json:"tsigKeyName,omitempty" yaml:"tsigKeyName,omitempty"`
	// TSIGAlgorithm is the key's HMAC (default hmac-sha256).
	TSIGAlgorithm string `json:"tsigAlgorithm,omitempty" yaml:"tsigAlgorithm,omitempty" jsonschema:"enum=hmac-sha256,enum=hmac-sha512"`
}

// Person is someone who signs in to the homelab's apps.
type Person struct {
	// Name is the login: lower-case letters, digits and '-'.
	Name string `json:"name" yaml:"name"`
	// Email is where the apps reach them; Dex signs them in with it.
	Email string `json:"email" yaml:"email"`
}

// SLO is an availability objective for one app.
type SLO struct {
	App string `json:"app" yaml:"app"`
	// Availability target in percent, e.g. 99.9.
	Availability float64 `json:"availability" yaml:"availability" jsonschema:"exclusiveMinimum=0,exclusiveMaximum=100"`
	// Window the target is measured over (default 30d).
	Window Duration `json:"window,omitempty" yaml:"window,omitempty"`
}

// Validation tunes hl validate.
type Validation struct {
	// Policies maps a policy id to error, warning or off.
	Policies map[string]string `json:"policies,omitempty" yaml:"policies,omitempty"`
	// PrivilegedAllowed lists namespace/name workloads allowed to run
	// privileged containers.
	PrivilegedAllowed []string `json:"privilegedAllowed,omitempty" yaml:"privilegedAllowed,omitempty"`
}

// Alerting is where Alertmanager sends the alerts of monitoring.
type Alerting struct {
	// Receivers are the people or systems notified: each one ntfy, email
	// or webhook. Their credentials live in
	// system/monitoring/secrets/alertmanager-receivers.sops.yaml.
	Receivers []Receiver `json:"receivers,omitempty" yaml:"receivers,omitempty"`
	Route     AlertRoute `json:"route,omitempty" yaml:"route,omitempty"`
}

// Receiver is one destination of notifications; set exactly one of ntfy,
// email and webhook.
type Receiver struct {
	// Name routes refer to (a DNS label; "null" is taken).
	Name    string           `json:"name" yaml:"name"`
	Ntfy    *NtfyReceiver    `json:"ntfy,omitempty" yaml:"ntfy,omitempty"`
	Email   *EmailReceiver   `json:"email,omitempty" yaml:"email,omitempty"`
	Webhook *WebhookReceiver `json:"webhook,omitempty" yaml:"webhook,omitempty"`
}

// NtfyReceiver publishes to a topic of an ntfy server (push notifications
// to the ntfy app).
type NtfyReceiver struct {
	// URL of the ntfy server, e.g. https://ntfy.sh or your own.
	URL string `json:"url" yaml:"url"`
	// Topic notifications are published to.
	Topic string `json:"topic" yaml:"topic"`
	// Priority of the notifications (default high); route critical alerts
	// to a receiver with priority urgent to make the phone ring through.
	Priority string `json:"priority,omitempty" yaml:"priority,omitempty" jsonschema:"enum=min,enum=low,enum=default,enum=high,enum=urgent"`
	// Auth is token (default: an access token, key <name>-token of the
	// receivers' secret) or none (the topic accepts anonymous publishing).
	Auth string `json:"auth,omitempty" yaml:"auth,omitempty" jsonschema:"enum=token,enum=none"`
}

// EmailReceiver sends mail through an SMTP server.
type EmailReceiver struct {
	// Smarthost is the SMTP server as host:port, e.g. smtp.example.com:587
	// (port 465 speaks TLS from the start, other ports STARTTLS).
	Smarthost string `json:"smarthost" yaml:"smarthost"`
	// From is the sender address.
	From string `json:"from" yaml:"from"`
	// To are the recipients.
	To []string `json:"to" yaml:"to"`
	// Username to log in with; its password is key <name>-password of the
	// receivers' secret. Empty: the server takes mail without login.
	Username string `json:"username,omitempty" yaml:"username,omitempty"`
	// RequireTLS refuses to send without TLS (default true).
	RequireTLS *bool `json:"requireTLS,omitempty" yaml:"requireTLS,omitempty"`
}

// WebhookReceiver posts Alertmanager's JSON to a URL (chat bridges,
// home automation, your own scripts).
type WebhookReceiver struct {
	URL string `json:"url" yaml:"url"`
	// Auth is none (default) or bearer: an Authorization: Bearer token,
	// key <name>-token of the receivers' secret.
	Auth string `json:"auth,omitempty" yaml:"auth,omitempty" jsonschema:"enum=bearer,enum=none"`
}

// AlertRoute groups alerts into notifications and picks receivers.
type AlertRoute struct {
	// Receiver gets every alert no route below takes (default: the first
	// receiver).
	Receiver string `json:"receiver,omitempty" yaml:"receiver,omitempty"`
	// GroupBy are the labels alerts are batched by into one notification
	// (default alertname, namespace).
	GroupBy []string `json:"groupBy,omitempty" yaml:"groupBy,omitempty"`
	// GroupWait is how long a new group waits for more alerts before its
	// first notification (default 30s).
	GroupWait Duration `json:"groupWait,omitempty" yaml:"groupWait,omitempty"`
	// GroupInterval is how long a group waits before notifying about
	// alerts added to it (default 5m).
	GroupInterval Duration `json:"groupInterval,omitempty" yaml:"groupInterval,omitempty"`
	// RepeatInterval is how often a still-firing group is sent again
	// (default 12h).
	RepeatInterval Duration `json:"repeatInterval,omitempty" yaml:"repeatInterval,omitempty"`
	// Routes send alerts by severity, first match first.
	Routes []SeverityRoute `json:"routes,omitempty" yaml:"routes,omitempty"`
}

// SeverityRoute sends alerts of some severities to one receiver.
type SeverityRoute struct {
	// Severities matched: critical, warning or info.
	Severities []string `json:"severities" yaml:"severities"`
	Receiver   string   `json:"receiver" yaml:"receiver"`
	// Continue matching the routes after this one (and the default
	// receiver), so an alert can reach more than one receiver.
	Continue bool `json:"continue,omitempty" yaml:"continue,omitempty"`
}
