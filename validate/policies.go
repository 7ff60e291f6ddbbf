package validate

import (
	"fmt"
	"sort"
	"strings"
)

// Severity of a finding.
type Severity string

// Severities. Off drops a policy's findings.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityOff     Severity = "off"
)

// ParseSeverity reads error, warning or off.
func ParseSeverity(s string) (Severity, error) {
	switch Severity(strings.ToLower(strings.TrimSpace(s))) {
	case SeverityError:
		return SeverityError, nil
	case SeverityWarning, "warn":
		return SeverityWarning, nil
	case SeverityOff, "disabled", "ignore":
		return SeverityOff, nil
	}
	return "", fmt.Errorf("severity %q: want error, warning or off", s)
}

// Policy ids. The CLI and hl.yaml (spec.validation.policies) refer to them.
const (
	PolicyYAMLSyntax         = "yaml-syntax"
	PolicySchema             = "schema"
	PolicyUnknownKind        = "unknown-kind"
	PolicyChartMissing       = "chart-missing"
	PolicyKustomizeBuild     = "kustomize-build"
	PolicyHelmRender         = "helm-render"
	PolicyPlaintextSecret    = "plaintext-secret"
	PolicyDefaultCredential  = "default-credential"
	PolicyUnpinnedImage      = "unpinned-image"
	PolicyUnpinnedChart      = "unpinned-chart"
	PolicyDefaultDeny        = "default-deny"
	PolicyWorkloadResources  = "workload-resources"
	PolicyPrivileged         = "privileged"
	PolicyIngressTLS         = "ingress-tls"
	PolicyArgoCDTarget       = "argocd-target"
	PolicyDuplicateResource  = "duplicate-resource"
	PolicyWoodpeckerSchema   = "woodpecker-schema"
	PolicySOPSRecipients     = "sops-recipients"
	PolicyServerDryRun       = "server-dry-run"
	PolicyAlertmanagerConfig = "alertmanager-config"
)

// Policy is one check hl validate runs.
type Policy struct {
	ID          string   `json:"id"`
	Description string   `json:"description"`
	Default     Severity `json:"default"`
}

// Policies is every policy, in the order findings are explained in docs.
// Every one is an error by default; hl.yaml's spec.validation.policies (or
// Options.Policies) downgrades one to a warning or turns it off.
var Policies = []Policy{
	{PolicyYAMLSyntax, "a YAML file does not parse", SeverityError},
	{PolicySchema, "a manifest has an unknown field, a wrong type or misses a required field", SeverityError},
	{PolicyUnknownKind, "a manifest's apiVersion/kind is neither a Kubernetes kind of the cluster's version nor a known CRD", SeverityError},
	{PolicyChartMissing, "a wrapper chart's dependency is not in the chart cache (run hl charts pull)", SeverityError},
	{PolicyKustomizeBuild, "a kustomization does not build", SeverityError},
	{PolicyHelmRender, "a wrapper chart does not load or render", SeverityError},
	{PolicyPlaintextSecret, "a Secret or credential is committed unencrypted (use a *.sops.yaml file)", SeverityError},
	{PolicyDefaultCredential, "a credential is a well-known default or too weak", SeverityError},
	{PolicyUnpinnedImage, "a container image has no tag, or the tag latest, and no digest", SeverityError},
	{PolicyUnpinnedChart, "a chart version is a range or missing instead of one exact version", SeverityError},
	{PolicyDefaultDeny, "a namespace with workloads has no default-deny ingress NetworkPolicy", SeverityError},
	{PolicyWorkloadResources, "a container has no cpu or memory request", SeverityError},
	{PolicyPrivileged, "a privileged container outside spec.validation.privilegedAllowed", SeverityError},
	{PolicyIngressTLS, "an Ingress host is not covered by TLS", SeverityError},
	{PolicyArgoCDTarget, "an Argo CD Application or ApplicationSet points at a path or repo that does not exist", SeverityError},
	{PolicyDuplicateResource, "the same kind/namespace/name is rendered by more than one app (or twice by one)", SeverityError},
	{PolicyWoodpeckerSchema, "a Woodpecker pipeline does not match Woodpecker's schema", SeverityError},
	{PolicySOPSRecipients, "SOPS age recipients differ from hl.yaml's spec.secrets.ageRecipients", SeverityError},
	{PolicyAlertmanagerConfig, "Alertmanager's configuration (alertmanager.config of kube-prometheus-stack's values) does not load with Alertmanager's config package; a warning when no receiver notifies anybody", SeverityError},
	{PolicyServerDryRun, "with --server: the API server rejects a manifest in a dry-run apply (CEL rules of CRDs, value ranges, immutable fields, admission)", SeverityError},
}

// LookupPolicy returns the policy with id.
func LookupPolicy(id string) (Policy, bool) {
	for _, p := range Policies {
		if p.ID == id {
			return p, true
		}
	}
	return Policy{}, false
}

// PolicyIDs returns every policy id, sorted.
func PolicyIDs() []string {
	ids := make([]string, len(Policies))
	for i, p := range Policies {
		ids[i] = p.ID
	}
	sort.Strings(ids)
	return ids
}
