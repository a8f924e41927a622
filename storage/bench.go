package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mps-archiver/mps-archiver/mps"
)

// BenchDB holds what `mps-archiver bench` does to its throwaway database
// besides syncing: the physical ceiling, the naive baseline, WAL and row
// counters, and emptying the archive between runs. It is a type of its own,
// opened by its own call, so that the archiver's Store has no method that
// can truncate or drop the archive.
type BenchDB struct {
	pool *pgxpool.Pool
}

// OpenBenchDB connects to a throwaway database (never an archive anyone
// keeps: ResetArchive empties it).
func OpenBenchDB(ctx context.Context, dsn string) (*BenchDB, error) {
	cfg, ci, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, ci.wrap("connect to", interpretError(err))
	}
	return &BenchDB{pool: pool}, nil
}

// Close releases the connections.
func (s *BenchDB) Close() { s.pool.Close() }

// CopyCeiling COPYs pages into an empty table shaped like tasks (same
// columns and indexes), one commit per page: the physical ceiling the page
// upsert is measured against.
func (s *BenchDB) CopyCeiling(ctx context.Context, pages [][]mps.Task) (time.Duration, error) {
	if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE tasks INCLUDING ALL)`); err != nil {
		return 0, fmt.Errorf("create bench_copy: %w", interpretError(err))
	}
	defer s.pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS bench_copy`)
	cols := []string{"task_id", "task_type", "sub_task_types", "status", "first_status", "create_time", "begin_process_time", "finish_time", "raw"}
	start := time.Now()
	for _, page := range pages {
		rows := make([][]any, len(page))
		for i, t := range page {
			rows[i] = []any{t.TaskID, t.TaskType, t.SubTaskTypes, "FINISH", "FINISH", ts(t.CreateTime), ts(t.BeginProcessTime), ts(t.FinishTime), t.Raw}
		}
		if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"bench_copy"}, cols, pgx.CopyFromRows(rows)); err != nil {
			return 0, fmt.Errorf("copy: %w", interpretError(err))
		}
	}
	return time.Since(start), nil
}

// NaiveUpsert writes tasks the naive way, one autocommitted
// INSERT … ON CONFLICT per row, into an empty table shaped like tasks.
func (s *BenchDB) NaiveUpsert(ctx context.Context, tasks []mps.Task) (time.Duration, error) {
	if _, err := s.pool.Exec(ctx, `DROP TABLE IF EXISTS bench_naive; CREATE TABLE bench_naive (LIKE tasks INCLUDING ALL)`); err != nil {
		return 0, fmt.Errorf("create bench_naive: %w", interpretError(err))
	}
	defer s.pool.Exec(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS bench_naive`)
	start := time.Now()
	for _, t := range tasks {
		_, err := s.pool.Exec(ctx, `
INSERT INTO bench_naive (task_id, task_type, sub_task_types, status, first_status, create_time, begin_process_time, finish_time, raw)
VALUES ($1, $2, $3, 'FINISH', 'FINISH', $4, $5, $6, $7)
ON CONFLICT (task_id, create_time) DO UPDATE SET task_type = EXCLUDED.task_type, sub_task_types = EXCLUDED.sub_task_types,
       status = EXCLUDED.status, create_time = EXCLUDED.create_time, begin_process_time = EXCLUDED.begin_process_time,
       finish_time = EXCLUDED.finish_time, raw = EXCLUDED.raw`,
			t.TaskID, t.TaskType, t.SubTaskTypes, ts(t.CreateTime), ts(t.BeginProcessTime), ts(t.FinishTime), t.Raw)
		if err != nil {
			return 0, fmt.Errorf("naive upsert: %w", interpretError(err))
		}
	}
	return time.Since(start), nil
}

// WALPosition is the current WAL insert position in bytes.
func (s *BenchDB) WALPosition(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint`).Scan(&n)
	return n, interpretError(err)
}

// TaskRowWrites is the number of row versions ever written to tasks
// (inserts, updates, deletes) by the statistics collector, which lags writes
// by up to a second.
func (s *BenchDB) TaskRowWrites(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `
SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
  FROM pg_stat_user_tables s JOIN pg_partition_tree('tasks') p ON p.relid = s.relid`).Scan(&n)
	return n, interpretError(err)
}

// BusiestMonth is the month (UTC) holding the most tasks, and how many.
func (s *BenchDB) BusiestMonth(ctx context.Context) (time.Time, int64, error) {
	var m time.Time
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT date_trunc('month', create_time AT TIME ZONE 'UTC'), count(*) FROM tasks
 WHERE create_time IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 1`).Scan(&m, &n)
	if err != nil {
		return m, 0, fmt.Errorf("find the busiest month: %w", interpretError(err))
	}
	return m.UTC(), n, nil
}

// ResetArchive empties every archive table, and the proof log.
func (s *BenchDB) ResetArchive(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `TRUNCATE tasks, task_status_changes, sync_runs, sync_run_sources, archive_months, archive_exports, coverage_gaps, api_capabilities, task_detail_queue, task_details, task_subtask_results,
    rollup_daily_tasks, rollup_daily_durations, rollup_daily_subtasks, rollup_daily_outcomes, rollup_daily_error_codes,
    rollup_daily_subtask_outcomes, rollup_monthly_durations, task_outputs, task_inputs, proof_checkpoints;
ALTER TABLE proof_log DISABLE TRIGGER proof_log_append_only;
TRUNCATE proof_log;
ALTER TABLE proof_log ENABLE TRIGGER proof_log_append_only;
UPDATE proof_log_head SET size = 0;
CHECKPOINT`)
	return interpretError(err)
}

// SetProofLog switches the proof log's appends on or off (what it costs
// a sync is measured so; an archive never has it off, and verify reports
// it).
func (s *BenchDB) SetProofLog(ctx context.Context, on bool) error {
	_, err := s.pool.Exec(ctx, `UPDATE proof_log_head SET enabled = $1`, on)
	return interpretError(err)
}

// ProofLeaves is the proof log's size.
func (s *BenchDB) ProofLeaves(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT size FROM proof_log_head`).Scan(&n)
	return n, interpretError(err)
}

// QueueAllDetails queues every FINISH task for detail capture, as a fresh
// install that finds a full window would; it returns how many are queued.
func (s *BenchDB) QueueAllDetails(ctx context.Context) (int64, error) {
	if _, err := s.pool.Exec(ctx, `
INSERT INTO task_detail_queue (task_id, create_time, deadline, give_up_at)
SELECT task_id, create_time, create_time + interval '72 hours', create_time + make_interval(secs => $1) FROM tasks WHERE status = 'FINISH'
ON CONFLICT DO NOTHING`, mps.Window.Seconds()); err != nil {
		return 0, fmt.Errorf("queue details: %w", interpretError(err))
	}
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM task_detail_queue`).Scan(&n)
	return n, interpretError(err)
}

// CountDetails counts the stored details.
func (s *BenchDB) CountDetails(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM task_details`).Scan(&n)
	return n, interpretError(err)
}
