package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

func TestSyncAndExitStatus(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(1500, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	r := run(t, env, "sync")
	if r.code != 0 {
		t.Fatalf("sync exit %d: %s", r.code, r.stderr)
	}
	// One JSON summary line, and nothing else at info level.
	if n := strings.Count(strings.TrimSpace(r.stderr), "\n") + 1; n != 1 || !strings.Contains(r.stderr, `"msg":"sync succeeded"`) {
		t.Fatalf("want one summary line, got %d:\n%s", n, r.stderr)
	}
	archivetest.AssertMatchesTruth(t, db, a.sim.Truth())

	// Another process holds the run lock: exit 3, nothing recorded.
	conn := pgtest.Conn(t, db)
	if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_lock($1)`, runLockKey); err != nil {
		t.Fatal(err)
	}
	runs := scalar(t, db, `SELECT count(*) FROM sync_runs`)
	if r := run(t, env, "sync"); r.code != 3 || !strings.Contains(r.stderr, "sync skipped: another process holds the run lock") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("locked: exit %d: %s", r.code, r.stderr)
	}
	if scalar(t, db, `SELECT count(*) FROM sync_runs`) != runs {
		t.Fatal("a skipped sync recorded a run")
	}

	// With details queued and slow to answer, a skipped sync gives back the
	// jobs its detail workers claimed, rather than leaving them leased.
	pgtest.Exec(t, db, `DELETE FROM task_details WHERE task_id IN (SELECT task_id FROM tasks WHERE status = 'FINISH' ORDER BY task_id LIMIT 40)`)
	pgtest.Exec(t, db, `INSERT INTO task_detail_queue (task_id, deadline, give_up_at)
SELECT task_id, now() + interval '1 day', now() + interval '2 days' FROM tasks t
 WHERE status = 'FINISH' AND NOT EXISTS (SELECT 1 FROM task_details d WHERE d.task_id = t.task_id) ON CONFLICT DO NOTHING`)
	a.sim.SetFaults(simulator.Faults{Latency: 500 * time.Millisecond, Actions: []string{mps.ActionDescribeTaskDetail}})
	for range 3 {
		if r := run(t, env, "sync"); r.code != 3 {
			t.Fatalf("locked: exit %d: %s", r.code, r.stderr)
		}
		if n := scalar(t, db, `SELECT count(*) FROM task_detail_queue WHERE leased_until > now()`); n != 0 {
			t.Fatalf("a skipped sync left %d detail jobs leased", n)
		}
	}
}

// runLockKey is storage's advisory lock key ("mps-sync" as an int64).
const runLockKey int64 = 7885929586573799011

// TestKillNineMidSync kills `sync` at random moments, then runs a clean
// sync: the archive must equal the truth, without duplicates or regressions,
// and no run may stay "running".
func TestKillNineMidSync(t *testing.T) {
	t.Parallel()
	rounds, n := 4, 6000
	if long() {
		rounds, n = 25, 20000
	}
	now := time.Now().UTC()
	a := newAPI(t, generate(n, now, nil), simulator.NewClock(now, 0), simulator.Faults{Latency: 8 * time.Millisecond, Jitter: 8 * time.Millisecond})
	db := migrated(t)
	env := baseEnv(a, db)
	// The client's rate limit, not the machine's speed, sets how long a run
	// takes: over 60 requests at 50/s last more than 1.2 s, longer than any
	// sleep below, so every kill lands mid-run on an idle machine too.
	env["MPS_RATE_LIMIT"] = "50"
	killedMidRun := killRounds(t, env, rounds, 1000*time.Millisecond)
	archived := scalar(t, db, `SELECT count(*) FROM tasks`)
	r := syncAfterKill(t, env)
	if r.code != 0 {
		t.Fatalf("clean sync after kills: exit %d: %s", r.code, r.stderr)
	}
	t.Logf("%d rounds, %d killed mid-run, %d of %d tasks archived before the clean sync", rounds, killedMidRun, archived, n)
	if killedMidRun == 0 {
		t.Fatal("no kill landed mid-run: the test did not test crashes")
	}
	archivetest.AssertMatchesTruth(t, db, a.sim.Truth())
	if left := scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'running'`); left != 0 {
		t.Fatalf("%d runs left running", left)
	}
	if dup := scalar(t, db, `SELECT count(*) - count(DISTINCT task_id) FROM tasks`); dup != 0 {
		t.Fatalf("%d duplicates", dup)
	}
}

