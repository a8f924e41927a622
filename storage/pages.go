package storage

import (
	"cmp"
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
-- keyed: each input row with the archived row it is, if any. A task is
-- (task_id, create_time), the key of every task table, and the lookups are
-- bounded by [$13, $14) (the page's create times and now, widened by 8
-- days): with custom plans the planner considers only those months'
-- partitions, so a page costs the same whatever the months kept. The same
-- task archived under another create time (none readable then, or the API
-- writing it differently) is found too, within the bounds, and keeps the
-- create time it was archived with: one row per TaskId.
keyed AS (
    SELECT i.*, e.found, e.create_time AS archived_time, e.status AS old_status, e.raw AS old_raw, e.source AS old_source
      FROM input i
      LEFT JOIN LATERAL (
            SELECT true AS found, t.create_time, t.status, t.raw, t.source FROM tasks t
             WHERE t.task_id = i.task_id AND t.create_time = i.create_time
               AND t.create_time >= $13 AND t.create_time < $14
            UNION ALL
            SELECT true, t.create_time, t.status, t.raw, t.source FROM tasks t
             WHERE t.task_id = i.task_id AND t.create_time IS NULL
            UNION ALL
            SELECT true, t.create_time, t.status, t.raw, t.source FROM tasks t
             WHERE t.task_id = i.task_id AND t.create_time >= $13 AND t.create_time < $14
               AND (i.create_time IS NULL
                    OR t.create_time >= i.create_time - interval '8 days' AND t.create_time < i.create_time + interval '8 days')
            LIMIT 1
           ) e ON true
),
changed AS (
    SELECT k.*, CASE WHEN k.found THEN k.archived_time ELSE k.create_time END AS key_time
      FROM keyed k
     WHERE k.found IS NULL
        OR (mps_status_rank($2) >= mps_status_rank(k.old_status)
            AND CASE WHEN $15::text = 'media' AND k.old_source <> 'media'
                     -- A task another source lists too keeps that source's
                     -- record: the media list moves only its status on.
                     THEN mps_status_rank($2) > mps_status_rank(k.old_status)
                     ELSE (k.old_status, k.old_raw, k.old_source) IS DISTINCT FROM ($2::text, k.raw, $15::text) END)
),
upserted AS (
    INSERT INTO tasks AS t (task_id, task_type, sub_task_types, status, create_time, begin_process_time,
                            finish_time, raw, first_status, first_seen_run_id, last_changed_run_id, source)
    SELECT task_id, task_type, sub_task_types::text[], $2, key_time, begin_process_time,
           finish_time, raw, $2, $1, $1, $15
      FROM changed
     -- One lock order for every writer: concurrent pages cannot deadlock.
     ORDER BY task_id
        ON CONFLICT (task_id, create_time) DO UPDATE
       SET task_type = CASE WHEN EXCLUDED.source = 'media' AND t.source <> 'media' THEN t.task_type ELSE EXCLUDED.task_type END,
           sub_task_types = CASE WHEN EXCLUDED.source = 'media' AND t.source <> 'media' THEN t.sub_task_types ELSE EXCLUDED.sub_task_types END,
           status = EXCLUDED.status,
           create_time = EXCLUDED.create_time,
           begin_process_time = EXCLUDED.begin_process_time,
           finish_time = EXCLUDED.finish_time,
           raw = CASE WHEN EXCLUDED.source = 'media' AND t.source <> 'media' THEN t.raw ELSE EXCLUDED.raw END,
           source = CASE WHEN EXCLUDED.source = 'media' AND t.source <> 'media' THEN t.source ELSE EXCLUDED.source END,
           last_changed_at = now(),
           last_changed_run_id = EXCLUDED.last_changed_run_id
     WHERE mps_status_rank(EXCLUDED.status) >= mps_status_rank(t.status)
 RETURNING t.task_id, t AS rec
),
transitions AS (
    INSERT INTO task_status_changes AS s (task_id, create_time, run_id, from_status, to_status)
    SELECT c.task_id, c.key_time, $1, c.old_status, $2
      FROM changed c
      JOIN upserted u ON u.task_id = c.task_id
     WHERE c.old_status IS NOT NULL AND c.old_status <> $2::text
     ORDER BY c.task_id
 RETURNING s.task_id, s AS rec
),
-- The proof log: each task as written and each transition, one leaf a
-- fact, in this statement (migration 19).
leaves AS (
    SELECT 1 AS o, mps_proof_key(task_id, (rec).create_time) AS key, 'task' AS kind, mps_proof_task(rec) AS data FROM upserted
    UNION ALL
    SELECT 2, task_id || '#' || (rec).id, 'status_change', mps_proof_status_change(rec) FROM transitions
),
proof AS (` + appendLeaves + `leaves),
-- Detail capture: 'finished' queues the tasks this page shows FINISH for the
-- first time (first seen there, or moved there); 'listed' queues every task
-- on the page that has no detail yet.
queued AS (
    INSERT INTO task_detail_queue (task_id, create_time, deadline, give_up_at)
    SELECT k.task_id, k.key_time, coalesce(k.create_time, now()) + make_interval(secs => $11),
           coalesce(k.create_time, now()) + make_interval(secs => $12)
      FROM (SELECT keyed.*, CASE WHEN found THEN archived_time ELSE create_time END AS key_time FROM keyed) k
     WHERE $2::text = 'FINISH'
       AND ($10::text = 'listed'
            OR $10::text = 'finished' AND EXISTS (SELECT 1 FROM changed c WHERE c.task_id = k.task_id AND c.old_status IS DISTINCT FROM 'FINISH'))
       AND NOT EXISTS (SELECT 1 FROM task_details d
                        WHERE d.task_id = k.task_id AND d.create_time = k.key_time
                          AND d.create_time >= $13 AND d.create_time < $14)
       AND NOT EXISTS (SELECT 1 FROM task_details d
                        WHERE k.key_time IS NULL AND d.task_id = k.task_id AND d.create_time IS NULL)
    ON CONFLICT DO NOTHING
)
-- Inserted: not found by the lookup (xmax cannot be read from a
-- partitioned table's RETURNING).
SELECT count(*) FILTER (WHERE c.found IS NULL), count(*) FILTER (WHERE c.found), (SELECT appended FROM proof)
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
	lo, hi := lookupBounds(p.Tasks, time.Now())
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
		mps.Window.Seconds(), lo, hi, cmp.Or(p.Source, mps.SourceMedia.Name),
	).Scan(&res.Inserted, &res.Updated, nil)
	if err != nil {
		return res, fmt.Errorf("upsert %d tasks: %w", n, interpretError(err))
	}
	res.Unchanged = int64(n) - res.Inserted - res.Updated
	return res, nil
}

// lookupBounds is the range of create times where a page's tasks may
// already be archived: the page's own create times and now (the API lists
// the last days; a task with none readable may be archived under any time
// of those), widened by 8 days each way.
func lookupBounds(tasks []mps.Task, now time.Time) (lo, hi time.Time) {
	lo, hi = now, now
	for _, t := range tasks {
		if t.CreateTime.IsZero() {
			continue
		}
		if t.CreateTime.Before(lo) {
			lo = t.CreateTime
		}
		if t.CreateTime.After(hi) {
			hi = t.CreateTime
		}
	}
	const margin = 8 * 24 * time.Hour
	return lo.Add(-margin), hi.Add(margin)
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

// appendLeaves, followed by a subquery of (o, kind, key, data) rows,
// appends them to the proof log ordered by (o, key) and yields one row
// whose column appended says how many (migration 19). A writer appends
// its facts' leaves in the statement or transaction that writes them,
// last, so that the head's lock is held only until the commit.
const appendLeaves = `SELECT mps_proof_append(array_agg(kind ORDER BY o, key, data), array_agg(key ORDER BY o, key, data), array_agg(data ORDER BY o, key, data)) AS appended FROM `
