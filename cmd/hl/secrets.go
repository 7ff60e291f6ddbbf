package main

import (
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/secrets"
)

type keygenOptions struct {
	Path string
}

func newSecretsCmd(s *shared) *cobra.Command {
	ios := s.ios
	cmd := &cobra.Command{Use: "secrets", Short: "Manage the age identity and generated secrets"}
	opts := &keygenOptions{}
	keygen := &cobra.Command{
		Use:   "keygen [FILE]",
		Short: "Write a new age identity (0600, outside the repo by default); refuses to overwrite",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Path = secrets.DefaultIdentityFile()
			if len(args) == 1 {
				opts.Path = args[0]
			}
			rcpt, err := secrets.WriteIdentityFile(opts.Path)
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if ios.JSON() {
				return ios.WriteJSON(map[string]string{"file": opts.Path, "recipient": rcpt})
			}
			ios.Printf("%s\n", rcpt)
			ios.Errorf("wrote age identity %s (keep it safe and out of git); add the recipient above to spec.secrets.ageRecipients\n", opts.Path)
			return nil
		},
	}
	cmd.AddCommand(keygen, newSecretsStatusCmd(ios), newSecretsRotateCmd(ios), newSecretsSetCmd(s), newSecretsManifestsCmd(s))
	return cmd
}

func newSecretsStatusCmd(ios *iostreams.IOStreams) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List every generated secret with its generated-at and rotation due date",
		Long: `List every secret hl generates (read from the cleartext metadata of the
*.sops.yaml files, nothing is decrypted): name, namespace, file, generated-at,
rotate-after, the due date and whether it is due now. Copies are rotated
with the secret they copy.`,
		Example: "  hl secrets status\n  hl secrets status -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := secrets.Scan(dir, time.Now())
			if err != nil {
				return err
			}
			var gen []secrets.Secret
			for _, s := range all {
				if s.Generated {
					gen = append(gen, s)
				}
			}
			if ios.JSON() {
				if gen == nil {
					gen = []secrets.Secret{}
				}
				return ios.WriteJSON(gen)
			}
			tw := tabwriter.NewWriter(ios.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAMESPACE\tNAME\tGENERATED\tROTATE-AFTER\tDUE\tSTATUS\tFILE")
			for _, s := range gen {
				status := "ok"
				switch {
				case s.CopyOf != "":
					status = "copy of " + filepath.Base(s.CopyOf)
				case s.Due && !s.Rotatable:
					status = "DUE (rotate by hand)"
				case s.Due:
					status = "DUE"
				case s.RotateAfter == "":
					status = "never rotated"
				}
				due := s.DueAt
				if due == "" {
					due = "-"
				}
				ra := s.RotateAfter
				if ra == "" {
					ra = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, s.GeneratedAt, ra, due, status, s.File)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "C", ".", "repository root")
	return cmd
}

func newSecretsRotateCmd(ios *iostreams.IOStreams) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Rotate one generated secret in the working tree (new values, fresh data key)",
		Long: `Give a generated secret (NAME, NAMESPACE/NAME or its file) new values from
its generator spec, encrypted with a fresh SOPS data key for the file's
recipients. Its copies get the same new values, hl.dev/generated-at becomes
today and the workloads that read it get a new hl.dev/secret-checksum-*
annotation so they restart. Only files in the working tree change: review,
commit and push them. No age identity is needed; values are never printed.`,
		Example: "  hl secrets rotate dex-clients\n  hl secrets rotate gitea/gitea-metrics",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rot, err := secrets.RotateByName(dir, args[0], secrets.Options{})
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if ios.JSON() {
				return ios.WriteJSON(rot)
			}
			for _, f := range rot.Files {
				ios.Printf("rotated  %s\n", f)
			}
			for _, w := range rot.Workloads {
				ios.Printf("restarts %s %s (%s)\n", w.Kind, w.Name, w.File)
			}
			for _, m := range rot.ManualRestarts {
				ios.Printf("by hand  %s\n", m)
			}
			ios.Errorf("rotated %s/%s: review and commit the changes\n", rot.Secret.Namespace, rot.Secret.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "C", ".", "repository root")
	return cmd
}

func newSecretsSetCmd(s *shared) *cobra.Command {
	var dir, ageKey string
	cmd := &cobra.Command{
		Use:   "set NAME KEY [KEY...]",
		Short: "Write a credential you were given (a DNS token, bucket keys) into a secret, encrypted",
		Long: `Write values someone else issued — a DNS provider's API token, a storage
bucket's access keys — into keys of a generated secret (NAME, NAMESPACE/NAME
or its file) of the working tree. On a terminal each value is asked for
with the input hidden; otherwise one KEY's value is read from standard
input. The secret's other keys are kept (decrypted with the age identity:
--age-key, $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY), its copies get the same
values, the file gets a fresh data key and the workloads that read it get
a new hl.dev/secret-checksum-* annotation so they restart. Re-renders keep
the value. Values are never printed: review and commit the changed files.`,
		Example: `  hl secrets set external-dns/cloudflare-api-token api-token
  hl secrets set restic-offsite AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  pass show dns/token | hl secrets set cert-manager/cloudflare-api-token api-token`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, keys := args[0], args[1:]
			ids, err := s.identities(ageKey, true)
			if err != nil {
				return err
			}
			if !s.ios.IsStdinTTY() && len(keys) > 1 {
				return &exitError{code: 2, msg: "standard input is not a terminal: set one key at a time (its value on stdin)"}
			}
			set := map[string]string{}
			for _, k := range keys {
				src := tokenSource{What: "the value of " + k, Prompt: "Value of " + k + " for " + name}
				if !s.ios.IsStdinTTY() {
					src.File = "-"
				}
				v, err := s.token(src)
				if err != nil {
					return err
				}
				set[k] = v
			}
			res, err := secrets.SetValues(dir, name, set, ids, secrets.Options{})
			if err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			if s.ios.JSON() {
				return s.ios.WriteJSON(res)
			}
			for _, f := range res.Files {
				s.ios.Printf("wrote    %s\n", f)
			}
			for _, w := range res.Workloads {
				s.ios.Printf("restarts %s %s (%s)\n", w.Kind, w.Name, w.File)
			}
			for _, m := range res.ManualRestarts {
				s.ios.Printf("by hand  %s\n", m)
			}
			s.ios.Errorf("set %d key(s) of %s/%s: review and commit the changes\n", len(keys), res.Secret.Namespace, res.Secret.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "C", ".", "repository root")
	cmd.Flags().StringVar(&ageKey, "age-key", "", "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	return cmd
}

func newSecretsManifestsCmd(s *shared) *cobra.Command {
	var ageKey string
	cmd := &cobra.Command{
		Use:   "manifests [DIR]",
		Short: "Decrypt the SOPS Secrets of one folder to stdout (Argo CD's hl-secrets plugin)",
		Long: `Decrypt every *.sops.yaml file directly in DIR (default: the working
directory) and print the Secrets as one YAML stream, in file name order.
This is the generate command of Argo CD's config-management plugin
hl-secrets, which runs beside the repo-server with the age key; only
v1 Secrets come out: a file decrypting to any other kind is refused.
Needs the age identity (--age-key, $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			ids, err := s.identities(ageKey, true)
			if err != nil {
				return err
			}
			if err := secrets.Manifests(dir, ids, s.ios.Out); err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ageKey, "age-key", "", "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	return cmd
}
