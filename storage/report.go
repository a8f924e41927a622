package storage

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
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
	// How finished tasks ended (task_details), by period and type.
	Outcomes []OutcomeRow `json:"outcomes"`
	// The most common first error codes of failed tasks.
	ErrorCodes []ErrorCodeRow `json:"top_error_codes"`
	// Sub-task results by kind.
	SubtaskOutcomes []SubtaskOutcomeRow `json:"subtask_outcomes"`
	// The detail queue now, and what expired uncaptured in the range.
	Details DetailBacklogRow `json:"detail_backlog"`
	// Usage is what MPS billed (usage_daily) over the Beijing days of the
	// range; Reconciliation places its transcoding next to the archived
	// outputs; Spenders are the templates, buckets and task types whose
	// outputs account for the most minutes.
	Usage          []BilledRow         `json:"billed_usage"`
	Reconciliation []ReconciliationRow `json:"usage_reconciliation"`
	Unaccounted    UnaccountedRow      `json:"usage_unaccounted"`
	Spenders       []SpenderRow        `json:"output_minutes_top"`
	// OutputsSince..OutputsUntil are the Beijing days the reconciliation
	// and the spenders cover: the range's last ReportOutputDays at most,
	// since they read the archived outputs, not rollups.
	OutputsSince time.Time `json:"outputs_since"`
	OutputsUntil time.Time `json:"outputs_until"`
	Generated    time.Time `json:"generated_at"`
}

// BilledRow is a type and specification's billed usage over the range.
type BilledRow struct {
	Type          string  `json:"type"`
	Specification string  `json:"specification"`
	Unit          string  `json:"unit"`
	Count         int64   `json:"count"`
	Usage         float64 `json:"usage"`
}

// ReconciliationRow is billed transcoding next to the archived outputs'
// durations for a codec and tier (both "" for Audio and Remuxing, named by
// Specifications) over the range.
type ReconciliationRow struct {
	Codec          string   `json:"codec"`
	Tier           string   `json:"tier"`
	Specifications []string `json:"specifications"`
	BilledS        float64  `json:"billed_s"`
	AccountedS     float64  `json:"accounted_s"`
	DifferenceS    float64  `json:"difference_s"`
	Days           int64    `json:"days"`
	DaysAgreeing   int64    `json:"days_agreeing"`
}

// UnaccountedRow is what the archive cannot see of the range's bill:
// outputs without a duration and finished tasks without a captured
// outcome.
type UnaccountedRow struct {
	OutputsWithoutDuration int64 `json:"outputs_without_duration"`
	OutputsUnclassified    int64 `json:"outputs_unclassified"`
	TasksWithoutOutcome    int64 `json:"tasks_without_outcome"`
}

// SpenderRow is a template, bucket or task type and the minutes of its
// transcoded outputs over the range.
type SpenderRow struct {
	By      string  `json:"by"` // template, bucket, task_type
	Value   string  `json:"value"`
	Outputs int64   `json:"outputs"`
	Minutes float64 `json:"minutes"`
}

// OutcomeRow counts how one period's finished tasks of one type ended.
// FailureRate is failed / (succeeded + failed), nil with neither.
type OutcomeRow struct {
	Period      time.Time `json:"period"`
	TaskType    string    `json:"task_type"`
	Finished    int64     `json:"finished"`
	Succeeded   int64     `json:"succeeded"`
	Failed      int64     `json:"failed"`
	Expired     int64     `json:"expired"`
	Unknown     int64     `json:"unknown"`
	FailureRate *float64  `json:"failure_rate"`
}

// ErrorCodeRow counts failed tasks by first error code (ErrCodeExt where
// the API gave one, else ErrCode).
type ErrorCodeRow struct {
	Code  string `json:"error_code"`
	Tasks int64  `json:"tasks"`
}

// SubtaskOutcomeRow counts one sub-task kind's results.
type SubtaskOutcomeRow struct {
	Kind     string `json:"kind"`
	Subtasks int64  `json:"subtasks"`
	Failed   int64  `json:"failed"`
}

