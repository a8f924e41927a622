package syncer_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestFinishRecordWithoutFinishTime: a FINISH record without a FinishTime
// (Tencent's international examples show one) is archived by a full run
// whichever task time the API's filters read: a FinishTime filter cannot
// match it, so a full run partitions FINISH only once the filters are known
// to read CreateTime.
func TestFinishRecordWithoutFinishTime(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	for _, v := range []simulator.Variant{{Filters: simulator.FiltersFinishTime}, {Filters: simulator.FiltersCreateTime}} {
		t.Run(v.Filters, func(t *testing.T) {
			t.Parallel()
			created := now.Add(-2 * time.Hour)
			sc := &simulator.Scenario{Tasks: []simulator.ScenarioTask{{TaskId: "no-finish-time", TaskType: "WorkflowTask", Create: "-2h", Status: "FINISH",
				Raw: []byte(fmt.Sprintf(`{"TaskId":"no-finish-time","TaskType":"WorkflowTask","SubTaskTypes":["Transcode"],"CreateTime":%q,"BeginProcessTime":%q,"FinishTime":""}`,
					mps.FormatTime(created), mps.FormatTime(created.Add(time.Minute))))}}}
			raw, err := sc.Build(now)
			if err != nil {
				t.Fatal(err)
			}
			clock := simulator.NewClock(now, 0)
			r := incrementalRig(t, append(generated(400, now, nil), raw...), clock, v)
			archived := func() string {
				return fmt.Sprint(pgtest.Query(t, r.dbURL, `SELECT status FROM tasks WHERE task_id = 'no-finish-time'`))
			}
			for i, kind := range []string{syncer.KindFull, syncer.KindIncremental, syncer.KindIncremental} {
				res, err := r.syncer.Run(context.Background(), "test")
				if err != nil || res.Kind != kind {
					t.Fatalf("run %d: %s (%s), %v", i+1, res.Kind, res.Why, err)
				}
				if got := archived(); got != "[[FINISH]]" {
					t.Fatalf("after run %d (%s): the record without FinishTime is %s", i+1, res.Kind, got)
				}
			}
			// The next full run learns which time the filters read, and keeps
			// the record either way.
			if _, err := r.syncer.RunFull(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
			if got := pgtest.Query(t, r.dbURL, `SELECT state FROM api_capabilities WHERE name = 'time_field'`); fmt.Sprint(got) != "[["+v.Filters+"]]" {
				t.Fatalf("learned %v, want %s", got, v.Filters)
			}
			pgtest.Exec(t, r.dbURL, `DELETE FROM tasks WHERE task_id = 'no-finish-time'`)
			if _, err := r.syncer.RunFull(context.Background(), "test"); err != nil {
				t.Fatal(err)
			}
			if got := archived(); got != "[[FINISH]]" {
				t.Fatalf("a full run with the filters known: %s", got)
			}
			// The rest is the truth (which knows nothing of verbatim records).
			archivetest.AssertProofLog(t, r.dbURL)
			pgtest.Exec(t, r.dbURL, `DELETE FROM tasks WHERE task_id = 'no-finish-time'`)
			archivetest.AssertTasksMatchTruth(t, r.dbURL, r.sim.Truth(), time.Time{})
		})
	}
}

// TestDetailErrorsAreTheTasksNotTheRun: DescribeTaskDetail refused (a key
// without mps:DescribeTaskDetail) while an incremental run resolves
// in-flight tasks, with details.mode none: every run succeeds, the errors
// are counted in the ledger, and the tasks are resolved once the detail
// answers again.
func TestDetailErrorsAreTheTasksNotTheRun(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := simulator.NewClock(t1, 0)
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock}, changing(2000, 50, 20, t1))
	r := newRig(t, sim, nil)
	r.syncer = syncer.New(r.client, r.st, syncer.Config{Partitions: 4, FullEvery: 24 * time.Hour, Details: syncer.DetailsNone}, nil)
	if _, err := r.syncer.Run(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	sim.SetFaults(simulator.Faults{ErrorRate: 1, ErrorCodes: []string{"UnauthorizedOperation"}, Actions: []string{mps.ActionDescribeTaskDetail}})
	for range 2 {
		res, err := r.syncer.Run(context.Background(), "next")
		if err != nil || res.Kind != syncer.KindIncremental {
			t.Fatalf("incremental run with DescribeTaskDetail refused: %s, %v", res.Kind, err)
		}
		if res.DetailErrors == 0 || res.Resolved != 0 || res.DetailRequests > 10 {
			t.Fatalf("run: %d detail errors, %d resolved, %d detail requests (the first ten failing stop the rest)", res.DetailErrors, res.Resolved, res.DetailRequests)
		}
	}
	if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM sync_runs WHERE status = 'succeeded' AND detail_errors > 0 AND unresolved_tasks > 0`); n != 2 {
		t.Fatalf("%d runs recorded their detail errors", n)
	}
	sim.SetFaults(simulator.Faults{})
	res, err := r.syncer.Run(context.Background(), "after")
	if err != nil || res.Resolved < 50 || res.DetailErrors != 0 {
		t.Fatalf("after the fix: %d resolved, %d errors, %v", res.Resolved, res.DetailErrors, err)
	}
	archivetest.AssertMatchesTruthSince(t, r.dbURL, sim.Truth(), clock.Now().Add(-syncer.Window+time.Second))
}

// inFlightCounter is the real store, with the batches of in-flight tasks it
// hands out measured.
type inFlightCounter struct {
	*storage.Store
	calls, largest int
}

func (c *inFlightCounter) InFlightTasks(ctx context.Context, source, after string, limit int) ([]syncer.InFlightTask, error) {
	b, err := c.Store.InFlightTasks(ctx, source, after, limit)
	c.calls++
	c.largest = max(c.largest, len(b))
	return b, err
}

// TestInFlightTasksStreamed: an incremental run resolves a backlog of
// in-flight tasks larger than a batch reading a batch at a time, and
// resolves every one.
func TestInFlightTasksStreamed(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var tasks []*simulator.Task
	for i := range 2500 {
		c := t1.Add(-time.Duration(30+i%600) * time.Minute)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("queued-%05d", i), Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: c.UnixNano(), Begin: t1.Add(10 * time.Minute).UnixNano(), Finish: t1.Add(20 * time.Minute).UnixNano()})
	}
	clock := simulator.NewClock(t1, 0)
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock,
		Variant: simulator.Variant{Filters: simulator.FiltersCreateTime}}, append(tasks, generated(500, t1, nil)...))
	r := newRig(t, sim, nil)
	st := &inFlightCounter{Store: r.st}
	s := syncer.New(r.client, st, syncer.Config{Partitions: 4, FullEvery: 24 * time.Hour}, nil)
	if _, err := s.Run(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks WHERE status = 'WAITING'`); n < 2500 {
		t.Fatalf("%d waiting tasks archived", n)
	}
	clock.Advance(time.Hour)
	res, err := s.Run(context.Background(), "next")
	if err != nil || res.Kind != syncer.KindIncremental || res.Resolved < 2500 {
		t.Fatalf("incremental: %s, %d resolved, %v", res.Kind, res.Resolved, err)
	}
	if st.largest > 1000 || st.calls < 3 {
		t.Fatalf("in-flight tasks read in %d calls, the largest %d", st.calls, st.largest)
	}
	archivetest.AssertMatchesTruthSince(t, r.dbURL, sim.Truth(), clock.Now().Add(-syncer.Window+time.Second))
}

