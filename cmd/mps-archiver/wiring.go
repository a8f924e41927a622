package main

import (
	"context"
	"log/slog"
	"runtime"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/metrics"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// archiver is what every command that archives builds, one way: the
// process's metrics (with its build), the API client, the retention basis
// read from the ledger, the syncer, and the detail fetcher where
// details.mode asks for one. Each command keeps only its lifecycle (how
// long it runs, what it says, when it stops).
type archiver struct {
	metrics *metrics.Metrics
	client  *mpsclient.Client
	syncer  *syncer.Syncer
	fetcher *details.Fetcher // nil with details.mode none
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
	return a, nil
}
