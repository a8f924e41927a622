package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestStatus: `status` says on one screen how the archive is and exits 4
// while something needs attention (no run yet, a failed run, a schema
// behind the binary), 0 when nothing does; --format json says the same.
func TestStatus(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(300, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	r := run(t, env, "status")
	if r.code != 4 || !strings.Contains(r.stdout, "Needs attention:") || !strings.Contains(r.stdout, "no run yet") {
		t.Fatalf("fresh archive: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// The first run under way (hours on a large account): not "no run yet".
	pgtest.Exec(t, db, `INSERT INTO sync_runs (trigger, host, kind, status, started_at) VALUES ('sync', 'h', 'full', 'running', now() - interval '3 hours')`)
	r = run(t, env, "status")
	if r.code != 0 || strings.Contains(r.stdout, "no run yet") || !strings.Contains(r.stdout, "Running") {
		t.Fatalf("first run under way: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pgtest.Exec(t, db, `DELETE FROM sync_runs`)
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatalf("sync: %d %s", r.code, r.stderr)
	}
	r = run(t, env, "status")
	if r.code != 0 || !strings.Contains(r.stdout, "Nothing needs attention.") || !strings.Contains(r.stdout, "Last success") ||
		!strings.Contains(r.stdout, "time_range=supported") {
		t.Fatalf("after a sync: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = run(t, env, "status", "--format", "json")
	var js struct {
		LastSuccess *struct{ ID int64 } `json:"last_success"`
		Headroom    float64             `json:"retention_headroom_seconds"`
		Attention   []string            `json:"attention"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || r.code != 0 || js.LastSuccess == nil || js.Headroom < 160*3600 || len(js.Attention) != 0 {
		t.Fatalf("json: exit %d, %v: %s", r.code, err, r.stdout)
	}
	// A task of a month whose partition no run could make (its role was
	// not granted the function, a lock was not granted in time) is named;
	// the next run that can make it moves the task in.
	pgtest.Exec(t, db, `INSERT INTO tasks (task_id, status, create_time, raw, first_status, first_seen_at)
		VALUES ('stray', 'FINISH', '2019-02-03T00:00:00Z', '{}', 'FINISH', now() - interval '1 day')`)
	r = run(t, env, "status")
	if r.code != 4 || !strings.Contains(r.stdout, "1 tasks wait in the DEFAULT partition") {
		t.Fatalf("a task waiting for its partition: exit %d\n%s", r.code, r.stdout)
	}
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatalf("sync: %d %s", r.code, r.stderr)
	}
	if r = run(t, env, "status"); r.code != 0 || scalar(t, db, `SELECT count(*) FROM tasks_y2019m02`) != 1 {
		t.Fatalf("after a run made the partition: exit %d\n%s", r.code, r.stdout)
	}
	// The API fails: the failed run is named.
	a.sim.SetFaults(simulator.Faults{ErrorRate: 1, ErrorCodes: []string{"AuthFailure.SecretIdNotFound"}})
	if r := run(t, env, "sync"); r.code != 1 {
		t.Fatalf("failing sync: %d", r.code)
	}
	r = run(t, env, "status")
	if r.code != 4 || !strings.Contains(r.stdout, "failed: ") || !strings.Contains(r.stdout, "AuthFailure.SecretIdNotFound") {
		t.Fatalf("after a failed run: exit %d\n%s", r.code, r.stdout)
	}
	// A database nobody migrated.
	env["DATABASE_URL"] = pgtest.NewEmptyDB(t)
	r = run(t, env, "status")
	if r.code != 4 || !strings.Contains(r.stdout, "run `mps-archiver migrate up`") {
		t.Fatalf("unmigrated: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
