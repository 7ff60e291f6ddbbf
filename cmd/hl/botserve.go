package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"hl.dev/hl/bot/datasource"
	"hl.dev/hl/bot/lookup"
	"hl.dev/hl/bot/rotate"
	"hl.dev/hl/bot/schedule"
	"hl.dev/hl/internal/config"
	"hl.dev/hl/secrets"
)

type botServeOptions struct {
	Config        string
	Listen        string
	DryRun        bool
	LockFile      string
	AgeKey        string
	TokenFile     string
	Schedule      string
	Timezone      string
	Seconds       bool
	ShutdownAfter time.Duration
	RunAtStart    bool
	Insecure      []string
	CacheDir      string
}

func newBotServeCmd(s *shared) *cobra.Command {
	o := &botServeOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the bot as a daemon: upgrade and rotation passes on hl.yaml's schedule",
		Long: `Run the bot's passes (upgrades, secret rotation) on spec.bot.schedule (cron, in
spec.bot.timezone), never two at once (flock on --lock-file). Serves /healthz,
/metrics (Prometheus, hl_*) and POST /webhook: a Gitea webhook signed with
$HL_WEBHOOK_SECRET (X-Gitea-Signature) that starts a run when a bot PR is
merged or closed or a human edits the dependency dashboard. SIGTERM/SIGINT
stop it: a running pass gets --shutdown-timeout to finish, then is cancelled.`,
		Example: "  hl bot serve --listen :8080\n  hl bot serve --dry-run --log-format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBotServe(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Config, "config", "", "hl.yaml with spec.bot (default: the hl.yaml of the repository on the forge that $HL_FORGE_URL, $HL_FORGE_OWNER and $HL_FORGE_REPO name, read by every pass)")
	f.StringVar(&o.Listen, "listen", ":8080", "HTTP address for /healthz, /metrics and /webhook")
	f.BoolVar(&o.DryRun, "dry-run", false, "compute and log changes, open no PRs or issues")
	f.StringVar(&o.LockFile, "lock-file", schedule.DefaultLockFile(), "lock file that serialises runs across processes (in a folder only this user can write)")
	f.StringVar(&o.AgeKey, "age-key", "", "age identity file (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then "+secrets.DefaultIdentityFile()+")")
	f.StringVar(&o.TokenFile, "token-file", "", "read the bot's forge token from this file")
	f.StringVar(&o.Schedule, "schedule", "", "override spec.bot.schedule")
	f.StringVar(&o.Timezone, "timezone", "", "override spec.bot.timezone")
	f.BoolVar(&o.Seconds, "schedule-seconds", false, "the schedule has a leading seconds field")
	f.DurationVar(&o.ShutdownAfter, "shutdown-timeout", 30*time.Second, "how long a running pass may finish after SIGTERM")
	f.BoolVar(&o.RunAtStart, "run-now", false, "also run once at start")
	f.StringSliceVar(&o.Insecure, "insecure-registry", nil, "OCI registries spoken to over plain HTTP (host:port)")
	f.StringVar(&o.CacheDir, "cache-dir", "", "also keep the datasource cache in this folder (a volume), so a restarted bot's first run is conditional too")
	return cmd
}

func runBotServe(ctx context.Context, s *shared, o *botServeOptions) error {
	log, err := s.logger()
	if err != nil {
		return err
	}
	h, err := s.botHomelab(o.Config)
	if err != nil {
		return err
	}
	fg, token, err := s.openForge(h, o.TokenFile)
	if err != nil {
		return err
	}
	// In the cluster there is no hl.yaml beside the bot: it is the one in
	// the repository the bot manages, read from a fresh clone at start (for
	// the schedule) and by every pass (for its policy).
	load := func(ctx context.Context) (*config.Homelab, string, func(), error) {
		if o.Config != "" {
			return h, "", func() {}, nil
		}
		return loadFromRepo(ctx, fg, h.Spec.Forge.DefaultBranch)
	}
	current, _, done, err := load(ctx)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	done()
	// Value rotation needs no identity; re-encryption does.
	ids, err := s.identities(o.AgeKey, false)
	if err != nil {
		return err
	}
	sched, tz := current.Spec.Bot.Schedule, current.Spec.Bot.Timezone
	if o.Schedule != "" {
		sched = o.Schedule
	}
	if o.Timezone != "" {
		tz = o.Timezone
	}
	// One datasource cache for the daemon's life: later runs revalidate;
	// with --cache-dir it outlives the process too.
	lookups := lookup.Config{Cache: datasource.NewCache()}
	if o.CacheDir != "" {
		lookups.Cache = datasource.NewCacheDir(o.CacheDir)
	}
	var d *schedule.Daemon
	passes := []schedule.Pass{
		{Name: "upgrade", Run: func(ctx context.Context) error {
			hh, dir, done, err := load(ctx)
			if err != nil {
				return err
			}
			defer done()
			_, err = s.upgradePass(ctx, hh, fg, token, upgradeOptions{DryRun: o.DryRun, Dir: dir, Insecure: o.Insecure, Lookup: lookups})
			return err
		}},
		{Name: "rotate", Run: func(ctx context.Context) error {
			rep, err := rotate.Pass(ctx, rotate.PassOptions{Forge: fg, Identities: ids, Logger: log, DryRun: o.DryRun})
			if rep != nil {
				d.Metrics.SetSecretsOverdue(rep.Overdue)
				d.Metrics.AddPRsOpened("rotation", len(rep.PRs))
				d.Metrics.AddPRsOpened("issue", len(rep.Issues))
			}
			return err
		}},
	}
	// Without the login (forge down at start) a human's dashboard edit and
	// the bot's own both trigger a run; the bot rewrites the dashboard only
	// when it changes, so that cannot loop.
	login, err := fg.BotLogin(ctx)
	if err != nil {
		log.Warn("forge: cannot read the bot's login; every dashboard edit will trigger a run", "error", err)
	}
	d, err = schedule.New(schedule.Options{
		Schedule: sched, Seconds: o.Seconds, Timezone: tz, Passes: passes,
		LockFile: o.LockFile, Listen: o.Listen, WebhookSecret: os.Getenv("HL_WEBHOOK_SECRET"), BotLogin: login,
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
	log.Info("hl bot serve", "listen", o.Listen, "schedule", sched, "timezone", tz, "dryRun", o.DryRun)
	return d.Serve(ctx)
}
