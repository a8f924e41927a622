package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/mps"
)

// ClaimDetails leases claimable jobs in one statement, River's way: the
// inner SELECT … FOR UPDATE SKIP LOCKED means two workers (or replicas)
// never take the same row.
func (s *Store) ClaimDetails(ctx context.Context, p details.ClaimParams) ([]details.Job, error) {
	rows, err := s.pool.Query(ctx, `
UPDATE task_detail_queue q
   SET leased_until = now() + make_interval(secs => $2), attempts = q.attempts + 1
 WHERE q.task_id IN (SELECT task_id FROM task_detail_queue
                      WHERE not_before <= now() AND (leased_until IS NULL OR leased_until < now())
                      ORDER BY deadline LIMIT $1
                      FOR UPDATE SKIP LOCKED)
RETURNING q.task_id, q.deadline, q.give_up_at, q.attempts, coalesce(q.last_error, ''),
          coalesce((SELECT t.source FROM tasks t WHERE t.task_id = q.task_id AND t.create_time IS NOT DISTINCT FROM q.create_time LIMIT 1), 'media')`, p.Limit, p.Lease.Seconds())
	if err != nil {
		return nil, fmt.Errorf("claim details: %w", interpretError(err))
	}
	jobs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[details.Job])
	if err != nil {
		return nil, fmt.Errorf("claim details: %w", interpretError(err))
	}
	slices.SortFunc(jobs, func(a, b details.Job) int { return a.Deadline.Compare(b.Deadline) })
	return jobs, nil
}

