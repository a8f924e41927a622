package coldstore_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/storage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	secretID  = "AKIDcoldstore0000"
	secretKey = "coldstore-secret-key-71c2"
)

// january is the month exported: the archive holds its last days (the
// API's window at the clock of archived, 2026-02-03) with outcomes.
var january = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// archived is an archive spanning January's end and February's start.
func archived(t *testing.T) *archivetest.Rig {
	t.Helper()
	return archivetest.MonthEnd(t, secretID, secretKey, 1500)
}

// export writes January to b and checks the manifest against the
// database's counts.
func export(t *testing.T, st *storage.Store, b coldstore.Bucket) (coldstore.Manifest, string) {
	t.Helper()
	var m coldstore.Manifest
	var sum string
	err := st.MonthSnapshot(context.Background(), func(db coldstore.DB) error {
		var err error
		m, sum, err = coldstore.Export(context.Background(), db, b, january, "test", 0, t.TempDir())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, sum
}

// TestExportReadsBackEqual: a month exported as Parquet to a directory
// and to an S3 bucket reads back equal to the database, row by row and
// column by column, for every table; a changed byte in a file, a changed
// manifest or a row changed in the database since are each named.
func TestExportReadsBackEqual(t *testing.T) {
	t.Parallel()
	r := archived(t)
	ctx := context.Background()
	want := map[string]int64{}
	for _, tc := range []struct{ table, where string }{
		{"tasks", "create_time"}, {"task_status_changes", "create_time"}, {"task_details", "create_time"},
		{"task_subtask_results", "create_time"}, {"task_outputs", "create_time"}, {"task_inputs", "create_time"},
	} {
		want[tc.table] = pgtest.Scalar[int64](t, r.DB, `SELECT count(*) FROM `+tc.table+` WHERE `+tc.where+` >= '2026-01-01Z' AND `+tc.where+` < '2026-02-01Z'`)
	}
	want["usage_daily"] = pgtest.Scalar[int64](t, r.DB, `SELECT count(*) FROM usage_daily WHERE day >= '2026-01-01' AND day < '2026-02-01'`)
	for _, table := range []string{"tasks", "task_status_changes", "task_details", "task_subtask_results", "task_outputs", "task_inputs"} {
		if want[table] == 0 {
			t.Fatalf("January has no %s: the test tests nothing", table)
		}
	}

	dir := t.TempDir()
	backend := s3mem.New()
	if err := backend.CreateBucket("archive"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3.Close)
	for _, dest := range []struct {
		name string
		url  string
		s3   coldstore.S3
	}{
		{"directory", dir, coldstore.S3{}},
		{"s3", "s3://archive/mps/cold", coldstore.S3{Endpoint: s3.URL, Region: "us-east-1", AccessKeyID: "test", SecretAccessKey: "test-secret"}},
	} {
		t.Run(dest.name, func(t *testing.T) {
			b, err := coldstore.Open(dest.url, dest.s3)
			if err != nil {
				t.Fatal(err)
			}
			m, sum := export(t, r.Store, b)
			for table, n := range want {
				if got := m.Rows()[table]; got != n {
					t.Errorf("%s: manifest %d rows, database %d", table, got, n)
				}
			}
			err = r.Store.MonthSnapshot(ctx, func(db coldstore.DB) error {
				_, err := coldstore.Verify(ctx, db, b, january, sum)
				return err
			})
			if err != nil {
				t.Fatalf("read back: %v", err)
			}
			if _, err := coldstore.ReadManifest(ctx, b, january, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "not the one exported") {
				t.Fatalf("a manifest of another hash was taken: %v", err)
			}
		})
	}

	// A byte changed in a file of the directory's export.
	file := filepath.Join(dir, coldstore.MonthDir(january), "task_details.parquet")
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := coldstore.Open(dir, coldstore.S3{})
	m, sum := export(t, r.Store, b)
	body[len(body)/2] ^= 0xff
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	err = r.Store.MonthSnapshot(ctx, func(db coldstore.DB) error {
		_, err := coldstore.Verify(ctx, db, b, january, sum)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "task_details.parquet has SHA-256") {
		t.Fatalf("a changed file: %v", err)
	}
	// A row changed in the database since the export.
	export(t, r.Store, b)
	m, sum = export(t, r.Store, b)
	pgtest.Exec(t, r.DB, `UPDATE task_details SET message = 'edited' WHERE task_id = (SELECT task_id FROM task_details
  WHERE create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z' ORDER BY task_id LIMIT 1 OFFSET 3)`)
	err = r.Store.MonthSnapshot(ctx, func(db coldstore.DB) error {
		_, err := coldstore.Verify(ctx, db, b, january, sum)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "task_details row 3 differs") {
		t.Fatalf("a row changed since: %v (manifest %d files)", err, len(m.Files))
	}
}

// TestDetachAndImport: a verified month's partitions are detached (only
// then, and only while its row counts are the export's); the rollups keep
// counting it and the proof log still verifies; import brings every row
// back exactly, and the archive verifies whole again.
func TestDetachAndImport(t *testing.T) {
	t.Parallel()
	r := archived(t)
	ctx := context.Background()
	st := r.Store
	inJanuary := `SELECT count(*) FROM tasks WHERE create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z'`
	tasks := pgtest.Scalar[int64](t, r.DB, inJanuary)
	fingerprint := func() string {
		return pgtest.Scalar[string](t, r.DB, `SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
  SELECT t::text AS x FROM tasks t UNION ALL SELECT c::text FROM task_status_changes c UNION ALL SELECT d::text FROM task_details d
  UNION ALL SELECT s::text FROM task_subtask_results s UNION ALL SELECT o::text FROM task_outputs o UNION ALL SELECT i::text FROM task_inputs i) a`)
	}
	before := fingerprint()
	dest := t.TempDir()
	b, err := coldstore.Open(dest, coldstore.S3{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DetachMonth(ctx, january); err == nil || !strings.Contains(err.Error(), "no verified export") {
		t.Fatalf("detached without an export: %v", err)
	}
	if err := st.BeginExport(ctx, january, dest); err != nil {
		t.Fatal(err)
	}
	m, sum := export(t, st, b)
	id, err := st.RecordExport(ctx, january, dest, sum, m.Rows(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DetachMonth(ctx, january); err == nil {
		t.Fatal("detached an export not read back")
	}
	var fp string
	err = st.MonthSnapshot(ctx, func(db coldstore.DB) error {
		var err error
		fp, err = storage.MonthFingerprint(ctx, db, january)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkVerified(ctx, january, id, fp); err != nil {
		t.Fatal(err)
	}
	// A row added to the month since its export, or one changed (the
	// counts the same): not detached.
	pgtest.Exec(t, r.DB, `INSERT INTO task_status_changes (task_id, create_time, run_id, from_status, to_status)
SELECT task_id, create_time, NULL, 'PROCESSING', 'FINISH' FROM tasks WHERE create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z' LIMIT 1`)
	if err := st.DetachMonth(ctx, january); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("detached a month changed since its export: %v", err)
	}
	pgtest.Exec(t, r.DB, `DELETE FROM task_status_changes WHERE run_id IS NULL`)
	pgtest.Exec(t, r.DB, `UPDATE tasks SET gone_at = now() WHERE task_id = (SELECT min(task_id) FROM tasks WHERE create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z')`)
	if err := st.DetachMonth(ctx, january); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("detached a month whose row changed since its export: %v", err)
	}
	pgtest.Exec(t, r.DB, `UPDATE tasks SET gone_at = NULL WHERE task_id = (SELECT min(task_id) FROM tasks WHERE create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z')`)
	// The current month, however verified its ledger says it is: not closed.
	if err := st.DetachMonth(ctx, time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1-time.Now().UTC().Day())); err == nil {
		t.Fatal("detached the current month")
	}
	if err := st.DetachMonth(ctx, january); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar[int64](t, r.DB, inJanuary); n != 0 {
		t.Fatalf("%d January tasks left after the detach", n)
	}
	if n := pgtest.Scalar[int64](t, r.DB, `SELECT coalesce(sum(tasks), 0)::bigint FROM rollup_daily_tasks WHERE day >= '2026-01-01' AND day < '2026-02-01'`); n != tasks {
		t.Fatalf("the rollups count %d January tasks after the detach, want %d", n, tasks)
	}
	archivetest.AssertRollups(t, r.DB)
	archivetest.AssertProofLog(t, r.DB)
	// Rebuilding the rollups keeps the detached month's: its tasks are in
	// its export.
	if err := st.RebuildRollups(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar[int64](t, r.DB, `SELECT coalesce(sum(tasks), 0)::bigint FROM rollup_daily_tasks WHERE day >= '2026-01-01' AND day < '2026-02-01'`); n != tasks {
		t.Fatalf("the rollups count %d January tasks after a rebuild, want %d", n, tasks)
	}
	archivetest.AssertRollups(t, r.DB)
	if err := st.BeginExport(ctx, january, dest); err == nil || !strings.Contains(err.Error(), "is detached") {
		t.Fatalf("a detached month exported again: %v", err)
	}

	err = st.ImportMonth(ctx, january, func(db coldstore.DB, into map[string]string) error {
		_, err := coldstore.Import(ctx, db, b, january, sum, into)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := fingerprint(); after != before {
		t.Fatal("the imported month differs from the one detached")
	}
	if a, _ := st.ArchiveMonthOf(ctx, january); a.State != storage.MonthVerified {
		t.Fatalf("imported month is %q", a.State)
	}
	archivetest.AssertRollups(t, r.DB)
	archivetest.AssertProofLog(t, r.DB)
}
