package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/proof"
	"github.com/mps-archiver/mps-archiver/report"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// runDemo runs the whole product on a laptop: a throwaway PostgreSQL (or
// DATABASE_URL), the simulator in live mode, migrations, and the real
// scheduler and syncer, then prints what was archived.
func runDemo(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "demo", "[--duration 1m] [--keep] [flags]")
	duration := fs.Duration("duration", time.Minute, "how long to run (Ctrl-C stops earlier)")
	schedule := fs.String("schedule", "@every 5s", "sync schedule")
	keep := fs.Bool("keep", false, "keep the throwaway PostgreSQL: running until Ctrl-C once the demo ends, then its data directory")
	dataDir := fs.String("data-dir", "", "data directory for the throwaway PostgreSQL (default: a temporary one)")
	tasks := fs.Int("tasks", 2000, "tasks already in the simulated API's 7-day window")
	arrivals := fs.Float64("arrivals-per-hour", 240, "new tasks per simulated hour")
	speed := fs.Float64("speed", 600, "simulated seconds per real second (600: 10 minutes a second)")
	logLevel := fs.String("log-level", "warn", "log level of the archiver's own log lines (stderr)")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	out := env.Stdout
	log := newLogger(env.Stderr, config.Log{Level: *logLevel, Format: "text"})

	// 1. PostgreSQL.
	keepRunning := func() {}
	dbURL := env.Getenv(config.EnvDatabaseURL)
	// shown is how the database may be printed: the throwaway server's URL
	// (which has no password), else what the driver parsed of the user's.
	var shown string
	if dbURL == "" {
		fmt.Fprintln(out, "Starting a throwaway PostgreSQL …")
		srv, err := pgtemp.Start(ctx, pgtemp.Options{Dir: *dataDir, Durable: true})
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Stop(!*keep); err != nil {
				fmt.Fprintf(env.Stderr, "stopping PostgreSQL: %v\n", err)
			}
			if *keep {
				fmt.Fprintf(out, "PostgreSQL stopped; its data is kept in %s. Start it again with:\n  %s\n", srv.Dir, srv.StartCommand())
			}
		}()
		keepRunning = func() {
			if ctx.Err() == nil {
				fmt.Fprintf(out, "\nPostgreSQL keeps running for the queries above; Ctrl-C stops it.\n")
				<-ctx.Done()
			}
		}
		dbURL = srv.URL("postgres")
		shown = dbURL
		fmt.Fprintf(out, "  PostgreSQL %s, data in %s\n", dbURL, srv.Dir)
	} else {
		shown = storage.DescribeDSN(dbURL)
		fmt.Fprintf(out, "Using DATABASE_URL %s\n", shown)
	}

	// 2. The simulator, live, with throwaway credentials.
	secretID, secretKey := simulator.NewCredentials("AKIDdemo")
	var sf simFlags
	sf.register(flag.NewFlagSet("sim", flag.ContinueOnError))
	sf.gen.Tasks = *tasks
	sf.gen.ArrivalsPerHour = *arrivals
	sf.gen.ImageShare = 0.2 // image tasks too (DescribeImageTasks), archived beside the media ones
	sf.gen.Horizon = time.Duration(float64(*duration+time.Minute)**speed) + time.Hour
	sf.speed = *speed
	// Start the simulated clock in the past so that it reaches the real now
	// as the demo ends: the archive then holds no task from the future.
	sf.clock = time.Now().UTC().Add(-time.Duration(float64(*duration) * *speed)).Format(time.RFC3339)
	sim, err := sf.build(map[string]string{secretID: secretKey})
	if err != nil {
		return err
	}
	endpoint, stopSim, err := sim.ServeLoopback()
	if err != nil {
		return err
	}
	defer stopSim()
	fmt.Fprintf(out, "Simulated MPS API at %s: %d tasks in the 7-day window, %.0f new per simulated hour, clock at %.0fx\n",
		endpoint, len(sim.Truth()), *arrivals, *speed)

	// 3. Schema.
	st, err := openMigrated(ctx, dbURL)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintln(out, "Schema migrated.")

	// 4. The real scheduler and syncer.
	cfg := config.Default()
	cfg.DatabaseURL = dbURL
	cfg.MPS.Endpoint = endpoint
	cfg.MPS.SecretID, cfg.MPS.SecretKey = secretID, secretKey
	cfg.MPS.RateLimit = 50
	cfg.Details.RateLimit = 100
	cfg.Usage.RateLimit = 100
	// Checkpoints of the proof log are signed with a key of the demo's
	// own, which lives as long as it does.
	private, public, err := proof.GenerateKey("mps-archiver-demo")
	if err != nil {
		return err
	}
	cfg.Proof.SigningKey = private
	a, err := newArchiver(ctx, cfg, log, st)
	if err != nil {
		return err
	}
	metrics := a.metrics
	runner := &demoRunner{next: checkpointing{a, log}, out: out, st: st}
	svc, err := daemon.New(daemon.Config{Schedule: *schedule, Listen: "127.0.0.1:0", RunOnStart: true, ShutdownGrace: 10 * time.Second},
		runner, st, metrics, log)
	if err != nil {
		return err
	}
	// The setup above ran on the fast clock too: set it back so that it
	// reaches the real now as the demo ends, not minutes past it.
	sim.Clock().Set(time.Now().UTC().Add(-time.Duration(float64(*duration) * *speed)))
	runCtx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	if err := svc.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	// Outcomes are read in the background, as serve does.
	if a.fetcher != nil {
		a.fetcher.Start(context.WithoutCancel(ctx))
	}
	fmt.Fprintf(out, "Archiver running (schedule %q, metrics at http://%s/metrics) for %s; Ctrl-C stops it.\n\n", *schedule, svc.Addr(), *duration)
	// Billed usage: the first run backfills the 365 days the API keeps,
	// the one after the syncs re-reads the last days.
	readUsage := func(ctx context.Context, what string) {
		if a.usage == nil || ctx.Err() != nil {
			return
		}
		res, err := a.usage.Run(ctx, "demo")
		if err != nil {
			fmt.Fprintf(out, "usage %s failed: %v\n", what, err)
			return
		}
		fmt.Fprintf(out, "usage %s: %s..%s in %d requests (one region each, every type named): %d figures added, %d revised\n",
			what, res.From.Format(time.DateOnly), res.To.Format(time.DateOnly), res.Requests, res.Added, res.Revised)
	}
	readUsage(runCtx, "backfill")
	<-runCtx.Done()
	if a.fetcher != nil {
		a.fetcher.Stop()
	}
	svc.Stop()
	readUsage(context.WithoutCancel(ctx), "refresh")
	// The proof log: a checkpoint of everything, and verify, as an auditor
	// would with the public key.
	a.checkpoint(ctx, log, 0)
	if v, err := proof.NewVerifiers(public); err == nil {
		start := time.Now()
		var pr proof.Report
		snap, err := st.ProofSnapshot(context.WithoutCancel(ctx))
		if err == nil {
			pr, err = proof.Verify(context.WithoutCancel(ctx), snap, proof.VerifyOptions{Verifiers: v})
			snap.Close(ctx)
		}
		switch {
		case err != nil:
			fmt.Fprintf(out, "verify failed: %v\n", err)
		case len(pr.Problems) > 0:
			fmt.Fprintf(out, "verify found %d problems, the first: %s\n", len(pr.Problems), pr.Problems[0])
		default:
			fmt.Fprintf(out, "Proof log: %d facts, %d signed checkpoints; verify recomputed the tree and checked every row against it in %s: OK.\n",
				pr.Size, pr.Signed, time.Since(start).Round(time.Millisecond))
		}
	}

	// 5. What was archived.
	fmt.Fprintln(out)
	// The simulated clock runs ahead of the real one.
	simNow := sim.Clock().Now().UTC()
	rep, err := st.Report(context.WithoutCancel(ctx), storage.ReportParams{
		Since: simNow.AddDate(0, 0, -8).Truncate(24 * time.Hour), Until: simNow.Add(time.Hour), By: "week"})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Archived %d tasks.\n", rep.Total)
	// From the report itself, so the summary and the tables below agree.
	var succeeded, failed, expired int64
	for _, o := range rep.Outcomes {
		succeeded, failed, expired = succeeded+o.Succeeded, failed+o.Failed, expired+o.Expired
	}
	fmt.Fprintf(out, "Outcomes captured for %d finished tasks (%d failed, %d expired); %d details still queued.\n\n",
		succeeded+failed+expired, failed, expired, rep.Details.Queued)
	if err := report.Write(out, "table", rep); err != nil {
		return err
	}
	if f, err := os.CreateTemp("", "mps-archiver-demo-report-*.html"); err == nil {
		if report.WriteHTML(f, rep) == nil && f.Close() == nil {
			fmt.Fprintf(out, "\nThe same as a page with charts: %s\n", f.Name())
		}
	}
	fmt.Fprintf(out, "\nQuery it yourself (while the database runs: with --keep, or your own DATABASE_URL):\n")
	fmt.Fprintf(out, "  psql '%s' -c \"SELECT status, count(*) FROM tasks GROUP BY status\"\n", shown)
	fmt.Fprintf(out, "  psql '%s' -c \"SELECT task_type, percentile_cont(0.5) WITHIN GROUP (ORDER BY finish_time - begin_process_time) FROM tasks WHERE status = 'FINISH' GROUP BY 1\"\n", shown)
	fmt.Fprintf(out, "  psql '%s' -c \"SELECT outcome, coalesce(err_code_ext, err_code) AS error, count(*) FROM task_details GROUP BY 1, 2 ORDER BY 3 DESC\"\n", shown)
	fmt.Fprintf(out, "  psql '%s' -c \"SELECT day, codec, tier, billed_s, accounted_s, status FROM mps_usage_reconciliation(current_date - 2, current_date) WHERE codec IS NOT NULL ORDER BY 1, 2, 3\"\n", shown)
	fmt.Fprintf(out, "  DATABASE_URL='%s' mps-archiver verify --key %s\n", shown, public)
	if rep.Total == 0 {
		return errors.New("the demo archived no task: see the log lines above")
	}
	if *keep {
		keepRunning()
	}
	return nil
}

// demoRunner prints a progress line per run.
type demoRunner struct {
	next daemon.Runner
	out  io.Writer
	st   *storage.Store
}

func (d *demoRunner) Run(ctx context.Context, trigger string) (syncer.Result, error) {
	res, err := d.next.Run(ctx, trigger)
	if err != nil {
		fmt.Fprintf(d.out, "run %d (%s) failed after %s: %v\n", res.RunID, trigger, res.Duration.Round(time.Millisecond), err)
		return res, err
	}
	counts, cerr := d.st.StatusCounts(ctx)
	var total int64
	parts := make([]string, 0, 3)
	for _, s := range mps.Statuses {
		total += counts[s]
		parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
	}
	if cerr != nil {
		parts = []string{cerr.Error()}
	}
	fmt.Fprintf(d.out, "run %d: %d pages, %d tasks listed (%d new, %d changed, %d unchanged) in %s; archive: %d tasks (%s)\n",
		res.RunID, res.Pages, res.Seen, res.Inserted, res.Updated, res.Unchanged, res.Duration.Round(time.Millisecond),
		total, strings.Join(parts, ", "))
	return res, nil
}
