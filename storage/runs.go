package storage

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// runLockKey is the advisory lock every archiver process takes for a run:
// the ASCII bytes of "mps-sync" read as a big-endian int64.
const runLockKey int64 = 0x6d70732d73796e63

// runLock holds the session advisory lock on a dedicated connection and
// watches that connection: if it dies the server has dropped the lock, and
// Lost is closed so the run can stop before another replica's overlaps it.
type runLock struct {
	conn *pgxpool.Conn
	key  int64
	lost chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Lock takes the run lock without waiting; syncer.ErrLocked means another
// process has it.
func (s *Store) Lock(ctx context.Context) (syncer.Lock, error) {
	l, err := s.lock(ctx, runLockKey)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// lock takes the session advisory lock key without waiting.
func (s *Store) lock(ctx context.Context, key int64) (*runLock, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, interpretError(err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, interpretError(err)
	}
	if !ok {
		conn.Release()
		return nil, syncer.ErrLocked
	}
	l := &runLock{conn: conn, key: key, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, nil
}

func (l *runLock) watch() {
	defer close(l.done)
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				close(l.lost)
				return
			}
		}
	}
}

func (l *runLock) Lost() <-chan struct{} { return l.lost }

func (l *runLock) Release(ctx context.Context) {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		select {
		case <-l.lost:
			// The session is gone, and the lock with it.
			l.conn.Hijack().Close(ctx)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key); err != nil {
			// Closing the session frees the lock whatever went wrong.
			l.conn.Hijack().Close(ctx)
			return
		}
		l.conn.Release()
	})
}

// StartRun inserts a running run and, in the same statement, fails the runs
// that dead processes left running: the caller holds the run lock, so no
// other run can be live.
func (s *Store) StartRun(ctx context.Context, p syncer.StartRunParams) (syncer.RunStarted, error) {
	var out syncer.RunStarted
	made, err := s.MaintainPartitions(ctx)
	out.PartitionsMade = made
	if err != nil {
		if ctx.Err() != nil {
			return out, fmt.Errorf("make partitions: %w", err)
		}
		out.PartitionsError = err.Error()
	}
	if err := s.FoldRollups(ctx); err != nil {
		if ctx.Err() != nil {
			return out, err
		}
		out.FoldError = err.Error()
	}
	err = s.pool.QueryRow(ctx, `
WITH abandoned AS (
    UPDATE sync_runs r
       SET status = 'failed', finished_at = now(),
           error = 'abandoned: the process running it stopped, or lost the database, before recording an outcome'
     WHERE status = 'running'
 RETURNING r.id, r AS rec
), proof AS (`+appendLeaves+`(SELECT 1 AS o, 'run' AS kind, id::text AS key, mps_proof_run(rec) AS data FROM abandoned) l
)
INSERT INTO sync_runs (trigger, host, kind, lower_bound, version)
VALUES ($1, $2, coalesce(nullif($3, ''), 'full'), $4, $5)
RETURNING id, (SELECT count(*) FROM abandoned) + 0 * (SELECT appended FROM proof)`, p.Trigger, p.Host, p.Kind, ts(p.LowerBound), p.Version).Scan(&out.RunID, &out.Abandoned)
	if err != nil {
		return out, fmt.Errorf("insert sync run: %w", interpretError(err))
	}
	return out, nil
}

// MaintainPartitions makes the task tables' monthly partitions of last
// month, this one and the next three, and of any month whose rows wait in
// a DEFAULT partition (mps_maintain_partitions, migration 16). It gives up
// after 3 s without the locks it needs (a long pg_dump holds them): the
// next run tries again, and until then rows are safe in the DEFAULT
// partition.
func (s *Store) MaintainPartitions(ctx context.Context) (int, error) {
	var made int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '3s'`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT mps_maintain_partitions()`).Scan(&made)
	})
	if err != nil {
		return 0, fmt.Errorf("make monthly partitions: %w", interpretError(err))
	}
	return made, nil
}

