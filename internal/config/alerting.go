package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// spec.alerting: defaults, validation and the names templates render
// Alertmanager's configuration with.

// Alerting defaults.
const (
	DefaultNtfyPriority   = "high"
	DefaultNtfyAuth       = NtfyAuthToken
	DefaultWebhookAuth    = WebhookAuthNone
	DefaultGroupWait      = Duration("30s")
	DefaultGroupInterval  = Duration("5m")
	DefaultRepeatInterval = Duration("12h")
)

// DefaultGroupBy batches alerts of one kind in one namespace into one
// notification.
var DefaultGroupBy = []string{"alertname", "namespace"}

// Receiver kinds and their credential settings.
const (
	ReceiverNtfy    = "ntfy"
	ReceiverEmail   = "email"
	ReceiverWebhook = "webhook"

	NtfyAuthToken      = "token"
	NtfyAuthNone       = "none"
	WebhookAuthBearer  = "bearer"
	WebhookAuthNone    = "none"
	ntfyPriorities     = "min, low, default, high, urgent"
	alertingSecretName = "alertmanager-receivers"
	// NullReceiver is Alertmanager's receiver without notifiers, where
	// Watchdog and InfoInhibitor (and, without receivers, everything) go.
	NullReceiver = "null"
)

func applyAlertingDefaults(a *Alerting) {
	for i := range a.Receivers {
		r := &a.Receivers[i]
		if n := r.Ntfy; n != nil {
			n.URL = strings.TrimSuffix(n.URL, "/")
			if n.Priority == "" {
				n.Priority = DefaultNtfyPriority
			}
			if n.Auth == "" {
				n.Auth = DefaultNtfyAuth
			}
		}
		if e := r.Email; e != nil && e.RequireTLS == nil {
			t := true
			e.RequireTLS = &t
		}
		if w := r.Webhook; w != nil && w.Auth == "" {
			w.Auth = DefaultWebhookAuth
		}
	}
	rt := &a.Route
	if rt.Receiver == "" && len(a.Receivers) > 0 {
		rt.Receiver = a.Receivers[0].Name
	}
	if rt.GroupBy == nil {
		rt.GroupBy = append([]string(nil), DefaultGroupBy...)
	}
	if rt.GroupWait == "" {
		rt.GroupWait = DefaultGroupWait
	}
	if rt.GroupInterval == "" {
		rt.GroupInterval = DefaultGroupInterval
	}
	if rt.RepeatInterval == "" {
		rt.RepeatInterval = DefaultRepeatInterval
	}
}

// Kind is ntfy, email or webhook; "" when none is set.
func (r Receiver) Kind() string {
	switch {
	case r.Ntfy != nil:
		return ReceiverNtfy
	case r.Email != nil:
		return ReceiverEmail
	case r.Webhook != nil:
		return ReceiverWebhook
	}
	return ""
}

// SecretKey is the key of the receivers' Secret that holds this
// receiver's credential, "" when it needs none.
func (r Receiver) SecretKey() string {
	switch {
	case r.Ntfy != nil && r.Ntfy.Auth == NtfyAuthToken,
		r.Webhook != nil && r.Webhook.Auth == WebhookAuthBearer:
		return r.Name + "-token"
	case r.Email != nil && r.Email.Username != "":
		return r.Name + "-password"
	}
	return ""
}

// SecretName is the Secret (in monitoring's namespace) holding every
// receiver credential, one key each. The user provides it once: it is
// not hl's to generate.
func (a Alerting) SecretName() string { return alertingSecretName }

