package storage_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

func assertRollupsEqualRaw(t *testing.T, st *storage.Store, step string) {
	t.Helper()
	diffs, err := st.CheckRollups(context.Background())
	if err != nil {
		t.Fatalf("%s: check rollups: %v", step, err)
	}
	for _, d := range diffs {
		t.Errorf("%s: %s", step, d)
	}
}

// TestRollupsFollowEveryWrite writes through every path that changes what
// the rollups count (new tasks, moves, re-listing, outcomes, replaced
// outcomes, requeues, a task whose create time changes, deletions) and
// checks the rollups against the raw rows after each.
func TestRollupsFollowEveryWrite(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	now := time.Now().UTC().Truncate(time.Second)
	// 10:00 UTC of the day before yesterday or so: a, b and e created an
	// hour apart on one UTC day whatever the time the test runs (from
	// 05:00 to 06:00 UTC, now - 30 h plus an hour crossed midnight).
	day := now.Add(-30 * time.Hour).Truncate(24 * time.Hour).Add(10 * time.Hour)
	mk := func(id string, created time.Time, begin, finish time.Duration, sub ...string) mps.Task {
		tk := task(id, created, sub...)
		if begin > 0 {
			tk.BeginProcessTime = created.Add(begin)
		}
		if finish > 0 {
			tk.FinishTime = created.Add(begin + finish)
		}
		return tk
	}
	write := func(status mps.Status, tasks ...mps.Task) {
		t.Helper()
		if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: status, Tasks: tasks,
			EnqueueDetails: "finished", DetailRetention: 72 * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	write(mps.StatusWaiting, mk("a", day, 0, 0, "action-trans"), mk("b", day.Add(time.Hour), 0, 0, "action-trans", "action-AIReview"),
		mk("c", day.Add(-24*time.Hour), 0, 0))
	assertRollupsEqualRaw(t, st, "first page")
	write(mps.StatusProcessing, mk("a", day, 90*time.Second, 0, "action-trans"), mk("d", day, 3*time.Second, 0))
	assertRollupsEqualRaw(t, st, "moved to PROCESSING")
	write(mps.StatusFinish, mk("a", day, 90*time.Second, 10*time.Minute, "action-trans"), mk("b", day.Add(time.Hour), 0, 0, "action-trans", "action-AIReview"),
		mk("e", day, 0, 0), mk("f", time.Time{}, 0, 0, "action-trans"))
	assertRollupsEqualRaw(t, st, "moved to FINISH, a task without a create time")
	// A WAITING listing of a task already FINISH changes nothing; the same
	// page again changes nothing either.
	write(mps.StatusWaiting, mk("a", day, 0, 0, "action-trans"))
	write(mps.StatusFinish, mk("a", day, 90*time.Second, 10*time.Minute, "action-trans"))
	assertRollupsEqualRaw(t, st, "re-listed")
	if n := pgtest.Scalar[int64](t, url, `SELECT tasks FROM report_daily_counts WHERE status = 'FINISH' AND day = $1::date`, day.Format(time.DateOnly)); n != 3 {
		t.Errorf("FINISH on %s: %d, want 3 (a, b, e)", day.Format(time.DateOnly), n)
	}

	failed := mps.Outcome{Result: mps.OutcomeFailed, ErrCode: "30010", ErrCodeExt: "SourceFileError", Subtasks: []mps.SubtaskResult{
		{Ordinal: 0, Kind: "Transcode", Status: "FAIL", ErrCode: "30010", Failed: true},
		{Ordinal: 1, Kind: "AiContentReview", Status: "SUCCESS", ErrCode: "0"}}}
	complete := func(r details.Record) {
		t.Helper()
		if _, err := st.CompleteDetail(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	complete(details.Record{TaskID: "a", Outcome: failed, Raw: []byte(`{}`)})
	complete(details.Record{TaskID: "b", Outcome: mps.Outcome{Result: mps.OutcomeUndecided, Subtasks: []mps.SubtaskResult{{Kind: "Transcode", Status: "PROCESSING"}}}, Raw: []byte(`{}`)})
	complete(details.Record{TaskID: "e", Expired: true, GaveUpAfter: "InternalError"})
	complete(details.Record{TaskID: "f", Outcome: mps.Outcome{Result: mps.OutcomeSucceeded}, Raw: []byte(`{}`)})
	assertRollupsEqualRaw(t, st, "outcomes stored")
	// An undecided outcome is replaced, with its sub-tasks.
	complete(details.Record{TaskID: "b", Outcome: failed, Raw: []byte(`{}`)})
	assertRollupsEqualRaw(t, st, "undecided replaced")
	if _, _, err := st.RequeueDetails(ctx, 72*time.Hour); err != nil {
		t.Fatal(err)
	}
	assertRollupsEqualRaw(t, st, "requeued")
	got := pgtest.Query(t, url, `SELECT finished, succeeded, failed, expired, unknown FROM report_daily_outcomes WHERE day = $1::date`, day.Format(time.DateOnly))
	if fmt.Sprint(got) != "[[3 0 2 0 1]]" {
		t.Errorf("report_daily_outcomes: %v, want finished 3, failed 2, unknown 1 (e given up, requeued)", got)
	}

	// What MPS never does, and an operator might: the rollups follow a
	// type changed by hand (outcomes and sub-tasks move with the task),
	// and the create time of a task without an outcome. (A create time is
	// a task's identity, in the key of every task table: moving a task
	// with rows elsewhere is surgery followed by `rollups rebuild`.)
	pgtest.Exec(t, url, `UPDATE tasks SET task_type = 'EditMediaTask' WHERE task_id IN ('a', 'c')`)
	pgtest.Exec(t, url, `UPDATE tasks SET create_time = create_time - interval '3 days' WHERE task_id = 'c'`)
	assertRollupsEqualRaw(t, st, "type and create time changed")
	pgtest.Exec(t, url, `DELETE FROM task_subtask_results WHERE task_id = 'a' AND ordinal = 1`)
	pgtest.Exec(t, url, `DELETE FROM task_details WHERE task_id = 'f'`)
	pgtest.Exec(t, url, `DELETE FROM tasks WHERE task_id = 'c'`)
	assertRollupsEqualRaw(t, st, "rows deleted")

	// A rollup edited behind the archive's back is named by the check.
	pgtest.Exec(t, url, `UPDATE rollup_daily_tasks SET tasks = tasks + 1 WHERE status = 'FINISH' AND task_type = 'WorkflowTask'`)
	pgtest.Exec(t, url, `DELETE FROM rollup_daily_error_codes`)
	diffs, err := st.CheckRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, d := range diffs {
		lines = append(lines, d.String())
	}
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "rollup_daily_tasks day="+day.Format(time.DateOnly)+" task_type=WorkflowTask status=FINISH: tasks 3") ||
		!strings.Contains(all, "rollup_daily_error_codes") || !strings.Contains(all, "SourceFileError") {
		t.Errorf("check after tampering:\n%s", all)
	}
	if err := st.RebuildRollups(ctx, nil); err != nil {
		t.Fatal(err)
	}
	assertRollupsEqualRaw(t, st, "rebuilt")
}

// TestFoldedMonths: days before the fold horizon are read from monthly
// sketches, which follow writes to those days as the daily ones do; a
// report by month gives the same percentiles as one that reads every day.
func TestFoldedMonths(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st) // folds the days before the API's window
	now := time.Now().UTC().Truncate(time.Second)
	rng := rand.New(rand.NewPCG(3, 4))
	var waiting, finished []mps.Task
	for i := range 400 {
		created := now.Add(-time.Duration(rng.IntN(130*24)) * time.Hour)
		tk := task(fmt.Sprintf("t%03d", i), created)
		tk.TaskType = []string{"WorkflowTask", "EditMediaTask"}[i%2]
		waiting = append(waiting, tk)
		tk.BeginProcessTime = created.Add(time.Duration(1+rng.IntN(600)) * time.Second)
		tk.FinishTime = tk.BeginProcessTime.Add(time.Duration(1+rng.IntN(7200)) * time.Second)
		finished = append(finished, tk)
	}
	write := func(status mps.Status, tasks []mps.Task) {
		t.Helper()
		for i := 0; i < len(tasks); i += 100 {
			if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: status, Tasks: tasks[i:min(i+100, len(tasks))]}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(mps.StatusWaiting, waiting)
	write(mps.StatusFinish, finished[:250])
	assertRollupsEqualRaw(t, st, "written after the fold")
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM rollup_monthly_durations WHERE n <> 0`); n == 0 {
		t.Fatal("no monthly sketch follows the writes to folded days")
	}
	report := func() []storage.DurationRow {
		t.Helper()
		r, err := st.Report(ctx, storage.ReportParams{Since: now.AddDate(0, 0, -125), Until: now, By: "month"})
		if err != nil {
			t.Fatal(err)
		}
		return r.Durations
	}
	folded := report()
	// Unfolded, the same report reads every day.
	pgtest.Exec(t, url, `UPDATE rollup_fold SET horizon = '-infinity'; DELETE FROM rollup_monthly_durations`)
	assertRollupsEqualRaw(t, st, "unfolded")
	if daily := report(); !reflect.DeepEqual(folded, daily) {
		t.Errorf("report by month from monthly sketches:\n%v\nfrom daily ones:\n%v", folded, daily)
	}
	// Folding again, then moving the rest to FINISH.
	if err := st.FoldRollups(ctx); err != nil {
		t.Fatal(err)
	}
	assertRollupsEqualRaw(t, st, "folded again")
	if got := report(); !reflect.DeepEqual(folded, got) {
		t.Errorf("report by month after folding again:\n%v\nwant:\n%v", got, folded)
	}
	write(mps.StatusFinish, finished[250:])
	pgtest.Exec(t, url, `UPDATE tasks SET task_type = 'LiveProcessTask' WHERE task_id IN ('t001', 't002')`)
	pgtest.Exec(t, url, `DELETE FROM tasks WHERE task_id = 't003'`)
	assertRollupsEqualRaw(t, st, "moved, retyped and deleted after the fold")
	all := report()
	var total int64
	for _, d := range all {
		if d.TaskType == "*" {
			total += d.Tasks
		}
	}
	if total == 0 || len(all) == 0 {
		t.Fatalf("report by month: %v", all)
	}
	// A monthly sketch edited behind the archive's back is named.
	pgtest.Exec(t, url, `UPDATE rollup_monthly_durations SET n = n + 1 WHERE ctid = (SELECT min(ctid) FROM rollup_monthly_durations)`)
	diffs, err := st.CheckRollups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || diffs[0].Rollup != "rollup_monthly_durations" {
		t.Errorf("check after a monthly sketch was edited: %v", diffs)
	}
	// And the report by month reads them: without them, it differs.
	pgtest.Exec(t, url, `DELETE FROM rollup_monthly_durations`)
	if got := report(); reflect.DeepEqual(got, all) {
		t.Error("the report by month reads no monthly sketch")
	}
}

// TestFoldAgainstAnOlderSnapshot: a write in REPEATABLE READ whose snapshot
// predates a fold cannot see the new horizon, so it fails (40001, to be
// retried) instead of leaving its task out of the monthly sketches; the
// fold itself refuses any isolation but READ COMMITTED.
func TestFoldAgainstAnOlderSnapshot(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	writer := pgtest.Conn(t, url)
	if _, err := writer.Exec(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM rollup_fold`); err != nil {
		t.Fatal(err)
	}
	if err := st.FoldRollups(ctx); err != nil { // -infinity to eight days ago
		t.Fatal(err)
	}
	_, err := writer.Exec(ctx, `INSERT INTO tasks (task_id, task_type, status, create_time, begin_process_time, finish_time, raw, first_status)
VALUES ('old', 'WorkflowTask', 'FINISH', now() - interval '20 days', now() - interval '20 days' + interval '1 minute',
        now() - interval '20 days' + interval '5 minutes', '{}', 'FINISH')`)
	if pgErr := new(pgconn.PgError); !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Fatalf("write from a snapshot older than the fold: %v, want a serialization failure (40001)", err)
	}
	writer.Exec(ctx, `ROLLBACK`)
	assertRollupsEqualRaw(t, st, "after the refused write")

	if _, err := writer.Exec(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	_, err = writer.Exec(ctx, `SELECT mps_rollup_fold(current_date + 1)`)
	if err == nil || !strings.Contains(err.Error(), "READ COMMITTED") {
		t.Errorf("fold in REPEATABLE READ: %v, want a refusal naming READ COMMITTED", err)
	}
	writer.Exec(ctx, `ROLLBACK`)
}

// TestSketchPercentiles: every percentile the views and the report give is
// within 2% of the true order statistic, for one day and for months merged,
// over durations from zero to a week (and a few negative, clock skew).
func TestSketchPercentiles(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	rng := rand.New(rand.NewPCG(7, 7))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 6000
	ids, creates, begins, finishes := make([]string, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	var queueDay []float64
	dayOf := start.AddDate(0, 0, 40)
	for i := range n {
		ids[i] = fmt.Sprintf("t%05d", i)
		creates[i] = start.Add(time.Duration(rng.Int64N(int64(90 * 24 * time.Hour)))).Truncate(time.Second)
		if i%10 == 0 {
			creates[i] = dayOf.Add(time.Duration(i) * time.Second)
		}
		q := time.Duration(math.Exp(rng.Float64()*13)) * time.Second // 1 s .. 5 days
		switch i % 50 {
		case 1:
			q = 0
		case 2:
			q = -3 * time.Second
		}
		p := time.Duration(rng.Int64N(int64(7 * 24 * time.Hour))).Truncate(time.Second)
		begins[i], finishes[i] = creates[i].Add(q), creates[i].Add(q+p)
		if creates[i].Format(time.DateOnly) == dayOf.Format(time.DateOnly) {
			queueDay = append(queueDay, q.Seconds())
		}
	}
	pgtest.Exec(t, url, `
INSERT INTO tasks (task_id, task_type, status, create_time, begin_process_time, finish_time, raw, first_status)
SELECT id, 'WorkflowTask', 'FINISH', c, b, f, '{}', 'FINISH'
  FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::timestamptz[]) AS u(id, c, b, f)`, ids, creates, begins, finishes)
	assertRollupsEqualRaw(t, st, "loaded")

	for _, q := range []struct {
		col string
		q   float64
	}{{"queue_p50_s", 0.5}, {"queue_p90_s", 0.9}, {"queue_p99_s", 0.99}} {
		got := pgtest.Scalar[float64](t, url, `SELECT `+q.col+` FROM report_daily_durations WHERE day = $1::date`, dayOf.Format(time.DateOnly))
		if !sketchNear(got, queueDay, q.q) {
			t.Errorf("%s of %s: %.3f, want %.3f within 2%%", q.col, dayOf.Format(time.DateOnly), got, rankValue(queueDay, q.q))
		}
	}
	rep, err := st.Report(context.Background(), storage.ReportParams{Since: start, Until: start.AddDate(0, 6, 0), By: "month"})
	if err != nil {
		t.Fatal(err)
	}
	// A month's 28 daily sketches merged, every type together.
	var month storage.DurationRow
	for _, d := range rep.Durations {
		if d.TaskType == "*" && d.Period.Equal(start.AddDate(0, 1, 0)) {
			month = d
		}
	}
	var feb []float64
	var febProc []float64
	for i := range n {
		if creates[i].Month() == time.February {
			feb = append(feb, begins[i].Sub(creates[i]).Seconds())
			febProc = append(febProc, finishes[i].Sub(begins[i]).Seconds())
		}
	}
	if month.Tasks != int64(len(feb)) {
		t.Fatalf("February: %d tasks in the report, %d created", month.Tasks, len(feb))
	}
	for _, c := range []struct {
		name string
		got  *float64
		xs   []float64
		q    float64
	}{{"queue p50", month.QueueP50, feb, 0.5}, {"queue p99", month.QueueP99, feb, 0.99},
		{"processing p50", month.ProcessP50, febProc, 0.5}, {"processing p90", month.ProcessP90, febProc, 0.9}} {
		if c.got == nil || !sketchNear(*c.got, c.xs, c.q) {
			t.Errorf("February %s: %v, want %.3f within 2%%", c.name, c.got, rankValue(c.xs, c.q))
		}
	}
}

// TestUpgradeBuildsRollups: an archive written before the rollups existed
// reads the same through the views after the migration, which built its
// rollups a month at a time and said so.
func TestUpgradeBuildsRollups(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	st := open(t, url)
	ctx := context.Background()
	mg, err := st.NewMigrator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	if err := mg.To(14); err != nil {
		t.Fatal(err)
	}
	// 20,000 tasks over 17 months: every status, some without a create
	// time, outcomes of every kind, sub-task results.
	pgtest.Exec(t, url, `
INSERT INTO tasks (task_id, task_type, sub_task_types, status, create_time, begin_process_time, finish_time, raw, first_status)
SELECT 't' || i, (ARRAY['WorkflowTask', 'EditMediaTask', 'ScheduleTask'])[1 + i % 3],
       CASE i % 3 * (i % 2) WHEN 0 THEN ARRAY[]::text[] WHEN 1 THEN ARRAY['action-trans'] ELSE ARRAY['action-trans', 'action-AIReview'] END,
       CASE i % 10 WHEN 0 THEN 'WAITING' WHEN 1 THEN 'PROCESSING' ELSE 'FINISH' END,
       c, CASE WHEN i % 10 > 0 THEN c + make_interval(secs => i * 7 % 600) END,
       CASE WHEN i % 10 > 1 THEN c + make_interval(secs => i * 7 % 600 + i * 13 % 5000) END,
       '{}', 'WAITING'
  FROM generate_series(1, 20000) AS i,
       LATERAL (SELECT CASE WHEN i % 997 = 0 THEN NULL ELSE timestamptz '2025-01-01 00:00Z' + i * interval '37 minutes' END AS c) AS x`)
	// One task of 1970 (a clock reset somewhere): one month more, not 676.
	pgtest.Exec(t, url, `
INSERT INTO tasks (task_id, task_type, status, create_time, raw, first_status)
VALUES ('t0', 'WorkflowTask', 'FINISH', '1970-01-05 00:00Z', '{}', 'FINISH')`)
	pgtest.Exec(t, url, `
INSERT INTO task_details (task_id, outcome, err_code, err_code_ext)
SELECT task_id, CASE n % 7 WHEN 0 THEN 'failed' WHEN 1 THEN 'expired' WHEN 2 THEN 'undecided' ELSE 'succeeded' END,
       CASE WHEN n % 7 = 0 THEN (ARRAY['30010', '40000', '70000'])[1 + n % 3] END,
       CASE WHEN n % 7 = 0 AND n % 2 = 0 THEN 'SourceFileError' END
  FROM (SELECT task_id, substr(task_id, 2)::int AS n FROM tasks WHERE status = 'FINISH') t WHERE n % 5 <> 0`)
	pgtest.Exec(t, url, `
INSERT INTO task_subtask_results (task_id, ordinal, kind, status, err_code)
SELECT d.task_id, o, (ARRAY['Transcode', 'AiContentReview'])[1 + o], CASE WHEN d.outcome = 'failed' AND o = 0 THEN 'FAIL' ELSE 'SUCCESS' END,
       CASE WHEN d.outcome = 'failed' AND o = 0 THEN '30010' ELSE '0' END
  FROM task_details d, generate_series(0, 1) AS o
 WHERE substr(d.task_id, 2)::int % 2 = 0`)
	views := map[string]string{
		"report_daily_counts":     `SELECT * FROM report_daily_counts ORDER BY 1, 2, 3`,
		"report_daily_durations":  `SELECT day, task_type, tasks, started, finished FROM report_daily_durations ORDER BY 1, 2`,
		"report_subtask_usage":    `SELECT * FROM report_subtask_usage ORDER BY 1, 2`,
		"report_daily_outcomes":   `SELECT * FROM report_daily_outcomes ORDER BY 1, 2`,
		"report_error_codes":      `SELECT * FROM report_error_codes ORDER BY 1, 2`,
		"report_subtask_outcomes": `SELECT * FROM report_subtask_outcomes ORDER BY 1`,
		"report_detail_backlog":   `SELECT * FROM report_detail_backlog`,
	}
	before := map[string]string{}
	for name, q := range views {
		before[name] = fmt.Sprint(pgtest.Query(t, url, q))
	}
	var progress []string
	mg.Progress = func(msg string) {
		if strings.HasPrefix(msg, "rollups: ") {
			progress = append(progress, msg)
		}
	}
	if err := mg.Up(); err != nil {
		t.Fatal(err)
	}
	if len(progress) != 18 || progress[0] != "rollups: built 1970-01 (1 of 18 months)" || progress[17] != "rollups: built 2026-05 (18 of 18 months)" {
		t.Errorf("progress notices: %q", progress)
	}
	// Partitions for the months that hold tasks, the months around now,
	// and the DEFAULT one: not every month since 1970.
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM pg_partition_tree('tasks') WHERE isleaf`); n > 18+5+1 {
		t.Errorf("%d partitions of tasks", n)
	}
	assertRollupsEqualRaw(t, st, "after the upgrade")
	for name, q := range views {
		if after := fmt.Sprint(pgtest.Query(t, url, q)); after != before[name] {
			t.Errorf("%s differs after the upgrade:\n before %.600s\n after  %.600s", name, before[name], after)
		}
	}
	if !slices.Contains(progress, "rollups: built 2025-06 (7 of 18 months)") {
		t.Errorf("no notice for June 2025: %q", progress)
	}
}
