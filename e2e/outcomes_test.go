package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// outcomePopulation has every task type, both vocabularies and 30% failures.
func outcomePopulation(n int, now time.Time) []*simulator.Task {
	return generate(n, now, func(c *simulator.GenConfig) {
		c.FailureShare, c.Vocabulary = 0.3, simulator.VocabularyMixed
	})
}

// finishedTasks counts the truth's FINISH tasks.
func finishedTasks(a *api) int64 {
	n := int64(0)
	for _, tt := range a.sim.Truth() {
		if tt.Outcome != "" {
			n++
		}
	}
	return n
}

// TestKillNineDuringDetailCapture: sync is killed -9 while it reads
// details, again and again; a later sync captures every detail, each stored
// once, re-reading at most what the killed workers held.
func TestKillNineDuringDetailCapture(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, outcomePopulation(3000, now), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_DETAILS_MODE"] = "all"
	env["MPS_DETAILS_RATE_LIMIT"] = "150" // ~3,000 details take 20 s: kills land mid-capture
	kills := 0
	for round := 0; round < 3; round++ {
		p := start(t, env, "sync")
		before := scalar(t, db, `SELECT count(*) FROM task_details`)
		eventually(t, time.Minute, "details being captured", func() bool {
			return scalar(t, db, `SELECT count(*) FROM task_details`) > before+100 || p.exited()
		})
		if !p.exited() {
			kills++
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	if kills == 0 {
		t.Fatal("no kill landed during detail capture")
	}
	// A killed worker's claims come back when their 1-minute lease ends.
	eventually(t, 2*time.Minute, "the killed workers' leases to end", func() bool {
		return scalar(t, db, `SELECT count(*) FROM task_detail_queue WHERE leased_until > now()`) == 0
	})
	env["MPS_DETAILS_RATE_LIMIT"] = "2000"
	if r := syncAfterKill(t, env); r.code != 0 {
		t.Fatalf("sync after the kills: exit %d: %s", r.code, r.stderr)
	}
	want := finishedTasks(a)
	got := scalar(t, db, `SELECT count(*) FROM task_details`)
	left := scalar(t, db, `SELECT count(*) FROM task_detail_queue`)
	requests := a.sim.Stats().RequestsByStatus["detail"]
	t.Logf("%d kills; %d details stored of %d FINISH tasks, %d left queued, %d DescribeTaskDetail requests", kills, got, want, left, requests)
	if got != want || left != 0 {
		t.Fatalf("%d details stored of %d, %d left queued", got, want, left)
	}
	// Each kill can lose at most the claims in hand: 4 workers × 8 jobs.
	if requests > want+int64(kills*4*8) {
		t.Fatalf("%d detail requests for %d tasks and %d kills: details were read again", requests, want, kills)
	}
	if dup := scalar(t, db, `SELECT count(*) FROM (SELECT task_id, ordinal FROM task_subtask_results GROUP BY 1, 2 HAVING count(*) > 1) d`); dup != 0 {
		t.Fatalf("%d duplicated sub-task rows", dup)
	}
	// Outcomes counted by the rollups as they were stored, kills and all,
	// and each in the proof log once with the archive.
	archivetest.AssertRollups(t, db)
	archivetest.AssertProofLog(t, db)
}

// TestServeCapturesOutcomesWithoutLeaking: serve reads every detail in the
// background; the secrets in the payloads (notify key, S3 keys) appear in
// no byte of its debug log, its /metrics or a pg_dump of the archive.
func TestServeCapturesOutcomesWithoutLeaking(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, outcomePopulation(1500, now), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_DETAILS_MODE"] = "all"
	env["MPS_DETAILS_RATE_LIMIT"] = "2000"
	env["LOG_LEVEL"] = "debug"
	p := start(t, env, "serve", "--listen", "127.0.0.1:0", "--schedule", "@every 1h")
	addr := p.httpAddr(t)
	want := finishedTasks(a)
	var body string
	eventually(t, 2*time.Minute, "every detail captured", func() bool {
		_, body = get(t, "http://"+addr+"/metrics")
		return metric(t, body, `mps_archiver_details_total{outcome="succeeded"}`)+metric(t, body, `mps_archiver_details_total{outcome="failed"}`) >= float64(want)
	})
	if failed := metric(t, body, `mps_archiver_details_total{outcome="failed"}`); failed == 0 {
		t.Fatal("no failed outcome counted")
	}
	eventually(t, 30*time.Second, "an empty backlog on /metrics", func() bool {
		_, body = get(t, "http://"+addr+"/metrics")
		return metric(t, body, "mps_archiver_detail_backlog") == 0
	})
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("serve exit %d", code)
	}
	bin, err := pgtemp.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command(filepath.Join(bin, "pg_dump"), "--dbname", db).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if got := scalar(t, db, `SELECT count(*) FROM task_details`); got != want {
		t.Fatalf("%d details stored, want %d", got, want)
	}
	for what, text := range map[string]string{"the log": p.stderr.String(), "/metrics": body, "pg_dump": string(dump)} {
		for _, secret := range append(simulator.Secrets(), secretKey) {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %s", what, secret)
			}
		}
	}
}