// DetailBacklogRow is the detail queue now (Queued, Overdue past the
// planned deadline, GaveUp after every attempt) and the details of the
// range's tasks that expired before capture.
type DetailBacklogRow struct {
	Queued         int64      `json:"queued"`
	Overdue        int64      `json:"overdue"`
	GaveUp         int64      `json:"gave_up"`
	OldestDeadline *time.Time `json:"oldest_deadline"`
	Expired        int64      `json:"expired_in_range"`
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

// Report computes a Report from the daily rollups: its cost follows the
// days of the range, not the tasks the archive holds (docs/reporting.md).
// Only the unfinished and stuck sections read tasks, through the index of
// unfinished ones.
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
	// The rollups are daily (UTC): the report covers whole days, from the
	// start of Since's day to the end of the day before Until, or of
	// Until's own day when Until falls inside it.
	r.Since = r.Since.UTC().Truncate(24 * time.Hour)
	if u := r.Until.UTC(); u.Truncate(24 * time.Hour).Equal(u) {
		r.Until = u
	} else {
		r.Until = u.Truncate(24 * time.Hour).Add(24 * time.Hour)
	}
	period := `date_trunc('` + p.By + `', day::timestamp) AT TIME ZONE 'UTC'`
	const where = `day >= ($1::timestamptz AT TIME ZONE 'UTC')::date AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date
   AND ($3 = '' OR task_type = $3)`
	args := []any{r.Since, r.Until, p.TaskType}

	if r.Volume, err = collect[VolumeRow](ctx, tx, "volume", `
SELECT `+period+` AS period, task_type, status, sum(tasks)::bigint
  FROM rollup_daily_tasks WHERE `+where+`
 GROUP BY 1, 2, 3 HAVING sum(tasks) <> 0 ORDER BY 1, 2, mps_status_rank(status)`, args...); err != nil {
		return nil, err
	}
	for _, v := range r.Volume {
		r.Total += v.Tasks
		r.ByStatus[v.Status] += v.Tasks
	}

	// Per type, and for every type together ("*"): sketches merged per
	// period, then the percentiles of the merge (docs/reporting.md). By
	// month, a month's folded days are read as one monthly sketch.
	var horizon pgtype.Date
	if err := tx.QueryRow(ctx, `SELECT horizon FROM rollup_fold`).Scan(&horizon); err != nil {
		return nil, fmt.Errorf("report durations: %w", interpretError(err))
	}
	var folded time.Time // zero: nothing folded
	if horizon.Valid && horizon.InfinityModifier == pgtype.Finite {
		folded = horizon.Time
	}
	pieces := sketchPieces(r.Since, r.Until, folded, p.By == "month")
	monthly, los, his, signs := make([]bool, len(pieces)), make([]time.Time, len(pieces)), make([]time.Time, len(pieces)), make([]int32, len(pieces))
	for i, pc := range pieces {
		monthly[i], los[i], his[i], signs[i] = pc.monthly, pc.lo, pc.hi, int32(pc.sign)
	}
	// Grouped by sorting, the merge hands the percentiles' window its rows
	// already in period order; the planner, not knowing how many rows the
	// pieces select, hashes them instead, a third slower (measured on a
	// year's archive: 152 against 120 ms for 30 days).
	if _, err := tx.Exec(ctx, `SET LOCAL enable_hashagg = off`); err != nil {
		return nil, fmt.Errorf("report durations: %w", interpretError(err))
	}
	if r.Durations, err = collect[DurationRow](ctx, tx, "durations", `
WITH pieces AS (
    SELECT * FROM unnest($4::boolean[], $5::date[], $6::date[], $7::integer[]) AS p(monthly, lo, hi, sgn)
), sketches AS (
    SELECT d.day, d.task_type, d.measure, d.sign, d.bucket, d.n * p.sgn AS n
      FROM pieces p JOIN rollup_daily_durations d ON d.day >= p.lo AND d.day < p.hi
     WHERE NOT p.monthly AND ($3 = '' OR d.task_type = $3) AND d.n <> 0
    UNION ALL
    SELECT m.month, m.task_type, m.measure, m.sign, m.bucket, m.n * p.sgn
      FROM pieces p JOIN rollup_monthly_durations m ON m.month >= p.lo AND m.month < p.hi
     WHERE p.monthly AND ($3 = '' OR m.task_type = $3) AND m.n <> 0
), counts AS (
    SELECT period, CASE WHEN GROUPING(task_type) = 1 THEN '*' ELSE task_type END AS task_type, sum(tasks)::bigint AS tasks
      FROM (SELECT `+period+` AS period, task_type, tasks FROM rollup_daily_tasks WHERE `+where+`) t
     GROUP BY GROUPING SETS ((period, task_type), (period))
    HAVING sum(tasks) <> 0
), merged AS (
    SELECT period, CASE WHEN GROUPING(task_type) = 1 THEN '*' ELSE task_type END AS task_type, measure, sign, bucket, sum(n) AS n
      FROM (SELECT `+period+` AS period, task_type, measure, sign, bucket, n FROM sketches) d
     GROUP BY GROUPING SETS ((period, task_type, measure, sign, bucket), (period, measure, sign, bucket))
    HAVING sum(n) <> 0
), quantiles AS (
    SELECT period, task_type,
           min(v) FILTER (WHERE measure = 'queue' AND cum > 0.5 * (total - 1)) AS q50,
           min(v) FILTER (WHERE measure = 'queue' AND cum > 0.9 * (total - 1)) AS q90,
           min(v) FILTER (WHERE measure = 'queue' AND cum > 0.99 * (total - 1)) AS q99,
           min(v) FILTER (WHERE measure = 'processing' AND cum > 0.5 * (total - 1)) AS p50,
           min(v) FILTER (WHERE measure = 'processing' AND cum > 0.9 * (total - 1)) AS p90,
           min(v) FILTER (WHERE measure = 'processing' AND cum > 0.99 * (total - 1)) AS p99
      FROM (SELECT period, task_type, measure, mps_sketch_value(sign, bucket) AS v,
                   sum(n) OVER (PARTITION BY period, task_type, measure ORDER BY sign, sign * bucket ROWS UNBOUNDED PRECEDING) AS cum,
                   sum(n) OVER (PARTITION BY period, task_type, measure) AS total
              FROM merged) b
     GROUP BY 1, 2
)
SELECT c.period, c.task_type, c.tasks, q.q50, q.q90, q.q99, q.p50, q.p90, q.p99
  FROM counts c LEFT JOIN quantiles q ON q.period = c.period AND q.task_type = c.task_type
 ORDER BY c.period, c.task_type <> '*', c.task_type`, append(args, monthly, los, his, signs)...); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `SET LOCAL enable_hashagg TO DEFAULT`); err != nil {
		return nil, fmt.Errorf("report durations: %w", interpretError(err))
	}

	if r.Subtasks, err = collect[SubtaskRow](ctx, tx, "subtasks", `
SELECT mps_subtask_kind(sub_task_type), sum(tasks)::bigint FROM rollup_daily_subtasks
 WHERE `+where+` GROUP BY 1 HAVING sum(tasks) <> 0 ORDER BY 2 DESC, 1`, args...); err != nil {
		return nil, err
	}

	// Unfinished and stuck tasks are about now, whatever the range.
	if r.Unfinished, err = collect[UnfinishedRow](ctx, tx, "unfinished", `
SELECT status, count(*), max(in_state_s),
       count(*) FILTER (WHERE status = 'PROCESSING' AND in_state_s > $2),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY in_state_s)
  FROM report_unfinished WHERE ($1 = '' OR task_type = $1)
 GROUP BY status ORDER BY mps_status_rank(status)`, p.TaskType, p.StuckAfter.Seconds()); err != nil {
		return nil, err
	}
	if r.Stuck, err = collect[StuckRow](ctx, tx, "stuck", `
SELECT task_id, task_type, begin_process_time, processing_s
  FROM report_stuck_processing($1::interval) WHERE ($2 = '' OR task_type = $2) LIMIT 20`,
		fmt.Sprintf("%d seconds", int64(p.StuckAfter.Seconds())), p.TaskType); err != nil {
		return nil, err
	}

	if r.SyncDays, err = collect[SyncDayRow](ctx, tx, "sync health", `
SELECT day, runs, succeeded, failed, gaps_found FROM report_sync_health
 WHERE day >= ($1::timestamptz AT TIME ZONE 'UTC')::date AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date + 1
 ORDER BY day`, p.Since, p.Until); err != nil {
		return nil, err
	}

	// The runs of the range (the ledger grows by a run every few minutes,
	// for years), and the last success and failure whenever they were.
	err = tx.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'running'),
       (SELECT started_at FROM sync_runs WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1),
       (SELECT error FROM sync_runs WHERE status = 'failed' ORDER BY id DESC LIMIT 1)
  FROM sync_runs WHERE started_at >= $1 AND started_at < $2`, r.Since, r.Until).Scan(&r.Runs.Total, &r.Runs.Succeeded, &r.Runs.Failed, &r.Runs.Running, &r.Runs.LastSuccess, &r.Runs.LastError)
	if err != nil {
		return nil, fmt.Errorf("report runs: %w", interpretError(err))
	}
	if r.Gaps, err = collect[GapRow](ctx, tx, "gaps", `SELECT gap_start, gap_end, run_id FROM coverage_gaps ORDER BY gap_start`); err != nil {
		return nil, err
	}

	if r.Outcomes, err = collect[OutcomeRow](ctx, tx, "outcomes", `
