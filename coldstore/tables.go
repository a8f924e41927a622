package coldstore

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
)

// DB is what a table is read from and copied into: a transaction.
type DB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error)
}

// tableIO is one exported table: written from the database, compared
// with it, copied back into it.
type tableIO interface {
	// Name is the table's, and its file's (<name>.parquet).
	Name() string
	// Partitioned: the table is partitioned by month (detached with it).
	Partitioned() bool
	write(ctx context.Context, db DB, month time.Time, w io.Writer) (int64, error)
	compare(ctx context.Context, db DB, month time.Time, f *parquet.File) (int64, error)
	copyIn(ctx context.Context, db DB, into string, f *parquet.File) (int64, error)
}

// Tables are the tables a month's export holds, in the order written, each
// in the order of its unique key.
var Tables = []tableIO{
	table[Task]{name: "tasks", key: "task_id, create_time"},
	table[StatusChange]{name: "task_status_changes", key: "task_id, create_time, id"},
	table[Outcome]{name: "task_details", key: "task_id, create_time"},
	table[SubtaskResult]{name: "task_subtask_results", key: "task_id, create_time, ordinal"},
	table[Output]{name: "task_outputs", key: "task_id, create_time, ordinal"},
	table[Input]{name: "task_inputs", key: "task_id, create_time, ordinal"},
	table[Usage]{name: "usage_daily", key: "day, region, type, specification", byDay: true},
}

// table is a table whose rows are T (db tags: its columns).
type table[T any] struct {
	name, key string
	// byDay: the month's rows are those of its days (usage_daily), not of
	// its create times; such a table is not partitioned.
	byDay bool
}

func (t table[T]) Name() string      { return t.name }
func (t table[T]) Partitioned() bool { return !t.byDay }

// columns are T's db tags, in field order.
func columns[T any]() []string {
	rt := reflect.TypeFor[T]()
	out := make([]string, rt.NumField())
	for i := range out {
		out[i] = rt.Field(i).Tag.Get("db")
	}
	return out
}

// query reads the month's rows in key order, typed as T's fields want
// (jsonb and numeric as their text).
func (t table[T]) query() string {
	cols := columns[T]()
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = pgx.Identifier{c}.Sanitize()
		switch {
		case (t.name == "tasks" || t.name == "task_details") && c == "raw" || t.name == "usage_daily" && c == "usage":
			sel[i] += "::text AS " + pgx.Identifier{c}.Sanitize()
		case t.name == "usage_daily" && c == "day":
			sel[i] = `("day" - DATE '1970-01-01') AS "day"`
		}
	}
	where := "create_time >= $1 AND create_time < $2"
	if t.byDay {
		where = "day >= $1::date AND day < $2::date"
	}
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY %s", strings.Join(sel, ", "), pgx.Identifier{t.name}.Sanitize(), where, t.key)
}

// batch is how many rows move at a time: memory stays at one batch.
const batch = 1024

// each calls fn with every month row of the table, a batch at a time.
func (t table[T]) each(ctx context.Context, db DB, month time.Time, fn func([]T) error) (int64, error) {
	rows, err := db.Query(ctx, t.query(), month, month.AddDate(0, 1, 0))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", t.name, err)
	}
	defer rows.Close()
	buf := make([]T, 0, batch)
	var n int64
	for rows.Next() {
		r, err := pgx.RowToStructByName[T](rows)
		if err != nil {
			return n, fmt.Errorf("read %s: %w", t.name, err)
		}
		normalize(&r)
		if buf = append(buf, r); len(buf) == batch {
			if err := fn(buf); err != nil {
				return n, err
			}
			n += int64(len(buf))
			buf = buf[:0]
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read %s: %w", t.name, err)
	}
	if len(buf) > 0 {
		if err := fn(buf); err != nil {
			return n, err
		}
		n += int64(len(buf))
	}
	return n, nil
}

