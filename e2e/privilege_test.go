package e2e

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// roles are the connections of deploy/postgres/least-privilege.sql's roles
// to one database.
type roles struct{ admin, owner, app, reader string }

// leastPrivilegeDB makes a database as the script's steps 1 and 2 say:
// roles, database owned by the owner role, the script run by the owner
// before anything is migrated.
func leastPrivilegeDB(t *testing.T) roles {
	t.Helper()
	admin := pgtest.NewEmptyDB(t)
	db := dbName(admin)
	// Roles belong to the cluster, which parallel tests share: they are made
	// under an advisory lock of the one database all tests can reach
	// (advisory locks are per database).
	pgtest.Exec(t, pgtest.AdminURL(), `DO $$ BEGIN
		PERFORM pg_advisory_xact_lock(7316001);
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_archiver_owner') THEN CREATE ROLE mps_archiver_owner LOGIN; END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_archiver_app') THEN CREATE ROLE mps_archiver_app LOGIN; END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_archiver_reader') THEN CREATE ROLE mps_archiver_reader NOLOGIN; END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_analyst') THEN
			CREATE ROLE mps_analyst LOGIN;
			GRANT mps_archiver_reader TO mps_analyst;
		END IF;
	END $$`)
	pgtest.Exec(t, admin, `ALTER DATABASE `+db+` OWNER TO mps_archiver_owner`)
	r := roles{admin: admin, owner: asUser(admin, "mps_archiver_owner"), app: asUser(admin, "mps_archiver_app"), reader: asUser(admin, "mps_analyst")}
	pgtest.Exec(t, r.owner, leastPrivilegeScript(t))
	return r
}

func leastPrivilegeScript(t *testing.T) string {
	t.Helper()
	script, err := os.ReadFile("../deploy/postgres/least-privilege.sql")
	if err != nil {
		t.Fatal(err)
	}
	return string(script)
}

// TestLeastPrivilege follows deploy/postgres/least-privilege.sql: the owner
// role migrates, the app role syncs (outcomes included), reports and can do
// nothing else; the script run again after the migrations changes nothing.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	r := leastPrivilegeDB(t)
	now := time.Now().UTC()
	a := newAPI(t, outcomePopulation(300, now), simulator.NewClock(now, 0), simulator.Faults{})
	start := time.Now()
	if res := run(t, baseEnv(a, r.app), "migrate", "up"); res.code == 0 {
		t.Fatal("the app role could migrate")
	} else {
		t.Logf("app migrate: exit %d in %s: %s", res.code, time.Since(start), res.stderr)
	}
	if res := run(t, baseEnv(a, r.owner), "migrate", "up"); res.code != 0 {
		t.Fatalf("owner migrate: %s", res.stderr)
	}
	env := baseEnv(a, r.app)
	// The queue is the one table the app deletes from.
	env["MPS_DETAILS_MODE"], env["MPS_DETAILS_RATE_LIMIT"] = "all", "1000"
	if res := run(t, env, "sync"); res.code != 0 {
		t.Fatalf("app sync: %s", res.stderr)
	}
	if res := run(t, env, "report"); res.code != 0 {
		t.Fatalf("app report: %s", res.stderr)
	}
	archivetest.AssertMatchesTruth(t, r.app, a.sim.Truth())
	if got, want := scalar(t, r.app, `SELECT count(*) FROM task_details`), finishedTasks(a); got != want {
		t.Errorf("outcomes captured by the app role: %d of %d finished tasks", got, want)
	}
	if n := scalar(t, r.app, `SELECT count(*) FROM task_detail_queue WHERE last_error <> ''`); n > 0 {
		t.Errorf("%d queued details failed: %s", n, pgtest.Scalar[string](t, r.app, `SELECT last_error FROM task_detail_queue WHERE last_error <> '' LIMIT 1`))
	}
	pgtest.Exec(t, r.owner, leastPrivilegeScript(t)) // idempotent, after migrations too

	conn := pgtest.Conn(t, r.app)
	for _, sql := range []string{
		`DROP TABLE tasks`, `DELETE FROM tasks`, `DELETE FROM task_details`, `TRUNCATE sync_runs`, `CREATE TABLE x (i int)`,
		`ALTER TABLE tasks ADD COLUMN x int`, `UPDATE schema_migrations SET version = 1`, `DELETE FROM schema_migrations`,
	} {
		if _, err := conn.Exec(context.Background(), sql); err == nil || !strings.Contains(err.Error(), "42501") && !strings.Contains(err.Error(), "must be owner") {
			t.Errorf("the app role could run %q: %v", sql, err)
		}
	}
}