// FoldRollups moves the rollups' fold horizon to the day before the API's
// window (mps_rollup_fold, migration 15): the duration sketches of older
// days are merged into their months', which reports by month read. Like
// MaintainPartitions it gives up after 3 s without its lock; until a later
// run folds them, reports read those days one by one, at a cost but right.
func (s *Store) FoldRollups(ctx context.Context) error {
	// READ COMMITTED whatever the database's default: the fold reads the
	// daily rows after its lock is granted.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '3s'`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT mps_rollup_fold(((now() - make_interval(secs => $1)) AT TIME ZONE 'UTC')::date - 1)`,
			mps.Window.Seconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("fold rollups: %w", interpretError(err))
	}
	return nil
}

// FinishRun records a run's outcome, and for a successful run any coverage
// gap since the previous successful one, in one transaction.
func (s *Store) FinishRun(ctx context.Context, p syncer.FinishRunParams) (syncer.FinishResult, error) {
	var out syncer.FinishResult
	status := "succeeded"
	var errText *string
	if p.Failed {
		status = "failed"
		e := p.Error
		if e == "" {
			e = "failed"
		}
		errText = &e
	}
	drained := make([]string, len(p.Drained))
	for i, st := range p.Drained {
		drained[i] = string(st)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return out, fmt.Errorf("finish sync run %d: %w", p.RunID, interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	set, counters := counterColumns(8)
	tag, err := tx.Exec(ctx, `
UPDATE sync_runs
   SET status = $2, finished_at = coalesce($3, now()), error = $4, statuses_drained = $5,
       kind = coalesce(nullif($6, ''), kind), api_started_at = $7, clock_skew_s = $8, `+set+`
 WHERE id = $1 AND (status = 'running' OR error LIKE 'abandoned:%')`,
		append([]any{p.RunID, status, ts(p.FinishedAt), errText, drained, p.Kind, ts(p.APIStartedAt), skewSeconds(p)}, counters(p.Progress)...)...)
	if err != nil {
		return out, fmt.Errorf("update sync run %d: %w", p.RunID, interpretError(err))
	}
	if tag.RowsAffected() != 1 {
		return out, fmt.Errorf("update sync run %d: %w", p.RunID, syncer.ErrRunFinished)
	}
	if !p.Failed && !p.APIStartedAt.IsZero() {
		var prevID int64
		var prevStart time.Time
		err := tx.QueryRow(ctx, `
SELECT id, start FROM (
    SELECT id, CASE WHEN $2 > 0 THEN least(api_started_at, started_at + make_interval(secs => $2)) ELSE api_started_at END AS start
      FROM sync_runs
     WHERE status = 'succeeded' AND id <> $1 AND api_started_at IS NOT NULL) r
 ORDER BY start DESC LIMIT 1`, p.RunID, p.MaxClockSkew.Seconds()).Scan(&prevID, &prevStart)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return out, fmt.Errorf("find previous successful run: %w", interpretError(err))
		default:
			if end := p.APIStartedAt.Add(-syncer.Window); end.After(prevStart) {
				gap := &syncer.Gap{PreviousRunID: prevID, Start: prevStart, End: end}
				if _, err := tx.Exec(ctx, `
WITH g AS (INSERT INTO coverage_gaps AS g (run_id, previous_run_id, gap_start, gap_end) VALUES ($1, $2, $3, $4) RETURNING g.id, g AS rec)
`+appendLeaves+`(SELECT 1 AS o, 'gap' AS kind, id::text AS key, mps_proof_gap(rec) AS data FROM g) l`,
					p.RunID, prevID, gap.Start, gap.End); err != nil {
					return out, fmt.Errorf("record coverage gap: %w", interpretError(err))
				}
				out.Gap = gap
			}
		}
	}
	if err := recordSources(ctx, tx, p); err != nil {
		return out, err
	}
	// The run's result joins the proof log last: the head's lock is held
	// from here to the commit.
	if _, err := tx.Exec(ctx, appendLeaves+`(SELECT 1 AS o, 'run' AS kind, r.id::text AS key, mps_proof_run(r) AS data FROM sync_runs r WHERE r.id = $1) l`, p.RunID); err != nil {
		return out, fmt.Errorf("log sync run %d: %w", p.RunID, interpretError(err))
	}
	if err := tx.Commit(ctx); err != nil {
		return out, fmt.Errorf("finish sync run %d: %w", p.RunID, interpretError(err))
	}
	return out, nil
}

// runCounters maps each counter of a run (a field of syncer.Progress, or of
// its Events) to its sync_runs column: the one list both the progress and
// the outcome writes are made from. A counter that is only logged is in
// logOnlyCounters instead (a test holds every counter to one or the other).
var runCounters = []struct{ Field, Column string }{
	{"Pages", "pages"}, {"Seen", "tasks_seen"}, {"Inserted", "tasks_inserted"}, {"Updated", "tasks_updated"},
	{"Unchanged", "tasks_unchanged"}, {"Skipped", "records_skipped"}, {"Warnings", "warnings"},
	{"Restarts", "cursor_restarts"}, {"TokensRecovered", "tokens_recovered"}, {"TokensLost", "tokens_lost"},
	{"EchoedTokens", "echoed_tokens"}, {"OutOfRange", "out_of_range_records"},
	{"ListRequests", "list_requests"}, {"DetailRequests", "detail_requests"},
	{"Resolved", "resolved_tasks"}, {"Gone", "gone_tasks"}, {"Unresolved", "unresolved_tasks"}, {"DetailErrors", "detail_errors"},
}

// logOnlyCounters are counters of syncer.Progress kept out of sync_runs, and
// why. (None today: every counter is stored.)
var logOnlyCounters = map[string]string{}

// counterColumns is the SET list of the run counters, their placeholders
// numbered from after (the statement's own parameters come first), and
// the function giving their values in that order.
func counterColumns(after int) (string, func(syncer.Progress) []any) {
	parts := make([]string, len(runCounters))
	for i, c := range runCounters {
		parts[i] = fmt.Sprintf("%s = $%d", c.Column, after+i+1)
	}
	return strings.Join(parts, ", "), func(p syncer.Progress) []any {
		v := reflect.ValueOf(p)
		out := make([]any, len(runCounters))
		for i, c := range runCounters {
			out[i] = v.FieldByName(c.Field).Interface()
		}
		return out
	}
}

// skewSeconds is a run's clock skew for sync_runs.clock_skew_s (NULL when
// no answer had a Date).
func skewSeconds(p syncer.FinishRunParams) *int32 {
	if !p.HasClockSkew {
		return nil
	}
	v := int32(p.ClockSkew.Round(time.Second) / time.Second)
	return &v
}

// recordSources records each source's outcome of a run, replacing what
// an earlier recording (an "abandoned" verdict) held.
func recordSources(ctx context.Context, tx pgx.Tx, p syncer.FinishRunParams) error {
	for _, o := range p.Sources {
		drained := make([]string, len(o.Drained))
		for i, st := range o.Drained {
			drained[i] = string(st)
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO sync_run_sources (run_id, source, status, kind, drained, error, tasks_seen, tasks_inserted, tasks_updated,
                              list_requests, detail_requests)
VALUES ($1, $2, $3, $4, $5, nullif($6, ''), $7, $8, $9, $10, $11)
ON CONFLICT (run_id, source) DO UPDATE
   SET status = EXCLUDED.status, kind = EXCLUDED.kind, drained = EXCLUDED.drained, error = EXCLUDED.error,
       tasks_seen = EXCLUDED.tasks_seen, tasks_inserted = EXCLUDED.tasks_inserted, tasks_updated = EXCLUDED.tasks_updated,
       list_requests = EXCLUDED.list_requests, detail_requests = EXCLUDED.detail_requests`,
			p.RunID, o.Source, o.Status, o.Kind, drained, o.Error, o.Seen, o.Inserted, o.Updated,
			o.ListRequests, o.DetailRequests); err != nil {
			return fmt.Errorf("record run %d's %s source: %w", p.RunID, o.Source, interpretError(err))
		}
	}
	return nil
}

// RecordProgress stores a running run's counters.
func (s *Store) RecordProgress(ctx context.Context, p syncer.Progress) error {
	set, counters := counterColumns(1)
	_, err := s.pool.Exec(ctx, `UPDATE sync_runs SET `+set+` WHERE id = $1 AND status = 'running'`,
		append([]any{p.RunID}, counters(p)...)...)
	if err != nil {
		return fmt.Errorf("record progress of run %d: %w", p.RunID, interpretError(err))
	}
	return nil
}

// StatusCounts counts archived tasks per status, from the rollups (a few
// rows a day), not by scanning the archive.
func (s *Store) StatusCounts(ctx context.Context) (map[mps.Status]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT status, sum(tasks)::bigint FROM rollup_daily_tasks GROUP BY status HAVING sum(tasks) <> 0`)
	if err != nil {
		return nil, fmt.Errorf("count tasks: %w", interpretError(err))
	}
	defer rows.Close()
	out := map[mps.Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count tasks: %w", interpretError(err))
		}
		out[mps.Status(st)] = n
	}
	return out, interpretError(rows.Err())
}

// RunBounds are the starts of the archive's newest successful run and of
// its first run (zero when there is none).
func (s *Store) RunBounds(ctx context.Context) (lastSuccess, firstRun time.Time, err error) {
	var last, first *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(started_at) FILTER (WHERE status = 'succeeded'), min(started_at) FROM sync_runs`).Scan(&last, &first); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("read run history: %w", interpretError(err))
	}
	if last != nil {
		lastSuccess = *last
	}
	if first != nil {
		firstRun = *first
	}
	return lastSuccess, firstRun, nil
}

// Capability reads a finding about the API; the zero Capability when none.
func (s *Store) Capability(ctx context.Context, name string) (syncer.Capability, error) {
	c := syncer.Capability{Name: name}
	err := s.pool.QueryRow(ctx, `SELECT state, checked_at, detail FROM api_capabilities WHERE name = $1`, name).
		Scan(&c.State, &c.CheckedAt, &c.Detail)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("read API capability %s: %w", name, interpretError(err))
	}
	return c, nil
}

// SetCapability records a finding; changed_at moves only when the state
// does.
func (s *Store) SetCapability(ctx context.Context, c syncer.Capability) error {
	_, err := s.pool.Exec(ctx, `
INSERT INTO api_capabilities AS a (name, state, checked_at, detail) VALUES ($1, $2, $3, $4)
    ON CONFLICT (name) DO UPDATE
   SET state = EXCLUDED.state, checked_at = EXCLUDED.checked_at, detail = EXCLUDED.detail,
       changed_at = CASE WHEN a.state = EXCLUDED.state THEN a.changed_at ELSE now() END`,
		c.Name, c.State, c.CheckedAt, c.Detail)
	if err != nil {
		return fmt.Errorf("record API capability %s: %w", c.Name, interpretError(err))
	}
	return nil
}

// TaskStatus is a task's status as archived from source, "" when the
// archive lacks it or has it from another source (a task any source
// archived counts for media: its record is not to be replaced by media's).
func (s *Store) TaskStatus(ctx context.Context, source, taskID string) (mps.Status, error) {
	var st string
	err := s.pool.QueryRow(ctx, `SELECT status FROM tasks WHERE task_id = $1 AND ($2 = 'media' OR source = $2)`, taskID, source).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read status of task %s: %w", taskID, interpretError(err))
	}
	return mps.Status(st), nil
}

// RunHistory reads the API's clock at the start of the last successful run
// and of the last successful full run. It is read by the holder of the run
// lock, so a run still marked running was killed: it counts as failed (an
// OOM-killed full run must not make the next run full again).
func (s *Store) RunHistory(ctx context.Context) (syncer.RunHistory, error) {
	var h syncer.RunHistory
	var last, full *time.Time
	var sinceLast, sinceFull *float64
	err := s.pool.QueryRow(ctx, `
WITH ok AS (SELECT max(api_started_at) AS last, max(api_started_at) FILTER (WHERE kind = 'full') AS full,
                   extract(epoch FROM now() - max(started_at))::float8 AS since_last,
                   extract(epoch FROM now() - max(started_at) FILTER (WHERE kind = 'full'))::float8 AS since_full,
                   max(id) FILTER (WHERE kind = 'full') AS full_id
              FROM sync_runs WHERE status = 'succeeded')
SELECT ok.last, ok.full, ok.since_last, ok.since_full,
       (SELECT count(*) FROM sync_runs r WHERE r.kind = 'full' AND r.status IN ('failed', 'running') AND r.id > coalesce(ok.full_id, 0)),
       coalesce((SELECT r.kind = 'full' AND r.status IN ('failed', 'running') FROM sync_runs r ORDER BY r.id DESC LIMIT 1), false)
  FROM ok`).Scan(&last, &full, &sinceLast, &sinceFull, &h.FullFailures, &h.LastRunFailedFull)
	if err != nil {
		return h, fmt.Errorf("read run history: %w", interpretError(err))
	}
	if last != nil {
		h.LastSuccess = *last
	}
	if full != nil {
		h.LastFull = *full
	}
	if sinceLast != nil {
		h.SinceSuccess = time.Duration(*sinceLast * float64(time.Second))
	}
	if sinceFull != nil {
		h.SinceLastFull = time.Duration(*sinceFull * float64(time.Second))
	}
	return h, nil
}

// SourceHistory reads when a source was last drained successfully, and in
// full, from the runs' per-source outcomes.
func (s *Store) SourceHistory(ctx context.Context, source string) (syncer.SourceHistory, error) {
	var h syncer.SourceHistory
	var last, full *time.Time
	var since *float64
	err := s.pool.QueryRow(ctx, `
SELECT max(r.api_started_at), max(r.api_started_at) FILTER (WHERE rs.kind = 'full'),
       extract(epoch FROM now() - max(r.started_at))::float8
  FROM sync_run_sources rs JOIN sync_runs r ON r.id = rs.run_id
 WHERE rs.source = $1 AND rs.status = 'succeeded'`, source).Scan(&last, &full, &since)
	if err != nil {
		return h, fmt.Errorf("read the %s source's history: %w", source, interpretError(err))
	}
	if last != nil {
		h.LastSuccess = *last
	}
	if full != nil {
		h.LastFull = *full
	}
	if since != nil {
		h.SinceSuccess = time.Duration(*since * float64(time.Second))
	}
	return h, nil
}

// InFlightTasks lists up to limit archived tasks last seen WAITING or
// PROCESSING that are not known gone, in task_id order after after.
func (s *Store) InFlightTasks(ctx context.Context, source, after string, limit int) ([]syncer.InFlightTask, error) {
	rows, err := s.pool.Query(ctx, `
SELECT task_id, create_time, raw::text FROM tasks
 WHERE status <> 'FINISH' AND gone_at IS NULL AND source = $3 AND task_id > $1
 ORDER BY task_id LIMIT $2`, after, limit, source)
	if err != nil {
		return nil, fmt.Errorf("list in-flight tasks: %w", interpretError(err))
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (syncer.InFlightTask, error) {
		var t syncer.InFlightTask
		var raw string
		var created *time.Time // NULL: the CreateTime was not readable
		err := r.Scan(&t.TaskID, &created, &raw)
		if created != nil {
			t.CreateTime = *created
		}
		t.Raw = []byte(raw)
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("list in-flight tasks: %w", interpretError(err))
	}
	return out, nil
}

// ProbeTask finds the newest archived FINISH task created after since
// whose FinishTime is at least minSpan after its CreateTime.
func (s *Store) ProbeTask(ctx context.Context, source string, since time.Time, minSpan time.Duration) (syncer.ProbeTask, bool, error) {
	var t syncer.ProbeTask
	err := s.pool.QueryRow(ctx, `
SELECT task_id, create_time, finish_time FROM tasks
 WHERE status = 'FINISH' AND source = $3 AND create_time > $1 AND finish_time >= create_time + make_interval(secs => $2)
   AND finish_time < now() - interval '1 minute'
 ORDER BY create_time DESC LIMIT 1`, since, minSpan.Seconds(), source).Scan(&t.TaskID, &t.CreateTime, &t.FinishTime)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("find a probe task: %w", interpretError(err))
	}
	return t, true, nil
}

// MarkGone records that unfinished tasks left the API's window.
func (s *Store) MarkGone(ctx context.Context, ids []string) error {
	if _, err := s.pool.Exec(ctx, `
WITH gone AS (UPDATE tasks t SET gone_at = now() WHERE task_id = ANY($1) AND gone_at IS NULL RETURNING t.task_id, t AS rec)
`+appendLeaves+`(SELECT 1 AS o, 'task' AS kind, mps_proof_key(task_id, (rec).create_time) AS key, mps_proof_task(rec) AS data FROM gone) l`, ids); err != nil {
		return fmt.Errorf("mark %d tasks gone: %w", len(ids), interpretError(err))
	}
	return nil
}
