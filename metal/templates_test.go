package metal

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"hl.dev/hl/generator"
	"hl.dev/hl/schemas"
	"hl.dev/hl/secrets"
)

func TestRenderedIndexAndOS(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(idx.Names(), ","); got != "cp1,cp2,cp3,worker1,worker2" {
		t.Errorf("nodes %s", got)
	}
	// worker2 is written 52-54-00-10-00-12 in hl.yaml: the index normalises.
	if n, ok := idx.ByMAC("52:54:00:10:00:12"); !ok || n.Name != "worker2" || n.Role != RoleAgent {
		t.Errorf("worker2 by MAC: %+v %v", n, ok)
	}
	cp1, _ := idx.ByName("cp1")
	if !cp1.FirstServer || cp1.Rejoin != "https://172.16.10.100:6443" || cp1.InstallConfig != "preseed.cfg" {
		t.Errorf("cp1 %+v", cp1)
	}
	if idx.Server != "http://172.16.10.2:8080" || idx.DHCPMode != "proxy" || idx.K3s == "" || idx.NodeCIDR != "172.16.10.0/24" {
		t.Errorf("index %+v", idx)
	}
	pin, err := LoadOSPin(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The real checksums of the Debian package
	// debian-installer-13-netboot-amd64 20250803+deb13u8 (TestPullDebianNetboot
	// checks them against the installed package's files).
	if pin.Ref() != (OSRef{"debian", "13"}) || pin.Kernel.SHA256 != "14159c607ad9762133db41e479dafecde1d6a5fe715a8d65d292a3262e4b6bed" ||
		pin.Initrd.SHA256 != "8931fe75c6fefc90009f833afd6bb52d10e6f30d9723664eeee5f4258a7eabc3" {
		t.Errorf("os pin %+v", pin)
	}
}

func TestRenderedK3sConfigs(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	node := func(name, file string) string { return readFile(t, filepath.Join(dir, "metal/nodes", name, file)) }
	cp1, cp2, w1 := node("cp1", "k3s-config.yaml"), node("cp2", "k3s-config.yaml"), node("worker1", "k3s-config.yaml")
	// Issue 15, finding 3: servers hold the server token and the agent
	// token they accept; agents hold the agent token only.
	for name, c := range map[string]string{"cp1": cp1, "cp2": cp2} {
		if !strings.Contains(c, `token: "`+PlaceholderK3sToken+`"`) || !strings.Contains(c, `agent-token: "`+PlaceholderK3sAgentToken+`"`) {
			t.Errorf("%s: server token placeholders:\n%s", name, c)
		}
	}
	for _, n := range []string{"worker1", "worker2"} {
		c := node(n, "k3s-config.yaml")
		if !strings.Contains(c, `token: "`+PlaceholderK3sAgentToken+`"`) || strings.Contains(c, PlaceholderK3sToken) || strings.Contains(c, "\nagent-token:") {
			t.Errorf("%s: agent token placeholder only:\n%s", n, c)
		}
	}
	for _, want := range []string{"cluster-init: true", "secrets-encryption: true", "  - \"172.16.10.100\"\n", "disable:\n  - \"servicelb\"\n  - \"traefik\""} {
		if !strings.Contains(cp1, want) {
			t.Errorf("cp1 lacks %q:\n%s", want, cp1)
		}
	}
	if !strings.Contains(cp2, `server: "https://172.16.10.100:6443"`) || strings.Contains(cp2, "cluster-init") {
		t.Errorf("cp2 must join the VIP:\n%s", cp2)
	}
	if !strings.Contains(w1, `server: "https://172.16.10.100:6443"`) || strings.Contains(w1, "secrets-encryption") {
		t.Errorf("worker1 must join the VIP as agent:\n%s", w1)
	}
	for _, n := range []string{"cp1", "cp2", "cp3"} {
		kv := node(n, "kube-vip.yaml")
		if !strings.Contains(kv, "ghcr.io/kube-vip/kube-vip:v") || !strings.Contains(kv, `value: "172.16.10.100"`) {
			t.Errorf("%s kube-vip:\n%s", n, kv)
		}
		if !strings.Contains(node(n, "post-install.sh"), "pod-manifests/kube-vip.yaml") {
			t.Errorf("%s post-install does not place kube-vip", n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "metal/nodes/worker1/kube-vip.yaml")); err == nil {
		t.Error("agents get no kube-vip")
	}

	// One server: no kube-vip, agents join the server itself.
	single := renderedRepo(t, "metal/e2e-full")
	if _, err := os.Stat(filepath.Join(single, "metal/nodes/node1/kube-vip.yaml")); err == nil {
		t.Error("a single server needs no kube-vip")
	}
	if c := readFile(t, filepath.Join(single, "metal/nodes/node2/k3s-config.yaml")); !strings.Contains(c, `server: "https://10.99.0.11:6443"`) {
		t.Errorf("agent of a single server:\n%s", c)
	}
}

func TestRenderedInstallConfigDebian(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	p := readFile(t, filepath.Join(dir, "metal/nodes/worker1/preseed.cfg"))
	for _, want := range []string{
		"d-i partman-auto/disk string /dev/nvme0n1",
		"d-i grub-installer/bootdev string /dev/nvme0n1",
		"d-i netcfg/hostname string worker1",
		"d-i passwd/root-login boolean false",
		"d-i passwd/user-password-crypted password !",
		"apparmor apparmor-utils unattended-upgrades",
		"d-i pkgsel/update-policy select unattended-upgrades",
		"d-i mirror/http/hostname string snapshot.debian.org\n",
		"d-i mirror/http/directory string /archive/debian/",
		"Bearer @@HL_TOKEN:post-install.sh@@",
		"http://172.16.10.2:8080/nodes/worker1/post-install.sh",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("preseed lacks %q", want)
		}
	}
	post := readFile(t, filepath.Join(dir, "metal/nodes/worker1/post-install.sh"))
	for _, want := range []string{
		"IP='172.16.10.21'\n", "address $IP/$PREFIX", "passwd -l root", "PermitRootLogin no", "PasswordAuthentication no",
		"systemctl enable apparmor", "APT::Periodic::Unattended-Upgrade \"1\";",
		"INSTALL_K3S_VERSION=v", "INSTALL_K3S_EXEC=agent", "raw.githubusercontent.com/k3s-io/k3s/v",
		"printf '%s\\n' 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC6jbetxbp3eof0Aj31M3uJxtuN+4ZA34QwawtArMBUq laptop' >> /home/hl/.ssh/authorized_keys\n",
		`"$HL_URL/callback/$MAC"`, "MAC='52:54:00:10:00:11'", "Bearer @@HL_TOKEN:callback@@",
		"fetch '@@HL_TOKEN:k3s-config.yaml@@' k3s-config.yaml /etc/rancher/k3s/config.yaml",
	} {
		if !strings.Contains(post, want) {
			t.Errorf("post-install lacks %q", want)
		}
	}
	boot := readFile(t, filepath.Join(dir, "metal/nodes/worker1/boot.ipxe"))
	for _, want := range []string{"#!ipxe\n", "kernel http://172.16.10.2:8080/os/debian/13/kernel ", "url=http://172.16.10.2:8080/t/@@HL_TOKEN:preseed.cfg@@/nodes/worker1/preseed.cfg", "initrd --name initrd.gz http://172.16.10.2:8080/os/debian/13/initrd"} {
		if !strings.Contains(boot, want) {
			t.Errorf("boot.ipxe lacks %q:\n%s", want, boot)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "metal/nodes/worker1/kickstart.cfg")); err == nil {
		t.Error("a Debian node has no kickstart")
	}
	// The scripts parse.
	for _, n := range []string{"cp1", "worker1"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(dir, "metal/nodes", n, "post-install.sh")).CombinedOutput(); err != nil {
			t.Errorf("%s post-install.sh: %v\n%s", n, err, out)
		}
	}
}

