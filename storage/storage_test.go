package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, url string) *storage.Store {
	t.Helper()
	st, err := storage.Open(context.Background(), url, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func TestMigrationsRoundTrip(t *testing.T) {
	t.Parallel()
	url := pgtest.NewEmptyDB(t)
	st := open(t, url)
	ctx := context.Background()
	if err := st.CheckSchema(ctx); !errors.Is(err, storage.ErrSchemaBehind) || !strings.Contains(err.Error(), "migrate up") {
		t.Fatalf("fresh database: %v", err)
	}
	mg, err := st.NewMigrator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	if err := mg.Up(); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckSchema(ctx); err != nil {
		t.Fatalf("after up: %v", err)
	}
	if err := mg.Down(0); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'`); n != 0 {
		t.Fatalf("%d tables left after down", n)
	}
	if err := mg.Up(); err != nil {
		t.Fatal(err)
	}
	if v, dirty, ok, err := mg.Version(); err != nil || !ok || dirty || v != migrations.Latest() {
		t.Fatalf("version %d dirty %v ok %v err %v", v, dirty, ok, err)
	}

	pgtest.Exec(t, url, `UPDATE schema_migrations SET dirty = true`)
	if err := st.CheckSchema(ctx); !errors.Is(err, storage.ErrSchemaDirty) || !strings.Contains(err.Error(), "migrate force") {
		t.Fatalf("dirty: %v", err)
	}
	pgtest.Exec(t, url, `UPDATE schema_migrations SET dirty = false, version = 999`)
	if err := st.CheckSchema(ctx); !errors.Is(err, storage.ErrSchemaAhead) {
		t.Fatalf("ahead: %v", err)
	}
}

func task(id string, created time.Time, sub ...string) mps.Task {
	raw := fmt.Sprintf(`{"TaskId":%q,"TaskType":"WorkflowTask","SubTaskTypes":[],"CreateTime":%q}`, id, created.Format(time.RFC3339))
	return mps.Task{TaskID: id, TaskType: "WorkflowTask", SubTaskTypes: sub, CreateTime: created, Raw: []byte(raw)}
}

func startRun(t *testing.T, st *storage.Store) int64 {
	t.Helper()
	r, err := st.StartRun(context.Background(), syncer.StartRunParams{Trigger: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r.RunID
}

func TestWritePageUpsertsMonotonically(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CST", 8*3600))

	a := task("a", created, `with "quote"`, `back\slash`, "plain")
	b := task("b", created)
	res, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusWaiting, Tasks: []mps.Task{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	if res != (syncer.PageResult{Inserted: 2}) {
		t.Fatalf("first write %+v", res)
	}
	// Same page again: nothing changes.
	res, _ = st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusWaiting, Tasks: []mps.Task{a, b}})
	if res != (syncer.PageResult{Unchanged: 2}) {
		t.Fatalf("re-write %+v", res)
	}
	// a finishes.
	a.FinishTime = created.Add(time.Hour)
	a.Raw = []byte(`{"TaskId":"a","FinishTime":"x"}`)
	res, _ = st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusFinish, Tasks: []mps.Task{a}})
	if res != (syncer.PageResult{Updated: 1}) {
		t.Fatalf("finish %+v", res)
	}
	// A stale PROCESSING listing of a must not move it back.
	res, _ = st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusProcessing, Tasks: []mps.Task{task("a", created)}})
	if res != (syncer.PageResult{Unchanged: 1}) {
		t.Fatalf("regression %+v", res)
	}
	rows := pgtest.Query(t, url, `SELECT task_id, status, first_status, sub_task_types, create_time, finish_time IS NULL, begin_process_time IS NULL FROM tasks ORDER BY task_id`)
	if fmt.Sprint(rows[0][:4]) != `[a FINISH WAITING [with "quote" back\slash plain]]` || !rows[0][4].(time.Time).Equal(created) || rows[0][5] != false || rows[0][6] != true {
		t.Fatalf("row a: %v", rows[0])
	}
	if fmt.Sprint(rows[1][:4]) != "[b WAITING WAITING []]" || rows[1][5] != true {
		t.Fatalf("row b: %v", rows[1])
	}
	changes := pgtest.Query(t, url, `SELECT task_id, from_status, to_status, run_id FROM task_status_changes ORDER BY id`)
	if fmt.Sprint(changes) != fmt.Sprintf("[[a WAITING FINISH %d]]", run) {
		t.Fatalf("changes %v", changes)
	}
	if err := st.RecordProgress(ctx, syncer.Progress{RunID: run, Pages: 4, Seen: 6, Inserted: 2, Updated: 1, Unchanged: 3, Skipped: 2, Warnings: 1}); err != nil {
		t.Fatal(err)
	}
	counters := pgtest.Query(t, url, `SELECT pages, tasks_seen, tasks_inserted, tasks_updated, tasks_unchanged, records_skipped, warnings FROM sync_runs WHERE id = $1`, run)
	if fmt.Sprint(counters) != "[[4 6 2 1 3 2 1]]" {
		t.Fatalf("run counters %v", counters)
	}
}

