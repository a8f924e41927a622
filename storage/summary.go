package storage

import (
	"context"
	"fmt"
	"time"
)

// Summary is the archive at a glance, over tasks created in [Since, Until).
type Summary struct {
	Since, Until time.Time
	Total        int64
	ByStatus     []Count
	ByType       []TypeStats
	Runs         RunStats
	Gaps         []GapRow
}

// Count is a labelled count.
type Count struct {
	Label string `json:"label"`
	N     int64  `json:"count"`
}

// TypeStats are one task type's volume and durations (seconds; nil when no
// task had both ends of the interval).
type TypeStats struct {
	TaskType   string   `json:"task_type"`
	Tasks      int64    `json:"tasks"`
	Finished   int64    `json:"finished"`
	QueueP50   *float64 `json:"queue_p50_seconds"`
	QueueP90   *float64 `json:"queue_p90_seconds"`
	ProcessP50 *float64 `json:"process_p50_seconds"`
	ProcessP90 *float64 `json:"process_p90_seconds"`
}

// RunStats summarise sync_runs.
type RunStats struct {
	Total       int64      `json:"total"`
	Succeeded   int64      `json:"succeeded"`
	Failed      int64      `json:"failed"`
	Running     int64      `json:"running"`
	LastSuccess *time.Time `json:"last_success"`
	LastError   *string    `json:"last_error"`
}

// GapRow is one recorded coverage gap.
type GapRow struct {
	Start time.Time `json:"gap_start"`
	End   time.Time `json:"gap_end"`
	RunID int64     `json:"run_id"`
}

// Summarize computes a Summary.
func (s *Store) Summarize(ctx context.Context, since, until time.Time) (*Summary, error) {
	sum := &Summary{Since: since, Until: until}
	rows, err := s.pool.Query(ctx, `
SELECT status, count(*) FROM tasks
 WHERE create_time >= $1 AND create_time < $2
 GROUP BY status ORDER BY mps_status_rank(status)`, since, until)
	if err != nil {
		return nil, fmt.Errorf("summarise statuses: %w", interpretError(err))
	}
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Label, &c.N); err != nil {
			rows.Close()
			return nil, fmt.Errorf("summarise statuses: %w", interpretError(err))
		}
		sum.Total += c.N
		sum.ByStatus = append(sum.ByStatus, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarise statuses: %w", interpretError(err))
	}

	rows, err = s.pool.Query(ctx, `
SELECT task_type, count(*),
       count(*) FILTER (WHERE status = 'FINISH'),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM begin_process_time - create_time)),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM begin_process_time - create_time)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finish_time - begin_process_time)),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM finish_time - begin_process_time))
  FROM tasks
 WHERE create_time >= $1 AND create_time < $2
 GROUP BY task_type ORDER BY count(*) DESC, task_type`, since, until)
	if err != nil {
		return nil, fmt.Errorf("summarise types: %w", interpretError(err))
	}
	for rows.Next() {
		var t TypeStats
		if err := rows.Scan(&t.TaskType, &t.Tasks, &t.Finished, &t.QueueP50, &t.QueueP90, &t.ProcessP50, &t.ProcessP90); err != nil {
			rows.Close()
			return nil, fmt.Errorf("summarise types: %w", interpretError(err))
		}
		sum.ByType = append(sum.ByType, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarise types: %w", interpretError(err))
	}

	err = s.pool.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'running'),
       max(started_at) FILTER (WHERE status = 'succeeded'),
       (SELECT error FROM sync_runs WHERE status = 'failed' ORDER BY id DESC LIMIT 1)
  FROM sync_runs`).Scan(&sum.Runs.Total, &sum.Runs.Succeeded, &sum.Runs.Failed, &sum.Runs.Running, &sum.Runs.LastSuccess, &sum.Runs.LastError)
	if err != nil {
		return nil, fmt.Errorf("summarise runs: %w", interpretError(err))
	}

	rows, err = s.pool.Query(ctx, `SELECT gap_start, gap_end, run_id FROM coverage_gaps ORDER BY gap_start`)
	if err != nil {
		return nil, fmt.Errorf("list coverage gaps: %w", interpretError(err))
	}
	defer rows.Close()
	for rows.Next() {
		var g GapRow
		if err := rows.Scan(&g.Start, &g.End, &g.RunID); err != nil {
			return nil, fmt.Errorf("list coverage gaps: %w", interpretError(err))
		}
		sum.Gaps = append(sum.Gaps, g)
	}
	return sum, interpretError(rows.Err())
}
