package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/storage"
)

// coldExport is (l): the busiest month of the cold sync's archive
// exported as Parquet (every table, zstd) to a local directory, its rows a
// second; then read back and compared with the database; and the same
// month's partitions dumped by pg_dump -Fc, for the size Parquet saves.
func (r *benchRun) coldExport(ctx context.Context) error {
	month, tasks, err := r.st.BusiestMonth(ctx)
	if err != nil {
		return err
	}
	r.say("(l) export of %s (%d tasks) as Parquet, read back, and pg_dump -Fc of its partitions", month.Format("2006-01"), tasks)
	st, err := storage.Open(ctx, r.b.db, storage.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	dir := filepath.Join(r.b.dir, "cold")
	b, err := coldstore.Open(dir, coldstore.S3{})
	if err != nil {
		return err
	}
	var m coldstore.Manifest
	var sum string
	began := time.Now()
	err = st.MonthSnapshot(ctx, func(db coldstore.DB) error {
		m, sum, err = coldstore.Export(ctx, db, b, month, "bench", 0, r.b.dir)
		return err
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(began)
	var rows, bytes int64
	for _, f := range m.Files {
		rows += f.Rows
		bytes += f.Bytes
	}
	exp := Result{Name: "cold_export", Tasks: int(rows), Seconds: elapsed.Seconds(),
		Note: fmt.Sprintf("%s: %d rows of %d tables (%d tasks) to %d bytes of Parquet (zstd), %.0f bytes a task",
			month.Format("2006-01"), rows, len(m.Files), m.Rows()["tasks"], bytes, float64(bytes)/float64(max(m.Rows()["tasks"], 1)))}
	r.add(&exp)
	began = time.Now()
	err = st.MonthSnapshot(ctx, func(db coldstore.DB) error {
		_, err := coldstore.Verify(ctx, db, b, month, sum)
		return err
	})
	if err != nil {
		return fmt.Errorf("read back the export: %w", err)
	}
	ver := Result{Name: "cold_export_read_back", Tasks: int(rows), Seconds: time.Since(began).Seconds(),
		Note: "every row of every file compared with the database"}
	r.add(&ver)

	bin, err := pgtemp.FindBinDir()
	if err != nil {
		return err
	}
	dump := filepath.Join(r.b.dir, "month.dump")
	args := []string{"-Fc", "-d", r.b.db, "-f", dump}
	for _, f := range m.Files {
		if f.Table != "usage_daily" {
			args = append(args, "-t", fmt.Sprintf("%s_y%sm%s", f.Table, month.Format("2006"), month.Format("01")))
		}
	}
	began = time.Now()
	if out, err := exec.CommandContext(ctx, filepath.Join(bin, "pg_dump"), args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_dump: %v: %s", err, out)
	}
	fi, err := os.Stat(dump)
	if err != nil {
		return err
	}
	pd := Result{Name: "pg_dump_fc_of_the_month", Tasks: int(rows), Seconds: time.Since(began).Seconds(),
		Note: fmt.Sprintf("%d bytes, the same month's partitions", fi.Size())}
	r.add(&pd)
	r.rep.Ratios.ParquetVsPgDump = float64(fi.Size()) / float64(max(bytes, 1))
	return os.RemoveAll(dir)
}
