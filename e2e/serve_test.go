package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/proof"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// TestServeRunsProbesMetricsAndStopsGracefully: a 1-second schedule runs
// several syncs; the probes and metrics answer; SIGTERM mid-run exits 0
// within the grace period and the cancelled run is recorded with the reason.
func TestServeRunsProbesMetricsAndStopsGracefully(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(2000, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	p := start(t, baseEnv(a, db), "serve", "--schedule", "* * * * * *", "--listen", "127.0.0.1:0", "--shutdown-grace", "1s")
	addr := p.httpAddr(t)

	// A run's row commits before its metrics are counted: wait for both.
	eventually(t, 30*time.Second, "3 successful runs", func() bool {
		_, m := get(t, "http://"+addr+"/metrics")
		return scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'succeeded'`) >= 3 &&
			metric(t, m, `mps_archiver_sync_runs_total{result="succeeded"}`) >= 3
	})
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("readyz %d %q", code, body)
	}
	_, m := get(t, "http://"+addr+"/metrics")
	if v := metric(t, m, `mps_archiver_sync_runs_total{result="succeeded"}`); v < 3 {
		t.Fatalf("succeeded runs %v", v)
	}
	if v := metric(t, m, `mps_archiver_retention_headroom_seconds`); v < 167*3600 || v > 168*3600 {
		t.Fatalf("headroom %v", v)
	}
	// The first run is full; the ones after it, incremental, list only
	// what can have changed.
	full := metric(t, m, `mps_archiver_runs_by_kind_total{kind="full",result="succeeded"}`)
	inc := metric(t, m, `mps_archiver_runs_by_kind_total{kind="incremental",result="succeeded"}`)
	if full != 1 || inc < 2 {
		t.Fatalf("%v full and %v incremental runs", full, inc)
	}
	fullReq := metric(t, m, `mps_archiver_run_requests_total{action="DescribeTasks",kind="full"}`)
	incReq := metric(t, m, `mps_archiver_run_requests_total{action="DescribeTasks",kind="incremental"}`)
	if v := metric(t, m, `mps_archiver_api_requests_total{code="OK",status="FINISH"}`); v < 20 || incReq/inc >= fullReq {
		t.Fatalf("FINISH requests %v; %v requests by the full run, %v by %v incremental ones", v, fullReq, incReq, inc)
	}
	if v := metric(t, m, `mps_archiver_tasks_total{outcome="inserted"}`); v != 2000 {
		t.Fatalf("inserted %v", v)
	}
	for _, name := range []string{"mps_archiver_last_success_timestamp_seconds", "mps_archiver_sync_run_duration_seconds_count",
		`mps_archiver_pages_total{status="WAITING"}`, `mps_archiver_runs_skipped_total{reason="locked"}`, "mps_archiver_coverage_gaps_total",
		"mps_archiver_rate_limiter_waits_total", "mps_archiver_last_run_failed"} {
		metric(t, m, name)
	}
	// Quiet when healthy: one line per run, nothing above info but the
	// warning that a tick was skipped (a 1 s schedule can outrun a run).
	for _, l := range p.logLines() {
		msg, _ := l["msg"].(string)
		if l["level"] != "INFO" && !strings.HasPrefix(msg, "sync skipped") {
			t.Fatalf("unexpected log line %v", l)
		}
	}

	// Slow the API so the next run is mid-drain when SIGTERM arrives.
	slowed := time.Now()
	// A run takes 3 round trips or more (an incremental one: WAITING,
	// PROCESSING, FINISH since the last run) at 700 ms: past the 1 s grace.
	a.sim.SetFaults(simulator.Faults{Latency: 700 * time.Millisecond})
	eventually(t, 10*time.Second, "a slow run in progress", func() bool {
		return pgtest.Scalar[bool](t, db, `SELECT count(*) = 1 FROM sync_runs WHERE status = 'running' AND started_at > $1`, slowed)
	})
	sent := time.Now()
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, p.stderr.String())
	}
	if el := time.Since(sent); el > 6*time.Second {
		t.Fatalf("shutdown took %s with a 1s grace", el)
	}
	rows := pgtest.Query(t, db, `SELECT status, coalesce(error, '') FROM sync_runs ORDER BY id DESC LIMIT 1`)
	if rows[0][0] != "failed" || strings.Count(rows[0][1].(string), "grace period of 1s expired") != 1 {
		t.Fatalf("last run %v", rows[0])
	}
	if n := scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'running'`); n != 0 {
		t.Fatalf("%d runs left running", n)
	}
	// A routine stop is a warning, not an error: nothing pages on a deploy.
	var stopped bool
	for _, l := range p.logLines() {
		if l["level"] == "ERROR" {
			t.Errorf("an error logged on a routine stop: %v", l)
		}
		if l["level"] == "WARN" && strings.HasPrefix(fmt.Sprint(l["msg"]), "sync stopped before it finished") &&
			strings.Contains(fmt.Sprint(l["reason"]), "grace period of 1s expired") {
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no \"sync stopped\" warning:\n%s", p.stderr.String())
	}
}

// TestReplicasNeverOverlap: three serve processes on one database never
// sync at the same time, and count the runs they skipped.
func TestReplicasNeverOverlap(t *testing.T) {
	t.Parallel()
	d := 8 * time.Second
	if long() {
		d = 20 * time.Second
	}
	now := time.Now().UTC()
	a := newAPI(t, generate(3000, now, nil), simulator.NewClock(now, 0), simulator.Faults{Latency: 3 * time.Millisecond})
	db := migrated(t)
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, start(t, baseEnv(a, db), "serve", "--schedule", "* * * * * *", "--listen", "127.0.0.1:0"))
	}
	var addrs []string
	for _, p := range procs {
		addrs = append(addrs, p.httpAddr(t))
	}
	// Run for d at least, and on until three runs are recorded and a tick
	// has met the lock, however slow the machine.
	skippedTotal := func() (total float64) {
		for _, addr := range addrs {
			_, m := get(t, "http://"+addr+"/metrics")
			total += metric(t, m, `mps_archiver_runs_skipped_total{reason="locked"}`)
		}
		return total
	}
	time.Sleep(d)
	eventually(t, 2*time.Minute, "three runs and a tick skipped for the lock", func() bool {
		return skippedTotal() > 0 && scalar(t, db, `SELECT count(*) FROM sync_runs`) >= 3
	})
	skipped := skippedTotal()
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if code := p.wait(t, 40*time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
	}
	overlaps := scalar(t, db, `
SELECT count(*) FROM sync_runs a JOIN sync_runs b ON a.id < b.id
 WHERE tstzrange(a.started_at, coalesce(a.finished_at, 'infinity')) && tstzrange(b.started_at, coalesce(b.finished_at, 'infinity'))`)
	runs := scalar(t, db, `SELECT count(*) FROM sync_runs`)
	hosts := scalar(t, db, `SELECT count(DISTINCT host) FROM sync_runs`)
	t.Logf("%s: %d runs, %v skipped for the lock, %d overlaps", d, runs, skipped, overlaps)
	if overlaps != 0 || runs < 3 || skipped == 0 || hosts != 1 {
		t.Fatalf("%d overlapping runs of %d, %v skipped", overlaps, runs, skipped)
	}
	archivetest.AssertMatchesTruth(t, db, a.sim.Truth())
}

