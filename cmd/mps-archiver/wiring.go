package main

import (
	"context"
	"encoding/hex"
	"errors"
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
	"github.com/mps-archiver/mps-archiver/proof"
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

	store         *storage.Store
	signer        *proof.Signer // nil without proof.signing_key
	verifiers     *proof.Verifiers
	checkpointDir string
	// cold moves closed months to cold storage (nil: archive.keep_months
	// 0, everything kept); keep is archive.keep_months.
	cold *mover
	keep int
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
	signer, err := cfg.Proof.Signer()
	if err != nil {
		return nil, err
	}
	verifiers, err := cfg.Proof.Verifiers()
	if err != nil {
		return nil, err
	}
	a := &archiver{metrics: metrics, client: client, syncer: s, store: st, signer: signer, verifiers: verifiers, checkpointDir: cfg.Proof.CheckpointDir}
	if cfg.Archive.KeepMonths > 0 {
		if a.cold, err = newMover(cfg, st, log); err != nil {
			return nil, err
		}
		a.keep = cfg.Archive.KeepMonths
	}
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

// checkpoint makes a checkpoint of the proof log after a run (signed with
// proof.signing_key, and written to proof.checkpoint_dir), and exports it
// as a metric; it never fails the caller: the run's facts are in the log
// whatever happens here, and the next run's checkpoint covers them.
func (a *archiver) checkpoint(ctx context.Context, log *slog.Logger, runID int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkpointTimeout)
	defer cancel()
	c, made, err := makeCheckpoint(ctx, a.store, a.signer, a.verifiers, a.checkpointDir, runID)
	var path string
	if err == nil && made && a.checkpointDir != "" && c.Note != "" {
		path, err = proof.Publish(a.checkpointDir, c)
	}
	a.metrics.ObserveCheckpoint(c.Origin, c.Size, c.Root, c.KeyName, err)
	if err != nil {
		log.Error("proof log: no checkpoint after this run", "run_id", runID, "error", err.Error())
		return
	}
	if made {
		log.Debug("proof log checkpoint", "run_id", runID, "size", c.Size, "root", hex.EncodeToString(c.Root), "signed_by", c.KeyName, "published", path)
	}
}

// makeCheckpoint makes a checkpoint held to the newest one published in
// dir (when there is a dir): nothing is signed that does not extend what
// was published.
func makeCheckpoint(ctx context.Context, st *storage.Store, signer *proof.Signer, v *proof.Verifiers, dir string, runID int64) (proof.Stored, bool, error) {
	var published *proof.Checkpoint
	if dir != "" && v.Len() > 0 {
		var err error
		if published, err = proof.LatestPublished(dir, v); err != nil {
			return proof.Stored{}, false, fmt.Errorf("read the published checkpoints: %w", err)
		}
	}
	return proof.MakeCheckpoint(ctx, st, signer, v, published, runID)
}

// checkpointTimeout bounds a checkpoint: it reads the leaves since the
// last one (a cold sync's million tasks in a few seconds), or the whole
// log when no checkpoint it signed is there to extend (after migration
// 19, or a key rotation).
const checkpointTimeout = 30 * time.Minute

// checkpointing runs a sync and then a checkpoint: the runner serve
// schedules.
type checkpointing struct {
	a   *archiver
	log *slog.Logger
}

func (c checkpointing) Run(ctx context.Context, trigger string) (syncer.Result, error) {
	res, err := c.a.syncer.Run(ctx, trigger)
	if !errors.Is(err, syncer.ErrLocked) {
		c.a.retain(ctx, c.log)
		c.a.checkpoint(ctx, c.log, res.RunID)
	}
	return res, err
}

// retain moves the closed months older than archive.keep_months to cold
// storage (exported, read back, detached); it never fails the caller: a
// month that could not move is logged and tried again by the next run,
// from its last step.
func (a *archiver) retain(ctx context.Context, log *slog.Logger) {
	if a.cold == nil || ctx.Err() != nil {
		return
	}
	_ = a.cold.retain(ctx, a.keep)
	months, err := a.store.ArchiveMonths(ctx)
	if err != nil {
		log.Warn("cold storage: could not read archive_months for the metrics", "error", err.Error())
		return
	}
	byState := map[string]int{}
	var stuck time.Duration
	for _, m := range months {
		byState[m.State]++
		if m.Error != "" {
			stuck = max(stuck, time.Since(m.UpdatedAt))
		}
	}
	a.metrics.ObserveColdMonths(byState, stuck)
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
