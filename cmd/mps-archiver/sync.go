package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mps-archiver/mps-archiver/daemon"
	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// runSync drains every status once. It exits 0 only when every status was
// drained and committed; 3 when another process holds the run lock.
func runSync(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "sync", "[flags]")
	var cf commonFlags
	cf.register(fs, env)
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	cfg, err := cf.loadValid(env, true)
	if err != nil {
		return err
	}
	log := newLogger(env.Stderr, cfg.Log)
	client, err := newClient(cfg, nil, nil)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	s, err := newSyncer(cfg, client, st, log, nil)
	if err != nil {
		return err
	}
	// Details are read alongside the drain, and after it until the queue is
	// empty or details.sync_budget is spent; they never fail the run.
	drained := make(chan struct{})
	fetchDone := make(chan error, 1)
	var fetcher *details.Fetcher
	if cfg.Details.Mode != syncer.DetailsNone {
		fetcher = details.New(client, st, details.Config{}, log)
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { fetchDone <- fetcher.Run(fctx, drained) }()
		defer func() {
			close(drained)
			budget := time.NewTimer(cfg.Details.SyncBudget)
			defer budget.Stop()
			var ferr error
			select {
			case ferr = <-fetchDone:
			case <-budget.C:
				cancel()
				ferr = <-fetchDone
			}
			logDetails(ctx, log, st, fetcher, ferr)
		}()
	}
	res, err := s.Run(ctx, "sync")
	daemon.LogResult(log, res, err)
	switch {
	case errors.Is(err, syncer.ErrLocked):
		return &exitError{code: exitLocked, err: err}
	case err != nil:
		if res.RunID != 0 {
			return fmt.Errorf("run %d failed: %w", res.RunID, err)
		}
		return err
	}
	return nil
}

// logDetails writes the one line of a sync's detail capture.
func logDetails(ctx context.Context, log *slog.Logger, st *storage.Store, f *details.Fetcher, err error) {
	s := f.Stats()
	attrs := []any{"fetched", s.Fetched, "failed_tasks", s.Failed, "expired", s.Expired, "retried", s.Errors, "gave_up", s.GaveUp}
	if b, berr := st.DetailBacklog(context.WithoutCancel(ctx), f.MaxAttempts()); berr == nil {
		attrs = append(attrs, "backlog", b.Pending)
		if !b.OldestDeadline.IsZero() {
			attrs = append(attrs, "oldest_deadline", b.OldestDeadline.UTC().Format(time.RFC3339))
		}
	}
	if err != nil {
		log.Warn("detail capture stopped: "+err.Error(), attrs...)
		return
	}
	log.Info("details captured", attrs...)
}