// TestReaderSurvivesMigrations: a member of mps_archiver_reader reads every
// table and view, writes nothing, and keeps reading views that a migration
// dropped and created again (the default privileges, not a grant per view).
func TestReaderSurvivesMigrations(t *testing.T) {
	t.Parallel()
	r := leastPrivilegeDB(t)
	now := time.Now().UTC()
	a := newAPI(t, generate(200, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	if res := run(t, baseEnv(a, r.owner), "migrate", "up"); res.code != 0 {
		t.Fatalf("owner migrate: %s", res.stderr)
	}
	if res := run(t, baseEnv(a, r.app), "sync"); res.code != 0 || strings.Contains(res.stderr, "partitions") && strings.Contains(res.stderr, "could not") {
		t.Fatalf("app sync (exit %d) could not run or make partitions: %s", res.code, res.stderr)
	}
	relations := func() []string {
		var out []string
		for _, row := range pgtest.Query(t, r.admin, `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v') ORDER BY 1`) {
			out = append(out, row[0].(string))
		}
		return out
	}
	readAll := func(when string) {
		t.Helper()
		conn := pgtest.Conn(t, r.reader)
		rels := relations()
		if len(rels) < 19 {
			t.Fatalf("%s: only %d relations: %v", when, len(rels), rels)
		}
		for _, rel := range rels {
			if _, err := conn.Exec(context.Background(), `SELECT * FROM `+rel+` LIMIT 1`); err != nil {
				t.Errorf("%s: the reader cannot read %s: %v", when, rel, err)
			}
		}
		if _, err := conn.Exec(context.Background(), `SELECT * FROM report_stuck_processing('1 hour')`); err != nil {
			t.Errorf("%s: the reader cannot call report_stuck_processing: %v", when, err)
		}
		if n := pgtest.Scalar[int64](t, r.reader, `SELECT count(*) FROM report_daily_counts`); n == 0 {
			t.Errorf("%s: report_daily_counts is empty to the reader", when)
		}
		for _, sql := range []string{`INSERT INTO coverage_gaps (gap_start, gap_end) VALUES (now(), now())`, `UPDATE tasks SET status = 'x'`, `DELETE FROM task_detail_queue`,
			`SELECT mps_ensure_partitions('2100-01-01', '2101-01-01')`, `SELECT mps_maintain_partitions(24)`} {
			if _, err := conn.Exec(context.Background(), sql); err == nil || !strings.Contains(err.Error(), "42501") {
				t.Errorf("%s: the reader could run %q: %v", when, sql, err)
			}
		}
	}
	readAll("after the first migration")
	// Versions 16, 11 and 10 drop views on the way down and create them
	// anew on the way up (14 and 15 only replace them; 16 also makes the
	// task tables anew): an upgrade that recreates views and tables, done
	// as the owner.
	viewOID := func() int64 {
		return pgtest.Scalar[int64](t, r.admin, `SELECT coalesce(to_regclass('report_daily_outcomes')::oid::bigint, 0)`)
	}
	before := viewOID()
	// Down to version 9, before the outcome views of migration 10.
	if res := run(t, baseEnv(a, r.owner), "migrate", "down", strconv.Itoa(int(migrations.Latest())-9), "--yes"); res.code != 0 {
		t.Fatalf("owner migrate down: %s", res.stderr)
	}
	if viewOID() != 0 {
		t.Fatal("report_daily_outcomes survived migrate down")
	}
	if res := run(t, baseEnv(a, r.owner), "migrate", "up"); res.code != 0 {
		t.Fatalf("owner migrate up: %s", res.stderr)
	}
	if after := viewOID(); after == 0 || after == before {
		t.Fatalf("report_daily_outcomes was not created anew (oid %d, before %d)", after, before)
	}
	readAll("after views were dropped and created again")
}

func dbName(u string) string {
	pu, _ := url.Parse(u)
	return strings.TrimPrefix(pu.Path, "/")
}

func asUser(u, user string) string {
	pu, _ := url.Parse(u)
	pu.User = url.User(user)
	return pu.String()
}
