package syncer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// changing is n tasks over the week before t1, plus the changes the next
// hour brings: long-running tasks, in flight for days at t1, finishing
// before t1+1h, and new tasks created and finished in that hour. Also a task
// in flight at t1 that never ends and ages out of the API's window by
// t1+2h.
func changing(n, long, fresh int, t1 time.Time) []*simulator.Task {
	tasks := generated(n, t1, nil)
	r := rand.New(rand.NewPCG(7, 13))
	for i := range long {
		c := t1.Add(-time.Duration(24+r.IntN(96)) * time.Hour)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("long-%04d", i), Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: t1.Add(time.Duration(r.IntN(50)) * time.Minute).UnixNano()})
	}
	for i := range fresh {
		c := t1.Add(time.Duration(1+r.IntN(45)) * time.Minute)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("fresh-%04d", i), Type: "EditMediaTask", SubTaskTypes: []string{"action-editmedia"},
			Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: c.Add(5 * time.Minute).UnixNano()})
	}
	c := t1.Add(-167 * time.Hour)
	return append(tasks, &simulator.Task{ID: "ages-out", Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
		Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano()})
}

// incrementalRig syncs with the product's settings: 4 partitions, a full
// run every 24 h, incremental runs between.
func incrementalRig(t *testing.T, tasks []*simulator.Task, clock *simulator.Clock, v simulator.Variant) *rig {
	t.Helper()
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock, Variant: v}, tasks)
	r := newRig(t, sim, nil)
	r.syncer = syncer.New(r.client, r.st, syncer.Config{Partitions: 4, FullEvery: 24 * time.Hour, Details: syncer.DetailsAll, DetailRetention: 72 * time.Hour}, nil)
	return r
}

// TestIncrementalRunCostFollowsChanges: after a full run of 200,000 tasks
// and 1,000 changes, an incremental run makes at most 2% of the full run's
// DescribeTasks requests and at most one DescribeTaskDetail per in-flight
// task it did not see listed, and leaves the archive equal to the truth,
// whichever task time the API's StartTime/EndTime filter on.
func TestIncrementalRunCostFollowsChanges(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tasks := changing(200_000, 500, 500, t1)
	for _, v := range []simulator.Variant{{Filters: simulator.FiltersCreateTime}, {Filters: simulator.FiltersFinishTime}} {
		t.Run(v.Filters, func(t *testing.T) {
			t.Parallel()
			clock := simulator.NewClock(t1, 0)
			r := incrementalRig(t, tasks, clock, v)
			full, err := r.syncer.Run(context.Background(), "first")
			if err != nil || full.Kind != syncer.KindFull || full.Why != "first run" {
				t.Fatalf("first run: %s (%s), %v", full.Kind, full.Why, err)
			}
			inFlight := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks WHERE status <> 'FINISH'`)
			clock.Advance(time.Hour)
			inc, err := r.syncer.Run(context.Background(), "next")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("full: %d list requests; incremental: %d list + %d detail requests, %d resolved, %d in flight after the full run",
				full.ListRequests, inc.ListRequests, inc.DetailRequests, inc.Resolved, inFlight)
			if inc.Kind != syncer.KindIncremental {
				t.Fatalf("second run: %s (%s)", inc.Kind, inc.Why)
			}
			if inc.ListRequests*50 > full.ListRequests {
				t.Errorf("incremental run: %d DescribeTasks requests, more than 2%% of the full run's %d", inc.ListRequests, full.ListRequests)
			}
			if inc.DetailRequests > inFlight {
				t.Errorf("incremental run: %d detail requests for %d in-flight tasks", inc.DetailRequests, inFlight)
			}
			if v.Filters == simulator.FiltersCreateTime && inc.Resolved < 500 {
				t.Errorf("only %d in-flight tasks resolved by detail: the long-running ones finished outside the FINISH listing", inc.Resolved)
			}
			archivetest.AssertMatchesTruthSince(t, r.dbURL, r.sim.Truth(), clock.Now().Add(-syncer.Window+time.Second))
			if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM sync_runs WHERE kind = 'incremental' AND list_requests > 0 AND status = 'succeeded'`); n != 1 {
				t.Errorf("%d incremental runs in the ledger", n)
			}
			// Every finished task's outcome is known, each read once.
			if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks t WHERE status = 'FINISH' AND NOT EXISTS (SELECT 1 FROM task_details d WHERE d.task_id = t.task_id) AND NOT EXISTS (SELECT 1 FROM task_detail_queue q WHERE q.task_id = t.task_id)`); n != 0 {
				t.Errorf("%d finished tasks neither detailed nor queued", n)
			}

			// The task in flight for 167 h ages out of the window unfinished.
			clock.Advance(time.Hour)
			res, err := r.syncer.Run(context.Background(), "later")
			if err != nil || res.Kind != syncer.KindIncremental || res.Gone != 1 {
				t.Fatalf("third run: %s, gone %d, %v", res.Kind, res.Gone, err)
			}
			if got := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM report_unfinished WHERE task_id = 'ages-out' AND gone_at IS NOT NULL`); got != 1 {
				t.Error("the task that left the window unfinished is not reported gone")
			}
		})
	}
}

// TestIncrementalFallsBackToFull: where the API rejects or ignores the time
// filters, every run is full, and correct.
func TestIncrementalFallsBackToFull(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tasks := changing(5000, 50, 50, t1)
	for _, v := range []simulator.Variant{{Filters: simulator.FiltersIgnored}, {Filters: simulator.FiltersUnsupported}} {
		t.Run(v.Filters, func(t *testing.T) {
			t.Parallel()
			clock := simulator.NewClock(t1, 0)
			r := incrementalRig(t, tasks, clock, v)
			for i := range 2 {
				res, err := r.syncer.Run(context.Background(), "run")
				if err != nil || res.Kind != syncer.KindFull {
					t.Fatalf("run %d: %s (%s), %v", i+1, res.Kind, res.Why, err)
				}
				if i == 0 {
					clock.Advance(time.Hour)
				}
			}
			archivetest.AssertMatchesTruthSince(t, r.dbURL, r.sim.Truth(), clock.Now().Add(-syncer.Window+time.Second))
		})
	}
}

// TestIncrementalWhileTasksMove: tasks move during incremental runs; a
// final run of the frozen world leaves the archive equal to the truth.
func TestIncrementalWhileTasksMove(t *testing.T) {
	t.Parallel()
	tasks, clock := moving(time.Now().UTC())
	clock.SetSpeed(0)
	r := incrementalRig(t, tasks, clock, simulator.Variant{})
	if _, err := r.syncer.Run(context.Background(), "first"); err != nil {
		t.Fatal(err)
	}
	clock.SetSpeed(1200)
	for range 3 {
		res, err := r.syncer.Run(context.Background(), "moving")
		if err != nil || res.Kind != syncer.KindIncremental {
			t.Fatalf("%s, %v", res.Kind, err)
		}
	}
	clock.SetSpeed(0)
	res, err := r.syncer.Run(context.Background(), "final")
	if err != nil || res.Kind != syncer.KindIncremental {
		t.Fatalf("%s, %v", res.Kind, err)
	}
	r.assertMatchesTruth(t)
}
