package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
	usagearchive "github.com/mps-archiver/mps-archiver/usage"
)

// archiver is what every command that archives builds, one way: the
// process's metrics (with its build), the API client, the retention basis
// read from the ledger, the syncer, and the detail fetcher where
// details.mode asks for one, and the usage archiver unless usage.mode is
// off. Each command keeps only its lifecycle (how
// long it runs, what it says, when it stops).
type archiver struct {
	metrics *metrics.Metrics
	client  *mpsclient.Client
	syncer  *syncer.Syncer
	fetcher *details.Fetcher       // nil with details.mode none
	usage   *usagearchive.Archiver // nil with usage.mode off
}

// newArchiver builds an archiver over an open store.
func newArchiver(ctx context.Context, cfg config.Config, log *slog.Logger, st *storage.Store) (*archiver, error) {
	metrics := metrics.New()
	metrics.SetBuildInfo(buildVersion(), runtime.Version())
	client, err := newClient(cfg, log, metrics)
	if err != nil {
		return nil, err
	}
	if err := loadRetention(ctx, st, metrics); err != nil {
		return nil, err
	}
	s, err := newSyncer(cfg, client, st, log, metrics.ObservePage)
	if err != nil {
		return nil, err
	}
	a := &archiver{metrics: metrics, client: client, syncer: s}
	if cfg.Details.Mode != syncer.DetailsNone {
		a.fetcher = details.New(client, st, detailConfig(cfg), log)
		metrics.WatchDetails(st, a.fetcher)
	}
	if cfg.UsageOn() {
		unknown, err := cfg.UsageProblems()
		if err != nil {
			// Tasks are archived all the same: a usage setting is no
			// reason to let them leave the API's window.
			log.Error("billed usage is not read: its settings are invalid", "error", err.Error())
			return a, nil
		}
		if len(unknown) > 0 {
			log.Warn("usage.types names types this binary does not know; they are asked for as written (the API refuses a wrong one)", "types", strings.Join(unknown, ","))
		}
		sched, err := daemon.ParseSchedule(cfg.Usage.Schedule, cfg.Serve.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("usage.schedule: %w", err)
		}
		a.usage = usagearchive.New(usagearchive.Config{Regions: cfg.Usage.Regions, Types: cfg.Usage.Types,
			RefreshDays: cfg.Usage.RefreshDays, Schedule: sched}, client, st, log)
		runs, err := st.UsageRuns(ctx)
		if err != nil {
			return nil, err
		}
		metrics.SetUsageLastSuccess(runs.LastSuccess)
	}
	return a, nil
}

// readUsage runs a usage run when one is due, and says what it did in one
// log line; it never fails the caller (the usage ledger and the metrics
// record a failure).
func (a *archiver) readUsage(ctx context.Context, log *slog.Logger, trigger string) {
	if a.usage == nil {
		return
	}
	res, ran, err := a.usage.RunIfDue(ctx, trigger)
	if !ran && err == nil {
		return
	}
	a.metrics.ObserveUsage(res, err)
	logUsage(log, res, err)
}

// logUsage is a usage run's one log line.
func logUsage(log *slog.Logger, res usagearchive.Result, err error) {
	attrs := []any{"usage_run_id", res.RunID, "backfill", res.Backfill, "queries", res.Queries, "requests", res.Requests,
		"figures_added", res.Added, "figures_revised", res.Revised, "duration_seconds", res.Duration.Round(time.Millisecond).Seconds()}
	if !res.From.IsZero() {
		attrs = append(attrs, "from", res.From.Format(time.DateOnly), "to", res.To.Format(time.DateOnly))
	}
	if err != nil {
		log.Error("usage run failed", append(attrs, "queries_failed", res.Failed, "queries_left", res.Skipped, "error", err.Error())...)
		return
	}
	log.Info("usage run succeeded", attrs...)
}
