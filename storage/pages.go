package storage

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// writePageSQL upserts one page of one status and records its status
// transitions, in one statement and so one round trip and one atomic commit.
// A task's first sighting is its tasks.first_status, not a transition.
//
// Rows whose (status, raw) already match, and rows whose archived status is
// further along than the page's, are filtered out before the INSERT: an
// ON CONFLICT … WHERE clause alone would still lock and dirty every
// conflicting row, writing WAL for nothing on a re-sync.
const writePageSQL = `
WITH input AS (
    SELECT *
      FROM unnest($3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::jsonb[])
           AS i(task_id, task_type, sub_task_types, create_time, begin_process_time, finish_time, raw)
),
-- A task is (task_id, create_time), the key of every task table: the
-- lookup names its month's partition, so its cost does not grow with the
-- months kept. (Tasks without a create time live in tasks_undated.)
changed AS (
    SELECT i.*, t.status AS old_status
      FROM input i
      LEFT JOIN LATERAL (
            SELECT t.status, t.raw FROM tasks t WHERE t.task_id = i.task_id AND t.create_time = i.create_time
            UNION ALL
            SELECT t.status, t.raw FROM tasks t WHERE i.create_time IS NULL AND t.task_id = i.task_id AND t.create_time IS NULL
           ) t ON true
     WHERE t.status IS NULL
        OR (mps_status_rank($2) >= mps_status_rank(t.status)
            AND (t.status, t.raw) IS DISTINCT FROM ($2::text, i.raw))
),
upserted AS (
    INSERT INTO tasks AS t (task_id, task_type, sub_task_types, status, create_time, begin_process_time,
                            finish_time, raw, first_status, first_seen_run_id, last_changed_run_id)
    SELECT task_id, task_type, sub_task_types::text[], $2, create_time, begin_process_time,
           finish_time, raw, $2, $1, $1
      FROM changed
     -- One lock order for every writer: concurrent pages cannot deadlock.
     ORDER BY task_id
        ON CONFLICT (task_id, create_time) DO UPDATE
       SET task_type = EXCLUDED.task_type,
           sub_task_types = EXCLUDED.sub_task_types,
           status = EXCLUDED.status,
           create_time = EXCLUDED.create_time,
           begin_process_time = EXCLUDED.begin_process_time,
           finish_time = EXCLUDED.finish_time,
           raw = EXCLUDED.raw,
           last_changed_at = now(),
           last_changed_run_id = EXCLUDED.last_changed_run_id
     WHERE mps_status_rank(EXCLUDED.status) >= mps_status_rank(t.status)
 RETURNING t.task_id
),
transitions AS (
    INSERT INTO task_status_changes (task_id, create_time, run_id, from_status, to_status)
    SELECT c.task_id, c.create_time, $1, c.old_status, $2
      FROM changed c
      JOIN upserted u ON u.task_id = c.task_id
     WHERE c.old_status IS NOT NULL AND c.old_status <> $2::text
),
-- Detail capture: 'finished' queues the tasks this page shows FINISH for the
-- first time (first seen there, or moved there); 'listed' queues every task
-- on the page that has no detail yet.
queued AS (
    INSERT INTO task_detail_queue (task_id, deadline, give_up_at)
    SELECT i.task_id, coalesce(i.create_time, now()) + make_interval(secs => $11),
           coalesce(i.create_time, now()) + make_interval(secs => $12)
      FROM input i
     WHERE $2::text = 'FINISH'
       AND ($10::text = 'listed'
            OR $10::text = 'finished' AND EXISTS (SELECT 1 FROM changed c WHERE c.task_id = i.task_id AND c.old_status IS DISTINCT FROM 'FINISH'))
       AND NOT EXISTS (SELECT 1 FROM task_details d WHERE d.task_id = i.task_id)
    ON CONFLICT DO NOTHING
)
-- Inserted: not found by the lookup (xmax cannot be read from a
-- partitioned table's RETURNING).
SELECT count(*) FILTER (WHERE c.old_status IS NULL), count(*) FILTER (WHERE c.old_status IS NOT NULL)
  FROM upserted u JOIN changed c ON c.task_id = u.task_id`

// WritePage writes one page. Tasks must have distinct TaskIds (the syncer
// deduplicates): one INSERT … ON CONFLICT cannot touch a row twice.
func (s *Store) WritePage(ctx context.Context, p syncer.WritePageParams) (syncer.PageResult, error) {
	n := len(p.Tasks)
	ids := make([]string, n)
	types := make([]string, n)
	subs := make([]string, n)
	creates := make([]pgtype.Timestamptz, n)
	begins := make([]pgtype.Timestamptz, n)
	finishes := make([]pgtype.Timestamptz, n)
	raws := make([][]byte, n)
	var sb strings.Builder
	for i, t := range p.Tasks {
		ids[i] = t.TaskID
		types[i] = t.TaskType
		subs[i] = arrayLiteral(&sb, t.SubTaskTypes)
		creates[i] = ts(t.CreateTime)
		begins[i] = ts(t.BeginProcessTime)
		finishes[i] = ts(t.FinishTime)
		raws[i] = t.Raw
	}
	var res syncer.PageResult
	err := s.pool.QueryRow(ctx, writePageSQL,
		p.RunID, string(p.Status), ids, types, subs, creates, begins, finishes, raws, p.EnqueueDetails, p.DetailRetention.Seconds(),
		mps.Window.Seconds(),
	).Scan(&res.Inserted, &res.Updated)
	if err != nil {
		return res, fmt.Errorf("upsert %d tasks: %w", n, interpretError(err))
	}
	res.Unchanged = int64(n) - res.Inserted - res.Updated
	return res, nil
}

func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// arrayLiteral writes a PostgreSQL text[] literal, so a page's sub-task lists
// travel as one text[] parameter and are cast per row.
func arrayLiteral(sb *strings.Builder, elems []string) string {
	if len(elems) == 0 {
		return "{}"
	}
	sb.Reset()
	sb.WriteByte('{')
	for i, e := range elems {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('"')
		for j := 0; j < len(e); j++ {
			if c := e[j]; c == '"' || c == '\\' {
				sb.WriteByte('\\')
			}
			sb.WriteByte(e[j])
		}
		sb.WriteByte('"')
	}
	sb.WriteByte('}')
	return sb.String()
}
