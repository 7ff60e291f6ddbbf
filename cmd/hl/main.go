// Command hl renders, validates, bootstraps and maintains a GitOps homelab
// from one hl.yaml. Each subcommand lives in its own file here and only
// parses flags into an options struct before calling a library package.
package main

import (
	"errors"
	"fmt"
	"os"

	"hl.dev/hl/internal/iostreams"
)

func main() {
	os.Exit(run(iostreams.System(), os.Args[1:]))
}

// exitError carries an exit code for failures already reported to the
// user (problems found, conflicts), so main prints nothing more.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func run(ios *iostreams.IOStreams, args []string) int {
	root := newRootCmd(ios)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(ios.ErrOut, "hl:", ee.msg)
		}
		return ee.code
	}
	fmt.Fprintln(ios.ErrOut, "hl:", err)
	return 1
}
