package config

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/invopop/jsonschema"
)

// Duration is a human period such as 90d, 2w, 36h or 1d12h. It stays a
// string in hl.yaml so files round-trip unchanged.
type Duration string

var durationPart = regexp.MustCompile(`(\d+)(w|d|h|m|s)`)

// Parse returns the period as a time.Duration.
func (d Duration) Parse() (time.Duration, error) {
	s := string(d)
	if s == "" {
		return 0, nil
	}
	parts := durationPart.FindAllStringSubmatchIndex(s, -1)
	var total time.Duration
	pos := 0
	for _, p := range parts {
		if p[0] != pos {
			break
		}
		n, err := strconv.ParseInt(s[p[2]:p[3]], 10, 64)
		if err != nil || n > 1e6 {
			return 0, fmt.Errorf("duration %q: number out of range", s)
		}
		unit := map[string]time.Duration{"w": 7 * 24 * time.Hour, "d": 24 * time.Hour, "h": time.Hour, "m": time.Minute, "s": time.Second}[s[p[4]:p[5]]]
		total += time.Duration(n) * unit
		pos = p[1]
	}
	if pos != len(s) || len(parts) == 0 {
		return 0, fmt.Errorf("duration %q: want a number with a unit w, d, h, m or s (e.g. 90d, 2w, 1d12h)", s)
	}
	return total, nil
}

// MustParse is Parse for values already validated.
func (d Duration) MustParse() time.Duration {
	v, err := d.Parse()
	if err != nil {
		panic(err)
	}
	return v
}

// JSONSchema describes Duration in the generated schema.
func (Duration) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:        "string",
		Pattern:     `^([0-9]+(w|d|h|m|s))+$`,
		Description: "A period such as 90d, 2w, 36h or 1d12h.",
	}
}
