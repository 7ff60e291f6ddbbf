package debian_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"hl.dev/hl/bot"
	"hl.dev/hl/bot/datasource/datasourcetest"
	"hl.dev/hl/bot/datasource/debian"
	"hl.dev/hl/internal/httpx"
)

const (
	kernel = "netboot/debian-installer/amd64/linux"
	initrd = "netboot/debian-installer/amd64/initrd.gz"
)

func mirror(t *testing.T) *datasourcetest.Debian {
	return datasourcetest.NewDebian(t, "bookworm", "amd64", map[string]datasourcetest.DebianBuild{
		"20230607+deb12u4":  {Date: time.Date(2024, 2, 10, 10, 0, 0, 0, time.UTC), Files: map[string]string{kernel: strings.Repeat("a", 64), initrd: strings.Repeat("b", 64)}},
		"20230607+deb12u15": {Date: time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC), Files: map[string]string{kernel: strings.Repeat("c", 64), initrd: strings.Repeat("d", 64), "cdrom/vmlinuz": strings.Repeat("e", 64)}},
	})
}

func TestReleasesAndChecksums(t *testing.T) {
	m := mirror(t)
	ds := debian.New(httpx.Client(httpx.Options{}), nil)
	dep := bot.Dependency{Datasource: "debian-netboot", RegistryURL: m.Base(), Package: "debian-installer/bookworm/amd64",
		Related: map[string]bot.Range{"sha256:" + kernel: {}, "sha256:" + initrd: {}, "version@10": {}}}
	rels, err := ds.Releases(context.Background(), dep)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range rels {
		vs = append(vs, r.Version+"@"+r.ReleasedAt.Format("2006-01-02"))
	}
	sort.Strings(vs)
	if strings.Join(vs, " ") != "20230607+deb12u15@2026-07-01 20230607+deb12u4@2024-02-10" {
		t.Errorf("releases = %v (current/ and ../ must be skipped)", vs)
	}
	pins, err := ds.Pins(context.Background(), dep, "20230607+deb12u15")
	if err != nil {
		t.Fatal(err)
	}
	if pins["sha256:"+kernel] != strings.Repeat("c", 64) || pins["sha256:"+initrd] != strings.Repeat("d", 64) || len(pins) != 2 {
		t.Errorf("pins = %v", pins)
	}
	dep.Related["sha256:netboot/missing"] = bot.Range{}
	if _, err := ds.Pins(context.Background(), dep, "20230607+deb12u15"); err == nil {
		t.Error("a file not in SHA256SUMS must fail the pin")
	}
}

func TestSnapshotMovesToToday(t *testing.T) {
	m := mirror(t)
	now := func() time.Time { return time.Date(2026, 9, 15, 13, 14, 15, 0, time.UTC) }
	ds := debian.New(httpx.Client(httpx.Options{}), now)
	dep := bot.Dependency{Datasource: "debian-netboot", RegistryURL: m.SnapshotBase("20240301T000000Z"),
		Related: map[string]bot.Range{"snapshot@1": {}, "snapshot@2": {}, "sha256:" + kernel: {}}}
	if _, err := ds.Releases(context.Background(), dep); err != nil {
		t.Fatal(err)
	}
	pins, err := ds.Pins(context.Background(), dep, "20230607+deb12u15")
	if err != nil {
		t.Fatal(err)
	}
	if pins["snapshot@1"] != "20260915T000000Z" || pins["snapshot@2"] != "20260915T000000Z" {
		t.Errorf("pins = %v", pins)
	}
	for _, s := range m.Stamps {
		if s != "20260915T000000Z" {
			t.Errorf("asked snapshot %s, want today's", s)
		}
	}
}

func TestMalformedSums(t *testing.T) {
	m := datasourcetest.NewDebian(t, "bookworm", "amd64", map[string]datasourcetest.DebianBuild{
		"20230607+deb12u5": {Files: map[string]string{kernel: "not-a-sum"}},
	})
	ds := debian.New(httpx.Client(httpx.Options{}), nil)
	dep := bot.Dependency{RegistryURL: m.Base(), Related: map[string]bot.Range{"sha256:" + kernel: {}}}
	if _, err := ds.Pins(context.Background(), dep, "20230607+deb12u5"); err == nil {
		t.Error("want an error")
	}
}