// CompleteDetail stores an outcome, its sub-tasks and the job's removal in
// one transaction.
func (s *Store) CompleteDetail(ctx context.Context, r details.Record) (bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("store detail of %s: %w", r.TaskID, interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	o := r.Outcome
	outcome := o.Result
	var raw []byte
	if r.Expired {
		outcome, o = mps.OutcomeExpired, mps.Outcome{}
	} else {
		raw = r.Raw
	}
	ambiguities := o.Ambiguities
	if ambiguities == nil {
		ambiguities = []string{}
	}
	var errCode, message = o.ErrCode, o.Message
	if r.Expired && r.GaveUpAfter != "" {
		errCode = "gave_up"
		message = "failed to read until MPS forgot it; last error: " + r.GaveUpAfter
	}
	// A final outcome is never replaced; an undecided one (or a give-up
	// an operator requeued) is, by a later reading.
	// The outcome and its sub-tasks go to the task's month: the task's
	// create_time is part of their key (NULL for an undated task, or for a
	// detail of a task the archive lacks).
	// The queue row knows it (one index lookup); a detail read without one
	// (an in-flight task resolved by an incremental run) looks the task up.
	// (Two statements: one planned over every month would cost that
	// planning on every outcome.)
	var created *time.Time
	err = tx.QueryRow(ctx, `SELECT create_time FROM task_detail_queue WHERE task_id = $1`, r.TaskID).Scan(&created)
	if errors.Is(err, pgx.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT create_time FROM tasks WHERE task_id = $1 ORDER BY create_time LIMIT 1`, r.TaskID).Scan(&created)
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("store detail of %s: %w", r.TaskID, interpretError(err))
	}
	var stored, replaced bool
	err = tx.QueryRow(ctx, `
WITH before AS (SELECT 1 FROM task_details
                 WHERE task_id = $1 AND (create_time = $10 OR $10::timestamptz IS NULL AND create_time IS NULL))
INSERT INTO task_details AS d (task_id, create_time, outcome, err_code, err_code_ext, message, ambiguities, raw, raw_truncated, raw_bytes)
VALUES ($1, $10, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), $6, $7, $8, $9)
ON CONFLICT (task_id, create_time) DO UPDATE
   SET outcome = EXCLUDED.outcome, err_code = EXCLUDED.err_code, err_code_ext = EXCLUDED.err_code_ext,
       message = EXCLUDED.message, ambiguities = EXCLUDED.ambiguities, raw = EXCLUDED.raw,
       raw_truncated = EXCLUDED.raw_truncated, raw_bytes = EXCLUDED.raw_bytes, fetched_at = now()
 WHERE d.outcome = 'undecided' AND (EXCLUDED.outcome <> 'expired' OR d.raw IS NULL)
RETURNING true, EXISTS (SELECT 1 FROM before)`,
		r.TaskID, outcome, errCode, o.ErrCodeExt, truncateText(message, 2000), ambiguities, raw, r.Truncated, r.RawBytes, created).Scan(&stored, &replaced)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return false, fmt.Errorf("store detail of %s: %w", r.TaskID, interpretError(err))
	}
	inserted := stored
	if replaced {
		// Only a later reading of an undecided outcome has sub-tasks to
		// replace; a first one (the common case) costs no statement here.
		if _, err := tx.Exec(ctx, `
DELETE FROM task_subtask_results WHERE task_id = $1 AND (create_time = $2 OR $2::timestamptz IS NULL AND create_time IS NULL)`, r.TaskID, created); err != nil {
			return false, fmt.Errorf("replace sub-tasks of %s: %w", r.TaskID, interpretError(err))
		}
	}
	if inserted && len(o.Subtasks) > 0 {
		n := len(o.Subtasks)
		ords, kinds, sts, codes, exts, msgs, defs, outs := make([]int32, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, st := range o.Subtasks {
			ords[i], kinds[i], sts[i], codes[i], exts[i], msgs[i], defs[i], outs[i] =
				int32(st.Ordinal), st.Kind, st.Status, st.ErrCode, st.ErrCodeExt, st.Message, st.Definition, st.OutputPath
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO task_subtask_results (task_id, create_time, ordinal, kind, status, err_code, err_code_ext, message, definition, output_path)
SELECT $1, $10, o, k, s, nullif(c, ''), nullif(e, ''), nullif(m, ''), nullif(d, ''), nullif(p, '')
  FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS u(o, k, s, c, e, m, d, p)
ON CONFLICT DO NOTHING`, r.TaskID, ords, kinds, sts, codes, exts, msgs, defs, outs, created); err != nil {
			return false, fmt.Errorf("store sub-tasks of %s: %w", r.TaskID, interpretError(err))
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM task_detail_queue WHERE task_id = $1`, r.TaskID); err != nil {
		return false, fmt.Errorf("dequeue %s: %w", r.TaskID, interpretError(err))
	}
	// The outcome as stored, sub-tasks included, joins the proof log last:
	// the head's lock is held from here to the commit.
	if inserted {
		if _, err := tx.Exec(ctx, appendLeaves+`(
SELECT 1 AS o, 'outcome' AS kind, mps_proof_key(d.task_id, d.create_time) AS key, mps_proof_outcome(d) AS data FROM task_details d
 WHERE d.task_id = $1 AND (d.create_time = $2 OR $2::timestamptz IS NULL AND d.create_time IS NULL)) l`, r.TaskID, created); err != nil {
			return false, fmt.Errorf("log detail of %s: %w", r.TaskID, interpretError(err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("store detail of %s: %w", r.TaskID, interpretError(err))
	}
	return inserted, nil
}

// ReleaseDetail gives a job back.
func (s *Store) ReleaseDetail(ctx context.Context, p details.ReleaseParams) error {
	var err error
	if p.Retry {
		_, err = s.pool.Exec(ctx, `
UPDATE task_detail_queue SET leased_until = NULL, not_before = $2, last_error = $3 WHERE task_id = $1`,
			p.TaskID, p.NotBefore, truncateText(p.Error, 500))
	} else {
		_, err = s.pool.Exec(ctx, `
UPDATE task_detail_queue SET leased_until = NULL, attempts = greatest(attempts - 1, 0) WHERE task_id = $1`, p.TaskID)
	}
	if err != nil {
		return fmt.Errorf("release detail job %s: %w", p.TaskID, interpretError(err))
	}
	return nil
}

// DetailBacklog summarises the queue.
func (s *Store) DetailBacklog(ctx context.Context) (details.Backlog, error) {
	var b details.Backlog
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT count(*), count(*) FILTER (WHERE last_error IS NOT NULL), min(deadline),
       (SELECT count(*) FROM task_details
         WHERE outcome = 'expired' AND err_code = 'gave_up' AND fetched_at > now() - interval '7 days')
  FROM task_detail_queue`).Scan(&b.Pending, &b.Failing, &oldest, &b.GaveUp)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("read detail backlog: %w", interpretError(err))
	}
	if oldest != nil {
		b.OldestDeadline = *oldest
	}
	return b, nil
}

