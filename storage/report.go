package storage

import (
	"context"
	"fmt"
	"time"
)

// ReportParams selects what a Report covers: tasks created in [Since,
// Until), grouped by day, week or month, optionally of one task type.
type ReportParams struct {
	Since, Until time.Time
	By           string // day, week, month
	TaskType     string // "" for all
	StuckAfter   time.Duration
}

// Report answers the common questions of the archive.
type Report struct {
	Params     ReportParams     `json:"-"`
	Since      time.Time        `json:"since"`
	Until      time.Time        `json:"until"`
	By         string           `json:"by"`
	TaskType   string           `json:"task_type,omitempty"`
	Total      int64            `json:"total_tasks"`
	ByStatus   map[string]int64 `json:"tasks_by_status"`
	Volume     []VolumeRow      `json:"volume"`
	Durations  []DurationRow    `json:"durations"`
	Subtasks   []SubtaskRow     `json:"subtask_usage"`
	Unfinished []UnfinishedRow  `json:"unfinished"`
	Stuck      []StuckRow       `json:"stuck_processing"`
	SyncDays   []SyncDayRow     `json:"sync_health"`
	Runs       RunStats         `json:"runs"`
	Gaps       []GapRow         `json:"coverage_gaps"`
	Generated  time.Time        `json:"generated_at"`
}

// VolumeRow counts tasks of one period, type and status.
type VolumeRow struct {
	Period   time.Time `json:"period"`
	TaskType string    `json:"task_type"`
	Status   string    `json:"status"`
	Tasks    int64     `json:"tasks"`
}

// DurationRow holds one period's and type's duration percentiles, in
// seconds (nil when no task had both ends). TaskType "*" is every type.
type DurationRow struct {
	Period     time.Time `json:"period"`
	TaskType   string    `json:"task_type"`
	Tasks      int64     `json:"tasks"`
	QueueP50   *float64  `json:"queue_p50_s"`
	QueueP90   *float64  `json:"queue_p90_s"`
	QueueP99   *float64  `json:"queue_p99_s"`
	ProcessP50 *float64  `json:"processing_p50_s"`
	ProcessP90 *float64  `json:"processing_p90_s"`
	ProcessP99 *float64  `json:"processing_p99_s"`
}

// SubtaskRow counts the tasks using one subtask kind: both SubTaskTypes
// vocabularies ("action-trans", "Transcode") count as the kind "Transcode".
type SubtaskRow struct {
	SubTaskType string `json:"sub_task_type"`
	Tasks       int64  `json:"tasks"`
}

// UnfinishedRow summarises the tasks still in one status.
type UnfinishedRow struct {
	Status  string   `json:"status"`
	Tasks   int64    `json:"tasks"`
	OldestS *float64 `json:"oldest_in_state_s"`
	Stuck   int64    `json:"stuck"`
	MedianS *float64 `json:"median_in_state_s"`
}

// StuckRow is a task PROCESSING longer than the threshold.
type StuckRow struct {
	TaskID      string    `json:"task_id"`
	TaskType    string    `json:"task_type"`
	Begin       time.Time `json:"begin_process_time"`
	ProcessingS float64   `json:"processing_s"`
}

// SyncDayRow is one day of report_sync_health.
type SyncDayRow struct {
	Day       time.Time `json:"day"`
	Runs      int64     `json:"runs"`
	Succeeded int64     `json:"succeeded"`
	Failed    int64     `json:"failed"`
	Gaps      int64     `json:"gaps_found"`
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

// Report computes a Report. It reads the tasks of the range once per
// section; over a million tasks it takes seconds (see docs/reporting.md).
func (s *Store) Report(ctx context.Context, p ReportParams) (*Report, error) {
	switch p.By {
	case "day", "week", "month":
	default:
		return nil, fmt.Errorf("report: by %q is not day, week or month", p.By)
	}
	if p.StuckAfter <= 0 {
		p.StuckAfter = time.Hour
	}
	r := &Report{Params: p, Since: p.Since, Until: p.Until, By: p.By, TaskType: p.TaskType, ByStatus: map[string]int64{}, Generated: time.Now().UTC()}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("report: %w", interpretError(err))
	}
	// One snapshot for every section, read-only.
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`); err != nil {
		return nil, fmt.Errorf("report: %w", interpretError(err))
	}
	const where = `create_time >= $1 AND create_time < $2 AND ($3 = '' OR task_type = $3)`
	args := []any{p.Since, p.Until, p.TaskType}

	rows, err := tx.Query(ctx, `
SELECT date_trunc('`+p.By+`', create_time, 'UTC') AS period, task_type, status, count(*)
  FROM tasks WHERE `+where+`
 GROUP BY 1, 2, 3 ORDER BY 1, 2, mps_status_rank(status)`, args...)
	if err != nil {
		return nil, fmt.Errorf("report volume: %w", interpretError(err))
	}
	for rows.Next() {
		var v VolumeRow
		if err := rows.Scan(&v.Period, &v.TaskType, &v.Status, &v.Tasks); err != nil {
			return nil, fmt.Errorf("report volume: %w", interpretError(err))
		}
		r.Volume = append(r.Volume, v)
		r.Total += v.Tasks
		r.ByStatus[v.Status] += v.Tasks
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report volume: %w", interpretError(err))
	}

	// Per type, and for every type together ("*").
	rows, err = tx.Query(ctx, `
SELECT period, CASE WHEN GROUPING(task_type) = 1 THEN '*' ELSE task_type END, count(*),
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY queue_s),
       percentile_cont(0.9)  WITHIN GROUP (ORDER BY queue_s),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY queue_s),
       percentile_cont(0.5)  WITHIN GROUP (ORDER BY processing_s),
       percentile_cont(0.9)  WITHIN GROUP (ORDER BY processing_s),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY processing_s)
  FROM (SELECT date_trunc('`+p.By+`', create_time, 'UTC') AS period, task_type,
               extract(epoch FROM begin_process_time - create_time) AS queue_s,
               extract(epoch FROM finish_time - begin_process_time) AS processing_s
          FROM tasks WHERE `+where+`) t
 GROUP BY GROUPING SETS ((period, task_type), (period))
 ORDER BY period, GROUPING(task_type) DESC, 2`, args...)
	if err != nil {
		return nil, fmt.Errorf("report durations: %w", interpretError(err))
	}
	for rows.Next() {
		var d DurationRow
		if err := rows.Scan(&d.Period, &d.TaskType, &d.Tasks, &d.QueueP50, &d.QueueP90, &d.QueueP99, &d.ProcessP50, &d.ProcessP90, &d.ProcessP99); err != nil {
			return nil, fmt.Errorf("report durations: %w", interpretError(err))
		}
		r.Durations = append(r.Durations, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report durations: %w", interpretError(err))
	}

	rows, err = tx.Query(ctx, `
