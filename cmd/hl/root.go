package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/version"
)

func newRootCmd(ios *iostreams.IOStreams) *cobra.Command {
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
			return nil
		},
	}
	root.SetIn(ios.In)
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.PersistentFlags().StringVarP(&ios.Format, "output", "o", iostreams.FormatText, "output format where output is data: text or json")
	root.AddCommand(
		newVersionCmd(ios),
		newSchemaCmd(ios),
		newConfigCmd(ios),
		newRenderCmd(ios),
		newBootstrapCmd(ios),
		newSecretsCmd(ios),
		newMetalCmd(ios),
		newInitCmd(ios),
		newBotCmd(ios),
		newValidateCmd(ios),
		newChartsCmd(ios),
	)
	return root
}
