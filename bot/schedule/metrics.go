package schedule

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Metrics are the daemon's counters, exposed in the Prometheus text
// format (names prefixed hl_). Passes report PRs opened, lookups and
// overdue secrets through the Add/Set methods.
type Metrics struct {
	mu        sync.Mutex
	runs      counterVec
	errors    counterVec
	webhooks  counterVec
	prs       counterVec
	lookups   float64
	overdue   float64
	durSum    float64
	durCount  float64
	lastDur   float64
	lastStart float64
}

type counterVec struct {
	mu sync.Mutex
	m  map[string]float64
}

func (c *counterVec) add(label string, v float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]float64{}
	}
	c.m[label] += v
}

func (c *counterVec) snapshot() map[string]float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]float64{}
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics { return &Metrics{} }

func (m *Metrics) run(result string, d time.Duration) {
	m.runs.add(result, 1)
	if result == "refused" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.durSum += d.Seconds()
	m.durCount++
	m.lastDur = d.Seconds()
	m.lastStart = float64(time.Now().Add(-d).Unix())
}

// AddPRsOpened counts PRs (and issues) a pass opened, by kind
// ("upgrade", "rotation", "issue").
func (m *Metrics) AddPRsOpened(kind string, n int) { m.prs.add(kind, float64(n)) }

// AddLookups counts datasource lookups.
func (m *Metrics) AddLookups(n int) {
	m.mu.Lock()
	m.lookups += float64(n)
	m.mu.Unlock()
}

// SetSecretsOverdue records how many secrets are past rotate-after.
func (m *Metrics) SetSecretsOverdue(n int) {
	m.mu.Lock()
	m.overdue = float64(n)
	m.mu.Unlock()
}

// WriteTo writes the text exposition format.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	var n int64
	p := func(format string, a ...any) {
		k, _ := fmt.Fprintf(w, format, a...)
		n += int64(k)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	vec := func(name, help, label string, c *counterVec, always ...string) {
		p("# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		s := c.snapshot()
		for _, a := range always {
			if _, ok := s[a]; !ok {
				s[a] = 0
			}
		}
		keys := make([]string, 0, len(s))
		for k := range s {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p("%s{%s=%q} %s\n", name, label, k, f(s[k]))
		}
	}
	vec("hl_bot_runs_total", "Bot runs by result (success, error, refused).", "result", &m.runs, "success", "error", "refused")
	vec("hl_bot_errors_total", "Failed passes by pass.", "pass", &m.errors)
	vec("hl_bot_prs_opened_total", "Pull requests and issues opened, by kind.", "kind", &m.prs)
	vec("hl_bot_webhooks_total", "Webhook deliveries by outcome.", "outcome", &m.webhooks)
	m.mu.Lock()
	defer m.mu.Unlock()
	p("# HELP hl_bot_run_duration_seconds Duration of bot runs.\n# TYPE hl_bot_run_duration_seconds summary\n")
	p("hl_bot_run_duration_seconds_sum %s\nhl_bot_run_duration_seconds_count %s\n", f(m.durSum), f(m.durCount))
	p("# HELP hl_bot_last_run_duration_seconds Duration of the last run.\n# TYPE hl_bot_last_run_duration_seconds gauge\nhl_bot_last_run_duration_seconds %s\n", f(m.lastDur))
	p("# HELP hl_bot_last_run_timestamp_seconds Start of the last run (Unix time).\n# TYPE hl_bot_last_run_timestamp_seconds gauge\nhl_bot_last_run_timestamp_seconds %s\n", f(m.lastStart))
	p("# HELP hl_bot_lookups_total Datasource lookups.\n# TYPE hl_bot_lookups_total counter\nhl_bot_lookups_total %s\n", f(m.lookups))
	p("# HELP hl_secrets_overdue Generated secrets past their rotate-after date.\n# TYPE hl_secrets_overdue gauge\nhl_secrets_overdue %s\n", f(m.overdue))
	return n, nil
}
