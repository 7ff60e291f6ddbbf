package templates

import (
	"strings"
	"testing"
	"time"
)

// TestCatalogKubernetesSupported fails once the catalog pins k3s at a
// Kubernetes minor past its upstream end of life. It is time-dependent on
// purpose: it compares the recorded date with the real clock, so a catalog
// that nobody moved on turns CI red on the day upstream stops patching the
// pinned minor, instead of rendering unsupported clusters silently. The
// fix is a catalog change (a newer k3s the stable channel offers, and its
// minor's date), never a change to this test.
func TestCatalogKubernetesSupported(t *testing.T) {
	c, err := LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Supported(time.Now()); err != nil {
		t.Error(err)
	}
}

// TestCatalogSupportedOn pins the date logic with fixed days, so the
// time-dependent test above cannot pass by a mistake in it.
func TestCatalogSupportedOn(t *testing.T) {
	c, err := ParseCatalog([]byte("k3s: v1.36.5+k3s1\nkubernetes: [{minor: \"1.36\", endOfLife: \"2027-06-28\"}, {minor: \"1.37\", endOfLife: \"2027-10-28\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if k := c.PinnedKubernetes(); k.Minor != "1.36" || k.EndOfLife != "2027-06-28" {
		t.Errorf("pinned = %+v", k)
	}
	for day, ok := range map[string]bool{
		"2026-12-03T12:00:00Z": true,
		"2027-06-28T23:59:59Z": true,  // the end-of-life day itself is still patched
		"2027-06-29T00:00:00Z": false, // the day after is not
		"2028-01-01T00:00:00Z": false,
	} {
		now, _ := time.Parse(time.RFC3339, day)
		err := c.Supported(now)
		if (err == nil) != ok {
			t.Errorf("%s: error %v, want supported %v", day, err, ok)
		}
		if err != nil && !strings.Contains(err.Error(), "Kubernetes 1.36, past its upstream end of life on 2027-06-28") {
			t.Errorf("%s: error %q does not say which minor and date", day, err)
		}
	}
}

// TestCatalogKubernetesBadInput: the k3s pin needs a listed minor with a
// real date.
func TestCatalogKubernetesBadInput(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"k3s: v1.36.5+k3s1\n", "Kubernetes 1.36 has no end-of-life date"},
		{"k3s: v1.36.5+k3s1\nkubernetes: [{minor: \"1.35\", endOfLife: \"2027-02-28\"}]\n", "Kubernetes 1.36 has no end-of-life date"},
		{"k3s: v1.36.5+k3s1\nkubernetes: [{minor: \"1.36\", endOfLife: \"June 2027\"}]\n", `kubernetes[0] (1.36): endOfLife "June 2027" is not a date`},
		{"k3s: v1.36.5+k3s1\nkubernetes: [{minor: \"1.36\", endOfLife: \"2027-06-28\"}, {minor: \"1.36\", endOfLife: \"2027-06-28\"}]\n", "kubernetes[1] (1.36): listed twice"},
		{"k3s: v1.36.5\nkubernetes: [{minor: \"1.36\", endOfLife: \"2027-06-28\"}]\n", `k3s "v1.36.5" is not a k3s release`},
		{"k3s: v1.36.5+k3s1\nkubernetes: [{minor: \"1.36\", eol: \"2027-06-28\"}]\n", "field eol not found"},
	} {
		_, err := ParseCatalog([]byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.yaml, err, c.want)
		}
	}
}