// TestKillNineUnderTokenVariants: kill -9 mid-sync, again and again, against
// a server whose pages start after their token, that echoes the last token
// and rejects tokens whose task moved, while tasks move through their lists;
// then a clean sync of the frozen world leaves the archive equal to the truth.
func TestKillNineUnderTokenVariants(t *testing.T) {
	t.Parallel()
	rounds := 4
	if long() {
		rounds = 20
	}
	now := time.Now().UTC()
	tasks := generate(4000, now, func(c *simulator.GenConfig) {
		c.Window = 3 * time.Hour
		c.QueueMean, c.ProcessMean = 3*time.Minute, 5*time.Minute
		c.ArrivalsPerHour, c.Horizon = 2000, 6*time.Hour
		c.Vocabulary = simulator.VocabularyMixed
	})
	clock := simulator.NewClock(now, 300)
	a := newAPI(t, tasks, clock, simulator.Faults{Latency: 4 * time.Millisecond, Jitter: 4 * time.Millisecond})
	a.sim.SetVariant(simulator.Variant{ExclusiveTokens: true, EchoLastToken: true, RejectMovedTokens: true})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_DETAILS_RATE_LIMIT"] = "100"
	env["MPS_RATE_LIMIT"] = "40" // over 45 requests: a run outlasts every sleep below
	killedMidRun := killRounds(t, env, rounds, 700*time.Millisecond)
	if killedMidRun == 0 {
		t.Fatal("no kill landed mid-run: the test did not test crashes")
	}
	clock.SetSpeed(0)
	r := syncAfterKill(t, env)
	if r.code != 0 {
		t.Fatalf("clean sync after kills: exit %d: %s", r.code, r.stderr)
	}
	archivetest.AssertMatchesTruth(t, db, a.sim.Truth())
	recovered := scalar(t, db, `SELECT coalesce(sum(tokens_recovered), 0) FROM sync_runs WHERE status = 'succeeded'`)
	if recovered == 0 {
		t.Fatal("the clean sync recovered no skipped token: the test did not test exclusive tokens")
	}
	t.Logf("%d rounds, %d killed mid-run; the clean sync recovered %d skipped tokens", rounds, killedMidRun, recovered)
}

// syncAfterKill runs sync until it is not skipped for the run lock: a
// killed process's session, and its advisory lock, can outlive it a moment
// on a busy server (exit 3 is then the right answer).
func syncAfterKill(t *testing.T, env map[string]string) result {
	t.Helper()
	var r result
	eventually(t, time.Minute, "the killed process's lock to go", func() bool {
		r = run(t, env, "sync")
		return r.code != exitLockedForTest
	})
	return r
}

// exitLockedForTest is sync's exit status when another process holds the
// run lock.
const exitLockedForTest = 3

