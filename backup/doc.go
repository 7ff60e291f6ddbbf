// Package backup owns what hl does with the backups a rendered homelab
// makes (system/backups: VolSync ReplicationSources copying every volume
// with restic to three targets): reading which volumes of an app are
// backed up where, straight from the rendered files, and restoring them
// into the cluster (Restore, behind `hl backup restore APP`).
//
// Its tests hold the rendered backups to their promises: every
// PersistentVolumeClaim the rendered charts and manifests create is backed
// up or skipped with a reason from the catalog (coverage_test.go), and a
// restore drill backs data up with restic to a real REST server, using the
// rendered repository Secret, and gets it back byte for byte through
// Restore (restore_test.go).
package backup
