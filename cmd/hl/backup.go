package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/backup"
)

func newBackupCmd(s *shared) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Work with the backups the rendered repository makes (system/backups)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newBackupRestoreCmd(s))
	return cmd
}

type backupRestoreOptions struct {
	Dir        string
	Kubeconfig string
	AgeKey     string
	Volume     string
	Target     string
	Snapshot   string
	Restic     string
	Timeout    time.Duration
}

func newBackupRestoreCmd(s *shared) *cobra.Command {
	opts := &backupRestoreOptions{}
	cmd := &cobra.Command{
		Use:   "restore APP",
		Short: "Restore an app's volumes from a backup target into the cluster",
		Long: `Restore the backed-up volumes of APP (a folder of the rendered repo, e.g.
paperless) from a backup target (--target: local, nas or offsite), as
system/backups/README.md describes it:

  1. pause Argo CD's automated sync of the app's Application
  2. scale the Deployments and StatefulSets that mount the volumes to zero
  3. per volume, a VolSync ReplicationDestination <pvc>-restore from the
     same restic repository Secret the backups use (copyMethod Direct,
     files not in the snapshot deleted), as the backups' user
  4. wait for VolSync to report the restore, delete the ReplicationDestination
  5. scale back up and resume Argo CD's sync

The latest snapshot is restored unless --snapshot names one (an id or a
unique prefix from restic snapshots); that needs one volume (--volume when
the app has several), the age key (to decrypt the repository Secret) and
restic on PATH reaching the target. Every change is recorded in an
annotation first: after an interruption, run the same command again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackupRestore(cmd.Context(), s, args[0], opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Dir, "dir", ".", "the rendered repository (holds hl.yaml)")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig of the cluster")
	f.StringVar(&opts.AgeKey, "age-key", "", "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then hl's own)")
	f.StringVar(&opts.Volume, "volume", "", "restore only this claim of the app")
	f.StringVar(&opts.Target, "target", "local", "backup target to restore from: local, nas or offsite")
	f.StringVar(&opts.Snapshot, "snapshot", "", "restic snapshot id (default: the latest)")
	f.StringVar(&opts.Restic, "restic", "", "restic binary that looks --snapshot up (default: restic on PATH)")
	f.DurationVar(&opts.Timeout, "timeout", time.Hour, "bound on waiting for the workloads to stop and VolSync to restore")
	return cmd
}

func runBackupRestore(ctx context.Context, s *shared, app string, opts *backupRestoreOptions) error {
	ios := s.ios
	ids, err := s.identities(opts.AgeKey, opts.Snapshot != "")
	if err != nil {
		return err
	}
	kube, err := s.kube(opts.Kubeconfig)
	if err != nil {
		return err
	}
	ro := backup.RestoreOptions{
		Dir: opts.Dir, Kube: kube, Identities: ids, App: app, Volume: opts.Volume,
		Target: opts.Target, Snapshot: opts.Snapshot, Restic: opts.Restic, Timeout: opts.Timeout,
	}
	if !ios.JSON() {
		ro.Progress = func(line string) { fmt.Fprintln(ios.ErrOut, line) }
	}
	res, err := backup.Restore(ctx, ro)
	if ios.JSON() && res != nil {
		if werr := ios.WriteJSON(res); werr != nil {
			return werr
		}
	}
	if err != nil {
		return &exitError{code: 1, msg: "hl backup restore: " + err.Error()}
	}
	if !ios.JSON() {
		fmt.Fprintf(ios.ErrOut, "restored %d volume(s) of %s from %s\n", len(res.Volumes), app, res.Target)
	}
	return nil
}
