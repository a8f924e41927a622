package main

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

func ptr[T any](v T) *T { return &v }

// Data sources are template variables, so the JSON imports into any
// Grafana: the importer picks theirs from a list.
var (
	promDS    = common.DataSourceRef{Type: ptr("prometheus"), Uid: ptr("${datasource}")}
	archiveDS = common.DataSourceRef{Type: ptr(postgresType), Uid: ptr("${archive}")}
)

const (
	hour = 3600.0
	// The PrometheusRule's thresholds, drawn where they apply.
	headroomCritical = 24 * hour
	headroomLow      = 72 * hour
	detailLow        = 12 * hour
)

func prom(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend).Datasource(promDS)
}

// quantile is the q-quantile of a histogram over $__rate_interval, by the
// labels in by ("" for none) as well as le.
func quantile(q, histogram, by, legend string) *prometheus.DataqueryBuilder {
	if by != "" {
		by = ", " + by
	}
	return prom("histogram_quantile("+q+", sum by (le"+by+") (rate("+histogram+"_bucket[$__rate_interval])))", legend)
}

// dailyPercentiles is a series per task type and percentile (p50, p90) of
// one of report_daily_durations' measures ("queue", "processing"), read in
// one pass: the view computes a measure's percentiles only when asked for.
func dailyPercentiles(measure string) *sqlBuilder {
	return sql("A", `SELECT day::timestamptz AS time, task_type || ' ' || p.name AS metric, p.value
  FROM report_daily_durations
 CROSS JOIN LATERAL (VALUES ('p50', `+measure+`_p50_s), ('p90', `+measure+`_p90_s)) AS p(name, value)
 WHERE $__timeFilter(day) AND task_type IN ($task_type) AND p.value IS NOT NULL
 ORDER BY 1, 2`)
}

// steps are thresholds from a base colour upwards.
func steps(base string, at ...any) *dashboard.ThresholdsConfigBuilder {
	s := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(at); i += 2 {
		s = append(s, dashboard.Threshold{Value: ptr(at[i].(float64)), Color: at[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(s)
}

func series(title, desc, unit string, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(desc).Unit(unit).Span(12).Height(8).
		FillOpacity(10).LineWidth(1).ShowPoints(common.VisibilityModeNever).
		Legend(common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)).
		Tooltip(common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending))
	for _, t := range targets {
		p = p.WithTarget(t)
	}
	return p
}

func bars(title, desc, unit string, targets ...cog.Builder[variants.Dataquery]) *timeseries.PanelBuilder {
	return series(title, desc, unit, targets...).DrawStyle(common.GraphDrawStyleBars).FillOpacity(80).
		Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
}

func single(title, desc, unit string, target cog.Builder[variants.Dataquery], th *dashboard.ThresholdsConfigBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(desc).Unit(unit).Span(6).Height(4).
		WithTarget(target).Thresholds(th).ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}))
}

func grid(title, desc string, target cog.Builder[variants.Dataquery]) *table.PanelBuilder {
	return table.NewPanelBuilder().Title(title).Description(desc).Span(12).Height(8).WithTarget(target).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"}))
}

