package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/coldstore"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// The states of a month on its way to cold storage (archive_months).
const (
	MonthExporting = "exporting"
	MonthExported  = "exported"
	MonthVerified  = "verified"
	MonthDetached  = "detached"
)

// ArchiveMonth is where a month stands (archive_months), with its export.
type ArchiveMonth struct {
	Month       time.Time
	State       string // "" when the month has never been exported
	Destination string
	ExportID    int64
	ManifestSHA string
	Rows        map[string]int64
	Error       string
	UpdatedAt   time.Time
}

// coldLockKey is the session advisory lock cold-storage work holds: the
// ASCII bytes of "mps-cold" read as a big-endian int64.
const coldLockKey int64 = 0x6d70732d636f6c64

// ColdLock takes the cold-storage lock without waiting: one process at a
// time exports, verifies, detaches or imports (syncer.ErrLocked: another
// has it). Lost is closed if its connection dies.
func (s *Store) ColdLock(ctx context.Context) (syncer.Lock, error) {
	l, err := s.lock(ctx, coldLockKey)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ArchiveMonths lists every month the ledger knows, oldest first.
func (s *Store) ArchiveMonths(ctx context.Context) ([]ArchiveMonth, error) {
	rows, err := s.pool.Query(ctx, `
SELECT a.month, a.state, a.destination, coalesce(e.id, 0), coalesce(e.manifest_sha256, ''), coalesce(e.rows, '{}'), coalesce(a.error, ''), a.updated_at
  FROM archive_months a LEFT JOIN archive_exports e ON e.id = a.export_id ORDER BY a.month`)
	if err != nil {
		return nil, fmt.Errorf("read archive_months: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ArchiveMonth, error) {
		var m ArchiveMonth
		var rowsJSON []byte
		err := r.Scan(&m.Month, &m.State, &m.Destination, &m.ExportID, &m.ManifestSHA, &rowsJSON, &m.Error, &m.UpdatedAt)
		if err == nil {
			err = json.Unmarshal(rowsJSON, &m.Rows)
		}
		m.Month = m.Month.UTC()
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read archive_months: %w", interpretError(err))
	}
	return out, nil
}

// ArchiveMonthOf is one month's ledger row (State "" when none).
func (s *Store) ArchiveMonthOf(ctx context.Context, month time.Time) (ArchiveMonth, error) {
	all, err := s.ArchiveMonths(ctx)
	if err != nil {
		return ArchiveMonth{}, err
	}
	for _, m := range all {
		if m.Month.Equal(month) {
			return m, nil
		}
	}
	return ArchiveMonth{Month: month}, nil
}

// ClosedMonths lists the months older than the keep newest (counting the
// current one) that hold tasks and can no longer change: they ended more
// than the API's window and a day ago, none of their tasks is still in
// flight, no outcome of theirs is queued, and they are not detached. The
// months are the tasks partitions attached (the catalog, not a scan of
// the tasks), each checked through indexes.
func (s *Store) ClosedMonths(ctx context.Context, keep int) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, `
WITH bounds AS (
    SELECT least(date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => $1 - 1),
                 date_trunc('month', (now() - $2 * interval '1 second') AT TIME ZONE 'UTC'))::date AS before
), months AS (
    SELECT to_date(substring(c.relname FROM '_y([0-9]{4}m[0-9]{2})$'), 'YYYY"m"MM') AS month
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'tasks'::regclass AND c.relname ~ '^tasks_y[0-9]{4}m[0-9]{2}$'
)
SELECT m.month FROM months m, bounds
 WHERE m.month < bounds.before
   AND EXISTS (SELECT 1 FROM tasks t WHERE t.create_time >= m.month::timestamp AT TIME ZONE 'UTC'
                  AND t.create_time < (m.month + interval '1 month')::timestamp AT TIME ZONE 'UTC')
   AND NOT EXISTS (SELECT 1 FROM archive_months a WHERE a.month = m.month AND a.state = 'detached')
   AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.status <> 'FINISH' AND t.gone_at IS NULL
                      AND t.create_time >= m.month::timestamp AT TIME ZONE 'UTC'
                      AND t.create_time < (m.month + interval '1 month')::timestamp AT TIME ZONE 'UTC')
   AND NOT EXISTS (SELECT 1 FROM task_detail_queue q
                    WHERE q.create_time >= m.month::timestamp AT TIME ZONE 'UTC'
                      AND q.create_time < (m.month + interval '1 month')::timestamp AT TIME ZONE 'UTC')
 ORDER BY 1`, keep, (mps.Window + 24*time.Hour).Seconds())
	if err != nil {
		return nil, fmt.Errorf("find closed months: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (time.Time, error) {
		var t time.Time
		err := r.Scan(&t)
		return t.UTC(), err
	})
	if err != nil {
		return nil, fmt.Errorf("find closed months: %w", interpretError(err))
	}
	return out, nil
}