// TestPostgresOutageDuringServe stops its own PostgreSQL for a few seconds
// under a running serve: runs fail and are logged, the process stays up,
// and the first run after PostgreSQL returns completes the archive.
func TestPostgresOutageDuringServe(t *testing.T) {
	ctx := context.Background()
	srv, err := pgtemp.Start(ctx, pgtemp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(true)
	db := srv.URL("postgres")
	if r := run(t, map[string]string{"DATABASE_URL": db}, "migrate", "up"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	now := time.Now().UTC()
	clock := simulator.NewClock(now, 60)
	// Six days of history: none of it ages out of the window while the clock
	// runs, so the archive can be compared with the API's truth.
	a := newAPI(t, generate(2000, now, func(c *simulator.GenConfig) {
		c.Window, c.ArrivalsPerHour, c.Horizon = 6*24*time.Hour, 3600, 2*time.Hour
	}), clock, simulator.Faults{Latency: 2 * time.Millisecond})
	env := baseEnv(a, db)
	env["MPS_RATE_LIMIT"] = "5" // runs long enough for the outage to land in one
	p := start(t, env, "serve", "--schedule", "* * * * * *", "--listen", "127.0.0.1:0")
	addr := p.httpAddr(t)
	eventually(t, 60*time.Second, "a successful run, then another under way", func() bool {
		return scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'succeeded'`) >= 1 &&
			scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'running'`) == 1
	})
	if err := srv.Restart(ctx, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	if p.exited() {
		t.Fatalf("serve exited during the outage:\n%s", p.stderr.String())
	}
	eventually(t, 30*time.Second, "the failure logged", func() bool {
		for _, l := range p.logLines() {
			if l["msg"] == "sync failed" || l["level"] == "ERROR" {
				return true
			}
		}
		return false
	})
	// Freeze the API, and wait for a run that started after the outage.
	clock.SetSpeed(0)
	var lastOK int64
	eventually(t, 30*time.Second, "a successful run after the outage", func() bool {
		return pgtest.Scalar[bool](t, db, fmt.Sprintf(`SELECT count(*) > 0 FROM sync_runs WHERE status = 'succeeded' AND started_at > '%s'`, restarted.Add(time.Second).Format(time.RFC3339Nano)))
	})
	_, m := get(t, "http://"+addr+"/metrics")
	lastOK = int64(metric(t, m, `mps_archiver_sync_runs_total{result="succeeded"}`))
	if v := metric(t, m, `mps_archiver_last_run_failed`); v != 0 && lastOK == 0 {
		t.Fatalf("metrics after recovery:\n%s", m)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 40*time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// The process lived through the outage: each run it cut short carries
	// its own error, none is written off as abandoned.
	for _, row := range pgtest.Query(t, db, `SELECT id, status, coalesce(error, '') FROM sync_runs WHERE status <> 'succeeded' ORDER BY id`) {
		t.Logf("run %v %v: %v", row[0], row[1], row[2])
		if row[1] != "failed" || strings.HasPrefix(row[2].(string), "abandoned") {
			t.Errorf("run %v is %v: %v", row[0], row[1], row[2])
		}
	}
	// One more run with the API frozen makes the archive comparable.
	if r := run(t, baseEnv(a, db), "sync"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	archivetest.AssertMatchesTruth(t, db, a.sim.Truth())
}

// TestCoverageGapFromTheAPIClock: an 8-day outage on the simulator's clock
// is recorded as a gap and logged at error level.
func TestCoverageGapFromTheAPIClock(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	clock := simulator.NewClock(now, 0)
	a := newAPI(t, generate(300, now, func(c *simulator.GenConfig) { c.ArrivalsPerHour, c.Horizon = 10, 9*24*time.Hour }), clock, simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	if r := run(t, env, "sync"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	clock.Advance(8 * 24 * time.Hour)
	r := run(t, env, "sync")
	if r.code != 0 || !strings.Contains(r.stderr, `"level":"ERROR","msg":"coverage gap`) {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if hours := scalar(t, db, `SELECT extract(epoch FROM gap_end - gap_start)::bigint / 3600 FROM coverage_gaps`); hours != 24 {
		t.Fatalf("gap of %d hours", hours)
	}
	out := run(t, env, "report", "--format", "json")
	var rep struct {
		Gaps []struct {
			Start time.Time `json:"gap_start"`
		} `json:"coverage_gaps"`
	}
	if out.code != 0 || json.Unmarshal([]byte(out.stdout), &rep) != nil || len(rep.Gaps) != 1 || !rep.Gaps[0].Start.Equal(now.Truncate(time.Second)) {
		t.Fatalf("report: %s %s", out.stdout, out.stderr)
	}
}

// TestSecretsNeverLeak runs successful and failing syncs and a debug-level
// serve with distinctive secrets, then searches every byte of output,
// /metrics and a pg_dump.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const dbPassword = "DBpw-e2e-7Qx!9zK"
	now := time.Now().UTC()
	a := newAPI(t, generate(300, now, nil), simulator.NewClock(now, 0), simulator.Faults{ErrorRate: 0.1, Seed: 3})
	db := migrated(t)
	pgtest.Exec(t, db, fmt.Sprintf(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'leak_test') THEN CREATE ROLE leak_test LOGIN SUPERUSER PASSWORD '%s'; END IF; END $$`, dbPassword))
	withPw := strings.Replace(db, "postgres@", "leak_test:"+strings.ReplaceAll(dbPassword, "!", "%21")+"@", 1)
	env := baseEnv(a, withPw)
	env["LOG_LEVEL"] = "debug"
	// The proof log's signing key: in a file, as the docs say, and wrong
	// in a variable for one run.
	signingKey, _, err := proof.GenerateKey("leak-test")
	if err != nil {
		t.Fatal(err)
	}
	signingFile := filepath.Join(t.TempDir(), "signing.key")
	if err := os.WriteFile(signingFile, []byte(signingKey), 0o600); err != nil {
		t.Fatal(err)
	}
	env["MPS_ARCHIVER_SIGNING_KEY_FILE"] = signingFile
	// Cold months on, to an S3 bucket whose secret is in a file: it must
	// not surface in a log line, /metrics or the archive.
	s3Secret := filepath.Join(t.TempDir(), "s3.secret")
	if err := os.WriteFile(s3Secret, []byte("ColdS3Secret4Wx"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["MPS_ARCHIVE_KEEP_MONTHS"], env["MPS_ARCHIVE_DESTINATION"] = "120", "s3://archive/cold"
	env["MPS_ARCHIVE_S3_ENDPOINT"], env["MPS_ARCHIVE_S3_ACCESS_KEY_ID"] = "http://127.0.0.1:9", "AKIDcold"
	env["MPS_ARCHIVE_S3_SECRET_ACCESS_KEY_FILE"] = s3Secret
	const badSigningKey = "PRIVATE+KEY+leak-test+0badc0de+SigningSecret7Kq"
	var all strings.Builder
	collect := func(r result) { all.WriteString(r.stdout + r.stderr) }
	badKey := baseEnv(a, withPw)
	badKey["MPS_ARCHIVER_SIGNING_KEY"] = badSigningKey
	if r := run(t, badKey, "sync"); r.code == 0 || !strings.Contains(r.stderr, "signing") {
		t.Fatalf("a malformed signing key: exit %d: %s", r.code, r.stderr)
	} else {
		collect(r)
	}

	collect(run(t, env, "sync"))
	// A destination written with its credentials is refused, without them.
	inURL := baseEnv(a, withPw)
	inURL["MPS_ARCHIVE_KEEP_MONTHS"], inURL["MPS_ARCHIVE_DESTINATION"] = "3", "s3://AKIDcold:ColdUrlSecret9Zq@archive/cold"
	if r := run(t, inURL, "sync"); r.code == 0 || !strings.Contains(r.stderr, "holds credentials") {
		t.Fatalf("a destination with credentials: exit %d: %s", r.code, r.stderr)
	} else {
		collect(r)
	}
	collect(run(t, env, "status", "--format", "json"))
	wrong := baseEnv(a, withPw)
	wrong["TENCENTCLOUD_SECRET_KEY"] = "wrong-" + secretKey
	wrong["LOG_LEVEL"] = "debug"
	collect(run(t, wrong, "sync"))
	badDB := baseEnv(a, strings.Replace(withPw, "127.0.0.1:", "127.0.0.1:1", 1)+"&connect_timeout=2")
	collect(run(t, badDB, "sync"))
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(secretKey), 0o600)
	fileEnv := baseEnv(a, withPw)
	delete(fileEnv, "TENCENTCLOUD_SECRET_KEY")
	fileEnv["TENCENTCLOUD_SECRET_KEY_FILE"] = keyFile
	fileEnv["LOG_LEVEL"] = "debug"
	collect(run(t, fileEnv, "report", "--format", "json"))

	p := start(t, env, "serve", "--schedule", "* * * * * *", "--listen", "127.0.0.1:0")
	addr := p.httpAddr(t)
	eventually(t, 20*time.Second, "two runs", func() bool {
		return scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status <> 'running'`) >= 4
	})
	_, m := get(t, "http://"+addr+"/metrics")
	_, ready := get(t, "http://"+addr+"/readyz")
	if code, cp := get(t, "http://"+addr+"/checkpoint"); code != 200 || !strings.Contains(cp, "— leak-test ") {
		t.Fatalf("/checkpoint: %d %s", code, cp)
	} else {
		all.WriteString(cp)
	}
	p.signal(syscall.SIGTERM)
	p.wait(t, 30*time.Second)
	all.WriteString(p.stderr.String() + p.stdout.String() + m + ready)

	bin, err := pgtemp.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command(filepath.Join(bin, "pg_dump"), "--data-only", db).CombinedOutput()
	if err != nil {
		t.Fatalf("pg_dump: %v %s", err, dump)
	}
	all.Write(dump)

	text := all.String()
	if !strings.Contains(text, "AuthFailure.SignatureFailure") || !strings.Contains(text, "sync succeeded") {
		t.Fatalf("the runs did not happen as planned:\n%s", text)
	}
	keyPart := signingKey[strings.LastIndex(signingKey, "+")+1:]
	for _, secret := range []string{secretKey, dbPassword, strings.ReplaceAll(dbPassword, "!", "%21"), keyPart, "SigningSecret7Kq", "ColdS3Secret4Wx", "ColdUrlSecret9Zq"} {
		if i := strings.Index(text, secret); i >= 0 {
			t.Fatalf("secret %q found: …%s…", secret, text[max(0, i-200):min(len(text), i+100)])
		}
	}
	if !strings.Contains(text, "leak_test:xxxxx@") {
		t.Logf("note: no redacted database URL was printed")
	}
}

// TestServeMigrateWithReplicas: serve refuses an unmigrated schema without
// --migrate; three replicas started at once with --migrate all come up.
func TestServeMigrateWithReplicas(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(100, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := pgtest.NewEmptyDB(t)
	r := run(t, baseEnv(a, db), "serve", "--listen", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.stderr, "migrate up") {
		t.Fatalf("unmigrated serve: exit %d %s", r.code, r.stderr)
	}
	var procs []*proc
	for i := 0; i < 3; i++ {
		procs = append(procs, start(t, baseEnv(a, db), "serve", "--migrate", "--listen", "127.0.0.1:0", "--schedule", "@every 1h"))
	}
	for _, p := range procs {
		addr := p.httpAddr(t)
		eventually(t, 20*time.Second, "ready", func() bool {
			code, _ := get(t, "http://"+addr+"/readyz")
			return code == 200
		})
	}
	for _, p := range procs {
		p.signal(syscall.SIGTERM)
		if code := p.wait(t, 30*time.Second); code != 0 {
			t.Fatalf("exit %d: %s", code, p.stderr.String())
		}
	}
	if v := scalar(t, db, `SELECT version FROM schema_migrations`); v != int64(migrations.Latest()) {
		t.Fatalf("schema version %d", v)
	}
	pgtest.Exec(t, db, `UPDATE schema_migrations SET version = 99`)
	r = run(t, baseEnv(a, db), "serve", "--migrate", "--listen", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.stderr, "newer than this binary") {
		t.Fatalf("newer schema: exit %d %s", r.code, r.stderr)
	}
}

// TestServeStopsWritingWhenTheSchemaMovesAhead: with the schema moved past
// the binary's version under a running serve (a rolling update's new pod
// migrated), no run starts: each tick is skipped, counted and explained;
// when the schema is the binary's again, runs resume.
func TestServeStopsWritingWhenTheSchemaMovesAhead(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(300, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	p := start(t, baseEnv(a, db), "serve", "--schedule", "* * * * * *", "--listen", "127.0.0.1:0")
	addr := p.httpAddr(t)
	eventually(t, 30*time.Second, "a successful run", func() bool {
		return scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'succeeded'`) >= 1
	})
	latest := migrations.Latest()
	pgtest.Exec(t, db, fmt.Sprintf(`UPDATE schema_migrations SET version = %d`, latest+1))
	// A run already going may finish; none starts after it.
	eventually(t, 30*time.Second, "a tick skipped for the schema", func() bool {
		_, m := get(t, "http://"+addr+"/metrics")
		return metric(t, m, `mps_archiver_runs_skipped_total{reason="schema"}`) >= 2
	})
	before := scalar(t, db, `SELECT count(*) FROM sync_runs`)
	eventually(t, 30*time.Second, "three more skipped ticks", func() bool {
		_, m := get(t, "http://"+addr+"/metrics")
		return metric(t, m, `mps_archiver_runs_skipped_total{reason="schema"}`) >= 5
	})
	if after := scalar(t, db, `SELECT count(*) FROM sync_runs`); after != before {
		t.Fatalf("%d runs started with the schema ahead", after-before)
	}
	if code, _ := get(t, "http://"+addr+"/readyz"); code != 503 {
		t.Fatalf("readyz %d with the schema ahead", code)
	}
	if !strings.Contains(p.stderr.String(), "sync skipped: the database schema is not the one this binary knows") {
		t.Fatal("no log line says why runs are skipped")
	}
	pgtest.Exec(t, db, fmt.Sprintf(`UPDATE schema_migrations SET version = %d`, latest))
	eventually(t, 30*time.Second, "runs to resume", func() bool {
		return scalar(t, db, `SELECT count(*) FROM sync_runs`) > before
	})
	p.signal(syscall.SIGTERM)
	p.wait(t, 30*time.Second)
}

// TestSecondSignalRecordsTheRun: SIGTERM starts the grace period; a second
// SIGTERM stops the running sync at once, yet its outcome is recorded
// before the process exits (it used to stay "running" until the next run
// called it abandoned).
func TestSecondSignalRecordsTheRun(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	a := newAPI(t, generate(3000, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	db := migrated(t)
	env := baseEnv(a, db)
	env["MPS_RATE_LIMIT"] = "2" // a run of 30-odd requests lasts over 15 s
	p := start(t, env, "serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "5m")
	addr := p.httpAddr(t)
	eventually(t, 30*time.Second, "a running sync", func() bool {
		return scalar(t, db, `SELECT count(*) FROM sync_runs WHERE status = 'running' AND pages > 0`) == 1
	})
	// A fresh install, its first drain under way: the whole window is
	// still ahead (0 used to page "critical" on every new install).
	_, m := get(t, "http://"+addr+"/metrics")
	if h := metric(t, m, "mps_archiver_retention_headroom_seconds"); h < 167*3600 || h > 168*3600 {
		t.Errorf("fresh install: retention headroom %v s", h)
	}
	p.signal(syscall.SIGTERM)
	eventually(t, 10*time.Second, "the first signal's log line", func() bool {
		return strings.Contains(p.stderr.String(), "shutting down")
	})
	if p.exited() {
		t.Fatalf("exited within the grace period:\n%s", p.stderr.String())
	}
	p.signal(syscall.SIGTERM)
	code := p.wait(t, 30*time.Second)
	var status, errText string
	row := pgtest.Query(t, db, `SELECT status, coalesce(error, '') FROM sync_runs`)
	if len(row) != 1 {
		t.Fatalf("%d runs", len(row))
	}
	status, errText = row[0][0].(string), row[0][1].(string)
	if status != "failed" || !strings.Contains(errText, "second SIGTERM: stopped at once") {
		t.Fatalf("exit %d; the run is %s: %q\n%s", code, status, errText, p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "recording the run's outcome") {
		t.Errorf("the second signal was not explained:\n%s", p.stderr.String())
	}
	t.Logf("exit %d; run recorded as %s: %s", code, status, errText)
}
