// Package iostreams owns hl's standard streams: where output goes, whether
// it is a terminal, and the text/json output switch, so commands are
// tested with buffers instead of a terminal.
package iostreams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// Output formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// IOStreams are the streams a command talks through.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// Format is text or json (the global --output flag).
	Format string

	inTTY, outTTY bool
}

// System returns the process's streams.
func System() *IOStreams {
	return &IOStreams{
		In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr, Format: FormatText,
		inTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		outTTY: term.IsTerminal(int(os.Stdout.Fd())),
	}
}

// Test returns streams backed by buffers: stdin, stdout, stderr.
func Test() (*IOStreams, *bytes.Buffer, *bytes.Buffer, *bytes.Buffer) {
	in, out, errOut := &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut, Format: FormatText}, in, out, errOut
}

// IsStdinTTY reports whether input comes from a terminal.
func (s *IOStreams) IsStdinTTY() bool { return s.inTTY }

// IsStdoutTTY reports whether output goes to a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// SetTTY overrides terminal detection (tests).
func (s *IOStreams) SetTTY(in, out bool) { s.inTTY, s.outTTY = in, out }

// JSON reports whether machine output was asked for.
func (s *IOStreams) JSON() bool { return s.Format == FormatJSON }

// WriteJSON writes v as indented JSON to Out.
func (s *IOStreams) WriteJSON(v any) error {
	enc := json.NewEncoder(s.Out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Printf writes human output to Out.
func (s *IOStreams) Printf(format string, args ...any) {
	fmt.Fprintf(s.Out, format, args...)
}

// Errorf writes to ErrOut.
func (s *IOStreams) Errorf(format string, args ...any) {
	fmt.Fprintf(s.ErrOut, format, args...)
}
