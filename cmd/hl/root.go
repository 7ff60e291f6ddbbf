package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/version"
)

func newRootCmd(ios *iostreams.IOStreams) *cobra.Command {
	s := newShared(ios)
	root := &cobra.Command{
		Use:           "hl",
		Short:         "GitOps homelab generator and companion bot",
		Long:          "hl renders a complete GitOps homelab repository from one hl.yaml, validates it offline,\nbootstraps it into Gitea and keeps it up to date with upgrade and secret-rotation pull requests.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Get(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if ios.Format != iostreams.FormatText && ios.Format != iostreams.FormatJSON {
				return &exitError{code: 2, msg: fmt.Sprintf("--output must be text or json, got %q", ios.Format)}
			}
			// client-go reports through klog, on stderr by default: what it
			// says (a failed discovery, quoting the server's whole answer)
			// goes to hl's log at debug level instead.
			log, err := s.logger()
			if err != nil {
				return err
			}
			klog.SetSlogLogger(slog.New(debugOnly{log.Handler()}))
			return nil
		},
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	pf := root.PersistentFlags()
	pf.StringVarP(&ios.Format, "output", "o", iostreams.FormatText, "output format where output is data: text or json")
	pf.StringVar(&s.logFormat, "log-format", "text", "log format on stderr: text or json")
	pf.StringVar(&s.logLevel, "log-level", "info", "log level on stderr: debug (with each phase's duration), info, warn or error")
	root.AddCommand(
		newVersionCmd(ios),
		newSchemaCmd(ios),
		newConfigCmd(ios),
		newRenderCmd(s),
		newBootstrapCmd(s),
		newSecretsCmd(s),
		newMetalCmd(s),
		newInitCmd(s),
		newBotCmd(s),
		newValidateCmd(s),
		newChartsCmd(ios),
		newBackupCmd(s),
		newUpCmd(s),
	)
	return root
}

// debugOnly hands every record to h at debug level.
type debugOnly struct{ h slog.Handler }

func (d debugOnly) Enabled(ctx context.Context, _ slog.Level) bool {
	return d.h.Enabled(ctx, slog.LevelDebug)
}

func (d debugOnly) Handle(ctx context.Context, r slog.Record) error {
	// logr hands errors on without asking Enabled.
	if !d.h.Enabled(ctx, slog.LevelDebug) {
		return nil
	}
	r.Level = slog.LevelDebug
	return d.h.Handle(ctx, r)
}

func (d debugOnly) WithAttrs(as []slog.Attr) slog.Handler { return debugOnly{d.h.WithAttrs(as)} }
func (d debugOnly) WithGroup(g string) slog.Handler       { return debugOnly{d.h.WithGroup(g)} }
