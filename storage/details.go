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
                      WHERE not_before <= now() AND (leased_until IS NULL OR leased_until < now()) AND attempts < $3
                      ORDER BY deadline LIMIT $1
                      FOR UPDATE SKIP LOCKED)
RETURNING q.task_id, q.deadline, q.give_up_at, q.attempts`, p.Limit, p.Lease.Seconds(), p.MaxAttempts)
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
	tag, err := tx.Exec(ctx, `
INSERT INTO task_details (task_id, outcome, err_code, err_code_ext, message, ambiguities, raw, raw_truncated, raw_bytes)
VALUES ($1, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), $6, $7, $8, $9)
ON CONFLICT (task_id) DO NOTHING`,
		r.TaskID, outcome, o.ErrCode, o.ErrCodeExt, o.Message, ambiguities, raw, r.Truncated, r.RawBytes)
	if err != nil {
		return false, fmt.Errorf("store detail of %s: %w", r.TaskID, interpretError(err))
	}
	inserted := tag.RowsAffected() == 1
	if inserted && len(o.Subtasks) > 0 {
		n := len(o.Subtasks)
		ords, kinds, sts, codes, exts, msgs, defs, outs := make([]int32, n), make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, st := range o.Subtasks {
			ords[i], kinds[i], sts[i], codes[i], exts[i], msgs[i], defs[i], outs[i] =
				int32(st.Ordinal), st.Kind, st.Status, st.ErrCode, st.ErrCodeExt, st.Message, st.Definition, st.OutputPath
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO task_subtask_results (task_id, ordinal, kind, status, err_code, err_code_ext, message, definition, output_path)
SELECT $1, o, k, s, nullif(c, ''), nullif(e, ''), nullif(m, ''), nullif(d, ''), nullif(p, '')
  FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[]) AS u(o, k, s, c, e, m, d, p)
ON CONFLICT DO NOTHING`, r.TaskID, ords, kinds, sts, codes, exts, msgs, defs, outs); err != nil {
			return false, fmt.Errorf("store sub-tasks of %s: %w", r.TaskID, interpretError(err))
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM task_detail_queue WHERE task_id = $1`, r.TaskID); err != nil {
		return false, fmt.Errorf("dequeue %s: %w", r.TaskID, interpretError(err))
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
func (s *Store) DetailBacklog(ctx context.Context, maxAttempts int) (details.Backlog, error) {
	var b details.Backlog
	var oldest *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT count(*) FILTER (WHERE attempts < $1), count(*) FILTER (WHERE attempts >= $1),
       min(deadline) FILTER (WHERE attempts < $1)
  FROM task_detail_queue`, maxAttempts).Scan(&b.Pending, &b.GaveUp, &oldest)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return b, fmt.Errorf("read detail backlog: %w", interpretError(err))
	}
	if oldest != nil {
		b.OldestDeadline = *oldest
	}
	return b, nil
}

// EnqueueUndetailed queues every FINISH task inside the API's window that
// has no detail yet: the fallback of details.mode failed where the API
// cannot list failed tasks alone.
func (s *Store) EnqueueUndetailed(ctx context.Context, retention time.Duration) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO task_detail_queue (task_id, deadline, give_up_at)
SELECT t.task_id, t.create_time + make_interval(secs => $1), t.create_time + interval '168 hours'
  FROM tasks t
 WHERE t.status = 'FINISH' AND t.create_time > now() - interval '168 hours'
   AND NOT EXISTS (SELECT 1 FROM task_details d WHERE d.task_id = t.task_id)
ON CONFLICT DO NOTHING`, retention.Seconds())
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
