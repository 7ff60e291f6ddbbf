package validate

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"strings"

	amconfig "github.com/prometheus/alertmanager/config"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/yamlnode"
)

// alertmanagerChart is the chart whose values carry Alertmanager's
// configuration (alertmanager.config), which the chart writes as is into
// the Secret the Prometheus operator hands to Alertmanager.
const alertmanagerChart = "kube-prometheus-stack"

// checkAlertmanager loads every wrapper chart's alertmanager.config with
// Alertmanager's own configuration package, so a configuration Alertmanager
// would refuse (and keep running on the previous one, silently) fails here,
// and warns when no receiver notifies anybody.
//
// The values are checked, not the Secret the chart renders, because the
// values are in the repository whether or not the chart is in the cache;
// the chart adds its default inhibit_rules, which reference labels only.
func (v *validator) checkAlertmanager() {
	for _, c := range v.tree.charts {
		deps, _, err := readChartYAML(v.s.dir, c)
		if err != nil {
			continue // reported where the chart is rendered
		}
		for _, d := range deps {
			if d.Name != alertmanagerChart {
				continue
			}
			key := d.Name
			if d.Alias != "" {
				key = d.Alias
			}
			vf := path.Join(c, "values.yaml")
			for _, doc := range v.docs(vf) {
				v.checkAlertmanagerConfig(vf, doc, key)
			}
		}
	}
}

func (v *validator) checkAlertmanagerConfig(file string, doc *yamlDoc, key string) {
	fields := []string{key, "alertmanager", "config"}
	parent := yamlnode.Path(doc.root, fields[:2]...)
	n := yamlnode.Value(parent, "config")
	if n == nil {
		return
	}
	line := yamlnode.Key(parent, "config").Line
	finding := func(sev Severity, format string, args ...any) {
		v.add(Finding{Policy: PolicyAlertmanagerConfig, Severity: sev, File: file, Line: line,
			Path: strings.Join(fields, "."), Message: fmt.Sprintf(format, args...)})
	}
	text, err := AlertmanagerConfig(n)
	if err != nil {
		finding(SeverityError, "%v", err)
		return
	}
	cfg, err := amconfig.Load(text)
	if err != nil {
		// Lines in the parser's message count in the text it was given,
		// not in the file: point at the unknown field instead, if that is
		// the complaint.
		msg := err.Error()
		if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
			if k := findKey(n, m[1]); k != nil {
				line = k.Line
			}
		}
		finding(SeverityError, "Alertmanager refuses this configuration: %s", lineRefRe.ReplaceAllString(msg, ""))
		return
	}
	if !notifies(cfg) {
		finding(SeverityWarning, "no receiver has a notifier: every alert goes nowhere; add spec.alerting.receivers to hl.yaml (system/monitoring/README.md)")
	}
}

var (
	unknownFieldRe = regexp.MustCompile(`field (\S+) not found in type`)
	lineRefRe      = regexp.MustCompile(`line \d+: `)
)

// findKey is the first mapping key named name under n, depth first.
func findKey(n *yaml.Node, name string) *yaml.Node {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i]
			}
		}
	}
	for _, c := range n.Content {
		if k := findKey(c, name); k != nil {
			return k
		}
	}
	return nil
}

// AlertmanagerConfig is the text Alertmanager reads for the
// alertmanager.config node of a values file: the chart marshals the value
// to YAML (toYaml) and the operator passes it on.
func AlertmanagerConfig(n *yaml.Node) (string, error) {
	if n.Kind != yaml.MappingNode {
		return "", fmt.Errorf("alertmanager.config is not a mapping")
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return "", fmt.Errorf("alertmanager.config: %w", err)
	}
	return string(b), nil
}

// notifies reports whether any receiver has a notifier (Alertmanager's
// *_configs lists); one without is the null receiver.
func notifies(cfg *amconfig.Config) bool {
	for _, r := range cfg.Receivers {
		rv := reflect.ValueOf(r)
		for i := 0; i < rv.NumField(); i++ {
			f := rv.Field(i)
			if strings.HasSuffix(rv.Type().Field(i).Name, "Configs") && f.Kind() == reflect.Slice && f.Len() > 0 {
				return true
			}
		}
	}
	return false
}
