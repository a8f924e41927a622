package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// mover takes closed months to cold storage, one step at a time, each
// committed before the next (archive_months): export (the files, then the
// manifest, its hash a leaf of the proof log), verify (read back and
// compared with the database), detach (the partitions dropped). A crash
// at any point resumes at the step it interrupted.
type mover struct {
	st     *storage.Store
	bucket coldstore.Bucket
	dest   string // as configured: where the ledger says the month went
	log    *slog.Logger
	// pause, when set, is called between steps (tests kill the process
	// there: a binary built with the coldpause tag, coldpause.go).
	pause func(step string, month time.Time)
}

func newMover(cfg config.Config, st *storage.Store, log *slog.Logger) (*mover, error) {
	b, err := cfg.Archive.Bucket()
	if err != nil {
		return nil, fmt.Errorf("archive.destination: %w", err)
	}
	return &mover{st: st, bucket: b, dest: cfg.Archive.Destination, log: log, pause: coldPause()}, nil
}

// step moves month one step on, as far as until (MonthVerified or
// MonthDetached), and reports the state it left it in.
func (m *mover) step(ctx context.Context, month time.Time, until string) (string, error) {
	a, err := m.st.ArchiveMonthOf(ctx, month)
	if err != nil {
		return "", err
	}
	switch {
	case a.State == storage.MonthDetached:
		return a.State, nil
	case a.State == storage.MonthVerified && until == storage.MonthVerified:
		return a.State, nil
	case a.State == "" || a.State == storage.MonthExporting || a.Destination != m.dest:
		return storage.MonthExported, m.export(ctx, month)
	case a.State == storage.MonthExported:
		return storage.MonthVerified, m.verify(ctx, a)
	case a.State == storage.MonthVerified:
		if err := m.st.DetachMonth(ctx, month); err != nil {
			if strings.Contains(err.Error(), "changed since") {
				// The month changed after its read-back: export it again.
				return storage.MonthExporting, m.st.RestartExport(ctx, month, err)
			}
			return a.State, m.failed(ctx, month, err)
		}
		m.log.Info("cold storage: month detached from the database; its export is its copy", "month", month.Format("2006-01"),
			"destination", m.dest, "tasks", a.Rows["tasks"])
		return storage.MonthDetached, nil
	}
	return a.State, fmt.Errorf("%s is in state %q", month.Format("2006-01"), a.State)
}

// export writes the month's files and manifest, and records them.
func (m *mover) export(ctx context.Context, month time.Time) error {
	if err := m.st.BeginExport(ctx, month, m.dest); err != nil {
		return err
	}
	m.pauseAt("exporting", month)
	began := time.Now()
	var man coldstore.Manifest
	var sum string
	err := m.st.MonthSnapshot(ctx, func(db coldstore.DB) error {
		// The log's size as this snapshot sees it: every fact exported is
		// a leaf below it.
		origin, size, err := storage.SnapshotProofHead(ctx, db)
		if err != nil {
			return err
		}
		man, sum, err = coldstore.Export(ctx, db, m.bucket, month, origin, size, "")
		return err
	})
	if err != nil {
		return m.failed(ctx, month, fmt.Errorf("export %s to %s: %w", month.Format("2006-01"), m.dest, err))
	}
	m.pauseAt("written", month)
	if _, err := m.st.RecordExport(ctx, month, m.dest, sum, man.Rows(), man.ProofSize); err != nil {
		return m.failed(ctx, month, err)
	}
	var bytes int64
	for _, f := range man.Files {
		bytes += f.Bytes
	}
	m.log.Info("cold storage: month exported", "month", month.Format("2006-01"), "destination", m.dest, "manifest_sha256", sum,
		"tasks", man.Rows()["tasks"], "bytes", bytes, "seconds", time.Since(began).Round(time.Millisecond).Seconds())
	m.pauseAt("exported", month)
	return nil
}

// verify reads the export back and compares it with the database.
func (m *mover) verify(ctx context.Context, a storage.ArchiveMonth) error {
	began := time.Now()
	var fingerprint string
	err := m.st.MonthSnapshot(ctx, func(db coldstore.DB) error {
		if _, err := coldstore.Verify(ctx, db, m.bucket, a.Month, a.ManifestSHA); err != nil {
			return err
		}
		var err error
		fingerprint, err = storage.MonthFingerprint(ctx, db, a.Month)
		return err
	})
	if err != nil {
		err = fmt.Errorf("verify the export of %s: %w", a.Month.Format("2006-01"), err)
		if ctx.Err() == nil {
			// What was written does not read back as the month: it is
			// written again (the month changed since, or the files did).
			m.log.Warn("cold storage: the export does not read back equal; the month is exported again", "month", a.Month.Format("2006-01"), "error", err.Error())
			if rerr := m.st.RestartExport(ctx, a.Month, err); rerr != nil {
				return errors.Join(err, rerr)
			}
		}
		return err
	}
	if err := m.st.MarkVerified(ctx, a.Month, a.ExportID, fingerprint); err != nil {
		return m.failed(ctx, a.Month, err)
	}
	m.log.Info("cold storage: export read back, equal to the database", "month", a.Month.Format("2006-01"),
		"seconds", time.Since(began).Round(time.Millisecond).Seconds())
	m.pauseAt("verified", a.Month)
	return nil
}

func (m *mover) pauseAt(step string, month time.Time) {
	if m.pause != nil {
		m.pause(step, month)
	}
}

