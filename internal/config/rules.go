package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/invopop/jsonschema"
)

// A rule is the shape every value of one kind of user string must have.
// hl.yaml's strings end up in YAML, shell, INI, JMESPath, CSV and iPXE
// files; templates quote them, and these rules keep each string to the
// characters its kind needs, so a value that slips past a template's
// quoting still cannot carry a line break, a quote or a comment sign. The
// same pattern goes into the JSON schema (schemaRules), so an editor flags
// what Validate rejects; Validate adds the checks a pattern cannot express
// (label lengths, parsing an address, a key or a cron line).
type rule struct {
	// pattern is anchored and valid both as RE2 and as ECMA-262.
	pattern string
	re      *regexp.Regexp
	maxLen  int
	format  string
}

func newRule(pattern string, maxLen int, format string) *rule {
	return &rule{pattern: pattern, re: regexp.MustCompile(pattern), maxLen: maxLen, format: format}
}

func (r *rule) ok(s string) bool {
	return (r.maxLen == 0 || len(s) <= r.maxLen) && r.re.MatchString(s)
}

const (
	label = `[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?`
	// anyCaseLabel is a DNS label as people write them in e-mail domains
	// and URLs (DNS is case-insensitive).
	anyCaseLabel = `[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?`
	// host is a DNS name, an IPv4 address (also a DNS name by this
	// pattern) or a bracketed IPv6 address, with an optional port.
	host = `(` + anyCaseLabel + `(\.` + anyCaseLabel + `)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?`
	// urlPath is a URL path without query, fragment, percent escapes or
	// "." and ".." segments.
	urlPath = `(/[A-Za-z0-9_~-](\.?[A-Za-z0-9_~-])*)*/?`
	// refPart is a name part that neither starts nor ends with a dot and
	// never holds two dots in a row.
	refPart = `[A-Za-z0-9_-](\.?[A-Za-z0-9_-])*`
	// repoPart is an image repository path component (the OCI
	// distribution grammar, slightly relaxed on separators).
	repoPart = `[a-z0-9]+([._-]+[a-z0-9]+)*`
	// sshKeyTypes are the key types ssh.ParseAuthorizedKey reads.
	sshKeyTypes = `(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com)`
	// sshComment is what an authorized_keys comment may hold here: enough
	// for user@host and the dates key generators add, nothing a shell, a
	// YAML or a kickstart file treats specially.
	sshComment = `[A-Za-z0-9@._+=:,/-]+( [A-Za-z0-9@._+=:,/-]+)*`
	// globChars are path.Match's metacharacters plus the characters of
	// package names (image repositories, chart names, OS images).
	globChars = `[A-Za-z0-9._/:@*?^+\[\]-]`
	// semverAnd is one AND-set of a Masterminds semver constraint: terms
	// like ">=1.2", "~1.2.x", "^2" or a range "1.2 - 1.4" separated by
	// commas or spaces (the ORs are joined with "||").
	semverVer  = `v?[0-9xX*]+(\.[0-9xX*]+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?`
	semverTerm = `(` + semverVer + ` - ` + semverVer + `|(=|!=|>=|<=|>|<|~>|~|\^)? *` + semverVer + `)`
	semverAnd  = semverTerm + `((, *| +)` + semverTerm + `)*`
)

