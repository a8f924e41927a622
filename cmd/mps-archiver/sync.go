package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// runSync drains every status once. It exits 0 only when every status was
// drained and committed; 3 when another process holds the run lock.
func runSync(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "sync", "[flags]", apiEnvironment, `Exit statuses:
  0  every status drained and committed (details never fail a run)
  1  the run failed: the log line says why, and sync_runs records it
  2  usage error
  3  skipped: another process holds the run lock`)
	var cf commonFlags
	cf.register(fs, env)
	full := fs.Bool("full", false, "drain every status in full, whatever sync.full_every says (by default a run is incremental between full ones)")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	cfg, err := cf.loadValid(env, true)
	if err != nil {
		return err
	}
	log := newLogger(env.Stderr, cfg.Log)
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	// The same metrics as serve's, for a Pushgateway: a sync run by a
	// CronJob or timer is gone before anything could scrape it.
	a, err := newArchiver(ctx, cfg, log, st)
	if err != nil {
		return err
	}
	mx, s := a.metrics, a.syncer
	mx.WatchEvents(st)
	// Details are read alongside the drain, and after it until the queue is
	// empty or details.sync_budget is spent; they never fail the run.
	var waitDetails func(syncer.Result) []any
	var stopDetails func()
	if fetcher := a.fetcher; fetcher != nil {
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		drained, fetchDone := make(chan struct{}), make(chan error, 1)
		go func() { fetchDone <- fetcher.Run(fctx, drained) }()
		stopDetails = func() { cancel(); <-fetchDone }
		waitDetails = func(res syncer.Result) []any {
			close(drained)
			waitStart := time.Now()
			if b, err := st.DetailBacklog(ctx); err == nil && b.Pending > 0 {
				// Said before the wait, so that a person watching does not
				// take the budget for a hang.
				log.Info("drained; reading the queued outcomes", "drained_seconds", res.Duration.Round(time.Millisecond).Seconds(),
					"queued", b.Pending, "for_at_most", cfg.Details.SyncBudget.String(),
					"note", "Ctrl-C is safe: what is read is kept, the rest waits for the next run")
			}
			var tty io.Writer
			if env.StderrTerminal {
				tty = env.Stderr
			}
			stopProgress := detailProgress(ctx, log, st, fetcher, 15*time.Second, tty)
			defer stopProgress()
			budget := time.NewTimer(cfg.Details.SyncBudget)
			defer budget.Stop()
			var ferr error
			select {
			case ferr = <-fetchDone:
			case <-budget.C:
				cancel()
				ferr = <-fetchDone
			}
			// The run's duration_seconds is the drain's; outcome reading after
			// it is said apart.
			return append(detailAttrs(ctx, st, fetcher, ferr), "details_seconds_after_drain", time.Since(waitStart).Round(time.Millisecond).Seconds())
		}
	}
	run := s.Run
	if *full {
		run = s.RunFull
	}
	res, err := run(ctx, "sync")
	var extra []any
	switch {
	case stopDetails != nil && errors.Is(err, syncer.ErrLocked):
		// The run was skipped: the jobs the fetcher holds go back now, not
		// when their leases run out.
		stopDetails()
	case waitDetails != nil:
		extra = waitDetails(res)
	}
	daemon.LogResult(log, res, err, extra...)
	mx.ObserveRun(res, err)
	// Usage is read when its schedule has come round, so that a timer or
	// CronJob running only sync keeps it too; it never changes the exit
	// status (usage_runs and the metrics record a failure).
	// It has usageSyncBudget at most: an outage of DescribeUsageData must
	// not hold a sync that has done its work (a CronJob's next run waits
	// for it); what is not read is read by the next due run.
	if !errors.Is(err, syncer.ErrLocked) && ctx.Err() == nil {
		uctx, cancel := context.WithTimeoutCause(ctx, usageSyncBudget, errUsageBudget)
		a.readUsage(uctx, log, "sync")
		cancel()
	}
	// Closed months older than archive.keep_months go to cold storage.
	// The proof log's checkpoint covers what the run, its outcomes, its
	// usage run and the exports wrote; it is pushed with the run's metrics.
	if !errors.Is(err, syncer.ErrLocked) {
		a.retain(ctx, log)
		a.checkpoint(ctx, log, res.RunID)
	}
	// A skipped run pushes nothing: a push replaces the instance's whole
	// group, and a run that did not happen has no result to replace the
	// last real run's with (a failure would read as last_run_failed 0).
	// The skip is in the log line and the exit status.
	if cfg.Sync.Pushgateway != "" && !errors.Is(err, syncer.ErrLocked) {
		if perr := mx.Push(context.WithoutCancel(ctx), cfg.Sync.Pushgateway, metrics.PushJob, cfg.Sync.PushInstance()); perr != nil {
			// The archive is what matters; the run's exit status stays its
			// own, and the missing push is what the alerts notice.
			log.Warn("could not push metrics to the Pushgateway", "error", perr.Error())
		}
	}
	// The run's log line has said what happened: the error is not printed
	// again.
	switch {
	case errors.Is(err, syncer.ErrLocked):
		return &exitError{code: exitLocked, err: err, logged: true}
	case err != nil:
		return &exitError{code: exitFailed, err: fmt.Errorf("run %d failed: %w", res.RunID, err), logged: true}
	}
	return nil
}

// usageSyncBudget bounds the usage run of a sync; a backfill at the
// default 10 requests a second takes about 9 s.
const usageSyncBudget = 2 * time.Minute

var errUsageBudget = fmt.Errorf("the sync's budget for reading usage (%s) ran out; the next due run goes on from what was stored", usageSyncBudget)

// detailAttrs are a sync's detail figures, for its one log line.
func detailAttrs(ctx context.Context, st *storage.Store, f *details.Fetcher, err error) []any {
	s := f.Stats()
	attrs := []any{"details_fetched", s.Fetched, "details_failed_tasks", s.Failed, "details_expired", s.Expired}
	if s.Undecided > 0 {
		attrs = append(attrs, "details_undecided", s.Undecided)
	}
	if s.Errors > 0 || s.GaveUp > 0 {
		attrs = append(attrs, "details_retried", s.Errors, "details_gave_up", s.GaveUp)
	}
	if fl, failing := f.Failing(); failing {
		attrs = append(attrs, "details_failing_code", fl.Code, "details_failing_hint", fl.Hint)
	}
	if b, berr := st.DetailBacklog(context.WithoutCancel(ctx)); berr == nil {
		attrs = append(attrs, "details_backlog", b.Pending)
		if !b.OldestDeadline.IsZero() {
			attrs = append(attrs, "details_oldest_deadline", b.OldestDeadline.UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		attrs = append(attrs, "details_error", err.Error())
	}
	return attrs
}
