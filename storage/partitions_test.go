package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestOneRowPerTask: a task is (task_id, create_time), yet the same TaskId
// read with another create time — none readable first and one later, or
// the API writing it with a fraction once — stays one row, keeps its
// outcome, and the rollups count it once.
func TestOneRowPerTask(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	at := time.Now().UTC().Add(-5 * time.Hour).Truncate(time.Second)
	write := func(status mps.Status, tasks ...mps.Task) {
		t.Helper()
		if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: status, Tasks: tasks,
			EnqueueDetails: "listed", DetailRetention: 72 * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	undated := task("undated", time.Time{})
	frac := task("frac", at.Add(500*time.Millisecond))
	write(mps.StatusProcessing, undated, frac)
	// An incremental run resolves an in-flight task by its detail before
	// the page that lists it FINISH is written.
	if _, err := st.CompleteDetail(ctx, details.Record{TaskID: "undated", Outcome: mps.Outcome{Result: mps.OutcomeSucceeded}, Raw: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	write(mps.StatusFinish, task("undated", at), task("frac", at))
	rows := pgtest.Query(t, url, `SELECT task_id, count(*), max(status), max(tableoid::regclass::text) FROM tasks GROUP BY 1 ORDER BY 1`)
	if fmt.Sprint(rows) != "[[frac 1 FINISH tasks_y"+at.Format("2006")+"m"+at.Format("01")+"] [undated 1 FINISH tasks_undated]]" {
		t.Errorf("tasks: %v", rows)
	}
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM task_details WHERE task_id = 'undated'`); n != 1 {
		t.Errorf("%d outcomes of the undated task", n)
	}
	if _, _, err := st.RequeueDetails(ctx, 72*time.Hour); err != nil {
		t.Errorf("requeue: %v", err)
	}
	counts, err := st.StatusCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(counts) != "map[FINISH:2]" {
		t.Errorf("status counts: %v", counts)
	}
	assertRollupsEqualRaw(t, st, "after both")
}

// TestPartitionsMadeAhead: a row of a month without a partition waits in
// the DEFAULT partition; the next maintenance moves it into its month,
// whatever the session's TimeZone and DateStyle, without losing a write
// that was in flight while it moved; a reader cannot make partitions.
func TestPartitionsMadeAhead(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	old := time.Date(2019, 3, 31, 23, 30, 0, 0, time.UTC) // a month no one made
	if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusProcessing,
		Tasks: []mps.Task{task("old", old), task("older", old.Add(-24*time.Hour))}}); err != nil {
		t.Fatal(err)
	}
	where := func(id string) string {
		return pgtest.Scalar[string](t, url, `SELECT tableoid::regclass::text FROM tasks WHERE task_id = $1`, id)
	}
	if p := where("old"); p != "tasks_undated" {
		t.Fatalf("a task of a month without a partition is in %s", p)
	}

	// A write to the waiting row, in flight while maintenance starts: the
	// move waits for it, and keeps it.
	tx := pgtest.Conn(t, url)
	if _, err := tx.Exec(ctx, `BEGIN; UPDATE tasks SET status = 'FINISH', finish_time = create_time + interval '1 minute' WHERE task_id = 'old'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// An owner's session with a TimeZone east of UTC and a DateStyle that
	// writes US dates: the bounds must still be UTC months.
	maint := pgtest.Conn(t, url)
	pid := maint.PgConn().PID()
	go func() {
		_, err := maint.Exec(ctx, `SET TimeZone = 'Asia/Shanghai'; SET DateStyle = 'Postgres, MDY'; SELECT mps_maintain_partitions()`)
		done <- err
	}()
	// Commit only once maintenance waits for the write's lock, however
	// slow the machine: the race is then certain to be run.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if pgtest.Scalar[bool](t, url, `SELECT coalesce((SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1), false)`, pid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("maintenance never waited for the write in flight")
		}
	}
	if _, err := tx.Exec(ctx, `COMMIT`); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p := where("old"); p != "tasks_y2019m03" {
		t.Errorf("after maintenance the task is in %s", p)
	}
	if st := pgtest.Scalar[string](t, url, `SELECT status FROM tasks WHERE task_id = 'old'`); st != "FINISH" {
		t.Errorf("the write in flight was lost: status %s", st)
	}
	bound := pgtest.Scalar[string](t, url, `SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'tasks_y2019m03'`)
	if want := "FOR VALUES FROM ('2019-03-01 00:00:00+00') TO ('2019-04-01 00:00:00+00')"; bound != want {
		t.Errorf("bound %s, want %s", bound, want)
	}
	// The months ahead exist for every task table.
	next := time.Now().UTC().AddDate(0, 1, 0)
	for _, table := range []string{"tasks", "task_status_changes", "task_details", "task_subtask_results"} {
		name := fmt.Sprintf("%s_y%sm%s", table, next.Format("2006"), next.Format("01"))
		if pgtest.Scalar[bool](t, url, `SELECT to_regclass($1) IS NULL`, name) {
			t.Errorf("%s was not made ahead", name)
		}
	}
	if made, err := st.MaintainPartitions(ctx); err != nil || made != 0 {
		t.Errorf("maintenance again: made %d, %v", made, err)
	}
	assertRollupsEqualRaw(t, st, "after the move")

	// Only the owner and the roles granted it may make partitions.
	pgtest.Exec(t, url, `DO $$ BEGIN CREATE ROLE mps_test_reader; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	c := pgtest.Conn(t, url)
	if _, err := c.Exec(ctx, `SET ROLE mps_test_reader`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SELECT mps_ensure_partitions('2100-01-01', '2101-01-01')`, `SELECT mps_maintain_partitions(24)`} {
		if _, err := c.Exec(ctx, q); err == nil {
			t.Errorf("a role without the grant ran %s", q)
		}
	}
}
