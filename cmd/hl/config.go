package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/fsutil"
	"hl.dev/hl/internal/iostreams"
)

func newConfigCmd(ios *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Check, migrate and show hl.yaml",
	}
	cmd.AddCommand(newConfigValidateCmd(ios), newConfigMigrateCmd(ios), newConfigExampleCmd(ios))
	return cmd
}

type configValidateOptions struct {
	File    string
	Example bool
}

func newConfigValidateCmd(ios *iostreams.IOStreams) *cobra.Command {
	opts := &configValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate [FILE]",
		Short: "Check hl.yaml strictly and report every problem with line and field path",
		Long: "Check hl.yaml strictly: unknown keys, wrong types, duplicate keys and every cross-field rule,\n" +
			"reported all at once as file:line:column: path: message. Exits 1 when any error is found.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.File = "hl.yaml"
			if len(args) == 1 {
				opts.File = args[0]
			}
			return runConfigValidate(ios, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Example, "example", false, "validate the embedded example instead of a file")
	return cmd
}

type validateResult struct {
	File     string          `json:"file"`
	Valid    bool            `json:"valid"`
	Problems config.Problems `json:"problems"`
}

func runConfigValidate(ios *iostreams.IOStreams, opts *configValidateOptions) error {
	var (
		doc   *config.Document
		probs config.Problems
	)
	if opts.Example {
		opts.File = "example.yaml"
		doc, probs = config.Parse(opts.File, config.Example())
	} else {
		data, err := os.ReadFile(opts.File)
		if err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
		doc, probs = config.Parse(opts.File, data)
	}
	res := validateResult{File: opts.File, Valid: len(probs.Errors()) == 0, Problems: probs}
	if res.Problems == nil {
		res.Problems = config.Problems{}
	}
	if ios.JSON() {
		if err := ios.WriteJSON(res); err != nil {
			return err
		}
	} else {
		for _, p := range probs {
			fmt.Fprintln(ios.Out, p.String())
		}
		if res.Valid {
			h := doc.Homelab
			enabled := 0
			for name := range h.Spec.Apps {
				if h.Enabled(name) {
					enabled++
				}
			}
			ios.Printf("%s: valid %s %q: %d nodes, %d components enabled\n", opts.File, config.APIVersion, h.Metadata.Name, len(h.Spec.Metal.Nodes), enabled)
		} else {
			ios.Printf("%s: %s, %s\n", opts.File, plural(len(probs.Errors()), "error"), plural(len(probs)-len(probs.Errors()), "warning"))
		}
	}
	if !res.Valid {
		return &exitError{code: 1}
	}
	return nil
}

type configMigrateOptions struct {
	File  string
	Write bool
}

func newConfigMigrateCmd(ios *iostreams.IOStreams) *cobra.Command {
	opts := &configMigrateOptions{}
	cmd := &cobra.Command{
		Use:   "migrate [FILE]",
		Short: "Rewrite hl.yaml to the newest apiVersion, keeping comments",
		Long:  "Rewrite hl.yaml to the newest apiVersion (" + config.APIVersion + "), keeping comments and key order.\nPrints the result unless --write is given.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.File = "hl.yaml"
			if len(args) == 1 {
				opts.File = args[0]
			}
			return runConfigMigrate(ios, opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Write, "write", "w", false, "write the migrated file in place (atomically)")
	return cmd
}

func runConfigMigrate(ios *iostreams.IOStreams, opts *configMigrateOptions) error {
	data, err := os.ReadFile(opts.File)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	doc, probs := config.Parse(opts.File, data)
	if len(probs.Errors()) > 0 {
		for _, p := range probs {
			fmt.Fprintln(ios.ErrOut, p.String())
		}
		return &exitError{code: 1, msg: "fix these problems first"}
	}
	if len(doc.Migrated) == 0 {
		ios.Errorf("%s is already %s\n", opts.File, config.APIVersion)
		if !opts.Write {
			_, err := ios.Out.Write(data)
			return err
		}
		return nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc.Root); err != nil {
		return err
	}
	if !opts.Write {
		_, err := ios.Out.Write(buf.Bytes())
		return err
	}
	if err := fsutil.WriteFileAtomic(opts.File, buf.Bytes(), 0o644); err != nil {
		return err
	}
	ios.Errorf("%s migrated from %v to %s\n", opts.File, doc.Migrated, config.APIVersion)
	return nil
}

func newConfigExampleCmd(ios *iostreams.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "example",
		Short: "Print the embedded example hl.yaml",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := ios.Out.Write(config.Example())
			return err
		},
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
