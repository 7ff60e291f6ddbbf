package main

import (
	"github.com/spf13/cobra"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
)

func newSchemaCmd(ios *iostreams.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON schema of hl.yaml",
		Long:  "Print the JSON schema of hl.yaml, generated from hl's config types (the same bytes as schemas/hl.schema.json).",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := ios.Out.Write(config.Schema())
			return err
		},
	}
}