// TestAPIClockHeldToOurs: the API's Date 20 minutes ahead of the clock it
// lists by (a proxy's clock) no longer moves an incremental run's lower
// bound past the tasks created since the last run; a Date ten years ahead
// neither puts the bound in the future nor blinds the coverage-gap check.
// Each run records the skew it saw.
func TestAPIClockHeldToOurs(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	fresh := betweenRuns(t1)
	clock := simulator.NewClock(t1, 0)
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock,
		Faults: simulator.Faults{DateSkew: 20 * time.Minute}}, append(generated(300, t1, nil), fresh...))
	r := newRig(t, sim, nil)
	// This machine's clock is the one the API lists by; its Date is not.
	s := syncer.New(r.client, r.st, syncer.Config{Partitions: 4, FullEvery: 24 * time.Hour, MaxClockSkew: syncer.MaxClockSkew, Now: clock.Now}, nil)
	if _, err := s.Run(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	res, err := s.Run(context.Background(), "next")
	if err != nil || res.Kind != syncer.KindIncremental {
		t.Fatalf("second run: %s, %v", res.Kind, err)
	}
	if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks WHERE task_id LIKE 'between-%' AND status = 'FINISH'`); n != 20 {
		t.Fatalf("%d of 20 tasks created between runs archived", n)
	}
	if got := pgtest.Query(t, r.dbURL, `SELECT clock_skew_s FROM sync_runs ORDER BY id`); fmt.Sprint(got) != "[[1200] [1200]]" {
		t.Fatalf("recorded skews %v", got)
	}

	// A Date ten years ahead.
	sim.SetFaults(simulator.Faults{DateSkew: 10 * 365 * 24 * time.Hour})
	clock.Advance(time.Hour)
	res, err = s.Run(context.Background(), "far")
	if err != nil || res.APIStarted.After(clock.Now().Add(time.Minute)) {
		t.Fatalf("far-future Date: started %v on a clock at %v, %v", res.APIStarted, clock.Now(), err)
	}
	sim.SetFaults(simulator.Faults{})
	clock.Advance(time.Hour)
	res, err = s.Run(context.Background(), "after")
	if err != nil || res.LowerBound.After(clock.Now()) {
		t.Fatalf("after a far-future Date: lower bound %v at %v, %v", res.LowerBound, clock.Now(), err)
	}
	// Eight days without a run: the gap is seen.
	clock.Advance(8 * 24 * time.Hour)
	res, err = s.Run(context.Background(), "outage")
	if err != nil || res.Gap == nil {
		t.Fatalf("after an eight-day outage: gap %v, %v", res.Gap, err)
	}
	if !strings.Contains(fmt.Sprint(pgtest.Query(t, r.dbURL, `SELECT count(*) FROM coverage_gaps`)), "1") {
		t.Fatal("no coverage gap recorded")
	}
}

// TestLocalClockAheadOfTheAPI: the mirror of TestAPIClockHeldToOurs: the
// API's Date is right and this machine's clock runs 20 minutes ahead. The
// start a run records is the earlier of the two, so the next lower bound
// still reaches the tasks created between the runs.
func TestLocalClockAheadOfTheAPI(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	fresh := betweenRuns(t1)
	clock := simulator.NewClock(t1, 0)
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock}, append(generated(300, t1, nil), fresh...))
	r := newRig(t, sim, nil)
	local := func() time.Time { return clock.Now().Add(20 * time.Minute) }
	s := syncer.New(r.client, r.st, syncer.Config{Partitions: 4, FullEvery: 24 * time.Hour, MaxClockSkew: syncer.MaxClockSkew, Now: local}, nil)
	if _, err := s.Run(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	res, err := s.Run(context.Background(), "next")
	if err != nil || res.Kind != syncer.KindIncremental || res.LowerBound.After(t1) {
		t.Fatalf("second run: %s, lower bound %v (first run at %v), %v", res.Kind, res.LowerBound, t1, err)
	}
	if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks WHERE task_id LIKE 'between-%' AND status = 'FINISH'`); n != 20 {
		t.Fatalf("%d of 20 tasks created between runs archived", n)
	}
}

// betweenRuns is 20 tasks created in the minutes after t1 (a run's start)
// and finished soon after: what the next incremental run must list.
func betweenRuns(t1 time.Time) []*simulator.Task {
	var fresh []*simulator.Task
	for i := range 20 {
		c := t1.Add(time.Duration(60+10*i) * time.Second)
		fresh = append(fresh, &simulator.Task{ID: fmt.Sprintf("between-%02d", i), Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: c.Add(2 * time.Minute).UnixNano()})
	}
	return fresh
}