// RequeueDetails queues again, for another reading, every task MPS may
// still hold a detail for (created less than mps.Window ago) whose detail
// was given up after errors or could not be decided, and makes every
// queued job claimable at once. It reports how many tasks it requeued and
// how many queued jobs it woke.
func (s *Store) RequeueDetails(ctx context.Context, retention time.Duration) (requeued, woken int64, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("requeue details: %w", interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// The rollup lock first: the outcome update below takes it, and a
	// worker storing an outcome holds it while it dequeues.
	if _, err := tx.Exec(ctx, `SELECT mps_rollup_lock()`); err != nil {
		return 0, 0, fmt.Errorf("requeue details: %w", interpretError(err))
	}
	tag, err := tx.Exec(ctx, `
INSERT INTO task_detail_queue (task_id, create_time, deadline, give_up_at)
SELECT t.task_id, t.create_time, t.create_time + make_interval(secs => $1), t.create_time + make_interval(secs => $2)
  FROM task_details d JOIN tasks t ON t.task_id = d.task_id AND t.create_time = d.create_time
 WHERE (d.outcome = 'undecided' OR d.outcome = 'expired' AND d.err_code = 'gave_up')
   AND t.create_time > now() - make_interval(secs => $2)
ON CONFLICT (task_id) DO UPDATE SET not_before = '-infinity', leased_until = NULL`, retention.Seconds(), mps.Window.Seconds())
	if err != nil {
		return 0, 0, fmt.Errorf("requeue details: %w", interpretError(err))
	}
	requeued = tag.RowsAffected()
	tag, err = tx.Exec(ctx, `UPDATE task_detail_queue SET not_before = '-infinity' WHERE not_before > now()`)
	if err != nil {
		return 0, 0, fmt.Errorf("requeue details: %w", interpretError(err))
	}
	woken = tag.RowsAffected()
	// A given-up detail is final to CompleteDetail: it is made undecided so
	// that the new reading replaces it. Last, with its proof leaves: the
	// proof head's lock must be the last a writer takes (a worker storing
	// an outcome holds a queue row while it waits for it).
	if _, err := tx.Exec(ctx, `
WITH requeued AS (
    UPDATE task_details d SET outcome = 'undecided'
      FROM task_detail_queue q
     WHERE q.task_id = d.task_id AND d.create_time IS NOT DISTINCT FROM q.create_time
       AND d.outcome = 'expired' AND d.err_code = 'gave_up'
    RETURNING d.task_id, d AS rec
)
`+appendLeaves+`(SELECT 1 AS o, 'outcome' AS kind, mps_proof_key(task_id, (rec).create_time) AS key, mps_proof_outcome(rec) AS data FROM requeued) l`); err != nil {
		return 0, 0, fmt.Errorf("requeue details: %w", interpretError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, fmt.Errorf("requeue details: %w", interpretError(err))
	}
	return requeued, woken, nil
}

// EnqueueUndetailed queues every FINISH task inside the API's window that
// has no detail yet: the fallback of details.mode failed where the API
// cannot list failed tasks alone.
func (s *Store) EnqueueUndetailed(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO task_detail_queue (task_id, create_time, deadline, give_up_at)
SELECT t.task_id, t.create_time, t.create_time + make_interval(secs => $1), t.create_time + make_interval(secs => $2)
  FROM tasks t
 WHERE t.status = 'FINISH' AND t.create_time > now() - make_interval(secs => $2)
   AND NOT EXISTS (SELECT 1 FROM task_details d WHERE d.task_id = t.task_id AND d.create_time = t.create_time)
ON CONFLICT DO NOTHING`, retention.Seconds(), mps.Window.Seconds())
	if err != nil {
		return 0, fmt.Errorf("queue undetailed tasks: %w", interpretError(err))
	}
	return tag.RowsAffected(), nil
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