// TestRenderFedoraRefused: Fedora is not offered (no netboot image of a
// supported release is pinned): a config asking for it renders nothing and
// says what to use instead.
func TestRenderFedoraRefused(t *testing.T) {
	src := readFile(t, configPath("valid/ha"))
	src = strings.Replace(src, "      dhcpMode: proxy\n", "      dhcpMode: proxy\n    os: {name: fedora, version: \"42\"}\n", 1)
	cfg := filepath.Join(t.TempDir(), "fedora.yaml")
	writeFile(t, cfg, src)
	out := filepath.Join(t.TempDir(), "out")
	_, err := generator.Render(context.Background(), generator.Options{ConfigPath: cfg, OutDir: out, Identities: testIdentities(t)})
	if err == nil || !strings.Contains(err.Error(), "Fedora is no longer offered") || !strings.Contains(err.Error(), "use name: debian") {
		t.Fatalf("render error %v, want Fedora refused with the way out", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("a refused config wrote %d entries", len(entries))
	}
}

func TestRenderedDnsmasq(t *testing.T) {
	proxy := readFile(t, filepath.Join(renderedRepo(t, "valid/ha"), DnsmasqConf))
	full := readFile(t, filepath.Join(renderedRepo(t, "valid/single-node"), DnsmasqConf))
	for _, c := range []string{proxy, full} {
		for _, want := range []string{"\nport=0\n", "\nenable-tftp\n", "dhcp-userclass=set:ipxe,iPXE"} {
			if !strings.Contains(c, want) {
				t.Errorf("dnsmasq.conf lacks %q:\n%s", want, c)
			}
		}
	}
	for _, want := range []string{"dhcp-range=172.16.10.2,proxy", "pxe-service=tag:!ipxe,x86PC,\"hl: chainload iPXE\",undionly.kpxe", "pxe-service=tag:ipxe,x86PC,\"hl: boot\",http://172.16.10.2:8080/boot.ipxe"} {
		if !strings.Contains(proxy, want) {
			t.Errorf("proxy dnsmasq.conf lacks %q", want)
		}
	}
	for _, want := range []string{"dhcp-range=10.20.0.2,static", "dhcp-host=1c:69:7a:0a:bc:de,10.20.0.11,nuc", "dhcp-option=option:router,10.20.0.1", "dhcp-option=option:dns-server,10.20.0.1,9.9.9.9", "dhcp-boot=tag:ipxe,http://10.20.0.2:8080/boot.ipxe", "dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe"} {
		if !strings.Contains(full, want) {
			t.Errorf("full dnsmasq.conf lacks %q", want)
		}
	}
	// dnsmasq itself accepts both.
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Fatalf("dnsmasq not found: install the Debian package dnsmasq (%v)", err)
	}
	for name, c := range map[string]string{"proxy": proxy, "full": full} {
		f := filepath.Join(t.TempDir(), "dnsmasq.conf")
		writeFile(t, f, c)
		if out, err := exec.Command(bin, "--test", "--conf-file="+f).CombinedOutput(); err != nil {
			t.Errorf("dnsmasq --test (%s): %v\n%s", name, err, out)
		}
	}
}

