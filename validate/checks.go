package validate

import (
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	"hl.dev/hl/secrets"
)

// podSpecPath returns where a workload keeps its pod spec, or nil.
func podSpecPath(o *object) []string {
	switch o.group() + "/" + o.kind {
	case "/Pod":
		return []string{"spec"}
	case "apps/Deployment", "apps/StatefulSet", "apps/DaemonSet", "apps/ReplicaSet",
		"/ReplicationController", "batch/Job", "extensions/Deployment", "extensions/DaemonSet", "extensions/ReplicaSet":
		return []string{"spec", "template", "spec"}
	case "batch/CronJob":
		return []string{"spec", "jobTemplate", "spec", "template", "spec"}
	}
	return nil
}

// container is one container of a workload with its field path.
type container struct {
	m    map[string]any
	path string
	name string
	init bool
}

func containers(o *object) []container {
	sp := podSpecPath(o)
	if sp == nil {
		return nil
	}
	spec := mapMap(o.obj, sp...)
	var out []container
	for _, field := range []string{"initContainers", "containers"} {
		for i, c := range mapList(spec, field) {
			m, _ := c.(map[string]any)
			if m == nil {
				continue
			}
			out = append(out, container{
				m:    m,
				path: fmt.Sprintf("%s.%s[%d]", strings.Join(sp, "."), field, i),
				name: mapStr(m, "name"),
				init: field == "initContainers",
			})
		}
	}
	return out
}

// checkObject runs the per-object policies.
func (v *validator) checkObject(o *object) {
	cs := containers(o)
	for _, c := range cs {
		v.checkImage(o, c)
		v.checkResources(o, c)
		v.checkPrivileged(o, c)
		v.checkEnvCredentials(o, c)
	}
	switch o.group() + "/" + o.kind {
	case "/Secret":
		v.checkSecret(o)
	case "networking.k8s.io/Ingress", "extensions/Ingress":
		v.checkIngress(o)
	}
}

// imagePinned reports whether an image reference names a digest or a
// tag other than latest.
func imagePinned(image string) bool {
	if strings.Contains(image, "@sha256:") || strings.Contains(image, "@sha512:") {
		return true
	}
	slash := strings.LastIndexByte(image, '/')
	colon := strings.LastIndexByte(image, ':')
	if colon <= slash {
		return false
	}
	tag := image[colon+1:]
	return tag != "" && tag != "latest"
}

func (v *validator) checkImage(o *object, c container) {
	img, ok := c.m["image"].(string)
	if !ok || img == "" {
		v.add(o.finding(PolicySchema, c.path+".image", "container %q has no image", c.name))
		return
	}
	if !imagePinned(img) {
		v.add(o.finding(PolicyUnpinnedImage, c.path+".image", "image %q is not pinned to a tag or digest", img))
	}
}

func (v *validator) checkResources(o *object, c container) {
	if v.limitRanges[o.ns()] {
		return
	}
	req := mapMap(c.m, "resources", "requests")
	var missing []string
	for _, r := range []string{"cpu", "memory"} {
		if _, ok := req[r]; !ok {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return
	}
	p := c.path + ".resources.requests"
	if req == nil {
		p = c.path + ".resources"
	}
	v.add(o.finding(PolicyWorkloadResources, p, "container %q has no %s request", c.name, strings.Join(missing, " or ")))
}

func (v *validator) privilegedAllowed(o *object) bool {
	id := o.ns() + "/" + o.name
	for _, pat := range v.s.privileged {
		if ok, _ := path.Match(pat, id); ok || pat == id {
			return true
		}
	}
	return false
}

func (v *validator) checkPrivileged(o *object, c container) {
	if p, _ := mapGet(c.m, "securityContext", "privileged").(bool); !p {
		return
	}
	if v.privilegedAllowed(o) {
		return
	}
	v.add(o.finding(PolicyPrivileged, c.path+".securityContext.privileged",
		"container %q is privileged and %s/%s is not in spec.validation.privilegedAllowed", c.name, o.ns(), o.name))
}

// credentialKey reports whether a key names a credential (password,
// token, client secret, API key, ...), not a reference to one.
func credentialKey(key string) bool {
	if strings.HasPrefix(key, secrets.ChecksumAnnotationPrefix) {
		// The SHA-256 of a SOPS file's ciphertext, which restarts the
		// consumers of a rotated or set secret; the ciphertext is public.
		return false
	}
	k := strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(key))
	if strings.Contains(k, "existing") {
		return false
	}
	for _, w := range []string{"password", "passwd", "passphrase", "token", "apikey", "clientsecret", "privatekey", "secretkey"} {
		if strings.HasSuffix(k, w) {
			return true
		}
	}
	return k == "secret" || k == "pass"
}

// defaultCredentials are well-known default or placeholder credentials.
var defaultCredentials = map[string]bool{
	"admin": true, "administrator": true, "password": true, "passw0rd": true, "password1": true,
	"password123": true, "changeme": true, "change-me": true, "changeit": true, "secret": true,
	"root": true, "toor": true, "default": true, "letmein": true, "welcome": true, "guest": true,
	"test": true, "demo": true, "example": true, "qwerty": true, "123456": true, "12345678": true,
	"prom-operator": true, "gitea": true, "grafana": true, "minio123": true, "minioadmin": true,
	"postgres": true, "mysql": true, "redis": true, "rabbitmq": true, "keycloak": true, "supersecret": true,
	"replaceme": true, "replace-me": true, "xxx": true, "todo": true, "none": true,
}

// minCredentialLength below which a literal credential counts as weak.
const minCredentialLength = 12

