package main

import (
	"runtime"

	"github.com/spf13/cobra"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/version"
)

func newVersionCmd(ios *iostreams.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print hl's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			info := map[string]string{"version": version.Get(), "go": runtime.Version(), "apiVersion": config.APIVersion}
			if ios.JSON() {
				return ios.WriteJSON(info)
			}
			ios.Printf("hl %s (%s, config %s)\n", info["version"], info["go"], info["apiVersion"])
			return nil
		},
	}
}