WITH f AS (
    SELECT `+period+` AS period, task_type, sum(tasks)::bigint AS finished
      FROM rollup_daily_tasks WHERE status = 'FINISH' AND `+where+`
     GROUP BY 1, 2 HAVING sum(tasks) <> 0
), o AS (
    SELECT `+period+` AS period, task_type,
           coalesce(sum(tasks) FILTER (WHERE outcome = 'succeeded'), 0)::bigint AS succeeded,
           coalesce(sum(tasks) FILTER (WHERE outcome = 'failed'), 0)::bigint AS failed,
           coalesce(sum(tasks) FILTER (WHERE outcome = 'expired'), 0)::bigint AS expired
      FROM rollup_daily_outcomes WHERE `+where+`
     GROUP BY 1, 2
)
SELECT f.period, f.task_type, f.finished, coalesce(o.succeeded, 0), coalesce(o.failed, 0), coalesce(o.expired, 0),
       greatest(f.finished - coalesce(o.succeeded + o.failed + o.expired, 0), 0),
       o.failed::float8 / nullif(o.succeeded + o.failed, 0)
  FROM f LEFT JOIN o ON o.period = f.period AND o.task_type = f.task_type
 ORDER BY 1, 2`, args...); err != nil {
		return nil, err
	}
	if r.ErrorCodes, err = collect[ErrorCodeRow](ctx, tx, "error codes", `
