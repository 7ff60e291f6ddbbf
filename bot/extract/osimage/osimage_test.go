package osimage_test

import (
	"testing"

	"hl.dev/hl/bot/extract/internal/extracttest"
	"hl.dev/hl/bot/extract/osimage"
)

type W = extracttest.Want

const (
	sumK = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d"
	sumI = "cb24a28a5ba13dfb22e6e75bdd8ab997dbdee6e3ec6c1102f6c7f93044bd817d"
)

func TestExtract(t *testing.T) {
	tests := []struct {
		name, content string
		want          []W
	}{
		{"hl metal/os.yaml on a snapshot", `# The pinned netboot image of debian 12.
name: debian
version: "12"
repo: http://snapshot.debian.org/archive/debian/20260801T000000Z
kernel:
  url: http://snapshot.debian.org/archive/debian/20260801T000000Z/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64/linux
  sha256: "` + sumK + `"
initrd:
  url: http://snapshot.debian.org/archive/debian/20260801T000000Z/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64/initrd.gz
  sha256: "` + sumI + `"
`, []W{{"debian-netboot", "http://snapshot.debian.org/archive/debian/20260801T000000Z/dists/bookworm/main/installer-amd64",
			"debian-installer/bookworm/amd64", "20230607+deb12u15", map[string]string{
				"version@492": "20230607+deb12u15",
				"sha256:netboot/debian-installer/amd64/linux":     sumK,
				"sha256:netboot/debian-installer/amd64/initrd.gz": sumI,
				"snapshot@116": "20260801T000000Z",
				"snapshot@190": "20260801T000000Z",
				"snapshot@439": "20260801T000000Z",
			}}}},
		{"ansible defaults on a plain mirror, sha256: prefixed checksums", `debian_netboot:
  kernel:
    url: https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/20230607+deb12u4/images/netboot/debian-installer/amd64/linux
    checksum: sha256:` + sumK + `
`, []W{{"debian-netboot", "https://deb.debian.org/debian/dists/bookworm/main/installer-amd64",
			"debian-installer/bookworm/amd64", "20230607+deb12u4", map[string]string{
				"sha256:netboot/debian-installer/amd64/linux": sumK,
			}}}},
		{"fedora pxeboot images with the install tree on the kernel command line", `fedora:
  kernel:
    url: https://dl.fedoraproject.org/pub/fedora/linux/releases/42/Everything/x86_64/os/images/pxeboot/vmlinuz
    sha256: "` + sumK + `"
  initrd:
    url: https://dl.fedoraproject.org/pub/fedora/linux/releases/42/Everything/x86_64/os/images/pxeboot/initrd.img
    sha256: sha256:` + sumI + `
  cmdline: "inst.repo=https://dl.fedoraproject.org/pub/fedora/linux/releases/42/Everything/x86_64/os/ ip=dhcp"
server:
  url: https://dl.fedoraproject.org/pub/fedora/linux/releases/41/Server/x86_64/os/images/pxeboot/vmlinuz
`, []W{{"fedora-netboot", "https://dl.fedoraproject.org/pub/fedora/linux/releases", "fedora/Everything/x86_64", "42", map[string]string{
			"version@282":                      "42",
			"version@493":                      "42",
			"sha256:images/pxeboot/vmlinuz":    sumK,
			"sha256:images/pxeboot/initrd.img": sumI,
		}}, {"fedora-netboot", "https://dl.fedoraproject.org/pub/fedora/linux/releases", "fedora/Server/x86_64", "41", nil}}},
		{"fedora development trees are not releases", `kernel:
  url: https://dl.fedoraproject.org/pub/fedora/linux/development/rawhide/Everything/x86_64/os/images/pxeboot/vmlinuz
`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			deps, err := osimage.Extractor{}.Extract("metal/os.yaml", []byte(tt.content))
			if err != nil {
				t.Fatal(err)
			}
			extracttest.Check(t, "metal/os.yaml", "os-image", tt.content, deps, tt.want)
		})
	}
}
