package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mps-archiver/mps-archiver/proof"
)

// The proof log's database side (migration 19): proof.Store.
var _ proof.Store = (*Store)(nil)

// ProofHead reads the log's head row.
func (s *Store) ProofHead(ctx context.Context) (proof.Head, error) { return proofHead(ctx, s.pool) }

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func proofHead(ctx context.Context, q querier) (proof.Head, error) {
	var h proof.Head
	var size int64
	err := q.QueryRow(ctx, `SELECT origin, size, enabled FROM proof_log_head`).Scan(&h.Origin, &size, &h.Enabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return h, errors.New("proof log: its head row (proof_log_head) is gone")
	}
	if err != nil {
		return h, fmt.Errorf("read proof log head: %w", interpretError(err))
	}
	h.Size = uint64(size)
	return h, nil
}

// ProofLeaves streams the leaves with from <= index < to, by index.
func (s *Store) ProofLeaves(ctx context.Context, from, to uint64, fn func(proof.Leaf) error) error {
	return proofLeaves(ctx, s.pool, from, to, fn)
}

func proofLeaves(ctx context.Context, q querier, from, to uint64, fn func(proof.Leaf) error) error {
	rows, err := q.Query(ctx, `SELECT idx, kind, key, hash, data FROM proof_log WHERE idx >= $1 AND idx < $2 ORDER BY idx`, int64(from), int64(to))
	if err != nil {
		return fmt.Errorf("read proof log: %w", interpretError(err))
	}
	var l proof.Leaf
	var idx int64
	var kind string
	_, err = pgx.ForEachRow(rows, []any{&idx, &kind, &l.Key, &l.Hash, &l.Data}, func() error {
		l.Index, l.Kind = uint64(idx), proof.Kind(kind)
		return fn(l)
	})
	if err != nil {
		return fmt.Errorf("read proof log: %w", interpretError(err))
	}
	return nil
}

const checkpointColumns = `size, root, coalesce(note, ''), coalesce(key_name, ''), compact, coalesce(run_id, 0), created_at`

func scanCheckpoint(row pgx.Row) (proof.Stored, error) {
	var c proof.Stored
	var size int64
	err := row.Scan(&size, &c.Root, &c.Note, &c.KeyName, &c.Compact, &c.RunID, &c.CreatedAt)
	c.Size = uint64(size)
	return c, err
}