var (
	ruleDNSLabel = newRule(`^`+label+`$`, 63, "")
	ruleFQDN     = newRule(`^`+label+`(\.`+label+`)+$`, 253, "hostname")
	// ruleEmail is a practical subset of RFC 5322 addresses: a dot-atom
	// local part of letters, digits and ._%+- and a DNS domain. No quoted
	// local parts, comments or spaces: the address is written into
	// Grafana's JMESPath rule and Argo CD's RBAC CSV, among others.
	ruleEmail    = newRule(`^[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*@`+anyCaseLabel+`(\.`+anyCaseLabel+`)+$`, 254, "email")
	ruleTimezone = newRule(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`, 64, "")
	ruleIP       = newRule(`^[0-9A-Fa-f.:]+$`, 45, "")
	ruleCIDR     = newRule(`^[0-9A-Fa-f.:]+/[0-9]{1,3}$`, 49, "")
	ruleIPRange  = newRule(`^[0-9A-Fa-f.:]+-[0-9A-Fa-f.:]+$`, 91, "")
	ruleMAC      = newRule(`^([0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})$`, 17, "")
	// ruleDisk is a device path under /dev: segments of a safe charset
	// (by-id and by-path names carry '.', ':' and '_'), none starting with
	// a dot, no "..".
	ruleDisk      = newRule(`^/dev/[A-Za-z0-9_:-](\.?[A-Za-z0-9_:-])*(/[A-Za-z0-9_:-](\.?[A-Za-z0-9_:-])*)*$`, 255, "")
	ruleInterface = newRule(`^[A-Za-z0-9_:@-](\.?[A-Za-z0-9_:@-])*$`, 15, "")
	ruleOSVersion = newRule(`^[0-9A-Za-z]+(\.[0-9A-Za-z]+)*$`, 32, "")
	ruleSSHKey    = newRule(`^`+sshKeyTypes+` [A-Za-z0-9+/]+={0,3}( `+sshComment+`)?$`, 16384, "")
	ruleK3s       = newRule(`^v[0-9]+\.[0-9]+\.[0-9]+\+k3s[0-9]+$`, 64, "")
	// ruleHTTPURL is the forge URL: http(s), a host, an optional port and
	// path; no credentials, query or fragment.
	ruleHTTPURL = newRule(`^https?://`+host+urlPath+`$`, 2048, "uri")
	// ruleChartRepo is a chart repository: http(s) or oci.
	ruleChartRepo = newRule(`^(https?|oci)://`+host+urlPath+`$`, 2048, "uri")
	// ruleRegistry is an image registry prefix: host[:port][/path].
	ruleRegistry = newRule(`^`+anyCaseLabel+`(\.`+anyCaseLabel+`)*(:[0-9]{1,5})?(/`+repoPart+`)*/?$`, 255, "")
	// ruleMirror is what either kind of mirror prefix looks like; which
	// one applies depends on the list (Validate checks that).
	ruleMirror = newRule(`^((https?|oci)://`+host+urlPath+`|`+anyCaseLabel+`(\.`+anyCaseLabel+`)*(:[0-9]{1,5})?(/`+repoPart+`)*/?)$`, 2048, "")
	// ruleForgeName is a forge owner or repository: letters, digits, '.',
	// '_' and '-', not "." or "..", no ".." anywhere.
	ruleForgeName = newRule(`^(\.?[A-Za-z0-9_-])+\.?$`, 100, "")
	// ruleBranch is a git branch name that git check-ref-format accepts
	// and no shell or YAML reads specially.
	ruleBranch    = newRule(`^`+refPart+`(/`+refPart+`)*$`, 255, "")
	ruleAge       = newRule(`^age1[02-9ac-hj-np-z]{58}$`, 62, "")
	ruleCron      = newRule(`^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|@every [0-9][0-9a-z.]*|[0-9A-Za-z*/,?-]+( [0-9A-Za-z*/,?-]+){4})$`, 128, "")
	ruleGlob      = newRule(`^`+globChars+`+$`, 255, "")
	ruleSemverSet = newRule(`^`+semverAnd+`( *\|\| *`+semverAnd+`)*$`, 255, "")
	// ruleWorkload is a namespace/name pair of globs.
	ruleWorkload   = newRule(`^[a-z0-9.*?^\[\]-]+/[a-z0-9.*?^\[\]-]+$`, 253, "")
	ruleUpdateType = newRule(`^(major|minor|patch|digest)$`, 0, "")
	// ruleVersioning is a scheme name or an anchored pattern of printable
	// characters without spaces, quotes, backticks or '#'.
	ruleVersioning = newRule(`^(semver|docker|k3s|kubernetes|loose|regex:\^[!$-&(-_a-~]*\$)$`, 1024, "")
	// ruleRepoName is a `helm repo add` name.
	ruleRepoName   = newRule(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`, 63, "")
	ruleK3sDisable = newRule(`^(coredns|local-storage|metrics-server|servicelb|traefik)$`, 0, "")
	ruleSeverity   = newRule(`^(error|warning|off)$`, 0, "")
	rulePolicyID   = newRule(`^[a-z0-9]+(-[a-z0-9]+)*$`, 63, "")
	// ruleFQDNOrLabel is a DNS name of one or more labels (a TSIG key
	// name: "hl-lab" or "hl-lab.example.org").
	ruleFQDNOrLabel = newRule(`^`+label+`(\.`+label+`)*$`, 253, "")
	// ruleNtfyTopic is what ntfy accepts as a topic name.
	ruleNtfyTopic = newRule(`^[-_A-Za-z0-9]{1,64}$`, 64, "")
	// ruleSmarthost is an SMTP server: a DNS name, an IPv4 or a bracketed
	// IPv6 address, and a port (Alertmanager needs the port).
	ruleSmarthost = newRule(`^(`+anyCaseLabel+`(\.`+anyCaseLabel+`)*|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$`, 260, "")
	// ruleSMTPUser is an SMTP login: a name or an e-mail address.
	ruleSMTPUser = newRule(`^[A-Za-z0-9._%+@-]+$`, 254, "")
	// ruleLabelName is a Prometheus label name, or "..." (every label) as
	// Alertmanager's group_by takes it.
	ruleLabelName     = newRule(`^([a-zA-Z_][a-zA-Z0-9_]*|\.\.\.)$`, 128, "")
	ruleAlertSeverity = newRule(`^(critical|warning|info)$`, 0, "")
)

// schemaRules records each string field's rule in the JSON schema, keyed
// by Go type and field ("Spec.Email"). For a []string field the rule is
// its items'; for a map[string]string field, its values'. Every string
// field of the model has a rule here or an enum tag (TestEveryStringHasARule).
var schemaRules = map[string]*rule{
	"Metadata.Name":                ruleDNSLabel,
	"Spec.Domain":                  ruleFQDN,
	"Spec.Timezone":                ruleTimezone,
	"Spec.Email":                   ruleEmail,
	"Network.NodeCIDR":             ruleCIDR,
	"Network.Gateway":              ruleIP,
	"Network.DNSServers":           ruleIP,
	"Network.LoadBalancerRange":    ruleIPRange,
	"Network.ControlPlaneVIP":      ruleIP,
	"Metal.SSHAuthorizedKeys":      ruleSSHKey,
	"PXE.Address":                  ruleIP,
	"OS.Version":                   ruleOSVersion,
	"Node.Name":                    ruleDNSLabel,
	"Node.MAC":                     ruleMAC,
	"Node.IP":                      ruleIP,
	"Node.Disk":                    ruleDisk,
	"Node.Interface":               ruleInterface,
	"Kubernetes.K3sVersion":        ruleK3s,
	"Kubernetes.Disable":           ruleK3sDisable,
	"Kubernetes.ClusterCIDR":       ruleCIDR,
	"Kubernetes.ServiceCIDR":       ruleCIDR,
	"Forge.URL":                    ruleHTTPURL,
	"Forge.Owner":                  ruleForgeName,
	"Forge.Repo":                   ruleForgeName,
	"Forge.DefaultBranch":          ruleBranch,
	"App.Hostname":                 ruleFQDN,
	"Secrets.AgeRecipients":        ruleAge,
	"Mirror.From":                  ruleMirror,
	"Mirror.To":                    ruleMirror,
	"Bot.Schedule":                 ruleCron,
	"Bot.Timezone":                 ruleTimezone,
	"Bot.Automerge":                ruleUpdateType,
	"Group.Name":                   ruleDNSLabel,
	"Group.UpdateTypes":            ruleUpdateType,
	"Group.Packages":               ruleGlob,
	"Ignore.Package":               ruleGlob,
	"Ignore.UpdateTypes":           ruleUpdateType,
	"Ignore.Versions":              ruleSemverSet,
	"Rule.Packages":                ruleGlob,
	"Rule.Versioning":              ruleVersioning,
	"Bot.HelmRepositories":         ruleChartRepo,
	"SLO.App":                      ruleDNSLabel,
	"Validation.Policies":          ruleSeverity,
	"Validation.PrivilegedAllowed": ruleWorkload,
	"Receiver.Name":                ruleDNSLabel,
	"Person.Name":                  ruleDNSLabel,
	"RFC2136.Server":               ruleIP,
	"RFC2136.Zone":                 ruleFQDN,
	"RFC2136.TSIGKeyName":          ruleFQDNOrLabel,
	"Person.Email":                 ruleEmail,
	"NtfyReceiver.URL":             ruleHTTPURL,
	"NtfyReceiver.Topic":           ruleNtfyTopic,
	"EmailReceiver.Smarthost":      ruleSmarthost,
	"EmailReceiver.From":           ruleEmail,
	"EmailReceiver.To":             ruleEmail,
	"EmailReceiver.Username":       ruleSMTPUser,
	"WebhookReceiver.URL":          ruleHTTPURL,
	"AlertRoute.Receiver":          ruleDNSLabel,
	"AlertRoute.GroupBy":           ruleLabelName,
	"SeverityRoute.Severities":     ruleAlertSeverity,
	"SeverityRoute.Receiver":       ruleDNSLabel,
}

// keyRules are the rules of map keys, recorded as propertyNames.
var keyRules = map[string]*rule{
	"Spec.Apps":            ruleDNSLabel,
	"Bot.HelmRepositories": ruleRepoName,
	"Validation.Policies":  rulePolicyID,
}

// applyRules writes schemaRules and keyRules into a reflected schema:
// the root holds Homelab's properties (ExpandedStruct), $defs the rest.
func applyRules(root *jsonschema.Schema) {
	var walk func(t reflect.Type)
	seen := map[reflect.Type]bool{}
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || seen[t] {
			return
		}
		seen[t] = true
		s := root
		if t != reflect.TypeOf(Homelab{}) {
			s = root.Definitions[t.Name()]
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			key := t.Name() + "." + f.Name
			if s != nil && s.Properties != nil {
				if p, ok := s.Properties.Get(name); ok {
					if r := schemaRules[key]; r != nil {
						target := p
						switch {
						case p.Items != nil:
							target = p.Items
						case p.AdditionalProperties != nil:
							target = p.AdditionalProperties
						}
						r.record(target)
					}
					if r := keyRules[key]; r != nil {
						p.PropertyNames = &jsonschema.Schema{}
						r.record(p.PropertyNames)
					}
				}
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Homelab{}))
}

func (r *rule) record(s *jsonschema.Schema) {
	s.Pattern = r.pattern
	s.Format = r.format
	if r.maxLen > 0 {
		n := uint64(r.maxLen)
		s.MaxLength = &n
	}
}

// check reports a problem at path unless s matches r; what names the
// expected shape in the message.
func (v *validator) check(path, s string, r *rule, what string) bool {
	if r.ok(s) {
		return true
	}
	if r.maxLen > 0 && len(s) > r.maxLen {
		v.errorf(path, "is %d characters long; at most %d for %s", len(s), r.maxLen, what)
		return false
	}
	v.errorf(path, "%s is not %s", quoteValue(s), what)
	return false
}

// quoteValue shows a rejected value in a message: quoted (line breaks and
// control characters escaped) and cut short.
func quoteValue(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