// MonthSnapshot runs fn on one REPEATABLE READ, read-only snapshot of the
// archive, in UTC: a month's tables read as of one moment.
func (s *Store) MonthSnapshot(ctx context.Context, fn func(db coldstore.DB) error) error {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin a snapshot: %w", interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SET LOCAL TimeZone = 'UTC'`); err != nil {
		return fmt.Errorf("begin a snapshot: %w", interpretError(err))
	}
	return fn(tx)
}

// BeginExport records that month is being exported to destination. A
// detached month cannot be exported again (import it first).
func (s *Store) BeginExport(ctx context.Context, month time.Time, destination string) error {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO archive_months (month, state, destination) VALUES ($1, 'exporting', $2)
ON CONFLICT (month) DO UPDATE SET state = 'exporting', destination = EXCLUDED.destination, export_id = NULL,
                                  updated_at = now(), error = NULL
 WHERE archive_months.state <> 'detached'`, month, destination)
	if err != nil {
		return fmt.Errorf("record the export of %s: %w", month.Format("2006-01"), interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s is detached: its export is its copy (mps-archiver import --month %s brings it back)", month.Format("2006-01"), month.Format("2006-01"))
	}
	return nil
}

// RecordExport records a written export (its manifest's SHA-256 a leaf of
// the proof log, in the same transaction) and moves month to exported.
func (s *Store) RecordExport(ctx context.Context, month time.Time, destination, manifestSHA string, rows map[string]int64, proofSize int64) (int64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("record the export of %s: %w", month.Format("2006-01"), interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var id, moved int64
	err = tx.QueryRow(ctx, `
WITH e AS (INSERT INTO archive_exports (month, destination, manifest_sha256, rows, proof_size)
           VALUES ($1, $2, $3, $4, $5) RETURNING *),
     m AS (UPDATE archive_months a SET state = 'exported', export_id = e.id, updated_at = now(), error = NULL
             FROM e WHERE a.month = e.month AND a.state = 'exporting' AND a.destination = e.destination RETURNING a.month)
SELECT e.id, (SELECT count(*) FROM m) FROM e`, month, destination, manifestSHA, rows, proofSize).Scan(&id, &moved)
	if err != nil {
		return 0, fmt.Errorf("record the export of %s: %w", month.Format("2006-01"), interpretError(err))
	}
	if moved != 1 {
		return 0, fmt.Errorf("record the export of %s: the month is no longer being exported to %s", month.Format("2006-01"), destination)
	}
	if _, err := tx.Exec(ctx, appendLeaves+`(SELECT 1 AS o, 'export' AS kind, e.id::text AS key, mps_proof_export(e) AS data FROM archive_exports e WHERE e.id = $1) l`, id); err != nil {
		return 0, fmt.Errorf("log the export of %s: %w", month.Format("2006-01"), interpretError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("record the export of %s: %w", month.Format("2006-01"), interpretError(err))
	}
	return id, nil
}

// MarkVerified moves month from exported to verified: its export was read
// back and found equal to the rows whose fingerprint (mps_month_fingerprint,
// in the read-back's snapshot) is given; detaching refuses any other.
func (s *Store) MarkVerified(ctx context.Context, month time.Time, exportID int64, fingerprint string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE archive_months SET state = 'verified', updated_at = now(), error = NULL, fingerprint = $3
 WHERE month = $1 AND export_id = $2 AND state IN ('exported', 'verified')`, month, exportID, fingerprint)
	if err != nil {
		return fmt.Errorf("record the verification of %s: %w", month.Format("2006-01"), interpretError(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("record the verification of %s: its export %d is no longer the month's", month.Format("2006-01"), exportID)
	}
	return nil
}

// MonthFailed records why a step of month failed (updated_at stays when
// the month reached its state: how long it has been stuck).
func (s *Store) MonthFailed(ctx context.Context, month time.Time, cause error) error {
	_, err := s.pool.Exec(ctx, `UPDATE archive_months SET error = $2 WHERE month = $1`, month, cause.Error())
	return interpretError(err)
}

// RestartExport sends a month that is not detached back to exporting: its
// export no longer reads back equal (the month changed, or the files did).
func (s *Store) RestartExport(ctx context.Context, month time.Time, cause error) error {
	_, err := s.pool.Exec(ctx, `UPDATE archive_months SET state = 'exporting', export_id = NULL, fingerprint = NULL,
       updated_at = now(), error = $2 WHERE month = $1 AND state <> 'detached'`, month, cause.Error())
	return interpretError(err)
}

// MonthFingerprint is mps_month_fingerprint of month, read on db (the
// read-back's snapshot).
func MonthFingerprint(ctx context.Context, db coldstore.DB, month time.Time) (string, error) {
	rows, err := db.Query(ctx, `SELECT mps_month_fingerprint($1)`, month)
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", month.Format("2006-01"), interpretError(err))
	}
	fp, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", month.Format("2006-01"), interpretError(err))
	}
	return fp, nil
}