SELECT error_code, sum(tasks)::bigint
  FROM rollup_daily_error_codes WHERE `+where+`
 GROUP BY 1 HAVING sum(tasks) <> 0 ORDER BY 2 DESC, 1 LIMIT 10`, args...); err != nil {
		return nil, err
	}
	if r.SubtaskOutcomes, err = collect[SubtaskOutcomeRow](ctx, tx, "sub-task outcomes", `
SELECT kind, sum(subtasks)::bigint, sum(failed)::bigint
  FROM rollup_daily_subtask_outcomes WHERE `+where+`
 GROUP BY 1 HAVING sum(subtasks) <> 0 ORDER BY 3 DESC, 2 DESC, 1`, args...); err != nil {
		return nil, err
	}
	if err := s.reportUsage(ctx, tx, r); err != nil {
		return nil, err
	}
	err = tx.QueryRow(ctx, `
SELECT b.queued, b.overdue, b.gave_up, b.oldest_deadline,
       (SELECT coalesce(sum(tasks), 0)::bigint FROM rollup_daily_outcomes WHERE outcome = 'expired' AND `+where+`)
  FROM report_detail_backlog b`, args...).Scan(&r.Details.Queued, &r.Details.Overdue, &r.Details.GaveUp, &r.Details.OldestDeadline, &r.Details.Expired)
	if err != nil {
		return nil, fmt.Errorf("report detail backlog: %w", interpretError(err))
	}
	return r, nil
}

// ReportOutputDays bounds the days whose archived outputs a report reads
// for the reconciliation and the spenders (a month, as bills are): they
// read the outputs themselves, about 3 µs each (0.6 s for 30 days of 3,000
// tasks a day with every outcome captured), where the other sections read
// daily rollups, so that a report of a year costs no more than one of a
// month in them. Longer ranges: mps_usage_reconciliation and
// mps_output_minutes.
const ReportOutputDays = 31

// reportUsage reads the usage sections: the range's whole UTC days taken
// as Beijing days (the API's). The functions get the days as literals, so
// that only the months of tasks they need are planned (a parameter would
// leave it to a generic plan); the reconciliation reads the archived
// outputs of the range once, and the spenders once more. The finished
// tasks without an outcome come from the rollups, over the same days (by
// day of creation).
func (s *Store) reportUsage(ctx context.Context, tx pgx.Tx, r *Report) error {
	from, to := r.Since.Format(time.DateOnly), r.Until.AddDate(0, 0, -1).Format(time.DateOnly)
	r.OutputsSince, r.OutputsUntil = r.Since, r.Until.AddDate(0, 0, -1)
	if first := r.OutputsUntil.AddDate(0, 0, -(ReportOutputDays - 1)); first.After(r.OutputsSince) {
		r.OutputsSince = first
	}
	// Formatted dates: safe as literals.
	days := fmt.Sprintf("DATE '%s', DATE '%s'", r.OutputsSince.Format(time.DateOnly), r.OutputsUntil.Format(time.DateOnly))
	var err error
	if r.Usage, err = collect[BilledRow](ctx, tx, "billed usage", `