// LatestProofCheckpoint is the largest stored checkpoint (signed: the
// largest signed one).
func (s *Store) LatestProofCheckpoint(ctx context.Context, signed bool) (proof.Stored, bool, error) {
	c, err := scanCheckpoint(s.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM proof_checkpoints WHERE note IS NOT NULL OR NOT $1 ORDER BY size DESC LIMIT 1`, signed))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("read checkpoint: %w", interpretError(err))
	}
	return c, true, nil
}

// SaveProofCheckpoint stores a checkpoint; one of the same size already
// there is kept (a signed one signs an unsigned one). It reports whether
// it wrote.
func (s *Store) SaveProofCheckpoint(ctx context.Context, c proof.Stored) (bool, error) {
	var run *int64
	if c.RunID != 0 {
		run = &c.RunID
	}
	tag, err := s.pool.Exec(ctx, `
INSERT INTO proof_checkpoints AS c (size, root, note, key_name, compact, run_id)
VALUES ($1, $2, nullif($3, ''), nullif($4, ''), $5, $6)
ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note, key_name = EXCLUDED.key_name
 WHERE c.note IS NULL AND EXCLUDED.note IS NOT NULL AND c.root = EXCLUDED.root`,
		int64(c.Size), c.Root, c.Note, c.KeyName, c.Compact, run)
	if err != nil {
		return false, fmt.Errorf("store checkpoint %d: %w", c.Size, interpretError(err))
	}
	return tag.RowsAffected() == 1, nil
}

// ProofRaw gives the texts the leaves of the given tasks may name by
// hash (a task's row, and the raw records of the task and its outcome),
// by their SHA-256.
func (s *Store) ProofRaw(ctx context.Context, taskIDs []string) (map[string]string, error) {
	rows, err := s.pool.Query(ctx, `
SELECT raw::text FROM tasks WHERE task_id = ANY($1)
UNION ALL
SELECT mps_proof_task_row(t) FROM tasks t WHERE task_id = ANY($1)
UNION ALL
SELECT raw::text FROM task_details WHERE task_id = ANY($1) AND raw IS NOT NULL`, taskIDs)
	if err != nil {
		return nil, fmt.Errorf("read raw records: %w", interpretError(err))
	}
	out := map[string]string{}
	var text string
	_, err = pgx.ForEachRow(rows, []any{&text}, func() error {
		sum := sha256.Sum256([]byte(text))
		out[hex.EncodeToString(sum[:])] = text
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read raw records: %w", interpretError(err))
	}
	return out, nil
}

// ProofRange lists what an export of [since, until) holds: the tasks
// created in it, and the runs started and gaps detected in it.
func (s *Store) ProofRange(ctx context.Context, since, until time.Time) (tasks, runs, gaps []string, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql string
			dst *[]string
		}{
			{`SELECT task_id FROM tasks WHERE create_time >= $1 AND create_time < $2`, &tasks},
			{`SELECT id::text FROM sync_runs WHERE started_at >= $1 AND started_at < $2 AND status <> 'running'`, &runs},
			{`SELECT id::text FROM coverage_gaps WHERE detected_at >= $1 AND detected_at < $2`, &gaps},
		} {
			rows, err := tx.Query(ctx, q.sql, since, until)
			if err != nil {
				return err
			}
			if *q.dst, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list the range's facts: %w", interpretError(err))
	}
	return tasks, runs, gaps, nil
}

// ProofStatus is what `status` says of the proof log.
type ProofStatus struct {
	Leaves         int64      `json:"leaves"`
	Enabled        bool       `json:"enabled"`
	CheckpointSize int64      `json:"checkpoint_size"`
	CheckpointAt   *time.Time `json:"checkpoint_at,omitempty"`
	CheckpointKey  string     `json:"checkpoint_signed_by,omitempty"`
	SignedSize     int64      `json:"signed_checkpoint_size"`
	SignedAt       *time.Time `json:"signed_checkpoint_at,omitempty"`
}

// ProofStatus reads the log's size and its last checkpoints.
func (s *Store) ProofStatus(ctx context.Context) (ProofStatus, error) {
	var p ProofStatus
	err := s.pool.QueryRow(ctx, `
SELECT h.size, h.enabled, coalesce(c.size, 0), c.created_at, coalesce(c.key_name, ''), coalesce(sc.size, 0), sc.created_at
  FROM proof_log_head h
  LEFT JOIN LATERAL (SELECT size, created_at, key_name FROM proof_checkpoints ORDER BY size DESC LIMIT 1) c ON true
  LEFT JOIN LATERAL (SELECT size, created_at FROM proof_checkpoints WHERE note IS NOT NULL ORDER BY size DESC LIMIT 1) sc ON true`).
		Scan(&p.Leaves, &p.Enabled, &p.CheckpointSize, &p.CheckpointAt, &p.CheckpointKey, &p.SignedSize, &p.SignedAt)
	if err != nil {
		return p, fmt.Errorf("read proof log status: %w", interpretError(err))
	}
	return p, nil
}

// ProofSnapshot reads the proof log and the archive in one snapshot, on
// two connections that share it (the leaves and the rows of a kind are
// read side by side): what verify reads, so that writes committed while
// it reads are neither half seen nor reported. It reads with
// search_path pg_catalog first, and the archive's schema only.
type ProofSnapshot struct {
	conns [2]*pgxpool.Conn
	txs   [2]pgx.Tx
}

var _ proof.Reader = (*ProofSnapshot)(nil)

// ProofSnapshot opens a snapshot; Close it.
func (s *Store) ProofSnapshot(ctx context.Context) (*ProofSnapshot, error) {
	p := &ProofSnapshot{}
	var snapshot string
	for i := range p.txs {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			p.Close(ctx)
			return nil, fmt.Errorf("open a snapshot: %w", interpretError(err))
		}
		p.conns[i] = conn
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			p.Close(ctx)
			return nil, fmt.Errorf("open a snapshot: %w", interpretError(err))
		}
		p.txs[i] = tx
		if i == 0 {
			err = tx.QueryRow(ctx, `SELECT pg_catalog.pg_export_snapshot()`).Scan(&snapshot)
		} else {
			_, err = tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+snapshot+`'`)
		}
		if err == nil {
			// Sorting a kind's facts with a session's default 4 MB would
			// spill a million of them to disk many times over.
			// (And no JIT: compiling the reads' expressions costs more than
			// it saves.)
			// Timestamps read as the writers wrote them: in UTC.
			_, err = tx.Exec(ctx, `SELECT pg_catalog.set_config('work_mem', '64MB', true), pg_catalog.set_config('jit', 'off', true),
       pg_catalog.set_config('TimeZone', 'UTC', true),
       pg_catalog.set_config('search_path', 'pg_catalog, ' || pg_catalog.quote_ident(pg_catalog.current_schema()), true)`)
		}
		if err != nil {
			p.Close(ctx)
			return nil, fmt.Errorf("open a snapshot: %w", interpretError(err))
		}
	}
	return p, nil
}