// SnapshotProofHead is the proof log's origin and size as db (a snapshot)
// sees them.
func SnapshotProofHead(ctx context.Context, db coldstore.DB) (origin string, size int64, err error) {
	rows, err := db.Query(ctx, `SELECT origin, size FROM proof_log_head`)
	if err != nil {
		return "", 0, fmt.Errorf("read proof log head: %w", interpretError(err))
	}
	defer rows.Close()
	if !rows.Next() {
		return "", 0, fmt.Errorf("proof log: its head row (proof_log_head) is gone")
	}
	err = rows.Scan(&origin, &size)
	return origin, size, err
}

// DetachMonth drops month's partitions (mps_detach_month: only a month
// verified, whose row counts are still its export's).
func (s *Store) DetachMonth(ctx context.Context, month time.Time) error {
	if _, err := s.pool.Exec(ctx, `SELECT mps_detach_month($1)`, month); err != nil {
		return fmt.Errorf("detach %s: %w", month.Format("2006-01"), interpretError(err))
	}
	return nil
}

// ImportMonth brings a detached month back: fn copies the export into the
// month's new partitions (table → partition), attached when it returns,
// in one transaction; the month is verified again (its export still
// its copy).
func (s *Store) ImportMonth(ctx context.Context, month time.Time, fn func(db coldstore.DB, into map[string]string) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("import %s: %w", month.Format("2006-01"), interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var parts []string
	if err := tx.QueryRow(ctx, `SELECT mps_import_month_begin($1)`, month).Scan(&parts); err != nil {
		return fmt.Errorf("import %s: %w", month.Format("2006-01"), interpretError(err))
	}
	into := map[string]string{}
	for _, t := range coldstore.Tables {
		if !t.Partitioned() {
			continue
		}
		part := fmt.Sprintf("%s_y%sm%s", t.Name(), month.Format("2006"), month.Format("01"))
		into[t.Name()] = part
	}
	if len(parts) != len(into) {
		return fmt.Errorf("import %s: the database has partitions %v, this binary knows %v", month.Format("2006-01"), parts, into)
	}
	if err := fn(tx, into); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT mps_import_month_end($1)`, month); err != nil {
		return fmt.Errorf("import %s: %w", month.Format("2006-01"), interpretError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("import %s: %w", month.Format("2006-01"), interpretError(err))
	}
	return nil
}

// UnloggedDetachedMonths lists the detached months whose export is not
// in the proof log as the ledger names it (an export leaf of that month
// and manifest): months gone from the database with no logged copy.
func (s *Store) UnloggedDetachedMonths(ctx context.Context) ([]time.Time, error) {
	rows, err := s.pool.Query(ctx, `
SELECT a.month FROM archive_months a LEFT JOIN archive_exports e ON e.id = a.export_id
 WHERE a.state = 'detached'
   AND NOT EXISTS (SELECT 1 FROM proof_log l WHERE l.kind = 'export' AND l.key = e.id::text
                      AND l.data::json ->> 'manifest_sha256' = e.manifest_sha256
                      AND (l.data::json ->> 'month')::date = a.month)
 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("check the detached months: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("check the detached months: %w", interpretError(err))
	}
	return out, nil
}

// DetachedMonths lists the detached months.
func (s *Store) DetachedMonths(ctx context.Context) ([]time.Time, error) {
	all, err := s.ArchiveMonths(ctx)
	if err != nil {
		return nil, err
	}
	var out []time.Time
	for _, m := range all {
		if m.State == MonthDetached {
			out = append(out, m.Month)
		}
	}
	return out, nil
}
