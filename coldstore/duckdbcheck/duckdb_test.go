package duckdbcheck

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	secretID  = "AKIDduckdb0000"
	secretKey = "duckdb-secret-key-5e1a"
)

var january = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// keys order each table's rows, in both engines.
var keys = map[string]string{
	"tasks": "task_id", "task_status_changes": "task_id, id", "task_details": "task_id",
	"task_subtask_results": "task_id, ordinal", "task_outputs": "task_id, ordinal", "task_inputs": "task_id, ordinal",
	"usage_daily": "day, region, type, specification",
}

// TestDuckDBReadsTheExportAsPostgreSQLHasIt: an archive of media and
// image tasks with outcomes, media facts and billed usage, its January
// exported; DuckDB's read_parquet of every file equals PostgreSQL's month,
// every row and every column; and a dashboard question (failures by task
// type) has one answer in both, across the hive-partitioned directory.
func TestDuckDBReadsTheExportAsPostgreSQLHasIt(t *testing.T) {
	ctx := context.Background()
	r := archive(t)
	dir := t.TempDir()
	b, err := coldstore.Open(dir, coldstore.S3{})
	if err != nil {
		t.Fatal(err)
	}
	var m coldstore.Manifest
	err = r.Store.MonthSnapshot(ctx, func(db coldstore.DB) error {
		var err error
		m, _, err = coldstore.Export(ctx, db, b, january, "duckdb", 0, t.TempDir())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	pg := pgtest.Conn(t, r.DB)
	if _, err := pg.Exec(ctx, `SET TimeZone = 'UTC'`); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		path := filepath.Join(dir, coldstore.MonthDir(january), f.Name)
		cols := columnsOf(t, duck, path)
		duckCols := make([]string, len(cols))
		for i, c := range cols {
			duckCols[i] = c
			if c == "raw" {
				duckCols[i] = "raw::VARCHAR" // JSON, as written
			}
		}
		got := duckRows(t, duck, fmt.Sprintf(`SELECT %s FROM read_parquet('%s', hive_partitioning = false) ORDER BY %s`, strings.Join(duckCols, ", "), path, keys[f.Table]))
		where := "create_time >= '2026-01-01Z' AND create_time < '2026-02-01Z'"
		if f.Table == "usage_daily" {
			where = "day >= '2026-01-01' AND day < '2026-02-01'"
		}
		pgCols := make([]string, len(cols))
		for i, c := range cols {
			pgCols[i] = c
			if c == "raw" || c == "usage" {
				pgCols[i] = c + "::text"
			}
		}
		want := pgRows(t, pg, fmt.Sprintf(`SELECT %s FROM %s WHERE %s ORDER BY %s`, strings.Join(pgCols, ", "), f.Table, where, keys[f.Table]))
		if len(got) != len(want) || int64(len(got)) != f.Rows || len(got) == 0 {
			t.Fatalf("%s: DuckDB reads %d rows, PostgreSQL has %d, the manifest says %d", f.Table, len(got), len(want), f.Rows)
		}
		for i := range got {
			for j, c := range cols {
				if got[i][j] != want[i][j] {
					t.Fatalf("%s row %d column %s: DuckDB %q, PostgreSQL %q", f.Table, i, c, got[i][j], want[i][j])
				}
			}
		}
		t.Logf("%s: %d rows × %d columns equal", f.Table, len(got), len(cols))
	}
	// A dashboard question across the directory of months.
	q := `SELECT t.task_type, count(*) FROM %s t JOIN %s d USING (task_id)
 WHERE d.outcome = 'failed' %s GROUP BY 1 ORDER BY 1`
	got := duckRows(t, duck, fmt.Sprintf(q, "read_parquet('"+dir+"/month=*/tasks.parquet', hive_partitioning = true)",
		"read_parquet('"+dir+"/month=*/task_details.parquet', hive_partitioning = true)", "AND t.month = '2026-01'"))
	want := pgRows(t, pg, fmt.Sprintf(q, "tasks", "task_details", "AND t.create_time >= '2026-01-01Z' AND t.create_time < '2026-02-01Z'"))
	if fmt.Sprint(got) != fmt.Sprint(want) || len(got) < 3 {
		t.Fatalf("failures by task type: DuckDB %v, PostgreSQL %v", got, want)
	}
}

// archive is an archive spanning January's end and February's start,
// with a year of billed usage.
func archive(t *testing.T) *archivetest.Rig {
	t.Helper()
	return archivetest.MonthEnd(t, secretID, secretKey, 1200)
}

// columnsOf lists a Parquet file's columns as DuckDB reads them.
func columnsOf(t *testing.T, duck *sql.DB, path string) []string {
	t.Helper()
	rows, err := duck.Query(fmt.Sprintf(`SELECT column_name FROM (DESCRIBE SELECT * FROM read_parquet('%s', hive_partitioning = false))`, path))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func duckRows(t *testing.T, duck *sql.DB, q string) [][]string {
	t.Helper()
	rows, err := duck.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, canonical(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func pgRows(t *testing.T, pg *pgx.Conn, q string) [][]string {
	t.Helper()
	rows, err := pg.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out [][]string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, canonical(vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// canonical writes each value one way whichever engine read it.
func canonical(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = value(v)
	}
	return out
}

func value(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = value(e)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case []string:
		return "[" + strings.Join(x, ",") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Sprint(keys)
	case int32, int64, int, int16, int8, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case float32:
		return fmt.Sprint(float64(x))
	}
	return fmt.Sprint(v)
}