// operations is the daemon's dashboard, on Prometheus.
func operations() (any, error) {
	const ri = "[$__rate_interval]"
	return dashboard.NewDashboardBuilder("mps-archiver operations").
		Uid("mps-archiver-operations").
		Description("Is the archiver keeping up with MPS? Runs, API traffic, retention headroom (the alert thresholds drawn) and outcome capture. Metrics: deploy/metrics.txt.").
		Tags([]string{"mps-archiver"}).
		Refresh("1m").
		Time("now-24h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus")).
		WithRow(dashboard.NewRowBuilder("Is it keeping up?")).
		WithPanel(single("Retention headroom", "Time until tasks start leaving the API's 7-day window unarchived: 168 h minus the age of the last successful drain (from the first run until one succeeds). Warning under 72 h, critical under 24 h.", "s",
			prom("min(mps_archiver_retention_headroom_seconds)", "headroom"),
			steps("red", headroomCritical, "orange", headroomLow, "green"))).
		WithPanel(single("Last run", "1 when the most recent run failed.", "none",
			prom("max(mps_archiver_last_run_failed)", "failed"),
			steps("green", 1.0, "red"))).
		WithPanel(single("Coverage gaps (24 h)", "Periods whose tasks left the API before any run listed them: see the coverage_gaps table.", "none",
			prom("sum(increase(mps_archiver_coverage_gaps_total[24h]))", "gaps"),
			steps("green", 1.0, "red"))).
		WithPanel(single("Detail backlog", "Tasks whose outcome is still to be read (DescribeTaskDetail).", "none",
			prom("max(mps_archiver_detail_backlog)", "queued"),
			steps("green", 10000.0, "orange"))).
		WithPanel(series("Retention headroom", "With the PrometheusRule's thresholds: warning under 72 h, critical under 24 h.", "s",
			prom("min(mps_archiver_retention_headroom_seconds)", "headroom")).
			Thresholds(steps("red", headroomCritical, "orange", headroomLow, "transparent")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea))).
		WithPanel(bars("Runs", "Sync runs by result; skipped runs are ticks whose previous run was still going (busy), another replica's (locked) or a schema this binary does not know (schema).", "none",
			prom("sum by (result) (increase(mps_archiver_sync_runs_total"+ri+"))", "{{result}}"),
			prom("sum by (reason) (increase(mps_archiver_runs_skipped_total"+ri+"))", "skipped: {{reason}}"))).
		WithPanel(series("Run duration", "Quantiles of the runs that were not skipped.", "s",
			quantile("0.5", "mps_archiver_sync_run_duration_seconds", "", "p50"),
			quantile("0.95", "mps_archiver_sync_run_duration_seconds", "", "p95"))).
		WithPanel(bars("Runs by kind", "Full runs drain the whole window; incremental ones list what can have changed since the last success.", "none",
			prom("sum by (kind, result) (increase(mps_archiver_runs_by_kind_total"+ri+"))", "{{kind}} {{result}}"))).
		WithPanel(bars("Requests by run kind", "API calls made by runs: what a run costs of the account's quota.", "none",
			prom("sum by (kind, action) (increase(mps_archiver_run_requests_total"+ri+"))", "{{kind}} {{action}}"))).
		WithRow(dashboard.NewRowBuilder("API")).
		WithPanel(series("Pages and tasks", "DescribeTasks pages drained per status, and what each task did to the archive.", "ops",
			prom("sum by (status) (rate(mps_archiver_pages_total"+ri+"))", "pages {{status}}"),
			prom("sum by (outcome) (rate(mps_archiver_tasks_total"+ri+"))", "tasks {{outcome}}"))).
		WithPanel(series("API requests by code", "DescribeTasks attempts by status and error code (OK for success), and DescribeTaskDetail attempts by code.", "reqps",
			prom("sum by (status, code) (rate(mps_archiver_api_requests_total"+ri+"))", "{{status}} {{code}}"),
			prom("sum by (code) (rate(mps_archiver_api_detail_requests_total"+ri+"))", "detail {{code}}"))).
		WithPanel(series("API latency", "DescribeTasks attempt latency by status.", "s",
			quantile("0.5", "mps_archiver_api_request_duration_seconds", "status", "p50 {{status}}"),
			quantile("0.99", "mps_archiver_api_request_duration_seconds", "status", "p99 {{status}}"))).
		WithPanel(series("Retries and rate limiter", "Failed attempts that were retried, and the time spent waiting for the client-side rate limiter (MPS_RATE_LIMIT).", "short",
			prom("sum by (action, code) (rate(mps_archiver_api_retries_total"+ri+"))", "retry {{action}} {{code}}"),
			prom("sum(rate(mps_archiver_rate_limiter_wait_seconds_total"+ri+"))", "limiter wait (s/s)"),
			prom("sum(rate(mps_archiver_rate_limiter_waits_total"+ri+"))", "limiter waits/s"))).
		WithPanel(bars("Paging events", "What runs observed of the API's paging: rejected tokens (cursor restarts), skipped tokens recovered or lost, echoed tokens, records outside a requested range.", "none",
			prom("sum by (event) (increase(mps_archiver_drain_events_total"+ri+"))", "{{event}}"))).
		WithPanel(series("Time filters", "1 when DescribeTasks honours the filter, 0 when it rejects or ignores it (runs are then full).", "none",
			prom("max by (filter) (mps_archiver_api_filter_supported)", "{{filter}}"))).
		WithRow(dashboard.NewRowBuilder("Outcomes")).
		WithPanel(bars("Outcomes captured", "Task details stored, by outcome; expired ones were gone from the API before capture.", "none",
			prom("sum by (outcome) (increase(mps_archiver_details_total"+ri+"))", "{{outcome}}"))).
		WithPanel(series("Detail deadline headroom", "Time until the oldest queued detail reaches details.retention; the alert fires under 12 h.", "s",
			prom("min(mps_archiver_detail_deadline_headroom_seconds)", "headroom")).
			Thresholds(steps("red", detailLow, "transparent")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea))).
		WithPanel(series("Detail backlog and failures", "Queued details, details given up after every attempt, and retried reads.", "short",
			prom("max(mps_archiver_detail_backlog)", "queued"),
			prom("max(mps_archiver_detail_gave_up)", "gave up"),
			prom("sum(rate(mps_archiver_detail_retries_total"+ri+"))", "retries/s"))).
		WithPanel(grid("Builds", "Which versions are running.",
			prom("max by (version, go_version) (mps_archiver_build_info)", "{{version}}").Instant().Format(prometheus.PromQueryFormatTable))).
		Build()
}