SELECT type, specification, unit, sum(count)::bigint, sum(usage)::float8
  FROM report_usage_daily WHERE day BETWEEN $1::date AND $2::date
 GROUP BY 1, 2, 3 HAVING sum(count) <> 0 OR sum(usage) <> 0 ORDER BY 1, 5 DESC, 2`, from, to); err != nil {
		return err
	}
	type reconciled struct {
		ReconciliationRow
		WithoutDuration, Unclassified int64
	}
	rows, err := collect[reconciled](ctx, tx, "usage reconciliation", `
WITH r AS MATERIALIZED (
    SELECT day, codec, tier, specifications, billed_s, accounted_s, difference_s, status, outputs_without_duration, outputs_unclassified,
           CASE WHEN codec IS NULL THEN specifications[1] END AS other
      FROM mps_usage_reconciliation(`+days+`)
), unseen AS (
    SELECT coalesce(sum(w), 0)::bigint AS without_duration, coalesce(sum(u), 0)::bigint AS unclassified
      FROM (SELECT DISTINCT day, outputs_without_duration AS w, outputs_unclassified AS u FROM r) x
)
SELECT coalesce(codec, ''), coalesce(tier, ''),
       (SELECT coalesce(array_agg(DISTINCT s ORDER BY s), '{}') FROM r r2 CROSS JOIN LATERAL unnest(r2.specifications) AS s
         WHERE r2.codec IS NOT DISTINCT FROM r.codec AND r2.tier IS NOT DISTINCT FROM r.tier AND r2.other IS NOT DISTINCT FROM r.other),
       sum(billed_s)::float8, sum(accounted_s)::float8, sum(difference_s)::float8,
       count(DISTINCT day), count(DISTINCT day) FILTER (WHERE status = 'agrees'),
       (SELECT without_duration FROM unseen), (SELECT unclassified FROM unseen)
  FROM r GROUP BY codec, tier, other ORDER BY 4 DESC, 1, 2, 3`)
	if err != nil {
		return err
	}
	r.Reconciliation = make([]ReconciliationRow, len(rows))
	for i, x := range rows {
		r.Reconciliation[i] = x.ReconciliationRow
		r.Unaccounted.OutputsWithoutDuration, r.Unaccounted.OutputsUnclassified = x.WithoutDuration, x.Unclassified
	}
	// Finished tasks without a captured outcome, from the rollups, over
	// the days of the outputs read (by day of creation).
	err = tx.QueryRow(ctx, `
SELECT greatest(coalesce((SELECT sum(finished) FROM rollup_daily_tasks WHERE day BETWEEN $1::date AND $2::date AND ($3 = '' OR task_type = $3)), 0)
              - coalesce((SELECT sum(tasks) FROM rollup_daily_outcomes
                           WHERE outcome IN ('succeeded', 'failed') AND day BETWEEN $1::date AND $2::date AND ($3 = '' OR task_type = $3)), 0), 0)::bigint`,
		r.OutputsSince.Format(time.DateOnly), r.OutputsUntil.Format(time.DateOnly), r.Params.TaskType).Scan(&r.Unaccounted.TasksWithoutOutcome)
	if err != nil {
		return fmt.Errorf("report usage: finished tasks without an outcome: %w", interpretError(err))
	}
	if r.Spenders, err = collect[SpenderRow](ctx, tx, "output minutes", `
