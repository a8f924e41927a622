package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestKillNineDuringIncrementalRun: an incremental run is killed -9 while
// it resolves in-flight tasks that finished unlisted; the next run is
// incremental again, from the last successful run's start (the killed one
// moved nothing), and leaves the archive equal to the truth.
func TestKillNineDuringIncrementalRun(t *testing.T) {
	t.Parallel()
	t1 := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	tasks := generate(4000, t1, nil)
	// Long-running tasks, in flight for days, that finish in the next hour:
	// under a CreateTime filter only their detail tells.
	for i := range 300 {
		c := t1.Add(-time.Duration(30+i%60) * time.Hour)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("long-%03d", i), Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: c.UnixNano(), Begin: c.Add(time.Minute).UnixNano(), Finish: t1.Add(time.Duration(1+i%50) * time.Minute).UnixNano()})
	}
	clock := simulator.NewClock(t1, 0)
	a := newAPI(t, tasks, clock, simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatalf("first sync: exit %d: %s", r.code, r.stderr)
	}
	clock.Advance(time.Hour)
	env["MPS_DETAILS_RATE_LIMIT"] = "40" // 300 resolutions take over 7 s
	p := start(t, env, "sync")
	eventually(t, time.Minute, "the incremental run resolving in-flight tasks", func() bool {
		return scalar(t, db, `SELECT count(*) FROM tasks WHERE task_id LIKE 'long-%' AND status = 'FINISH'`) > 20 || p.exited()
	})
	if p.exited() {
		t.Fatalf("the incremental run ended before the kill: %s", p.stderr.String())
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	env["MPS_DETAILS_RATE_LIMIT"] = "1000"
	if r := syncAfterKill(t, env); r.code != 0 {
		t.Fatalf("sync after the kill: exit %d: %s", r.code, r.stderr)
	}
	kinds := fmt.Sprint(pgtest.Query(t, db, `SELECT kind || '/' || status FROM sync_runs ORDER BY id`))
	if kinds != "[[full/succeeded] [incremental/failed] [incremental/succeeded]]" {
		t.Fatalf("runs: %s", kinds)
	}
	if n := scalar(t, db, `SELECT count(*) FROM sync_runs WHERE kind = 'incremental' AND lower_bound <> (SELECT api_started_at FROM sync_runs WHERE id = 1) - interval '15 minutes'`); n != 0 {
		t.Fatalf("%d incremental runs did not start from the first run's start", n)
	}
	// Tasks that left the window when the clock moved stay archived.
	archivetest.AssertMatchesTruthSince(t, db, a.sim.Truth(), clock.Now().Add(-168*time.Hour+time.Second))
}