// TestResyncWritesNothing checks both counters the core issue names: no
// task row version and (almost) no WAL for a re-sync of unchanged data. It
// is not parallel: the WAL position is the whole server's, so it runs while
// this package's other tests wait, and with autovacuum off for the table so
// that only the re-sync's own writes count.
func TestResyncWritesNothing(t *testing.T) {
	url := pgtest.NewDB(t)
	st := open(t, url)
	// Storage parameters belong to the partitions, not the parent.
	for _, p := range pgtest.Query(t, url, `SELECT relid::regclass::text FROM pg_partition_tree('tasks') WHERE isleaf`) {
		pgtest.Exec(t, url, `ALTER TABLE `+p[0].(string)+` SET (autovacuum_enabled = off)`)
	}
	ctx := context.Background()
	run := startRun(t, st)
	created := time.Now().UTC().Truncate(time.Second)
	const n = 10_000
	pages := make([][]mps.Task, 0, n/100)
	for p := 0; p < n/100; p++ {
		var page []mps.Task
		for i := 0; i < 100; i++ {
			page = append(page, task(fmt.Sprintf("t-%05d", p*100+i), created, "action-trans"))
		}
		pages = append(pages, page)
	}
	// Each round writes through its own pool and closes it: a backend flushes
	// its table statistics when it exits.
	write := func() {
		ws := open(t, url)
		for _, page := range pages {
			if _, err := ws.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusFinish, Tasks: page}); err != nil {
				t.Fatal(err)
			}
		}
		ws.Close()
	}
	statsSQL := `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint
  FROM pg_stat_user_tables s JOIN pg_partition_tree('tasks') p ON p.relid = s.relid`
	stats := func(want int64) int64 {
		var n int64
		for i := 0; i < 50; i++ {
			if n = pgtest.Scalar[int64](t, url, statsSQL); n >= want {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return n
	}
	write()
	pgtest.Exec(t, url, `CHECKPOINT`)
	before := stats(n)
	lsn0 := pgtest.Scalar[string](t, url, `SELECT pg_current_wal_lsn()::text`)
	write()
	walBytes := pgtest.Scalar[int64](t, url, `SELECT (pg_current_wal_lsn() - $1::pg_lsn)::bigint`, lsn0)
	time.Sleep(time.Second)
	after := pgtest.Scalar[int64](t, url, statsSQL)
	if after != before {
		t.Errorf("re-sync wrote %d task row versions", after-before)
	}
	if walBytes > 1<<20 {
		t.Errorf("re-sync of %d unchanged tasks wrote %d bytes of WAL", n, walBytes)
	}
	t.Logf("re-sync of %d unchanged tasks: %d task rows written, %d bytes of WAL", n, after-before, walBytes)
}

func TestRunLock(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	a, b := open(t, url), open(t, url)
	ctx := context.Background()
	la, err := a.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Lock(ctx); !errors.Is(err, syncer.ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	la.Release(ctx)
	la.Release(ctx) // twice is fine
	lb, err := b.Lock(ctx)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	// Kill the holder's session: the server frees the lock, and the holder
	// learns it lost it.
	// Only this test's database: parallel tests hold advisory locks too.
	pgtest.Exec(t, url, `SELECT pg_terminate_backend(pid) FROM pg_locks
	  WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	select {
	case <-lb.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("lost lock not noticed")
	}
	lb.Release(ctx)
	la, err = a.Lock(ctx)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	la.Release(ctx)
}

func TestAbandonedRunsAreClosed(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	startRun(t, st)
	startRun(t, st)
	r, err := st.StartRun(context.Background(), syncer.StartRunParams{Trigger: "test"})
	if err != nil || r.Abandoned != 1 { // each start closes the one before
		t.Fatalf("abandoned %d, err %v", r.Abandoned, err)
	}
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM sync_runs WHERE status = 'failed' AND error LIKE 'abandoned%'`); n != 2 {
		t.Fatalf("%d abandoned rows", n)
	}
}

func TestCoverageGapRecorded(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	finish := func(at time.Time) *syncer.Gap {
		id := startRun(t, st)
		fr, err := st.FinishRun(ctx, syncer.FinishRunParams{RunID: id, APIStartedAt: at, Drained: mps.Statuses})
		if err != nil {
			t.Fatal(err)
		}
		return fr.Gap
	}
	if g := finish(t0); g != nil {
		t.Fatalf("first run: gap %+v", g)
	}
	if g := finish(t0.Add(6 * 24 * time.Hour)); g != nil {
		t.Fatalf("6 days later: gap %+v", g)
	}
	g := finish(t0.Add(14 * 24 * time.Hour))
	if g == nil || !g.Start.Equal(t0.Add(6*24*time.Hour)) || !g.End.Equal(t0.Add(7*24*time.Hour)) {
		t.Fatalf("8 days after the last success: gap %+v", g)
	}
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM coverage_gaps`); n != 1 {
		t.Fatalf("%d gap rows", n)
	}
}

// TestOpenErrorsHidePasswords: whatever the form of the connection string
// (URL or key=value, spaces around "=", quoted values with spaces or
// escapes, sslpassword, a password in the user information and the query)
// and whatever goes wrong (nothing listens, no such host, a bad port, a
// string that does not parse), Open's error is one line that holds no
// fragment of three bytes or more of any password, and still names the
// database by host, port, user and database (or says what does not parse).
func TestOpenErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	const pw, pw2, sslpw = "Qz7-Vw9-Kx4", "Jh5-Rt2-Wm8", "Ls4 Nb6 Gp1"
	target := []string{"host=127.0.0.1", "port=1", "user=archiver", "dbname=archive", "database unavailable"}
	for _, tc := range []struct {
		name, dsn string
		secrets   []string
		want      []string
	}{
		{"URL", "postgres://archiver:" + pw + "@127.0.0.1:1/archive?connect_timeout=5", []string{pw}, target},
		{"URL, percent-encoded", "postgres://archiver:Qz7%2DVw9%40Kx4@127.0.0.1:1/archive?connect_timeout=5", []string{"Qz7-Vw9@Kx4", "Qz7%2DVw9%40Kx4"}, target},
		{"URL, password in the user information and the query", "postgres://archiver:" + pw + "@127.0.0.1:1/archive?password=" + pw2 + "&connect_timeout=5", []string{pw, pw2}, target},
		{"URL, sslpassword", "postgres://archiver@127.0.0.1:1/archive?sslpassword=Ls4%20Nb6%20Gp1&password=" + pw + "&connect_timeout=5", []string{sslpw, pw}, target},
		{"key=value", "host=127.0.0.1 port=1 user=archiver dbname=archive password=" + pw + " connect_timeout=5", []string{pw}, target},
		{"key=value, spaces around =", "host=127.0.0.1 port=1 user=archiver dbname=archive password = " + pw + " connect_timeout=5", []string{pw}, target},
		{"key=value, quoted with spaces", "host=127.0.0.1 port = 1 user=archiver dbname=archive password='Qz7 Vw9 Kx4' connect_timeout=5", []string{"Qz7 Vw9 Kx4"}, target},
		{"key=value, escaped quotes", `host=127.0.0.1 port=1 user=archiver dbname=archive password='Qz7\'Vw9\\Kx4' connect_timeout=5`, []string{`Qz7'Vw9\Kx4`, `Qz7\'Vw9\\Kx4`}, target},
		{"key=value, sslpassword", "host=127.0.0.1 port=1 user=archiver dbname=archive sslpassword = 'Ls4 Nb6 Gp1' password=" + pw + " connect_timeout=5", []string{sslpw, pw}, target},
		{"a password that looks like the mask", "host=127.0.0.1 port=1 user=archiver dbname=archive password=Tq8xxxxxRv3 connect_timeout=5", []string{"Tq8xxxxxRv3"}, target},
		{"no such host", "host=no-such-host.invalid port=5433 user=archiver dbname=archive password = '" + sslpw + "' connect_timeout=5", []string{sslpw},
			[]string{"host=no-such-host.invalid", "port=5433", "user=archiver", "dbname=archive", "database unavailable"}},
		{"bad port, URL", "postgres://archiver:" + pw + "@127.0.0.1:99999/archive", []string{pw}, []string{"database_url", "invalid port"}},
		{"bad port, key=value", "host=127.0.0.1 port=99x user=archiver password = " + pw, []string{pw}, []string{"database_url", "invalid port"}},
		{"unterminated quote", "host=127.0.0.1 user=archiver password='Qz7 Vw9 Kx4", []string{"Qz7 Vw9 Kx4"}, []string{"database_url", "unterminated quoted string"}},
		{"unquoted spaces", "host=127.0.0.1 user=archiver password=Qz7 Vw9-Kx4 dbname=archive", []string{"Qz7 Vw9-Kx4"}, []string{"database_url", "missing"}},
		{"bare query parameter", "postgres://archiver@127.0.0.1:1/archive?" + pw + "&password=" + pw2, []string{pw, pw2}, []string{"database_url", "URI query parameter"}},
		{"broken IPv6 host", "postgres://archiver:" + pw + "@[::1:bad/archive", []string{pw}, []string{"database_url", "IPv6"}},
		{"unescaped @ in the password", "postgres://archiver:Qz7@Vw9/Kx4@127.0.0.1:1/archive", []string{"Qz7@Vw9/Kx4"}, []string{"database_url", "percent-encode"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st, err := storage.Open(context.Background(), tc.dsn, storage.Options{})
			if err == nil {
				st.Close()
				t.Fatal("connected")
			}
			msg := err.Error()
			if f := archivetest.LeakedFragment(msg, tc.secrets...); f != "" {
				t.Errorf("the error holds %q of a password: %s", f, msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q: %s", w, msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("the error is not one line: %q", msg)
			}
			if strings.Contains(msg, "database unavailable") && !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("the error does not wrap ErrUnavailable: %v", err)
			}
		})
	}
}

// TestDescribeDSN: a connection string is shown as the conninfo the driver
// parsed, which psql accepts, without a password.
func TestDescribeDSN(t *testing.T) {
	t.Parallel()
	for dsn, want := range map[string]string{
		"postgres://archiver:Qz7-Vw9-Kx4@db.example:5433/archive?sslmode=disable": "host=db.example port=5433 user=archiver dbname=archive",
		"host=db.example user=archiver password = 'Qz7 Vw9' dbname='my archive'":  "host=db.example port=5432 user=archiver dbname='my archive'",
		"postgres://a@h1:5001,h2:5002/db?sslmode=prefer":                          "host=h1,h2 port=5001,5002 user=a dbname=db",
		"host=h port=99999 password=Qz7-Vw9-Kx4":                                  "(a connection string that does not parse)",
	} {
		if got := storage.DescribeDSN(dsn); got != want {
			t.Errorf("DescribeDSN(%q) = %q, want %q", dsn, got, want)
		}
	}
}