WITH m AS MATERIALIZED (SELECT * FROM mps_output_minutes(`+days+`) WHERE outputs > outputs_without_duration),
ranked AS (
    SELECT 'template' AS by, coalesce(template::text, '(none)') AS value, sum(outputs - outputs_without_duration)::bigint AS outputs, sum(minutes) AS minutes FROM m GROUP BY 2
    UNION ALL
    SELECT 'bucket', coalesce(bucket, '(none)'), sum(outputs - outputs_without_duration)::bigint, sum(minutes) FROM m GROUP BY 2
    UNION ALL
    SELECT 'task_type', task_type, sum(outputs - outputs_without_duration)::bigint, sum(minutes) FROM m GROUP BY 2
)
SELECT by, value, outputs, minutes::float8 FROM (
    SELECT *, row_number() OVER (PARTITION BY by ORDER BY minutes DESC, value) AS n FROM ranked) x
 WHERE n <= 5 ORDER BY array_position(ARRAY['task_type', 'template', 'bucket'], by), minutes DESC, value`); err != nil {
		return err
	}
	return nil
}

// collect runs one section's query and reads its rows into T, column by
// column in field order.
func collect[T any](ctx context.Context, tx pgx.Tx, section, sql string, args ...any) ([]T, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", section, interpretError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[T])
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", section, interpretError(err))
	}
	return out, nil
}

// TaskTypes lists the task types the archive holds.
func (s *Store) TaskTypes(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT task_type FROM rollup_daily_tasks WHERE tasks <> 0 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list task types: %w", interpretError(err))
	}
	types, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list task types: %w", interpretError(err))
	}
	return types, nil
}

// sketchPiece is a range of duration sketches a report reads: daily ones of
// the days in [lo, hi), or (monthly) the monthly ones of the months that
// start in it, added (sign 1) or taken away (-1).
type sketchPiece struct {
	monthly bool
	lo, hi  time.Time
	sign    int
}

// monthlySketchDays is what reading a monthly sketch costs, in days of
// daily sketches: a month's merge has more buckets than a day's.
const monthlySketchDays = 3

// sketchPieces says where a report of [since, until) (whole UTC days)
// reads its duration sketches, given the fold horizon (zero: nothing
// folded). By day or week, and for months with no folded day, day by day.
// By month, a month with folded days is read, when that reads fewer rows,
// as its monthly sketch (its days before the horizon), less the daily
// sketches of its folded days outside the range, plus those of its days in
// the range from the horizon on: sketches merge by adding bucket counts,
// so taking some away is exact.
func sketchPieces(since, until, horizon time.Time, byMonth bool) []sketchPiece {
	if !byMonth || !horizon.After(since) {
		return []sketchPiece{{lo: since, hi: until, sign: 1}}
	}
	days := func(lo, hi time.Time) int {
		if !lo.Before(hi) {
			return 0
		}
		return int(hi.Sub(lo).Hours() / 24)
	}
	var out []sketchPiece
	add := func(monthly bool, lo, hi time.Time, sign int) {
		if lo.Before(hi) {
			out = append(out, sketchPiece{monthly: monthly, lo: lo, hi: hi, sign: sign})
		}
	}
	for m := time.Date(since.Year(), since.Month(), 1, 0, 0, 0, 0, time.UTC); m.Before(until); m = m.AddDate(0, 1, 0) {
		end := m.AddDate(0, 1, 0)
		lo, hi := later(m, since), earlier(end, until) // the month's days in the range
		foldEnd := earlier(end, horizon)               // its folded days: [m, foldEnd)
		viaMonth := monthlySketchDays + days(m, earlier(lo, foldEnd)) + days(hi, foldEnd) + days(later(lo, foldEnd), hi)
		if !foldEnd.After(m) || viaMonth >= days(lo, hi) {
			add(false, lo, hi, 1)
			continue
		}
		add(true, m, end, 1)
		add(false, m, earlier(lo, foldEnd), -1)
		add(false, hi, foldEnd, -1)
		add(false, later(lo, foldEnd), hi, 1)
	}
	return out
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