SELECT mps_subtask_kind(s), count(*) FROM tasks CROSS JOIN LATERAL unnest(sub_task_types) AS s
 WHERE `+where+` GROUP BY 1 ORDER BY 2 DESC, 1`, args...)
	if err != nil {
		return nil, fmt.Errorf("report subtasks: %w", interpretError(err))
	}
	for rows.Next() {
		var st SubtaskRow
		if err := rows.Scan(&st.SubTaskType, &st.Tasks); err != nil {
			return nil, fmt.Errorf("report subtasks: %w", interpretError(err))
		}
		r.Subtasks = append(r.Subtasks, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report subtasks: %w", interpretError(err))
	}

	// Unfinished and stuck tasks are about now, whatever the range.
	rows, err = tx.Query(ctx, `
SELECT status, count(*), max(in_state_s), percentile_cont(0.5) WITHIN GROUP (ORDER BY in_state_s),
       count(*) FILTER (WHERE status = 'PROCESSING' AND in_state_s > $2)
  FROM report_unfinished WHERE ($1 = '' OR task_type = $1)
 GROUP BY status ORDER BY mps_status_rank(status)`, p.TaskType, p.StuckAfter.Seconds())
	if err != nil {
		return nil, fmt.Errorf("report unfinished: %w", interpretError(err))
	}
	for rows.Next() {
		var u UnfinishedRow
		if err := rows.Scan(&u.Status, &u.Tasks, &u.OldestS, &u.MedianS, &u.Stuck); err != nil {
			return nil, fmt.Errorf("report unfinished: %w", interpretError(err))
		}
		r.Unfinished = append(r.Unfinished, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report unfinished: %w", interpretError(err))
	}
	rows, err = tx.Query(ctx, `
SELECT task_id, task_type, begin_process_time, processing_s
  FROM report_stuck_processing($1::interval) WHERE ($2 = '' OR task_type = $2) LIMIT 20`,
		fmt.Sprintf("%d seconds", int64(p.StuckAfter.Seconds())), p.TaskType)
	if err != nil {
		return nil, fmt.Errorf("report stuck: %w", interpretError(err))
	}
	for rows.Next() {
		var st StuckRow
		if err := rows.Scan(&st.TaskID, &st.TaskType, &st.Begin, &st.ProcessingS); err != nil {
			return nil, fmt.Errorf("report stuck: %w", interpretError(err))
		}
		r.Stuck = append(r.Stuck, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report stuck: %w", interpretError(err))
	}

	rows, err = tx.Query(ctx, `
SELECT day, runs, succeeded, failed, gaps_found FROM report_sync_health
 WHERE day >= ($1::timestamptz AT TIME ZONE 'UTC')::date AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date + 1
 ORDER BY day`, p.Since, p.Until)
	if err != nil {
		return nil, fmt.Errorf("report sync health: %w", interpretError(err))
	}
	for rows.Next() {
		var d SyncDayRow
		if err := rows.Scan(&d.Day, &d.Runs, &d.Succeeded, &d.Failed, &d.Gaps); err != nil {
			return nil, fmt.Errorf("report sync health: %w", interpretError(err))
		}
		r.SyncDays = append(r.SyncDays, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report sync health: %w", interpretError(err))
	}

	err = tx.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'running'),
       max(started_at) FILTER (WHERE status = 'succeeded'),
       (SELECT error FROM sync_runs WHERE status = 'failed' ORDER BY id DESC LIMIT 1)
  FROM sync_runs`).Scan(&r.Runs.Total, &r.Runs.Succeeded, &r.Runs.Failed, &r.Runs.Running, &r.Runs.LastSuccess, &r.Runs.LastError)
	if err != nil {
		return nil, fmt.Errorf("report runs: %w", interpretError(err))
	}
	rows, err = tx.Query(ctx, `SELECT gap_start, gap_end, run_id FROM coverage_gaps ORDER BY gap_start`)
	if err != nil {
		return nil, fmt.Errorf("report gaps: %w", interpretError(err))
	}
	for rows.Next() {
		var g GapRow
		if err := rows.Scan(&g.Start, &g.End, &g.RunID); err != nil {
			return nil, fmt.Errorf("report gaps: %w", interpretError(err))
		}
		r.Gaps = append(r.Gaps, g)
	}
	return r, interpretError(rows.Err())
}
