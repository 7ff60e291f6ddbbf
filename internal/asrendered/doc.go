// Package asrendered runs what the rendered repo deploys as it is
// rendered, for tests: a Woodpecker step (StepRun) or a pod template's
// container (PodRun) becomes a process with exactly the rendered command,
// arguments, environment and mounted files, running from its image's own
// file system as the image's (or the pod's) user.
//
// No container engine runs here, so the runtime's part is done by this
// package, in the same order runc does it: an image is extracted once
// (Extract, ImageFromLayout); each run re-executes the test binary in a
// new mount namespace (the package's init intercepts it before any test
// starts), which mounts an overlay of the image (writes go to a per-run
// layer), /proc, a read-only /sys, a /dev with the standard devices and
// the run's bind mounts, chroots into it, sets the groups and ids, and
// execs the command found in the container's PATH. The mounts vanish with
// the namespace; the process gets its own process group and dies with the
// test binary. All of this needs root: without it every run fails with
// ErrNotRoot (never a skip).
//
// What a real runtime does and this does not is listed where it matters,
// in StepRun's and PodRun's doc comments: the seams. The shared ones: the
// host's network and PID namespaces (ports bind on the host; servers are
// reached on loopback, named through /etc/hosts), no capability dropping
// for a root process, no seccomp, no cgroup limits.
//
// This is test-only support: nothing outside _test.go files may import it
// in production code.
package asrendered
