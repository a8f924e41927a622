package e2e

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestLeastPrivilege follows deploy/postgres/least-privilege.sql: the owner
// role migrates, the app role syncs and reports and can do nothing else.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	admin := pgtest.NewEmptyDB(t)
	db := dbName(admin)
	pgtest.Exec(t, admin, `DO $$ BEGIN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_archiver_owner') THEN CREATE ROLE mps_archiver_owner LOGIN; END IF;
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mps_archiver_app') THEN CREATE ROLE mps_archiver_app LOGIN; END IF;
	END $$`)
	pgtest.Exec(t, admin, `ALTER DATABASE `+db+` OWNER TO mps_archiver_owner`)
	owner, app := asUser(admin, "mps_archiver_owner"), asUser(admin, "mps_archiver_app")
	script, err := os.ReadFile("../deploy/postgres/least-privilege.sql")
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, owner, string(script))

	now := time.Now().UTC()
	a := newAPI(t, generate(500, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	start := time.Now()
	if r := run(t, baseEnv(a, app), "migrate", "up"); r.code == 0 {
		t.Fatal("the app role could migrate")
	} else {
		t.Logf("app migrate: exit %d in %s: %s", r.code, time.Since(start), r.stderr)
	}
	if r := run(t, baseEnv(a, owner), "migrate", "up"); r.code != 0 {
		t.Fatalf("owner migrate: %s", r.stderr)
	}
	pgtest.Exec(t, owner, string(script)) // once more, now that schema_migrations exists
	if r := run(t, baseEnv(a, app), "sync"); r.code != 0 {
		t.Fatalf("app sync: %s", r.stderr)
	}
	if r := run(t, baseEnv(a, app), "report"); r.code != 0 {
		t.Fatalf("app report: %s", r.stderr)
	}
	archivetest.AssertMatchesTruth(t, app, a.sim.Truth())

	conn := pgtest.Conn(t, app)
	for _, sql := range []string{
		`DROP TABLE tasks`, `DELETE FROM tasks`, `TRUNCATE sync_runs`, `CREATE TABLE x (i int)`,
		`ALTER TABLE tasks ADD COLUMN x int`, `UPDATE schema_migrations SET version = 1`,
	} {
		if _, err := conn.Exec(context.Background(), sql); err == nil || !strings.Contains(err.Error(), "42501") && !strings.Contains(err.Error(), "must be owner") {
			t.Errorf("the app role could run %q: %v", sql, err)
		}
	}
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
