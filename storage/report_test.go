package storage_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// archive is a populated database and the truth it was made from.
type archive struct {
	url             string
	st              *storage.Store
	tasks           []mps.Task
	status          map[string]mps.Status
	runs            int
	moved           string // a task seen WAITING, then FINISH
	stuck           string // a task PROCESSING for three hours
	failed, expired int64  // outcomes of the FINISH tasks
}

func populate(t *testing.T) *archive {
	t.Helper()
	url := pgtest.NewDB(t)
	a := &archive{url: url, st: open(t, url), status: map[string]mps.Status{}}
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	gen := simulator.DefaultGenConfig()
	gen.Tasks = 3000
	gen.Window = 20 * 24 * time.Hour
	gen.Vocabulary = simulator.VocabularyMixed // both SubTaskTypes vocabularies
	gen.FailureShare = 0.2
	tasks := simulator.Generate(gen, now)
	tasks = append(tasks, &simulator.Task{ID: "stuck-1", Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
		Create: now.Add(-4 * time.Hour).UnixNano(), Begin: now.Add(-3 * time.Hour).UnixNano()})
	a.stuck = "stuck-1"
	sim := simulator.New(simulator.Config{Clock: simulator.NewClock(now, 0)}, tasks)
	byStatus := map[mps.Status][]mps.Task{}
	for _, tt := range sim.Truth() {
		raw, _ := json.Marshal(tt.TaskSimpleInfo)
		task, ok := mps.DecodeTask(raw)
		if !ok {
			t.Fatalf("bad truth record %s", raw)
		}
		st := mps.Status(tt.Status)
		a.tasks = append(a.tasks, task)
		a.status[task.TaskID] = st
		byStatus[st] = append(byStatus[st], task)
	}
	write := func(st mps.Status, tasks []mps.Task) {
		run, err := a.st.StartRun(ctx, syncer.StartRunParams{Trigger: "test"})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(tasks); i += 100 {
			if _, err := a.st.WritePage(ctx, syncer.WritePageParams{RunID: run.RunID, Status: st, Tasks: tasks[i:min(i+100, len(tasks))]}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.st.FinishRun(ctx, syncer.FinishRunParams{RunID: run.RunID, Drained: mps.Statuses, APIStartedAt: now}); err != nil {
			t.Fatal(err)
		}
		a.runs++
	}
	// One finished task was first seen waiting.
	first := byStatus[mps.StatusFinish][0]
	a.moved = first.TaskID
	waiting := first
	waiting.BeginProcessTime, waiting.FinishTime = time.Time{}, time.Time{}
	waiting.Raw = []byte(`{"TaskId":"` + first.TaskID + `","early":true}`)
	write(mps.StatusWaiting, []mps.Task{waiting})
	for _, st := range mps.Statuses {
		write(st, byStatus[st])
	}
	// Outcomes of the finished tasks, from the simulator's own details:
	// one in twenty expired before capture.
	for i, task := range byStatus[mps.StatusFinish] {
		r := details.Record{TaskID: task.TaskID, Expired: i%20 == 19}
		if !r.Expired {
			raw, _ := json.Marshal(sim.Detail(task.TaskID))
			r = details.Capture(&mps.TaskDetail{TaskID: task.TaskID, Raw: raw}, 1<<20)
			if r.Outcome.Result == mps.OutcomeFailed {
				a.failed++
			}
		} else {
			a.expired++
		}
		if _, err := a.st.CompleteDetail(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestViewsAgainstTheTruth(t *testing.T) {
	t.Parallel()
	a := populate(t)
	type key struct{ day, typ, status string }
	want := map[key]int64{}
	subs := map[string]int64{}
	kinds := map[string]int64{}
	unfinished := 0
	for _, task := range a.tasks {
		want[key{task.CreateTime.Format(time.DateOnly), task.TaskType, string(a.status[task.TaskID])}]++
		for _, s := range task.SubTaskTypes {
			subs[s+"/"+task.TaskType]++
			kinds[mps.SubTaskKind(s)]++
		}
		if a.status[task.TaskID] != mps.StatusFinish {
			unfinished++
		}
	}
	got := map[key]int64{}
	for _, row := range pgtest.Query(t, a.url, `SELECT day::text, task_type, status, tasks FROM report_daily_counts`) {
		got[key{row[0].(string), row[1].(string), row[2].(string)}] = row[3].(int64)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("report_daily_counts:\n got  %v\n want %v", got, want)
	}

	for _, row := range pgtest.Query(t, a.url, `SELECT sub_task_type || '/' || task_type, tasks FROM report_subtask_usage`) {
		if subs[row[0].(string)] != row[1].(int64) {
			t.Errorf("report_subtask_usage %s: %v, want %d", row[0], row[1], subs[row[0].(string)])
		}
		delete(subs, row[0].(string))
	}
	if len(subs) != 0 {
		t.Errorf("report_subtask_usage misses %v", subs)
	}

	// Durations: one day and type, checked against percentiles computed here.
	day := a.tasks[len(a.tasks)/2].CreateTime.Format(time.DateOnly)
	var queue, proc []float64
	n := 0
	for _, task := range a.tasks {
		if task.CreateTime.Format(time.DateOnly) != day || task.TaskType != "WorkflowTask" {
			continue
		}
		n++
		if !task.BeginProcessTime.IsZero() {
			queue = append(queue, task.BeginProcessTime.Sub(task.CreateTime).Seconds())
		}
		if !task.FinishTime.IsZero() {
			proc = append(proc, task.FinishTime.Sub(task.BeginProcessTime).Seconds())
		}
	}
	row := pgtest.Query(t, a.url, `SELECT tasks, queue_p50_s, queue_p90_s, processing_p50_s, processing_p99_s FROM report_daily_durations WHERE day = $1::date AND task_type = 'WorkflowTask'`, day)[0]
	// The view reads a sketch: each percentile is within 2% of the order
	// statistic at rank floor(q*(n-1)).
	if row[0].(int64) != int64(n) || !sketchNear(row[1], queue, 0.5) || !sketchNear(row[2], queue, 0.9) ||
		!sketchNear(row[3], proc, 0.5) || !sketchNear(row[4], proc, 0.99) {
		t.Errorf("report_daily_durations %s: %v; want n=%d q50=%.1f q90=%.1f p50=%.1f p99=%.1f (each within 2%%)", day, row, n,
			rankValue(queue, 0.5), rankValue(queue, 0.9), rankValue(proc, 0.5), rankValue(proc, 0.99))
	}

	if got := pgtest.Scalar[int64](t, a.url, `SELECT count(*) FROM report_unfinished`); got != int64(unfinished) {
		t.Errorf("report_unfinished: %d, want %d", got, unfinished)
	}
	stuck := pgtest.Query(t, a.url, `SELECT task_id, round(processing_s / 3600) FROM report_stuck_processing(interval '2 hours')`)
	if fmt.Sprint(stuck) != "[[stuck-1 3]]" {
		t.Errorf("report_stuck_processing: %v", stuck)
	}
	health := pgtest.Query(t, a.url, `SELECT runs, succeeded, failed FROM report_sync_health`)
	if fmt.Sprint(health) != fmt.Sprintf("[[%d %d 0]]", a.runs, a.runs) {
		t.Errorf("report_sync_health: %v", health)
	}
	audit := pgtest.Query(t, a.url, `SELECT coalesce(from_status, '-'), to_status FROM report_task_audit WHERE task_id = $1 ORDER BY observed_at, to_status DESC`, a.moved)
	if fmt.Sprint(audit) != "[[- WAITING] [WAITING FINISH]]" {
		t.Errorf("report_task_audit: %v", audit)
	}

	// The Go report over the same archive.
	rep, err := a.st.Report(context.Background(), storage.ReportParams{Since: time.Now().AddDate(0, 0, -30), Until: time.Now().Add(time.Hour), By: "week"})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Total != int64(len(a.tasks)) || rep.ByStatus["FINISH"] == 0 || len(rep.Stuck) != 1 || len(rep.Subtasks) == 0 || rep.Runs.Succeeded != int64(a.runs) {
		t.Errorf("report: total %d of %d, %+v", rep.Total, len(a.tasks), rep.Runs)
	}
	// Both vocabularies count as the same kinds.
	gotKinds := map[string]int64{}
	for _, k := range rep.Subtasks {
		gotKinds[k.SubTaskType] = k.Tasks
	}
	if fmt.Sprint(gotKinds) != fmt.Sprint(kinds) || gotKinds["Transcode"] == 0 {
		t.Errorf("report subtask kinds:\n got  %v\n want %v", gotKinds, kinds)
	}
	overall := 0
	for _, d := range rep.Durations {
		if d.TaskType == "*" {
			overall++
		}
	}
	if overall == 0 || overall > 5 {
		t.Errorf("report: %d all-type duration rows over 30 days by week", overall)
	}
}

// TestDocumentedQueries runs every query of docs/reporting.md.
func TestDocumentedQueries(t *testing.T) {
	t.Parallel()
	a := populate(t)
	doc, err := os.ReadFile("../docs/reporting.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	queries := map[string]string{}
	for _, b := range blocks {
		name := strings.TrimPrefix(strings.SplitN(b[1], ":", 2)[0], "-- ")
		queries[name] = strings.ReplaceAll(b[1], ":'task_id'", "'"+a.moved+"'")
	}
	if len(queries) != 15 {
		t.Fatalf("%d documented queries, want 15", len(queries))
	}
	n := int64(len(a.tasks))
	checks := map[string]func([][]any) error{
		"q1": func(rows [][]any) error { return sumCol(rows, 2, n) },
		"q2": func(rows [][]any) error {
			if len(rows) != 10 {
				return fmt.Errorf("%d rows", len(rows))
			}
			return nil
		},
		"q3": func(rows [][]any) error {
			if len(rows) < 2 || rows[0][2] != nil || rows[1][2] == nil {
				return fmt.Errorf("weeks %v", rows)
			}
			return nil
		},
		"q4": func(rows [][]any) error { return sumCol(rows, 2, n) },
		"q5": func(rows [][]any) error {
			if len(rows) != 1 || rows[0][0] != a.stuck {
				return fmt.Errorf("%v", rows)
			}
			return nil
		},
		"q6": func(rows [][]any) error { return sumCol(rows, 1, n) },
		"q7": func(rows [][]any) error {
			if len(rows) != 2 || rows[1][1] != "WAITING" || rows[1][2] != "FINISH" {
				return fmt.Errorf("%v", rows)
			}
			return nil
		},
		"q8": func(rows [][]any) error {
			if len(rows) < 7 {
				return fmt.Errorf("%d rows", len(rows))
			}
			return nil
		},
		"q9": func(rows [][]any) error {
			if len(rows) < 2 {
				return fmt.Errorf("%v", rows)
			}
			for _, r := range rows {
				if r[0] == "Transcode" {
					return errors.New("Transcode listed")
				}
			}
			return nil
		},
		"q11": func(rows [][]any) error {
			var failed, decided float64
			for _, r := range rows {
				failed += toFloat(r[1])
				decided += toFloat(r[2])
			}
			if len(rows) < 2 || failed == 0 || decided == 0 {
				return fmt.Errorf("%v", rows)
			}
			return nil
		},
		"q12": func(rows [][]any) error {
			if int64(len(rows)) != a.expired {
				return fmt.Errorf("%d expired tasks listed, %d expired", len(rows), a.expired)
			}
			return nil
		},
		"q14": func(rows [][]any) error {
			var minutes float64
			for _, r := range rows {
				minutes += toFloat(r[3])
			}
			want := pgtest.Scalar[float64](t, a.url, `SELECT coalesce(sum(duration_s) / 60, 0) FROM task_outputs WHERE kind IN ('Transcode', 'EditMedia')`)
			if len(rows) == 0 || math.Abs(minutes-want) > 0.05*float64(len(rows)) {
				return fmt.Errorf("%d rows, %.1f minutes, want %.1f", len(rows), minutes, want)
			}
			return nil
		},
		"q15": func(rows [][]any) error {
			var seconds float64
			for _, r := range rows {
				seconds += toFloat(r[4])
				if st := r[8].(string); st != "agrees" && st != "differs" && st != "billed_only" && st != "archived_only" {
					return fmt.Errorf("status %q", st)
				}
			}
			want := pgtest.Scalar[float64](t, a.url, `SELECT coalesce(sum(seconds), 0) FROM mps_output_minutes(current_date - 7, current_date) WHERE codec IS NOT NULL AND tier IS NOT NULL`)
			if math.Abs(seconds-want) > 0.01*float64(len(rows)+1) {
				return fmt.Errorf("%d rows account for %.1f s, the outputs for %.1f", len(rows), seconds, want)
			}
			return nil
		},
		"q13": func(rows [][]any) error {
			var n float64
			for _, r := range rows {
				n += toFloat(r[2])
			}
			if int64(n) != a.failed {
				return fmt.Errorf("%v failed tasks by error code, %d failed", n, a.failed)
			}
			return nil
		},
		"q10": func(rows [][]any) error {
			if toFloat(rows[0][0]) != float64(a.runs) || toFloat(rows[0][1]) != 0 || toFloat(rows[0][3]) != 0 {
				return fmt.Errorf("%v", rows)
			}
			return nil
		},
	}
	for name, q := range queries {
		check, ok := checks[name]
		if !ok {
			t.Errorf("no check for documented query %s", name)
			continue
		}
		if err := check(pgtest.Query(t, a.url, q)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestViewsSurviveSchemaChanges: adding a column under the views is safe;
// changing a viewed column's type fails, and works when the migration drops
// and recreates the views around it.
func TestViewsSurviveSchemaChanges(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	pgtest.Exec(t, url, `ALTER TABLE tasks ADD COLUMN operator_note text`)
	pgtest.Exec(t, url, `SELECT count(*) FROM report_daily_counts, report_unfinished, report_task_audit`)

	conn := pgtest.Conn(t, url)
	_, err := conn.Exec(context.Background(), `ALTER TABLE tasks ALTER COLUMN task_type TYPE varchar(200)`)
	if err == nil || !strings.Contains(err.Error(), "used by a view") {
		t.Fatalf("changing a viewed column's type: %v", err)
	}
	// Every migration that defines views, dropped newest first and made
	// again oldest first, around the change.
	viewMigrations := []string{"000006_reporting_views", "000008_subtask_kinds", "000010_outcome_views", "000011_incremental_runs"}
	var down, up strings.Builder
	for i := range viewMigrations {
		d, err := migrations.FS.ReadFile(viewMigrations[len(viewMigrations)-1-i] + ".down.sql")
		if err != nil {
			t.Fatal(err)
		}
		u, err := migrations.FS.ReadFile(viewMigrations[i] + ".up.sql")
		if err != nil {
			t.Fatal(err)
		}
		down.Write(d)
		up.Write(u)
	}
	pgtest.Exec(t, url, "BEGIN;\n"+down.String()+"\nALTER TABLE tasks ALTER COLUMN task_type TYPE varchar(200);\n"+up.String()+"\nCOMMIT;")
	pgtest.Exec(t, url, `SELECT count(*) FROM report_daily_counts, report_subtask_usage, report_sync_health, report_daily_outcomes, report_error_codes`)
}

func sumCol(rows [][]any, col int, want int64) error {
	var sum float64
	for _, r := range rows {
		sum += toFloat(r[col])
	}
	if int64(sum) != want {
		return fmt.Errorf("sum of column %d is %v, want %d", col, sum, want)
	}
	return nil
}

// toFloat reads the numbers pgx returns: integers, floats and numerics.
func toFloat(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case int32:
		return float64(v)
	case float64:
		return v
	case interface{ Float64Value() (pgtype.Float8, error) }:
		f, _ := v.Float64Value()
		return f.Float64
	}
	return math.NaN()
}

// rankValue is the order statistic at rank floor(q*(n-1)): what a DDSketch
// quantile approximates.
func rankValue(xs []float64, q float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(math.Floor(q*float64(len(s)-1)))]
}

// sketchNear says v is within the sketch's relative error (2%) of the
// rank-q value of xs; values within 1 ms of zero count as zero.
func sketchNear(v any, xs []float64, q float64) bool {
	f, ok := v.(float64)
	want := rankValue(xs, q)
	return ok && math.Abs(f-want) <= 0.02*math.Abs(want)+0.001
}