// archive is the analysts' dashboard over the archive's reporting views,
// on PostgreSQL. Every query is bounded by the dashboard's time range.
func archive() (any, error) {
	taskTypes := dashboard.NewQueryVariableBuilder("task_type").Label("Task type").
		Datasource(archiveDS).
		Query(dashboard.StringOrMap{String: ptr("SELECT DISTINCT task_type FROM report_daily_counts ORDER BY 1")}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Multi(true).IncludeAll(true).
		Current(dashboard.VariableOption{Text: dashboard.StringOrArrayOfString{String: ptr("All")}, Value: dashboard.StringOrArrayOfString{String: ptr("$__all")}})
	return dashboard.NewDashboardBuilder("MPS task archive").
		Uid("mps-task-archive").
		Description("Long-term history of Tencent Cloud MPS tasks from mps-archiver's PostgreSQL archive: volume, queue and processing times, sub-tasks, outcomes, unfinished tasks and sync health. Queries: docs/reporting.md.").
		Tags([]string{"mps-archiver"}).
		Time("now-30d", "now").
		Timezone(common.TimeZoneUtc).
		WithVariable(dashboard.NewDatasourceVariableBuilder("archive").Label("Archive (PostgreSQL)").Type(postgresType)).
		WithVariable(taskTypes).
		WithRow(dashboard.NewRowBuilder("Volume")).
		WithPanel(bars("Tasks created per day", "By task type.", "none",
			sql("A", `SELECT day::timestamptz AS time, task_type AS metric, sum(tasks) AS tasks
  FROM report_daily_counts
 WHERE $__timeFilter(day) AND task_type IN ($task_type)
 GROUP BY 1, 2 ORDER BY 1`))).
		WithPanel(bars("Tasks by status", "Status as last seen by the archive, by day of creation.", "none",
			sql("A", `SELECT day::timestamptz AS time, status AS metric, sum(tasks) AS tasks
  FROM report_daily_counts
 WHERE $__timeFilter(day) AND task_type IN ($task_type)
 GROUP BY 1, 2 ORDER BY 1`))).
		WithPanel(grid("Sub-task usage", "Tasks using each sub-task kind (both SubTaskTypes vocabularies mapped by mps_subtask_kind), created in the time range.",
			sql("A", `SELECT mps_subtask_kind(sub_task_type) AS kind, task_type, sum(tasks) AS tasks
  FROM rollup_daily_subtasks
 WHERE $__timeFilter(day) AND task_type IN ($task_type)
 GROUP BY 1, 2 HAVING sum(tasks) <> 0 ORDER BY 3 DESC`).table())).
		WithPanel(grid("Volume by type", "Tasks created in the time range, finished and still in flight.",
			sql("A", `SELECT task_type, sum(tasks) AS tasks, sum(started) AS started, sum(finished) AS finished
  FROM report_daily_durations
 WHERE $__timeFilter(day) AND task_type IN ($task_type)
 GROUP BY 1 ORDER BY 2 DESC`).table())).
		WithRow(dashboard.NewRowBuilder("Queue and processing")).
		WithPanel(series("Queue wait (WAITING → PROCESSING)", "Daily percentiles by task type.", "s",
			dailyPercentiles("queue"))).
		WithPanel(series("Processing time (PROCESSING → FINISH)", "Daily percentiles by task type.", "s",
			dailyPercentiles("processing"))).
		WithRow(dashboard.NewRowBuilder("Outcomes")).
		WithPanel(series("Failure rate", "Failed / (succeeded + failed) of finished tasks whose outcome was captured, by day of creation.", "percentunit",
			sql("A", `SELECT day::timestamptz AS time, task_type AS metric, failure_rate::float8 AS failure_rate
  FROM report_daily_outcomes
 WHERE $__timeFilter(day) AND task_type IN ($task_type) AND failure_rate IS NOT NULL
 ORDER BY 1`))).
		WithPanel(bars("Outcomes per day", "Finished tasks by outcome; unknown: not captured yet (or details.mode none).", "none",
			sql("A", `SELECT day::timestamptz AS time, sum(succeeded) AS succeeded, sum(failed) AS failed, sum(expired) AS expired, sum(unknown) AS unknown
  FROM report_daily_outcomes
 WHERE $__timeFilter(day) AND task_type IN ($task_type)
 GROUP BY 1 ORDER BY 1`))).
		WithPanel(grid("Top error codes", "Failed tasks created in the time range, by first error code (ErrCodeExt where the API gives it).",
			sql("A", `SELECT error_code, task_type, sum(tasks) AS tasks,
       min(first_created) AS first_created, max(last_created) AS last_created
  FROM rollup_daily_error_codes
 WHERE $__timeFilter(day) AND task_type IN ($task_type) AND tasks <> 0
 GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 20`).table())).
		WithPanel(grid("Sub-task outcomes", "Sub-tasks of captured details, by kind, of tasks created in the time range.",
			sql("A", `SELECT kind, sum(subtasks) AS subtasks, sum(failed) AS failed
  FROM rollup_daily_subtask_outcomes
 WHERE $__timeFilter(day) AND task_type IN ($task_type)
 GROUP BY 1 HAVING sum(subtasks) <> 0 ORDER BY 2 DESC`).table())).
		WithRow(dashboard.NewRowBuilder("Usage and cost")).
		WithPanel(series("Billed against archived transcoding", "Per Beijing day: the transcoding seconds MPS billed (usage_daily, every region) and the seconds the archived outputs with a duration account for. A gap is billed time the archive cannot see: adaptive streaming, outcomes not captured (docs/reporting.md). The functions read only the days in range.", "s",
			sql("A", `SELECT r.day::timestamp AT TIME ZONE 'Asia/Shanghai' AS time, sum(r.billed_s)::float8 AS billed, sum(r.accounted_s)::float8 AS archived
  FROM (SELECT min(d)::date - 1 AS lo, max(d)::date AS hi
          FROM generate_series(timestamptz '2019-01-01', now() + interval '1 day', interval '1 day') AS d
         WHERE $__timeFilter(d)) AS b
  CROSS JOIN LATERAL mps_usage_reconciliation(b.lo, b.hi) AS r
 WHERE r.codec IS NOT NULL
 GROUP BY 1 ORDER BY 1`))).
		WithRow(dashboard.NewRowBuilder("Unfinished and sync health")).
		WithPanel(grid("Unfinished tasks", "Tasks not FINISH as last seen, longest in their state first; gone_at: the task left the API's window unfinished.",
			sql("A", `SELECT task_id, task_type, status, create_time, round(in_state_s) AS in_state_s, gone_at
  FROM report_unfinished
 WHERE $__timeFilter(create_time) AND task_type IN ($task_type)
 ORDER BY in_state_s DESC LIMIT 100`).table())).
		WithPanel(grid("Stuck in PROCESSING (over 1 h)", "report_stuck_processing('1 hour').",
			sql("A", `SELECT task_id, task_type, begin_process_time, round(processing_s) AS processing_s
  FROM report_stuck_processing('1 hour')
 WHERE $__timeFilter(begin_process_time) AND task_type IN ($task_type)
 LIMIT 100`).table())).
		WithPanel(bars("Sync runs per day", "Runs by result and coverage gaps found (report_sync_health).", "none",
			sql("A", `SELECT day::timestamptz AS time, sum(succeeded) AS succeeded, sum(failed) AS failed, sum(gaps_found) AS gaps_found
  FROM report_sync_health
 WHERE $__timeFilter(day)
 GROUP BY 1 ORDER BY 1`))).
		WithPanel(grid("Detail capture", "Outcomes still queued for tasks created in the time range, overdue (past details.retention) and given up.",
			sql("A", `SELECT count(*) AS queued,
       count(*) FILTER (WHERE q.deadline < now()) AS overdue,
       count(*) FILTER (WHERE q.attempts >= 5) AS gave_up
  FROM task_detail_queue q
 WHERE $__timeFilter(q.create_time)`).table())).
		Build()
}