// SecretKeys are the keys of SecretName the receivers need, sorted.
func (a Alerting) SecretKeys() []string {
	var keys []string
	for _, r := range a.Receivers {
		if k := r.SecretKey(); k != "" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// Prometheus writes the period the way Prometheus and Alertmanager read
// durations (units from weeks down to seconds, in that order): hl.yaml
// accepts them in any order ("12h1d").
func (d Duration) Prometheus() string {
	left := d.MustParse()
	if left == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		d    time.Duration
	}{{"w", 7 * 24 * time.Hour}, {"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := left / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.unit)
			left -= n * u.d
		}
	}
	return b.String()
}

func (v *validator) alerting(h *Homelab) {
	a := &h.Spec.Alerting
	if len(a.Receivers) > 0 && !h.Enabled("monitoring") {
		v.errorf("spec.alerting", "alerts are sent by monitoring's Alertmanager: enable spec.apps.monitoring or remove spec.alerting")
	}
	names := map[string]int{}
	// A reference to a receiver is only checked when every name is valid:
	// a bad name is already reported where it stands.
	namesOK := true
	for i, r := range a.Receivers {
		p := fmt.Sprintf("spec.alerting.receivers[%d]", i)
		switch {
		case !v.required(p+".name", r.Name, "a name routes refer to, e.g. phone"):
			namesOK = false
		case !v.check(p+".name", r.Name, ruleDNSLabel, "a receiver name (lower-case letters, digits and '-')"):
			namesOK = false
		case r.Name == NullReceiver:
			v.errorf(p+".name", "%q is Alertmanager's receiver that drops alerts; choose another name", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				v.errorf(p+".name", "%q is already the name of spec.alerting.receivers[%d]", r.Name, j)
			}
			names[r.Name] = i
		}
		set := 0
		for _, on := range []bool{r.Ntfy != nil, r.Email != nil, r.Webhook != nil} {
			if on {
				set++
			}
		}
		if set != 1 {
			v.errorf(p, "set exactly one of ntfy, email and webhook (%d set)", set)
		}
		if r.Ntfy != nil {
			v.ntfy(p+".ntfy", r.Ntfy)
		}
		if r.Email != nil {
			v.email(p+".email", r.Email)
		}
		if r.Webhook != nil {
			v.webhook(p+".webhook", r.Webhook)
		}
	}
	receiver := func(p, name string) {
		if !v.required(p, name, "the name of one of spec.alerting.receivers") || !v.check(p, name, ruleDNSLabel, "a receiver name") || !namesOK {
			return
		}
		if _, ok := names[name]; !ok {
			known := make([]string, 0, len(names))
			for n := range names {
				known = append(known, n)
			}
			sort.Strings(known)
			if len(known) == 0 {
				v.errorf(p, "%q is not a receiver: spec.alerting.receivers is empty", name)
				return
			}
			v.errorf(p, "%q is not a receiver; spec.alerting.receivers has %s", name, strings.Join(known, ", "))
		}
	}
	rt := &a.Route
	if rt.Receiver != "" || len(a.Receivers) > 0 {
		receiver("spec.alerting.route.receiver", rt.Receiver)
	}
	for i, l := range rt.GroupBy {
		v.check(fmt.Sprintf("spec.alerting.route.groupBy[%d]", i), l, ruleLabelName, `a label name (letters, digits and '_', not starting with a digit; "..." for every label)`)
	}
	v.duration("spec.alerting.route.groupWait", rt.GroupWait, 0)
	v.duration("spec.alerting.route.groupInterval", rt.GroupInterval, time.Second)
	v.duration("spec.alerting.route.repeatInterval", rt.RepeatInterval, time.Minute)
	gi, err1 := rt.GroupInterval.Parse()
	ri, err2 := rt.RepeatInterval.Parse()
	if err1 == nil && err2 == nil && ri < gi {
		v.errorf("spec.alerting.route.repeatInterval", "%s is shorter than groupInterval %s: a group is never sent again sooner than that", rt.RepeatInterval, rt.GroupInterval)
	}
	for i, r := range rt.Routes {
		p := fmt.Sprintf("spec.alerting.route.routes[%d]", i)
		if len(r.Severities) == 0 {
			v.errorf(p+".severities", "at least one severity is required: critical, warning or info")
		}
		for j, s := range r.Severities {
			v.check(fmt.Sprintf("%s.severities[%d]", p, j), s, ruleAlertSeverity, "a severity (critical, warning or info)")
		}
		receiver(p+".receiver", r.Receiver)
	}
}

func (v *validator) ntfy(p string, n *NtfyReceiver) {
	if v.required(p+".url", n.URL, "the ntfy server, e.g. https://ntfy.sh") {
		if u, ok := v.url(p+".url", n.URL, ruleHTTPURL, "http", "https"); ok && u.Scheme == "http" && n.Auth == NtfyAuthToken {
			v.warnf(p+".url", "%s is plain http: the access token crosses the network in cleartext; use https", quoteValue(n.URL))
		}
	}
	if v.required(p+".topic", n.Topic, "the topic to publish to") {
		v.check(p+".topic", n.Topic, ruleNtfyTopic, "an ntfy topic (letters, digits, '-' and '_', at most 64)")
	}
	if !slices.Contains(strings.Split(ntfyPriorities, ", "), n.Priority) {
		v.errorf(p+".priority", "must be one of %s, got %s", ntfyPriorities, quoteValue(n.Priority))
	}
	if n.Auth != NtfyAuthToken && n.Auth != NtfyAuthNone {
		v.errorf(p+".auth", "must be token or none, got %s", quoteValue(n.Auth))
	}
}

func (v *validator) email(p string, e *EmailReceiver) {
	if v.required(p+".smarthost", e.Smarthost, "the SMTP server as host:port, e.g. smtp.example.com:587") &&
		v.check(p+".smarthost", e.Smarthost, ruleSmarthost, "an SMTP server as host:port (e.g. smtp.example.com:587)") {
		host, port, err := net.SplitHostPort(e.Smarthost)
		n, perr := strconv.Atoi(port)
		switch {
		case err != nil:
			v.errorf(p+".smarthost", "%s is not host:port: %v", quoteValue(e.Smarthost), err)
		case perr != nil || n < 1 || n > 65535:
			v.errorf(p+".smarthost", "%s: port %s is not a TCP port", quoteValue(e.Smarthost), port)
		case strings.Contains(e.Smarthost, "["):
			if _, err := parseAddr(host); err != nil {
				v.errorf(p+".smarthost", "%s: %s is not an IPv6 address", quoteValue(e.Smarthost), host)
			}
		}
	}
	if v.required(p+".from", e.From, "the sender address") {
		v.check(p+".from", e.From, ruleEmail, "a plain email address")
	}
	if len(e.To) == 0 {
		v.errorf(p+".to", "at least one recipient is required")
	}
	for i, to := range e.To {
		v.check(fmt.Sprintf("%s.to[%d]", p, i), to, ruleEmail, "a plain email address")
	}
	if e.Username != "" && v.check(p+".username", e.Username, ruleSMTPUser, "an SMTP login (letters, digits and ._%+@-)") &&
		e.RequireTLS != nil && !*e.RequireTLS {
		v.warnf(p+".requireTLS", "false with a username: the password may cross the network in cleartext")
	}
}

func (v *validator) webhook(p string, w *WebhookReceiver) {
	if v.required(p+".url", w.URL, "the URL Alertmanager posts to") {
		if u, ok := v.url(p+".url", w.URL, ruleHTTPURL, "http", "https"); ok && u.Scheme == "http" && w.Auth == WebhookAuthBearer {
			v.warnf(p+".url", "%s is plain http: the bearer token crosses the network in cleartext; use https", quoteValue(w.URL))
		}
	}
	if w.Auth != WebhookAuthBearer && w.Auth != WebhookAuthNone {
		v.errorf(p+".auth", "must be bearer or none, got %s", quoteValue(w.Auth))
	}
}

// Ports are the TCP ports Alertmanager connects to for the receivers,
// sorted: the URL's port or its scheme's, the smarthost's port.
func (a Alerting) Ports() []int {
	seen := map[int]bool{}
	add := func(raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		p, err := strconv.Atoi(u.Port())
		if err != nil {
			p = map[string]int{"http": 80, "https": 443}[u.Scheme]
		}
		if p > 0 {
			seen[p] = true
		}
	}
	for _, r := range a.Receivers {
		switch {
		case r.Ntfy != nil:
			add(r.Ntfy.URL)
		case r.Webhook != nil:
			add(r.Webhook.URL)
		case r.Email != nil:
			if _, port, err := net.SplitHostPort(r.Email.Smarthost); err == nil {
				if p, err := strconv.Atoi(port); err == nil && p > 0 {
					seen[p] = true
				}
			}
		}
	}
	out := make([]int, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}