func (t table[T]) write(ctx context.Context, db DB, month time.Time, w io.Writer) (int64, error) {
	// zstd at its best level over pages of up to 4 MiB: a detail's raw
	// JSON repeats across rows that a smaller page keeps apart (measured:
	// a month of outcomes 37% smaller than with 256 KiB pages at the
	// default level).
	pw := parquet.NewGenericWriter[T](w, parquet.Compression(&zstd.Codec{Level: zstd.SpeedBestCompression}),
		parquet.MaxRowsPerRowGroup(128*1024), parquet.PageBufferSize(4<<20),
		parquet.CreatedBy("mps-archiver", "", ""), parquet.KeyValueMetadata("mps-archiver.table", t.name))
	n, err := t.each(ctx, db, month, func(rows []T) error {
		_, err := pw.Write(rows)
		return err
	})
	if err != nil {
		return n, err
	}
	if err := pw.Close(); err != nil {
		return n, fmt.Errorf("write %s: %w", t.name, err)
	}
	return n, nil
}

// compare reads the file's rows beside the database's, in the same
// order, and names the first that differs.
func (t table[T]) compare(ctx context.Context, db DB, month time.Time, f *parquet.File) (int64, error) {
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	got := make([]T, batch)
	var at int64
	n, err := t.each(ctx, db, month, func(want []T) error {
		for i := 0; i < len(want); {
			k, err := r.Read(got[:min(len(got), len(want)-i)])
			for j := 0; j < k; j++ {
				normalize(&got[j])
				if !reflect.DeepEqual(got[j], want[i+j]) {
					return fmt.Errorf("%s row %d differs: %s", t.name, at+int64(j), firstDifference(got[j], want[i+j]))
				}
			}
			at += int64(k)
			i += k
			if err == io.EOF && i < len(want) {
				return fmt.Errorf("%s: the export has %d rows, the database more", t.name, at)
			}
			if err != nil && err != io.EOF {
				return fmt.Errorf("read %s: %w", t.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if f.NumRows() != n {
		return n, fmt.Errorf("%s: the export has %d rows, the database %d", t.name, f.NumRows(), n)
	}
	return n, nil
}

// copyIn copies the file's rows into the table into (a month's partition
// being imported).
func (t table[T]) copyIn(ctx context.Context, db DB, into string, f *parquet.File) (int64, error) {
	r := parquet.NewGenericReader[T](f)
	defer r.Close()
	buf := make([]T, batch)
	var total int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			vals := make([][]any, k)
			for i := range k {
				vals[i] = fieldValues(&buf[i])
			}
			n, cerr := db.CopyFrom(ctx, pgx.Identifier{into}, columns[T](), pgx.CopyFromRows(vals))
			if cerr != nil {
				return total, fmt.Errorf("copy into %s: %w", into, cerr)
			}
			total += n
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("read %s: %w", t.name, err)
		}
	}
}

// fieldValues are a row's fields, as COPY takes them.
func fieldValues[T any](r *T) []any {
	v := reflect.ValueOf(r).Elem()
	out := make([]any, v.NumField())
	for i := range out {
		out[i] = v.Field(i).Interface()
		if l, ok := out[i].([]string); ok && l == nil {
			out[i] = []string{} // the columns are NOT NULL
		}
	}
	return out
}

// firstDifference names the first column whose values differ, and both.
func firstDifference[T any](export, db T) string {
	a, b := reflect.ValueOf(export), reflect.ValueOf(db)
	show := func(v reflect.Value) string {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return "NULL"
			}
			v = v.Elem()
		}
		s := fmt.Sprint(v.Interface())
		if len(s) > 80 {
			s = s[:80] + "…"
		}
		return fmt.Sprintf("%q", s)
	}
	for i := 0; i < a.NumField(); i++ {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			return fmt.Sprintf("%s is %s in the export, %s in the database", a.Type().Field(i).Tag.Get("db"), show(a.Field(i)), show(b.Field(i)))
		}
	}
	return "?"
}

// normalize makes two readings of one row equal: times in UTC, an empty
// list as nil.
func normalize[T any](r *T) {
	v := reflect.ValueOf(r).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch x := f.Interface().(type) {
		case time.Time:
			f.Set(reflect.ValueOf(x.UTC()))
		case *time.Time:
			if x != nil {
				u := x.UTC()
				f.Set(reflect.ValueOf(&u))
			}
		case []string:
			if len(x) == 0 {
				f.Set(reflect.Zero(f.Type()))
			}
		}
	}
}
