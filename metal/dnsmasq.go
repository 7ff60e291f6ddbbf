package metal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DnsmasqOptions configure the dnsmasq child of hl metal serve.
type DnsmasqOptions struct {
	// Path of the dnsmasq binary (default: dnsmasq from $PATH).
	Path string
	// IPXEDir holds undionly.kpxe and ipxe.efi for firmware without iPXE
	// (Debian package ipxe: /usr/lib/ipxe).
	IPXEDir string
	// Interface restricts DHCP/TFTP to one NIC (default: all).
	Interface string
	// WorkDir holds the TFTP root, lease and pid files (default: beside
	// the state file).
	WorkDir string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// DefaultIPXEDir is where Debian's ipxe package puts the iPXE binaries.
const DefaultIPXEDir = "/usr/lib/ipxe"

// iPXE binaries dnsmasq hands to PXE firmware (see metal/dnsmasq.conf).
var ipxeBinaries = []string{"undionly.kpxe", "ipxe.efi"}

type dnsmasqProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// DnsmasqArgs is the dnsmasq command line hl metal serve uses: the
// rendered config plus the host-specific options.
func DnsmasqArgs(repoDir, workDir string, o DnsmasqOptions) []string {
	args := []string{
		"--keep-in-foreground",
		"--conf-file=" + filepath.Join(repoDir, filepath.FromSlash(DnsmasqConf)),
		"--log-facility=-",
		"--tftp-root=" + filepath.Join(workDir, "tftp"),
		"--dhcp-leasefile=" + leaseFilePath(workDir),
		"--pid-file=" + filepath.Join(workDir, "dnsmasq.pid"),
	}
	if o.Interface != "" {
		args = append(args, "--interface="+o.Interface, "--bind-dynamic")
	}
	return append(args, o.ExtraArgs...)
}

// leaseFilePath is where dnsmasq keeps its leases: hl metal serve reads
// it to bind a node's install requests to the address leased to its MAC.
func leaseFilePath(workDir string) string { return filepath.Join(workDir, "dnsmasq.leases") }

// PrepareTFTPRoot fills workDir/tftp with the iPXE binaries found in
// ipxeDir and returns the ones missing.
func PrepareTFTPRoot(workDir, ipxeDir string) (missing []string, err error) {
	root := filepath.Join(workDir, "tftp")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	// dnsmasq reads TFTP files after dropping privileges.
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	for _, name := range ipxeBinaries {
		src, err := os.ReadFile(filepath.Join(ipxeDir, name))
		if errors.Is(err, os.ErrNotExist) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(root, name), src, 0o644); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

func startDnsmasq(ctx context.Context, repoDir, statePath string, o DnsmasqOptions, log *AccessLog) (*dnsmasqProc, error) {
	if o.Path == "" {
		o.Path = "dnsmasq"
	}
	bin, err := exec.LookPath(o.Path)
	if err != nil {
		return nil, fmt.Errorf("dnsmasq not found (%w): install the Debian package dnsmasq, or run with --dhcp=off behind another PXE DHCP server", err)
	}
	if o.IPXEDir == "" {
		o.IPXEDir = DefaultIPXEDir
	}
	workDir := o.WorkDir
	if workDir == "" {
		workDir = filepath.Dir(statePath)
	}
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return nil, err
	}
	missing, err := PrepareTFTPRoot(workDir, o.IPXEDir)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		log.Printf("serve", "warning: %v not in %s (Debian package ipxe): machines whose firmware lacks iPXE cannot chainload it", missing, o.IPXEDir)
	}
	cmd := exec.Command(bin, DnsmasqArgs(repoDir, workDir, o)...)
	setChildAttrs(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dnsmasq: %w", err)
	}
	p := &dnsmasqProc{cmd: cmd, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			log.Printf("dnsmasq", "%s", sc.Text())
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.stop()
		case <-p.done:
		}
	}()
	// dnsmasq exits at once on a config error: report it as a start error.
	select {
	case <-p.done:
		return nil, fmt.Errorf("dnsmasq exited at start (%v): see the log above", p.err)
	case <-time.After(500 * time.Millisecond):
	}
	log.Printf("serve", "dnsmasq running (pid %d) with %s", cmd.Process.Pid, DnsmasqConf)
	return p, nil
}

func (p *dnsmasqProc) wait() error {
	<-p.done
	return p.err
}

func (p *dnsmasqProc) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}
