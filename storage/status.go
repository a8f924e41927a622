package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// RunSummary is one run of the ledger.
type RunSummary struct {
	ID         int64      `json:"id"`
	Kind       string     `json:"kind"`
	Status     string     `json:"status"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Error      string     `json:"error,omitempty"`
}

// ArchiveStatus is what the archive says of its own health: the
// ledger's last runs, coverage gaps, the detail queue and what the API was
// found to support.
type ArchiveStatus struct {
	LastSuccess  *RunSummary         `json:"last_success,omitempty"`
	LastRun      *RunSummary         `json:"last_run,omitempty"`
	Running      *RunSummary         `json:"running,omitempty"`
	FirstRun     *time.Time          `json:"first_run,omitempty"`
	FullFailures int64               `json:"full_run_failures"`
	Gaps         int64               `json:"coverage_gaps"`
	LastGap      *CoverageGap        `json:"last_coverage_gap,omitempty"`
	Details      details.Backlog     `json:"details"`
	Capabilities []syncer.Capability `json:"api_capabilities"`
	// WaitingForPartition counts dated tasks still in the DEFAULT
	// partition though a successful run started after they were archived:
	// the run could not make their month's partition.
	WaitingForPartition int64 `json:"tasks_waiting_for_partition"`
}

// CoverageGap is a recorded coverage gap.
type CoverageGap struct {
	DetectedAt time.Time `json:"detected_at"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
}

// Status reads the archive's health in a few cheap queries (indexes and
// small tables only: it never counts the tasks).
func (s *Store) Status(ctx context.Context) (ArchiveStatus, error) {
	var st ArchiveStatus
	run := func(where string) (*RunSummary, error) {
		var r RunSummary
		var errText *string
		err := s.pool.QueryRow(ctx, `SELECT id, kind, status, started_at, finished_at, error FROM sync_runs `+where+` ORDER BY id DESC LIMIT 1`).
			Scan(&r.ID, &r.Kind, &r.Status, &r.StartedAt, &r.FinishedAt, &errText)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the run ledger: %w", interpretError(err))
		}
		if errText != nil {
			r.Error = *errText
		}
		return &r, nil
	}
	var err error
	if st.LastSuccess, err = run(`WHERE status = 'succeeded'`); err != nil {
		return st, err
	}
	if st.LastRun, err = run(`WHERE status <> 'running'`); err != nil {
		return st, err
	}
	if st.Running, err = run(`WHERE status = 'running'`); err != nil {
		return st, err
	}
	if err := s.pool.QueryRow(ctx, `SELECT min(started_at) FROM sync_runs`).Scan(&st.FirstRun); err != nil {
		return st, fmt.Errorf("read the run ledger: %w", interpretError(err))
	}
	// Not RunHistory's count: status holds no lock, so a run marked
	// running may be alive; only finished failures count here.
	if err := s.pool.QueryRow(ctx, `
SELECT count(*) FROM sync_runs
 WHERE kind = 'full' AND status = 'failed'
   AND id > coalesce((SELECT max(id) FROM sync_runs WHERE kind = 'full' AND status = 'succeeded'), 0)`).Scan(&st.FullFailures); err != nil {
		return st, fmt.Errorf("read the run ledger: %w", interpretError(err))
	}
	var g CoverageGap
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM coverage_gaps), detected_at, gap_start, gap_end FROM coverage_gaps ORDER BY id DESC LIMIT 1`).
		Scan(&st.Gaps, &g.DetectedAt, &g.Start, &g.End)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return st, fmt.Errorf("read coverage gaps: %w", interpretError(err))
	default:
		st.LastGap = &g
	}
	if st.Details, err = s.DetailBacklog(ctx); err != nil {
		return st, err
	}
	if err := s.pool.QueryRow(ctx, `
SELECT count(*) FROM tasks_undated
 WHERE create_time IS NOT NULL
   AND first_seen_at < (SELECT max(started_at) FROM sync_runs WHERE status = 'succeeded')`).Scan(&st.WaitingForPartition); err != nil {
		return st, fmt.Errorf("read the DEFAULT partition: %w", interpretError(err))
	}
	rows, err := s.pool.Query(ctx, `SELECT name, state, checked_at, detail FROM api_capabilities ORDER BY name`)
	if err != nil {
		return st, fmt.Errorf("read API capabilities: %w", interpretError(err))
	}
	st.Capabilities, err = pgx.CollectRows(rows, pgx.RowToStructByPos[syncer.Capability])
	if err != nil {
		return st, fmt.Errorf("read API capabilities: %w", interpretError(err))
	}
	return st, nil
}