// Close ends the snapshot.
func (p *ProofSnapshot) Close(ctx context.Context) {
	for i := range p.txs {
		if p.txs[i] != nil {
			_ = p.txs[i].Rollback(context.WithoutCancel(ctx))
		}
		if p.conns[i] != nil {
			p.conns[i].Release()
		}
	}
}

// ProofHead reads the log's head row.
func (p *ProofSnapshot) ProofHead(ctx context.Context) (proof.Head, error) {
	return proofHead(ctx, p.txs[0])
}

// ProofLeaves streams the leaves with from <= index < to, by index.
func (p *ProofSnapshot) ProofLeaves(ctx context.Context, from, to uint64, fn func(proof.Leaf) error) error {
	return proofLeaves(ctx, p.txs[0], from, to, fn)
}

// ProofCheckpoints lists the stored checkpoints by size.
func (p *ProofSnapshot) ProofCheckpoints(ctx context.Context) ([]proof.Stored, error) {
	rows, err := p.txs[0].Query(ctx, `SELECT `+checkpointColumns+` FROM proof_checkpoints ORDER BY size`)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (proof.Stored, error) { return scanCheckpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", interpretError(err))
	}
	return out, nil
}

// KindLeaves streams every leaf of a kind below an index, by key
// (bytewise, as Go compares strings) then index, but those of tasks of
// months detached to cold storage (their facts are in their exports,
// whose manifests the log holds: export leaves).
func (p *ProofSnapshot) KindLeaves(ctx context.Context, kind proof.Kind, below uint64, fn func(proof.Leaf) error) error {
	rows, err := p.txs[0].Query(ctx, `
WITH detached AS (SELECT coalesce(array_agg(month), '{}') AS months FROM archive_months WHERE state = 'detached')
SELECT idx, key, hash, data FROM proof_log, detached
 WHERE kind = $1 AND idx < $2
   AND (cardinality(detached.months) = 0 OR kind NOT IN ('task', 'outcome', 'status_change')
        OR NOT coalesce(pg_catalog.date_trunc('month', (CASE WHEN kind = 'status_change' THEN (data::json ->> 'create_time')::timestamptz
                     ELSE pg_catalog.to_timestamp(nullif(substring(key FROM '@(-?[0-9]*)$'), '')::numeric / 1000000) END)
                  AT TIME ZONE 'UTC')::date = ANY (detached.months), false))
 ORDER BY key COLLATE "C", idx`, string(kind), int64(below))
	if err != nil {
		return fmt.Errorf("read proof log: %w", interpretError(err))
	}
	l := proof.Leaf{Kind: kind}
	var idx int64
	_, err = pgx.ForEachRow(rows, []any{&idx, &l.Key, &l.Hash, &l.Data}, func() error {
		l.Index = uint64(idx)
		return fn(l)
	})
	if err != nil {
		return fmt.Errorf("read proof log: %w", interpretError(err))
	}
	return nil
}