// killRounds starts `sync` rounds times and kill -9s it after a random
// 100 ms…maxSleep; it returns how many kills landed while it ran.
func killRounds(t *testing.T, env map[string]string, rounds int, maxSleep time.Duration) (killedMidRun int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	for range rounds {
		p := start(t, env, "sync")
		time.Sleep(100*time.Millisecond + time.Duration(rng.Int64N(int64(maxSleep-100*time.Millisecond))))
		if !p.exited() {
			killedMidRun++
		}
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
	return killedMidRun
}

// TestHostileConfiguration: each bad input is one line on stderr naming the
// problem, a non-zero exit, and nothing written.
func TestHostileConfiguration(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(10, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	os.WriteFile(unknownKey, []byte("mps:\n  endpiont: https://x\n"), 0o600)
	unreadable := filepath.Join(dir, "unreadable.yaml")
	os.WriteFile(unreadable, []byte("mps: {}\n"), 0o000)
	if os.Geteuid() == 0 {
		unreadable = dir // a directory: unreadable as a file even for root
	}
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"missing config", nil, []string{"sync", "--config", filepath.Join(dir, "nope.yaml")}, "nope.yaml"},
		{"unreadable config", nil, []string{"sync", "--config", unreadable}, "config file"},
		{"unknown key", nil, []string{"sync", "--config", unknownKey}, "endpiont"},
		{"bad cron spec", nil, []string{"serve", "--schedule", "61 * * * *", "--listen", "127.0.0.1:0"}, "schedule"},
		{"bare CRON_TZ", nil, []string{"serve", "--schedule", "CRON_TZ=", "--listen", "127.0.0.1:0"}, "schedule"},
		{"bad database URL", map[string]string{"DATABASE_URL": "postgres://archiver:pw-in-url-1@127.0.0.1:1/x?connect_timeout=2"}, []string{"sync"}, "127.0.0.1:1"},
		{"not a database URL", map[string]string{"DATABASE_URL": "mysql:somewhere"}, []string{"sync"}, "database_url"},
		{"endpoint without scheme", map[string]string{"MPS_ENDPOINT": "mps.tencentcloudapi.com"}, []string{"sync"}, "https://"},
		{"rate limit out of range", map[string]string{"MPS_RATE_LIMIT": "50000"}, []string{"sync"}, "mps.rate_limit"},
		{"no credentials", map[string]string{"TENCENTCLOUD_SECRET_ID": "", "TENCENTCLOUD_SECRET_KEY": ""}, []string{"sync"}, "TENCENTCLOUD_SECRET_ID"},
		{"unknown command", nil, []string{"synk"}, "unknown command"},
		{"bad flag", nil, []string{"sync", "--no-such-flag"}, "no-such-flag"},
	}
	for _, c := range cases {
		env := baseEnv(a, db)
		for k, v := range c.env {
			env[k] = v
		}
		r := run(t, env, c.args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q", c.name, r.code, r.stderr)
			continue
		}
		if c.name != "bad flag" && len(lines) != 1 {
			t.Errorf("%s: %d lines: %q", c.name, len(lines), r.stderr)
		}
		if strings.Contains(r.stderr, "pw-in-url-1") {
			t.Errorf("%s: the password leaked: %s", c.name, r.stderr)
		}
	}
	if n := scalar(t, db, `SELECT count(*) FROM sync_runs`) + scalar(t, db, `SELECT count(*) FROM tasks`); n != 0 {
		t.Fatalf("bad input wrote %d rows", n)
	}

	// An unmigrated database: sync says what to run.
	empty := pgtest.NewEmptyDB(t)
	r := run(t, baseEnv(a, empty), "sync")
	if r.code == 0 || !strings.Contains(r.stderr, "mps-archiver migrate up") {
		t.Fatalf("unmigrated: exit %d %s", r.code, r.stderr)
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	db := pgtest.NewEmptyDB(t)
	env := map[string]string{"DATABASE_URL": db}
	latest := migrations.Latest()
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "version"}, "none"},
		{[]string{"migrate", "up"}, fmt.Sprintf("applied 1 (sync_runs), 2 (tasks)")},
		{[]string{"migrate", "up"}, "nothing to apply: the schema is up to date"},
		{[]string{"migrate", "down", "--yes"}, fmt.Sprintf("schema version: %d", latest-1)},
		{[]string{"migrate", "up"}, fmt.Sprintf("applied %d (", latest)},
		{[]string{"migrate", "force", fmt.Sprint(latest)}, fmt.Sprintf("schema version: %d", latest)},
	} {
		r := run(t, env, step.args...)
		if r.code != 0 || !strings.Contains(r.stdout, step.want) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", step.args, r.code, r.stdout, r.stderr)
		}
	}
	// down deletes archived data: with no terminal to ask, it needs --yes,
	// and without it changes nothing; force takes only known versions.
	pgtest.Exec(t, db, `INSERT INTO tasks (task_id, status, raw, first_status) VALUES ('kept', 'FINISH', '{}', 'FINISH')`)
	for _, args := range [][]string{{"migrate", "down", "all"}, {"migrate", "down"}} {
		r := run(t, env, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "run again with --yes to confirm") || len(args) == 3 && (!strings.Contains(r.stderr, "2 (tasks)") || !strings.Contains(r.stderr, "1 rows of tasks")) {
			t.Fatalf("%v without --yes: exit %d: %s", args, r.code, r.stderr)
		}
	}
	// More steps than are applied is refused, not read as "all".
	if r := run(t, env, "migrate", "down", "99", "--yes"); r.code != 2 || !strings.Contains(r.stderr, fmt.Sprintf("down 99: only %d migrations are applied", latest)) {
		t.Fatalf("down 99: exit %d: %s", r.code, r.stderr)
	}
	if n := scalar(t, db, `SELECT count(*) FROM tasks`); n != 1 {
		t.Fatalf("the archive changed: %d tasks", n)
	}
	if r := run(t, env, "migrate", "force", "99"); r.code != 2 || !strings.Contains(r.stderr, "99 is not one of them") {
		t.Fatalf("force 99: exit %d: %s", r.code, r.stderr)
	}
	pgtest.Exec(t, db, `UPDATE schema_migrations SET dirty = true`)
	r := run(t, map[string]string{"DATABASE_URL": db, "TENCENTCLOUD_SECRET_ID": "x", "TENCENTCLOUD_SECRET_KEY": "y"}, "sync")
	if r.code == 0 || !strings.Contains(r.stderr, "dirty") || !strings.Contains(r.stderr, "migrate force") {
		t.Fatalf("dirty schema: %d %s", r.code, r.stderr)
	}
}
