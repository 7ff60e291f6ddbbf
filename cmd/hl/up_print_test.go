package main

import (
	"bytes"
	"errors"
	"testing"

	"hl.dev/hl/up"
)

// hl up's progress view: a plain line per event without a terminal; on a
// terminal a pending line per running step that a log line goes above
// and the result replaces.
func TestUpPrinter(t *testing.T) {
	play := func(p *upPrinter) {
		p.event(up.Event{Step: "images", Status: up.StatusHolds, Detail: "debian 13 kernel and initrd verified"})
		p.event(up.Event{Step: "nodes", Status: up.StatusRunning})
		p.logf("waiting for node2 (install) to call back (1 of 2 installed)")
		p.event(up.Event{Step: "nodes", Status: up.StatusDone, Detail: "2 nodes installed"})
		p.event(up.Event{Step: "sync", Status: up.StatusRunning, Redo: true, Detail: "not ready: blog (Synced, Degraded)"})
		p.event(up.Event{Step: "sync", Status: up.StatusFailed, Err: errors.New("after 30m0s, not Synced and Healthy")})
	}
	for _, tc := range []struct {
		tty  bool
		want string
	}{
		{false, "= images      holds   debian 13 kernel and initrd verified\n" +
			"  nodes       running\n" +
			"      waiting for node2 (install) to call back (1 of 2 installed)\n" +
			"+ nodes       done    2 nodes installed\n" +
			"  sync        no longer holds (not ready: blog (Synced, Degraded)): running again\n" +
			"! sync        failed  after 30m0s, not Synced and Healthy\n"},
		{true, "= images      holds   debian 13 kernel and initrd verified\n" +
			"  nodes       running ..." + "\r\033[K" +
			"      waiting for node2 (install) to call back (1 of 2 installed)\n" +
			"  nodes       running ..." + "\r\033[K" +
			"+ nodes       done    2 nodes installed\n" +
			"  sync        no longer holds (not ready: blog (Synced, Degraded)): running again ..." + "\r\033[K" +
			"! sync        failed  after 30m0s, not Synced and Healthy\n"},
	} {
		var b bytes.Buffer
		play(newUpPrinter(&b, tc.tty))
		if b.String() != tc.want {
			t.Errorf("tty %t:\n got %q\nwant %q", tc.tty, b.String(), tc.want)
		}
	}
}