// factQueries read each kind's table as its leaves are built (migration
// 19), but here, not through the database's functions: a verifier must
// not take the shape of the facts from the database it checks (and calls
// pg_catalog's by name: an overload in the archive's schema is not
// taken). A row unchanged since its leaf reads as the leaf's very bytes
// (row_to_json of the same columns, "fact" first), which verify compares
// first. Keys sort bytewise (COLLATE "C"), as the leaves do.
var factQueries = map[proof.Kind]string{
	proof.KindTask: `
SELECT k, pg_catalog.row_to_json(x)::text
  FROM tasks t,
       LATERAL (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
                       t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id, t.last_changed_run_id,
                       t.gone_at, pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(t.raw::text, 'UTF8')), 'hex') AS raw_sha256) r,
       LATERAL (SELECT t.task_id, t.task_type, t.sub_task_types, t.status, t.create_time, t.begin_process_time,
                       t.finish_time, t.first_status, t.first_seen_at, t.last_changed_at, t.first_seen_run_id, t.last_changed_run_id,
                       t.gone_at, pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(t.raw::text, 'UTF8')), 'hex') AS raw_sha256,
                       t.source) r2,
       LATERAL (SELECT 'task' AS fact, t.task_id, t.create_time, t.status,
                       pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(
                           CASE WHEN t.source = 'media' THEN pg_catalog.row_to_json(r)::text ELSE pg_catalog.row_to_json(r2)::text END,
                           'UTF8')), 'hex') AS row_sha256) x,
       LATERAL (SELECT t.task_id || '@' || coalesce((pg_catalog.extract('epoch', t.create_time) * 1000000)::bigint::text, '') AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindStatusChange: `
SELECT k, pg_catalog.row_to_json(x)::text
  FROM task_status_changes c, LATERAL (SELECT 'status_change' AS fact, c.*) x, LATERAL (SELECT c.task_id || '#' || c.id AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindOutcome: `
SELECT k, pg_catalog.row_to_json(x)::text
  FROM task_details d
  LEFT JOIN (SELECT s.task_id, coalesce(s.create_time, '-infinity') AS created, pg_catalog.json_agg(r ORDER BY r.ordinal) AS subtasks
               FROM task_subtask_results s,
                    LATERAL (SELECT s.ordinal, s.kind, s.status, s.err_code, s.err_code_ext, s.message, s.definition, s.output_path) r
              GROUP BY 1, 2) s
    ON s.task_id = d.task_id AND s.created = coalesce(d.create_time, '-infinity'),
       LATERAL (SELECT 'outcome' AS fact, d.task_id, d.create_time, d.fetched_at, d.outcome, d.err_code, d.err_code_ext, d.message,
                       d.ambiguities, d.raw_truncated, d.raw_bytes,
                       pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(d.raw::text, 'UTF8')), 'hex') AS raw_sha256,
                       coalesce(s.subtasks, '[]') AS subtasks) x,
       LATERAL (SELECT d.task_id || '@' || coalesce((pg_catalog.extract('epoch', d.create_time) * 1000000)::bigint::text, '') AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindRun: `
SELECT k, pg_catalog.row_to_json(x)::text FROM sync_runs r, LATERAL (SELECT 'run' AS fact, r.*) x, LATERAL (SELECT r.id::text AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindGap: `
SELECT k, pg_catalog.row_to_json(x)::text FROM coverage_gaps g, LATERAL (SELECT 'gap' AS fact, g.*) x, LATERAL (SELECT g.id::text AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindUsageRun: `
SELECT k, pg_catalog.row_to_json(x)::text FROM usage_runs r, LATERAL (SELECT 'usage_run' AS fact, r.*) x, LATERAL (SELECT r.id::text AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindExport: `
SELECT k, pg_catalog.row_to_json(x)::text FROM archive_exports e, LATERAL (SELECT 'export' AS fact, e.*) x, LATERAL (SELECT e.id::text AS k) key
 ORDER BY k COLLATE "C"`,
	proof.KindUsage: `
SELECT k, pg_catalog.row_to_json(x)::text
  FROM usage_daily u, LATERAL (SELECT 'usage' AS fact, u.*) x,
       LATERAL (SELECT pg_catalog.to_char(u.day, 'YYYY-MM-DD') || '|' || u.region || '|' || u.type || '|' || u.specification AS k) key
 ORDER BY k COLLATE "C"`,
}

// Facts streams a kind's table rows as JSON, by key (on the snapshot's
// second connection: beside KindLeaves).
func (p *ProofSnapshot) Facts(ctx context.Context, kind proof.Kind, fn func(key string, row []byte) error) error {
	q, ok := factQueries[kind]
	if !ok {
		return fmt.Errorf("no table for facts of kind %q", kind)
	}
	rows, err := p.txs[1].Query(ctx, q)
	if err != nil {
		return fmt.Errorf("read %s facts: %w", kind, interpretError(err))
	}
	var key string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &data}, func() error { return fn(key, data) })
	if err != nil {
		return fmt.Errorf("read %s facts: %w", kind, interpretError(err))
	}
	return nil
}

// OrphanSubtasks lists the tasks with sub-task results and no outcome.
func (p *ProofSnapshot) OrphanSubtasks(ctx context.Context) ([]string, error) {
	rows, err := p.txs[0].Query(ctx, `
SELECT DISTINCT s.task_id FROM task_subtask_results s
 WHERE NOT EXISTS (SELECT FROM task_details d WHERE d.task_id = s.task_id
                      AND (d.create_time = s.create_time OR d.create_time IS NULL AND s.create_time IS NULL))
 ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("read sub-task results: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read sub-task results: %w", interpretError(err))
	}
	return out, nil
}
