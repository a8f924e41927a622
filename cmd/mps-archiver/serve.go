package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/storage"
)

// runServe runs syncs on a cron schedule until SIGINT/SIGTERM.
func runServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "serve", "[--schedule SPEC] [--listen ADDR] [flags]", apiEnvironment+`
  MPS_ARCHIVER_SCHEDULE, MPS_ARCHIVER_LISTEN, MPS_ARCHIVER_TIME_ZONE`)
	var cf commonFlags
	cf.register(fs, env)
	def := config.Default().Serve
	schedule := fs.String("schedule", "", fmt.Sprintf("cron spec: 5 fields, optional seconds, @every 10m, CRON_TZ=Asia/Shanghai … (default %q; env %s)", def.Schedule, config.EnvSchedule))
	listen := fs.String("listen", "", fmt.Sprintf("address for /healthz, /readyz, /metrics; port 0 picks one (default %q; env %s)", def.Listen, config.EnvListen))
	migrate := fs.Bool("migrate", false, "apply pending migrations before starting (safe with several replicas)")
	noStartRun := fs.Bool("no-run-on-start", false, "wait for the first scheduled time instead of syncing at start")
	grace := fs.Duration("shutdown-grace", 0, fmt.Sprintf("how long a running sync may finish after SIGTERM (default %s)", def.ShutdownGrace))
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	if *schedule != "" {
		// A bad flag value is a usage error (exit 2), like a bad flag.
		if _, err := daemon.ParseSchedule(*schedule, ""); err != nil {
			return usageErrorf("--schedule: %v", err)
		}
	}
	cfg, err := cf.loadValid(env, true, func(cfg *config.Config) {
		if *schedule != "" {
			cfg.Serve.Schedule = *schedule
		}
		if *listen != "" {
			cfg.Serve.Listen = *listen
		}
		if *migrate {
			cfg.Serve.Migrate = true
		}
		if *noStartRun {
			cfg.Serve.RunOnStart = false
		}
		if *grace > 0 {
			cfg.Serve.ShutdownGrace = *grace
		}
	})
	if err != nil {
		return err
	}
	if _, err := daemon.ParseSchedule(cfg.Serve.Schedule, cfg.Serve.TimeZone); err != nil {
		return err
	}
	log := newLogger(env.Stderr, cfg.Log)
	log.Info("starting", "version", buildVersion(), "go_version", runtime.Version(), "schema", migrations.Latest())

	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := prepareSchema(ctx, st, cfg.Serve.Migrate, func(msg string) { log.Info("migrating", "progress", msg) }); err != nil {
		return err
	}
	a, err := newArchiver(ctx, cfg, log, st)
	if err != nil {
		return err
	}
	metrics := a.metrics
	metrics.WatchEvents(st)

	svc, err := daemon.New(daemon.Config{
		Schedule:      cfg.Serve.Schedule,
		TimeZone:      cfg.Serve.TimeZone,
		Listen:        cfg.Serve.Listen,
		RunOnStart:    cfg.Serve.RunOnStart,
		ShutdownGrace: cfg.Serve.ShutdownGrace,
		Handlers:      map[string]http.Handler{"GET /checkpoint": checkpointHandler(st)},
	}, checkpointing{a, log}, st, metrics, log)
	if err != nil {
		return err
	}
	// Runs get their own context: the first signal stops scheduling and
	// grants the grace period; Stop or a second signal cancels a run, which
	// then records its outcome.
	if err := svc.Start(env.abortContext()); err != nil {
		return err
	}
	// Details are read continuously, beside the scheduled runs.
	fetcher := a.fetcher
	if fetcher != nil {
		fetcher.Start(env.abortContext())
		// A backfill (a fresh install, an upgrade, a requeue) says how it
		// goes once a minute while there is one.
		stopProgress := detailProgress(env.abortContext(), log, st, fetcher, time.Minute, nil)
		defer stopProgress()
	}
	// Usage is read when its schedule comes round (checked each minute:
	// a failed run is tried again an hour later), beside the syncs.
	if a.usage != nil {
		uctx, stopUsage := context.WithCancel(env.abortContext())
		usageDone := make(chan struct{})
		go func() {
			defer close(usageDone)
			tick := time.NewTicker(time.Minute)
			defer tick.Stop()
			for {
				a.readUsage(uctx, log, "schedule")
				select {
				case <-ctx.Done():
					return
				case <-uctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
		defer func() { stopUsage(); <-usageDone }()
	}
	<-ctx.Done()
	log.Info("shutting down", "reason", context.Cause(ctx).Error(), "grace_seconds", cfg.Serve.ShutdownGrace.Seconds())
	start := time.Now()
	if fetcher != nil {
		fetcher.Stop()
	}
	svc.Stop()
	log.Info("stopped", "shutdown_seconds", time.Since(start).Round(time.Millisecond).Seconds())
	return nil
}

// loadRetention gives the metrics what the archive knows of its runs: the
// last success and the first run, the basis of the retention headroom.
func loadRetention(ctx context.Context, st *storage.Store, m *metrics.Metrics) error {
	last, first, err := st.RunBounds(ctx)
	if err != nil {
		return err
	}
	m.SetLastSuccess(last)
	m.SetFirstAttempt(first)
	return nil
}

// prepareSchema refuses a dirty or newer schema, and applies pending
// migrations only when asked. With migrate, Up runs even when the schema
// looks dirty: another replica may be migrating right now, and Up waits for
// its lock, then finds the work done (or reports a real failure).
func prepareSchema(ctx context.Context, st *storage.Store, migrate bool, progress func(string)) error {
	err := st.CheckSchema(ctx)
	if err == nil || !migrate || errors.Is(err, storage.ErrSchemaAhead) ||
		!errors.Is(err, storage.ErrSchemaBehind) && !errors.Is(err, storage.ErrSchemaDirty) {
		return err
	}
	mg, err := st.NewMigrator(ctx)
	if err != nil {
		return err
	}
	defer mg.Close()
	mg.Progress = progress
	if err := mg.Up(); err != nil {
		return err
	}
	return st.CheckSchema(ctx)
}
