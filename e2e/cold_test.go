package e2e

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestKillNineAtEachColdStep: with archive.keep_months, sync moves the
// closed January to cold storage: export, verify, detach. It is killed -9
// at each step in turn (files being written, written but not recorded,
// recorded, read back); after every kill no task is lost and no month is
// detached without a recorded, verified export. A clean sync then
// detaches it; verify still passes; import brings back exactly what left.
func TestKillNineAtEachColdStep(t *testing.T) {
	t.Parallel()
	start0 := time.Date(2026, 1, 31, 23, 50, 0, 0, time.UTC)
	clock := simulator.NewClock(start0, 0)
	a := newAPI(t, generate(1500, start0, func(c *simulator.GenConfig) {
		c.FailureShare, c.ArrivalsPerHour, c.Horizon = 0.3, 10, 3*24*time.Hour
	}), clock, simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_DETAILS_MODE"] = "all"
	env["MPS_DETAILS_RATE_LIMIT"] = "2000"
	for _, advance := range []time.Duration{0, 3 * 24 * time.Hour} {
		clock.Advance(advance)
		if r := run(t, env, "sync"); r.code != 0 {
			t.Fatalf("sync: exit %d: %s", r.code, r.stderr)
		}
	}
	const inJanuary = `create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z'`
	tasks := scalar(t, db, `SELECT count(*) FROM tasks WHERE `+inJanuary)
	outcomes := scalar(t, db, `SELECT count(*) FROM task_details WHERE `+inJanuary)
	fingerprint := func() int64 {
		return scalar(t, db, `SELECT ('x' || substr(md5(string_agg(x, ',' ORDER BY x)), 1, 15))::bit(60)::bigint FROM (
  SELECT t::text AS x FROM tasks t WHERE `+inJanuary+` UNION ALL SELECT c::text FROM task_status_changes c WHERE `+inJanuary+`
  UNION ALL SELECT d::text FROM task_details d WHERE `+inJanuary+` UNION ALL SELECT s::text FROM task_subtask_results s WHERE `+inJanuary+`) a`)
	}
	before := fingerprint()
	if tasks < 500 || outcomes < 500 {
		t.Fatalf("January holds %d tasks, %d outcomes: the test tests little", tasks, outcomes)
	}

	dest := t.TempDir()
	env["MPS_ARCHIVE_KEEP_MONTHS"] = "1"
	env["MPS_ARCHIVE_DESTINATION"] = dest
	env["MPS_ARCHIVER_TEST_PAUSE_BETWEEN_STEPS"] = "1"
	state := func() string {
		rows := pgtest.Query(t, db, `SELECT state FROM archive_months WHERE month = '2026-01-01'`)
		if len(rows) == 0 {
			return ""
		}
		return rows[0][0].(string)
	}
	for _, step := range []string{"exporting", "written", "exported", "verified"} {
		p := start(t, env, "sync")
		eventually(t, 2*time.Minute, "step "+step, func() bool {
			return strings.Contains(p.stderr.String(), "cold-step "+step+" 2026-01") || p.exited()
		})
		if p.exited() {
			t.Fatalf("sync ended before step %s: %s", step, p.stderr.String())
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		// Nothing lost, nothing detached without a verified export.
		if s := state(); s == "detached" {
			t.Fatalf("killed at %s: January detached", step)
		}
		if n := scalar(t, db, `SELECT count(*) FROM tasks WHERE `+inJanuary); n != tasks {
			t.Fatalf("killed at %s: %d January tasks, want %d", step, n, tasks)
		}
		t.Logf("killed at %s: January is %q", step, state())
	}
	delete(env, "MPS_ARCHIVER_TEST_PAUSE_BETWEEN_STEPS")
	if r := syncAfterKill(t, env); r.code != 0 {
		t.Fatalf("sync after the kills: exit %d: %s", r.code, r.stderr)
	}
	if s := state(); s != "detached" {
		t.Fatalf("January is %q after a clean sync", s)
	}
	if n := scalar(t, db, `SELECT count(*) FROM tasks WHERE `+inJanuary); n != 0 {
		t.Fatalf("%d January tasks left after the detach", n)
	}
	// One export recorded and logged per completed export; the month's
	// is the one its manifest names.
	b, err := coldstore.Open(dest, coldstore.S3{})
	if err != nil {
		t.Fatal(err)
	}
	sum := pgtest.Query(t, db, `SELECT e.manifest_sha256 FROM archive_months a JOIN archive_exports e ON e.id = a.export_id WHERE a.month = '2026-01-01'`)[0][0].(string)
	m, err := coldstore.ReadManifest(context.Background(), b, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), sum)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows()["tasks"] != tasks || m.Rows()["task_details"] != outcomes {
		t.Fatalf("the export holds %v; January had %d tasks, %d outcomes", m.Rows(), tasks, outcomes)
	}
	if n := scalar(t, db, `SELECT count(*) FROM proof_log WHERE kind = 'export' AND data::json->>'manifest_sha256' = '`+sum+`'`); n != 1 {
		t.Fatalf("the manifest's hash is in %d export leaves", n)
	}
	r := run(t, env, "verify")
	if r.code != 0 || !strings.Contains(r.stdout, "detached to cold storage") {
		t.Fatalf("verify after the detach: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	archivetest.AssertRollups(t, db)

	r = run(t, env, "import", "--month", "2026-01")
	if r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	if after := fingerprint(); after != before {
		t.Fatal("the imported January differs from the one that left")
	}
	if r := run(t, env, "verify"); r.code != 0 || strings.Contains(r.stdout, "detached") {
		t.Fatalf("verify after the import: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
}
