package asrendered

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// A test binary that imports this package becomes the container's process
// when started with childEnv set (start does so): before any test runs, it
// sets up the container and execs the command. It never returns.
func init() {
	if js, ok := os.LookupEnv(childEnv); ok {
		childMain(js)
	}
}

// devices are bound from the host into the container's /dev, as runc's
// default device list.
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// childMain runs in a fresh mount namespace (start unshared it and Go made
// / private): overlay of the image, chroot into it, the runtime's mounts
// (proc, sys, dev) and the run's own, the user, then exec. Errors go to
// the status pipe (fd 3), which the exec closes.
func childMain(js string) {
	runtime.LockOSThread()
	status := os.NewFile(3, "status")
	syscall.CloseOnExec(3)
	fail := func(format string, a ...any) {
		fmt.Fprintf(status, format, a...)
		os.Exit(125)
	}
	var s spec
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		fail("child spec: %v", err)
	}
	// The writable layer lives on a tmpfs of the run's own: overlayfs
	// refuses an upper folder on another overlay (a CI step inside a
	// container), and it vanishes with the namespace.
	if err := unix.Mount("tmpfs", s.Scratch, "tmpfs", 0, "mode=0700"); err != nil {
		fail("tmpfs for the writable layer: %v", err)
	}
	merged := filepath.Join(s.Scratch, "merged")
	upper := filepath.Join(s.Scratch, "upper")
	work := filepath.Join(s.Scratch, "work")
	for _, d := range []string{merged, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			fail("%v", err)
		}
	}
	// The image folder is shared by every run: each writes to its own
	// upper layer, as a runtime's overlay snapshot.
	opts := "lowerdir=" + s.Lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		fail("overlay of %s: %v", s.Lower, err)
	}
	// A bind of the root onto itself, so a read-only root remounts this
	// mount point only.
	if err := unix.Mount(merged, merged, "", unix.MS_BIND, ""); err != nil {
		fail("bind root: %v", err)
	}
	// Sources are host paths: open them before the chroot hides them and
	// mount them through /proc/self/fd afterwards, so each target resolves
	// inside the container (an image symlink such as /var/run -> /run must
	// never lead onto the host).
	sourceFDs := make([]int, len(s.Mounts))
	for i, m := range s.Mounts {
		fd, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			fail("mount source %s: %v", m.Source, err)
		}
		sourceFDs[i] = fd
	}
	devFDs := make([]int, len(devices))
	for i, d := range devices {
		fd, err := unix.Open("/dev/"+d, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			fail("host /dev/%s: %v", d, err)
		}
		devFDs[i] = fd
	}
	if err := unix.Chroot(merged); err != nil {
		fail("chroot: %v", err)
	}
	if err := unix.Chdir("/"); err != nil {
		fail("chdir /: %v", err)
	}
	mustDir := func(p string, mode os.FileMode) {
		if err := os.MkdirAll(p, mode); err != nil {
			fail("%v", err)
		}
	}
	mustDir("/proc", 0o555)
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fail("mount /proc: %v", err)
	}
	mustDir("/sys", 0o555)
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		fail("mount /sys: %v", err)
	}
	mustDir("/dev", 0o755)
	if err := unix.Mount("tmpfs", "/dev", "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		fail("mount /dev: %v", err)
	}
	for i, d := range devices {
		if err := os.WriteFile("/dev/"+d, nil, 0o666); err != nil {
			fail("%v", err)
		}
		if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(devFDs[i]), "/dev/"+d, "", unix.MS_BIND, ""); err != nil {
			fail("bind /dev/%s: %v", d, err)
		}
	}
	for name, target := range map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(target, "/dev/"+name); err != nil {
			fail("%v", err)
		}
	}
	mustDir("/dev/shm", 0o1777)
	if err := unix.Mount("shm", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		fail("mount /dev/shm: %v", err)
	}
	for _, f := range s.Files {
		mustDir(filepath.Dir(f.Path), 0o755)
		if err := os.WriteFile(f.Path, []byte(f.Content), os.FileMode(f.Mode)); err != nil {
			fail("write %s: %v", f.Path, err)
		}
		if err := os.Chmod(f.Path, os.FileMode(f.Mode)); err != nil {
			fail("%v", err)
		}
	}
	for i, m := range s.Mounts {
		var st unix.Stat_t
		if err := unix.Fstat(sourceFDs[i], &st); err != nil {
			fail("mount source %s: %v", m.Source, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			mustDir(m.Target, 0o755)
		} else {
			mustDir(filepath.Dir(m.Target), 0o755)
			if _, err := os.Lstat(m.Target); os.IsNotExist(err) {
				if err := os.WriteFile(m.Target, nil, 0o644); err != nil {
					fail("mount target %s: %v", m.Target, err)
				}
			}
		}
		src := "/proc/self/fd/" + strconv.Itoa(sourceFDs[i])
		if err := unix.Mount(src, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			fail("bind %s at %s: %v", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				fail("read-only %s: %v", m.Target, err)
			}
		}
		unix.Close(sourceFDs[i])
	}
	for _, fd := range devFDs {
		unix.Close(fd)
	}
	dir := s.Dir
	if dir == "" {
		dir = "/"
	}
	// runc creates a missing working directory (as root, before the user).
	mustDir(dir, 0o755)
	if s.ReadOnlyRoot {
		if err := unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			fail("read-only root: %v", err)
		}
	}
	groups := make([]int, len(s.Groups))
	for i, g := range s.Groups {
		groups[i] = int(g)
	}
	if err := syscall.Setgroups(groups); err != nil {
		fail("setgroups: %v", err)
	}
	if err := syscall.Setgid(int(s.GID)); err != nil {
		fail("setgid %d: %v", s.GID, err)
	}
	if err := syscall.Setuid(int(s.UID)); err != nil {
		fail("setuid %d: %v", s.UID, err)
	}
	if s.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			fail("no_new_privs: %v", err)
		}
	}
	// The credentials change cleared the parent-death signal.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		fail("pdeathsig: %v", err)
	}
	if err := os.Chdir(dir); err != nil {
		fail("working directory %s: %v", dir, err)
	}
	path, err := lookPath(s.Argv[0], s.Env)
	if err != nil {
		fail("%v", err)
	}
	err = syscall.Exec(path, s.Argv, s.Env)
	fail("exec %s: %v", path, err)
}

// lookPath finds argv0 in the container's PATH, as runc does with the
// process's own environment.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		return argv0, nil
	}
	pathEnv := strings.TrimPrefix(defaultPath, "PATH=")
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		p := filepath.Join(dir, argv0)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", argv0)
}
