package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bot/forge"
	"hl.dev/hl/bot/rotate"
	"hl.dev/hl/bot/schedule"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/internal/iostreams"
	"hl.dev/hl/internal/secrets"
)

// Hooks the daemon's passes come from, set in forge.go: the upgrade pass
// (bot/run) and the forge constructor (bot/forge/<forge>).
var (
	botUpgradePass func(ctx context.Context, h *config.Homelab, dryRun bool) error
	botNewForge    func(ctx context.Context, h *config.Homelab) (forge.Forge, error)
)

type botServeOptions struct {
	Config        string
	Listen        string
	DryRun        bool
	LockFile      string
	LogFormat     string
	AgeKey        string
	Schedule      string
	Seconds       bool
	ShutdownAfter time.Duration
	RunAtStart    bool
}

func newBotServeCmd(ios *iostreams.IOStreams) *cobra.Command {
	o := &botServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the bot as a daemon: upgrade and rotation passes on hl.yaml's schedule",
		Long: `Run the bot's passes (upgrades, secret rotation) on spec.bot.schedule (cron, in
spec.bot.timezone), never two at once (flock on --lock-file). Serves /healthz,
/metrics (Prometheus, hl_*) and POST /webhook: a Gitea webhook signed with
$HL_WEBHOOK_SECRET (X-Gitea-Signature) that starts a run when a bot PR is
merged or closed or the dashboard issue is edited. SIGTERM/SIGINT stop it: a
running pass gets --shutdown-timeout to finish, then is cancelled.`,
		Example: "  hl bot serve --listen :8080\n  hl bot serve --dry-run --log-format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBotServe(cmd.Context(), ios, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "hl.yaml", "hl.yaml with spec.bot")
	f.StringVar(&o.Listen, "listen", ":8080", "HTTP address for /healthz, /metrics and /webhook")
	f.BoolVar(&o.DryRun, "dry-run", false, "compute and log changes, open no PRs or issues")
	f.StringVar(&o.LockFile, "lock-file", filepath.Join(os.TempDir(), "hl-bot.lock"), "lock file that serialises runs across processes")
	f.StringVar(&o.LogFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&o.AgeKey, "age-key", "", "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY)")
	f.StringVar(&o.Schedule, "schedule", "", "override spec.bot.schedule")
	f.BoolVar(&o.Seconds, "schedule-seconds", false, "the schedule has a leading seconds field")
	f.DurationVar(&o.ShutdownAfter, "shutdown-timeout", 30*time.Second, "how long a running pass may finish after SIGTERM")
	f.BoolVar(&o.RunAtStart, "run-now", false, "also run once at start")
	return cmd
}

func runBotServe(ctx context.Context, ios *iostreams.IOStreams, o *botServeOptions) error {
	var h slog.Handler = slog.NewTextHandler(ios.ErrOut, nil)
	if o.LogFormat == "json" {
		h = slog.NewJSONHandler(ios.ErrOut, nil)
	} else if o.LogFormat != "text" {
		return &exitError{code: 2, msg: fmt.Sprintf("--log-format %q: want text or json", o.LogFormat)}
	}
	log := slog.New(h)
	hl, err := rotate.LoadConfig(filepath.Dir(o.Config))
	if filepath.Base(o.Config) != "hl.yaml" || err != nil {
		doc, _, lerr := config.Load(o.Config)
		if lerr != nil || doc == nil || doc.Homelab == nil {
			return &exitError{code: 1, msg: fmt.Sprintf("%s: %v", o.Config, errors.Join(err, lerr))}
		}
		hl = doc.Homelab
	}
	sched := hl.Spec.Bot.Schedule
	if o.Schedule != "" {
		sched = o.Schedule
	}
	ids, _ := secrets.LoadIdentities(o.AgeKey) // value rotation needs none
	var d *schedule.Daemon
	passes := []schedule.Pass{
		{Name: "upgrade", Run: func(ctx context.Context) error {
			if botUpgradePass == nil {
				log.Warn("upgrade pass not available in this build")
				return nil
			}
			return botUpgradePass(ctx, hl, o.DryRun)
		}},
		{Name: "rotate", Run: func(ctx context.Context) error {
			if botNewForge == nil {
				log.Warn("rotation pass: no forge implementation in this build")
				return nil
			}
			fg, err := botNewForge(ctx, hl)
			if err != nil {
				return err
			}
			rep, err := rotate.Pass(ctx, rotate.PassOptions{Forge: fg, Identities: ids, Logger: log, DryRun: o.DryRun})
			if rep != nil {
				d.Metrics.SetSecretsOverdue(rep.Overdue)
				d.Metrics.AddPRsOpened("rotation", len(rep.PRs))
				d.Metrics.AddPRsOpened("issue", len(rep.Issues))
			}
			return err
		}},
	}
	d, err = schedule.New(schedule.Options{
		Schedule: sched, Seconds: o.Seconds, Timezone: hl.Spec.Bot.Timezone, Passes: passes,
		LockFile: o.LockFile, Listen: o.Listen, WebhookSecret: os.Getenv("HL_WEBHOOK_SECRET"),
		ShutdownTimeout: o.ShutdownAfter, Logger: log,
	})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	if o.RunAtStart {
		d.Trigger("start")
	}
	log.Info("hl bot serve", "listen", o.Listen, "schedule", sched, "timezone", hl.Spec.Bot.Timezone, "dryRun", o.DryRun)
	return d.Serve(ctx)
}