// weakCredential explains why a literal credential is weak, or "". Length
// counts only for committed values (charts generate random ones at render
// time, which Argo CD renders anew).
func weakCredential(val string, committed bool) string {
	t := strings.TrimSpace(val)
	if t == "" || strings.Contains(t, "{{") || strings.HasPrefix(t, "$(") || strings.HasPrefix(t, "${") || strings.HasPrefix(t, "ENC[") {
		return ""
	}
	if defaultCredentials[strings.ToLower(t)] {
		return "is a well-known default"
	}
	if committed && len(t) < minCredentialLength {
		return fmt.Sprintf("is only %d characters long", len(t))
	}
	return ""
}

func (v *validator) checkEnvCredentials(o *object, c container) {
	for i, e := range mapList(c.m, "env") {
		m, _ := e.(map[string]any)
		name := mapStr(m, "name")
		val, ok := m["value"].(string)
		if !ok || !credentialKey(name) {
			continue
		}
		if why := weakCredential(val, o.committed); why != "" {
			v.add(o.finding(PolicyDefaultCredential, fmt.Sprintf("%s.env[%d].value", c.path, i),
				"environment variable %s of container %q %s", name, c.name, why))
		} else if o.committed && val != "" {
			v.add(o.finding(PolicyPlaintextSecret, fmt.Sprintf("%s.env[%d].value", c.path, i),
				"environment variable %s of container %q holds a credential in plain text; use a secretKeyRef to a SOPS-encrypted Secret", name, c.name))
		}
	}
}

func (v *validator) checkSecret(o *object) {
	if o.sops {
		return
	}
	data := mapMap(o.obj, "data")
	strData := mapMap(o.obj, "stringData")
	if o.committed && (len(data) > 0 || len(strData) > 0) {
		field := "data"
		if len(data) == 0 {
			field = "stringData"
		}
		v.add(o.finding(PolicyPlaintextSecret, field,
			"Secret %s is committed unencrypted; encrypt it with SOPS into a *.sops.yaml file", o.name))
	}
	check := func(field string, m map[string]any, b64 bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s, _ := m[k].(string)
			if b64 {
				dec, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					continue
				}
				s = string(dec)
			}
			if !credentialKey(k) {
				continue
			}
			if why := weakCredential(s, o.committed); why != "" {
				v.add(o.finding(PolicyDefaultCredential, field+"."+k, "credential %s %s", k, why))
			}
		}
	}
	check("data", data, true)
	check("stringData", strData, false)
}

func (v *validator) checkIngress(o *object) {
	covered := map[string]bool{}
	wild := []string{}
	for _, t := range mapList(o.obj, "spec", "tls") {
		for _, h := range mapList(t, "hosts") {
			hs, _ := h.(string)
			covered[hs] = true
			if strings.HasPrefix(hs, "*.") {
				wild = append(wild, hs[1:])
			}
		}
	}
	rules := mapList(o.obj, "spec", "rules")
	if len(rules) == 0 && len(covered) == 0 {
		v.add(o.finding(PolicyIngressTLS, "spec", "Ingress %s has no TLS", o.name))
		return
	}
	for i, r := range rules {
		host := mapStr(r, "host")
		if host == "" {
			if len(covered) == 0 {
				v.add(o.finding(PolicyIngressTLS, fmt.Sprintf("spec.rules[%d]", i), "rule without host and Ingress %s has no TLS", o.name))
			}
			continue
		}
		if covered[host] {
			continue
		}
		ok := false
		for _, w := range wild {
			if strings.HasSuffix(host, w) && !strings.Contains(strings.TrimSuffix(host, w), ".") {
				ok = true
			}
		}
		if !ok {
			v.add(o.finding(PolicyIngressTLS, fmt.Sprintf("spec.rules[%d].host", i), "host %s is not covered by spec.tls", host))
		}
	}
}

// scanValues looks for literal credentials in a wrapper chart's values
// file: weak ones are default-credential, others plaintext-secret.
func (v *validator) scanValues(file string, docs []*yamlDoc) {
	v.scanCredentials(file, docs, "a values file")
}

// scanCredentials looks for literal credentials (values of keys like
// password or apiToken) in a YAML file's documents: weak ones are
// default-credential, others plaintext-secret. where names the kind of
// file in the message.
func (v *validator) scanCredentials(file string, docs []*yamlDoc, where string) {
	for _, d := range docs {
		var walk func(val any, p []string)
		walk = func(val any, p []string) {
			switch t := val.(type) {
			case map[string]any:
				keys := make([]string, 0, len(t))
				for k := range t {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					walk(t[k], append(append([]string(nil), p...), k))
				}
			case []any:
				for i, e := range t {
					walk(e, append(append([]string(nil), p...), fmt.Sprintf("[%d]", i)))
				}
			case string:
				if len(p) == 0 || !credentialKey(p[len(p)-1]) || t == "" || placeholderRe.MatchString(t) {
					return
				}
				f := Finding{File: file, Line: lineOf(d.root, p), Path: joinPath(p)}
				if why := weakCredential(t, true); why != "" {
					f.Policy, f.Message = PolicyDefaultCredential, "credential "+why
				} else if !strings.Contains(t, "{{") && !strings.HasPrefix(t, "ENC[") && !envRefRe.MatchString(t) {
					f.Policy, f.Message = PolicyPlaintextSecret, "credential in plain text in "+where+"; reference a SOPS-encrypted Secret instead"
				} else {
					return
				}
				v.add(f)
			}
		}
		walk(d.value, nil)
	}
}

var envRefRe = regexp.MustCompile(`^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$`)

// placeholderRe matches a value that stands for a credential filled in
// elsewhere: @@NAME@@ (hl metal serve substitutes those), <your token>.
var placeholderRe = regexp.MustCompile(`^(@@[A-Za-z0-9_]+@@|<[^<>]+>)$`)