// TestRenderedWoodpeckerMetalPipeline: the metal pipeline runs on pushes
// to main that change metal/; with Woodpecker deployed by the repo its
// credentials come from the cluster (native secrets, the rollout
// ServiceAccount: e2e's TestPipelineSteps runs it so), without it they
// are the three Woodpecker secrets the user adds to their own Woodpecker,
// and the nodes get no pipeline key.
func TestRenderedWoodpeckerMetalPipeline(t *testing.T) {
	ha, err := os.ReadFile(configPath("valid/ha"))
	if err != nil {
		t.Fatal(err)
	}
	off := filepath.Join(t.TempDir(), "hl.yaml")
	writeFile(t, off, strings.Replace(string(ha), "\nspec:\n", "\nspec:\n  apps:\n    woodpecker: {enabled: false}\n", 1))
	for _, tc := range []struct {
		cfg, dir      string
		want, notWant []string
	}{
		{cfg: "valid/ha", dir: renderedRepo(t, "valid/ha"),
			want:    []string{"serviceAccountName: metal-rollout", "name: metal-api-token", "name: metal-rollout-ssh", "target: {env: HL_METAL_SSH_KEY}"},
			notWant: []string{"from_secret"}},
		{cfg: "valid/single-node", dir: renderedRepo(t, "valid/single-node"),
			want:    []string{"serviceAccountName: metal-rollout"},
			notWant: []string{"from_secret"}},
		{cfg: "ha without woodpecker", dir: renderConfigFile(t, "metal/ha-without-woodpecker", off),
			want:    []string{"from_secret: hl_metal_api_token", "from_secret: hl_metal_ssh_key", "from_secret: hl_kubeconfig"},
			notWant: []string{"backend_options", "serviceAccountName"}},
	} {
		cfg, dir := tc.cfg, tc.dir
		data, err := os.ReadFile(filepath.Join(dir, ".woodpecker/metal.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.ValidateYAML(schemas.Woodpecker, data); err != nil {
			t.Errorf("%s: .woodpecker/metal.yaml: %v", cfg, err)
		}
		for _, want := range append([]string{"event: push", `path: "metal/**"`, "hl metal rollout"}, tc.want...) {
			if !strings.Contains(string(data), want) {
				t.Errorf("%s: metal.yaml lacks %q", cfg, want)
			}
		}
		for _, bad := range tc.notWant {
			if strings.Contains(string(data), bad) {
				t.Errorf("%s: metal.yaml has %q:\n%s", cfg, bad, data)
			}
		}
		_, keyErr := os.Stat(filepath.Join(dir, filepath.FromSlash(RolloutKeyFile)))
		nodes, err := os.ReadDir(filepath.Join(dir, "metal", "nodes"))
		if err != nil || len(nodes) == 0 {
			t.Fatalf("%s: metal/nodes: %v", cfg, err)
		}
		post, err := os.ReadFile(filepath.Join(dir, "metal", "nodes", nodes[0].Name(), "post-install.sh"))
		if err != nil {
			t.Fatal(err)
		}
		if withWP := len(tc.notWant) > 0 && tc.notWant[0] == "from_secret"; withWP != (keyErr == nil) || withWP != strings.Contains(string(post), PlaceholderRolloutKey) {
			t.Errorf("%s: Woodpecker on: %v; %s: %v; post-install.sh asks for the rollout key: %v", cfg, withWP, RolloutKeyFile, keyErr, strings.Contains(string(post), PlaceholderRolloutKey))
		}
		if !regexp.MustCompile(`branch: "?main"?\n`).Match(data) {
			t.Errorf("%s: metal.yaml runs on another branch than main:\n%s", cfg, data)
		}
	}
}

// TestNoPlaintextSecrets: no value of a metal secret appears anywhere in
// the rendered repo outside its SOPS file.
func TestNoPlaintextSecrets(t *testing.T) {
	dir := renderedRepo(t, "valid/ha")
	var values []string
	for _, name := range []string{"k3s-token", "k3s-agent-token", "metal-api-token"} {
		cipher := readFile(t, filepath.Join(dir, "metal/secrets", name+".sops.yaml"))
		plain, err := secrets.Decrypt([]byte(cipher), testIdentities(t)...)
		if err != nil {
			t.Fatal(err)
		}
		ex, err := secrets.ReadSecret(plain)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range ex.Values {
			values = append(values, v)
		}
	}
	if len(values) != 3 {
		t.Fatalf("values %d", len(values))
	}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.HasSuffix(p, ".sops.yaml") {
			return err
		}
		b, err := os.ReadFile(p)
		for _, v := range values {
			if strings.Contains(string(b), v) {
				t.Errorf("%s holds a secret value in plain text", p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRenderedTokenChain (issue 15, finding 1): each rendered node file
// asks for tokens of the next step only, so what the installer fetches
// without a header (boot script, install config) can release nothing but
// the next file: boot.ipxe → install config → post-install.sh → k3s
// config, kube-vip, callback. Only the k3s config holds a secret
// placeholder.
func TestRenderedTokenChain(t *testing.T) {
	for _, cfg := range []string{"valid/ha", "metal/e2e-full"} {
		dir := renderedRepo(t, cfg)
		idx, err := LoadIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range idx.Nodes {
			want := map[string][]string{
				nodeBootFile:    {n.InstallConfig},
				n.InstallConfig: {"post-install.sh"},
				k3sConfigFile:   nil,
			}
			post := []string{ResourceCallback, k3sConfigFile}
			if _, err := os.Stat(filepath.Join(dir, NodesDir, n.Name, "kube-vip.yaml")); err == nil {
				post = append(post, "kube-vip.yaml")
				want["kube-vip.yaml"] = nil
			}
			want["post-install.sh"] = post
			files, err := os.ReadDir(filepath.Join(dir, NodesDir, n.Name))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(want) {
				t.Errorf("%s %s: files %v, want %v", cfg, n.Name, files, want)
			}
			for file, res := range want {
				b, err := os.ReadFile(filepath.Join(dir, NodesDir, n.Name, file))
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, m := range tokenPlaceholder.FindAllSubmatch(b, -1) {
					got = append(got, string(m[1]))
				}
				slices.Sort(got)
				got = slices.Compact(got)
				slices.Sort(res)
				if !slices.Equal(got, res) {
					t.Errorf("%s %s/%s mints tokens for %v, want %v", cfg, n.Name, file, got, res)
				}
				if holdsSecret(b) != (file == k3sConfigFile) {
					t.Errorf("%s %s/%s: secret placeholder %t", cfg, n.Name, file, holdsSecret(b))
				}
			}
		}
	}
}
