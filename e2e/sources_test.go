package e2e

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestKillNineDuringImageDrain: sync, with its default sources (media and
// image), is killed -9 while it drains DescribeImageTasks, again and again;
// a clean sync then archives both sources exactly (nothing lost, nothing
// doubled, no status change twice), with every finished task's outcome,
// image tasks' read by DescribeImageTaskDetail, and the ledger saying
// how each source went.
func TestKillNineDuringImageDrain(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(4000, now, func(c *simulator.GenConfig) {
		c.FailureShare, c.ImageShare = 0.2, 0.6
	}), simulator.NewClock(now, 0), simulator.Faults{})
	images := int64(0)
	for _, tt := range a.sim.Truth() {
		if tt.Source == mps.SourceImage.Name {
			images++
		}
	}
	db := migrated(t)
	env := baseEnv(a, db)
	delete(env, "MPS_SYNC_SOURCES") // the default: every source
	env["MPS_RATE_LIMIT"] = "20"    // ~25 image pages take over a second: kills land mid-drain
	env["MPS_DETAILS_MODE"] = "all"
	kills := 0
	for round := 0; round < 3; round++ {
		p := start(t, env, "sync")
		before := scalar(t, db, `SELECT count(*) FROM tasks WHERE source = 'image'`)
		eventually(t, time.Minute, "the image drain under way", func() bool {
			n := scalar(t, db, `SELECT count(*) FROM tasks WHERE source = 'image'`)
			return n > before && n < images || p.exited()
		})
		if !p.exited() {
			kills++
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	if kills == 0 {
		t.Fatal("no kill landed during the image drain")
	}
	// A killed worker's detail claims come back when their 1-minute lease ends.
	eventually(t, 2*time.Minute, "the killed workers' leases to end", func() bool {
		return scalar(t, db, `SELECT count(*) FROM task_detail_queue WHERE leased_until > now()`) == 0
	})
	env["MPS_RATE_LIMIT"] = "100"
	env["MPS_DETAILS_RATE_LIMIT"] = "2000"
	if r := syncAfterKill(t, env); r.code != 0 {
		t.Fatalf("sync after the kills: exit %d: %s", r.code, r.stderr)
	}
	archivetest.AssertMatchesTruth(t, db, a.sim.Truth())
	if n := scalar(t, db, `SELECT count(*) FROM tasks WHERE source = 'image'`); n != images {
		t.Fatalf("%d image tasks archived, truth %d", n, images)
	}
	if dup := scalar(t, db, `SELECT count(*) FROM (SELECT task_id, to_status FROM task_status_changes GROUP BY 1, 2 HAVING count(*) > 1) d`); dup != 0 {
		t.Fatalf("%d status changes recorded twice", dup)
	}
	// Every finished task's outcome, of both sources, as the truth says.
	got := map[string]string{}
	for _, row := range pgtest.Query(t, db, `SELECT task_id, outcome, coalesce(err_code, ''), coalesce(err_code_ext, '') FROM task_details`) {
		got[row[0].(string)] = fmt.Sprint(row[1:])
	}
	bad, imageOutcomes := 0, 0
	for _, tt := range a.sim.Truth() {
		if tt.Outcome == "" {
			continue
		}
		if tt.Source == mps.SourceImage.Name {
			imageOutcomes++
		}
		if w := fmt.Sprint([]any{tt.Outcome, tt.ErrCode, tt.ErrCodeExt}); got[tt.TaskId] != w {
			if bad++; bad <= 5 {
				t.Errorf("task %s (%s): outcome %q, truth %q", tt.TaskId, tt.TaskType, got[tt.TaskId], w)
			}
		}
	}
	if bad > 0 || imageOutcomes < 1000 {
		t.Fatalf("%d outcomes differ; %d image outcomes checked", bad, imageOutcomes)
	}
	// The killed runs are abandoned; the clean one drained both sources.
	last := pgtest.Query(t, db, `SELECT string_agg(source || ':' || status || ':' || kind, ',' ORDER BY source)
  FROM sync_run_sources WHERE run_id = (SELECT max(id) FROM sync_runs)`)[0][0]
	if last != "image:succeeded:full,media:succeeded:full" && last != "image:succeeded:incremental,media:succeeded:incremental" {
		t.Fatalf("the clean run's sources: %v", last)
	}
	t.Logf("%d kills mid image drain; %d image tasks, %d image outcomes", kills, images, imageOutcomes)
}