// failed records a step's failure in the ledger and returns it.
func (m *mover) failed(ctx context.Context, month time.Time, err error) error {
	if rerr := m.st.MonthFailed(context.WithoutCancel(ctx), month, err); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// move takes month as far as until, step by step.
func (m *mover) move(ctx context.Context, month time.Time, until string) error {
	for i := 0; i < 4; i++ {
		state, err := m.step(ctx, month, until)
		if err != nil {
			return err
		}
		if state == until || state == storage.MonthDetached {
			return nil
		}
	}
	return fmt.Errorf("%s did not reach %s", month.Format("2006-01"), until)
}

// retain moves the oldest closed month older than the keep newest to
// cold storage (exported, verified, detached): one month a run, so that
// enabling keep_months on years of archive does not hold the syncs for
// hours. A failure is logged; the next run goes on from its last step.
// One process at a time (the cold lock); another holding it is no error.
func (m *mover) retain(ctx context.Context, keep int) error {
	lock, err := m.st.ColdLock(ctx)
	if errors.Is(err, syncer.ErrLocked) {
		return nil
	}
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	months, err := m.st.ClosedMonths(ctx, keep)
	if err != nil || len(months) == 0 {
		return err
	}
	month := months[0]
	if err := m.move(ctx, month, storage.MonthDetached); err != nil {
		m.log.Error("cold storage: a month could not be moved; the next run goes on from its last step", "month", month.Format("2006-01"), "error", err.Error())
		return err
	}
	if len(months) > 1 {
		m.log.Info("cold storage: more closed months wait, one a run", "next", months[1].Format("2006-01"), "waiting", len(months)-1)
	}
	return nil
}

// parseMonth reads YYYY-MM as the month's first instant, UTC.
func parseMonth(flag, v string) (time.Time, error) {
	t, err := time.Parse("2006-01", v)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q: want YYYY-MM", flag, v)
	}
	return t.UTC(), nil
}

// exportMonth is `export --month`: the month exported and verified.
func exportMonth(ctx context.Context, env *Env, cf *commonFlags, monthS, to string) error {
	month, err := parseMonth("--month", monthS)
	if err != nil {
		return err
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	if to != "" {
		cfg.Archive.Destination = to
		if err := cfg.Archive.CheckDestination(); err != nil {
			return usageErrorf("--to: %v", err)
		}
	}
	log := newLogger(env.Stderr, cfg.Log)
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	closed, err := st.ClosedMonths(ctx, 1)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(closed, month.Equal) {
		a, err := st.ArchiveMonthOf(ctx, month)
		if err != nil {
			return err
		}
		if a.State != storage.MonthDetached {
			return fmt.Errorf("%s is not a closed month: it holds no task, or its tasks can still change (it must have ended %d days ago, with no task in flight and no outcome queued)",
				monthS, int(mps.Window/(24*time.Hour))+1)
		}
	}
	m, err := newMover(cfg, st, log)
	if err != nil {
		return err
	}
	lock, err := st.ColdLock(ctx)
	if errors.Is(err, syncer.ErrLocked) {
		return errors.New("another process is moving months to cold storage (a sync under archive.keep_months, or an export or import): try again when it is done")
	}
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	if err := m.move(ctx, month, storage.MonthVerified); err != nil {
		return err
	}
	a, err := st.ArchiveMonthOf(ctx, month)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %s in %s (manifest SHA-256 %s): %d tasks, %d status changes, %d outcomes, %d sub-task results, %d outputs, %d inputs, %d usage figures\n",
		monthS, a.State, a.Destination, a.ManifestSHA, a.Rows["tasks"], a.Rows["task_status_changes"], a.Rows["task_details"],
		a.Rows["task_subtask_results"], a.Rows["task_outputs"], a.Rows["task_inputs"], a.Rows["usage_daily"])
	return nil
}

// runImport brings a detached month back from its export.
func runImport(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "import", "[flags] --month YYYY-MM", `import brings a month detached to cold storage back into the database: it
reads the month's export from where the ledger says it went (with the
archive.s3_* settings), checks every file against the manifest whose
SHA-256 the proof log holds, copies the rows into the month's partitions
and attaches them, in one transaction. The rollups, which kept counting
the month, are left as they are. The month stays exported: the next
sync under archive.keep_months detaches it again unless that keeps it.`)
	var cf commonFlags
	cf.register(fs, env)
	monthS := fs.String("month", "", "the detached `month` (YYYY-MM)")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	month, err := parseMonth("--month", *monthS)
	if err != nil {
		return err
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	a, err := st.ArchiveMonthOf(ctx, month)
	if err != nil {
		return err
	}
	if a.State != storage.MonthDetached {
		return fmt.Errorf("%s is not detached (it is %s): nothing to import", *monthS, stateText(a.State))
	}
	cfg.Archive.Destination = a.Destination
	b, err := cfg.Archive.Bucket()
	if err != nil {
		return err
	}
	lock, err := st.ColdLock(ctx)
	if errors.Is(err, syncer.ErrLocked) {
		return errors.New("another process is moving months to cold storage: try again when it is done")
	}
	if err != nil {
		return err
	}
	defer lock.Release(context.WithoutCancel(ctx))
	began := time.Now()
	var copied map[string]int64
	err = st.ImportMonth(ctx, month, func(db coldstore.DB, into map[string]string) error {
		var err error
		copied, err = coldstore.Import(ctx, db, b, month, a.ManifestSHA, into)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s imported from %s in %.1fs: %d tasks, %d status changes, %d outcomes, %d sub-task results, %d outputs, %d inputs\n",
		*monthS, b, time.Since(began).Seconds(), copied["tasks"], copied["task_status_changes"], copied["task_details"],
		copied["task_subtask_results"], copied["task_outputs"], copied["task_inputs"])
	return nil
}

func stateText(s string) string {
	if s == "" {
		return "not exported"
	}
	return s
}
