package storage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
	"github.com/mps-archiver/mps-archiver/usage"
)

// usageLockKey is the advisory lock of a usage run: the ASCII bytes of
// "mps-usag" read as a big-endian int64.
const usageLockKey int64 = 0x6d70732d75736167

// LockUsage takes the usage run lock without waiting; usage.ErrLocked
// means another process holds it.
func (s *Store) LockUsage(ctx context.Context) (usage.Lock, error) {
	l, err := s.lock(ctx, usageLockKey)
	if errors.Is(err, syncer.ErrLocked) {
		return nil, usage.ErrLocked
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

// UsageRuns is the start of the last successful usage run and of the last
// one at all.
func (s *Store) UsageRuns(ctx context.Context) (usage.Runs, error) {
	var r usage.Runs
	var ok, any *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT max(started_at) FILTER (WHERE status = 'succeeded'), max(started_at) FROM usage_runs`).Scan(&ok, &any)
	if err != nil {
		return r, fmt.Errorf("read usage runs: %w", interpretError(err))
	}
	if ok != nil {
		r.LastSuccess = ok.UTC()
	}
	if any != nil {
		r.LastAttempt = any.UTC()
	}
	return r, nil
}

// UsageCoverage is the days read so far of each region and type.
func (s *Store) UsageCoverage(ctx context.Context) (map[usage.Key]usage.Coverage, error) {
	rows, err := s.pool.Query(ctx, `SELECT region, type, first_day, last_day FROM usage_coverage`)
	if err != nil {
		return nil, fmt.Errorf("read usage coverage: %w", interpretError(err))
	}
	out := map[usage.Key]usage.Coverage{}
	var k usage.Key
	var c usage.Coverage
	_, err = pgx.ForEachRow(rows, []any{&k.Region, &k.Type, &c.First, &c.Last}, func() error {
		out[k] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read usage coverage: %w", interpretError(err))
	}
	return out, nil
}

// StartUsageRun records a usage run, and fails the runs a dead process
// left running (the caller holds the usage lock).
func (s *Store) StartUsageRun(ctx context.Context, trigger string, backfill bool, from, to time.Time) (int64, error) {
	host, _ := os.Hostname()
	var id int64
	err := s.pool.QueryRow(ctx, `
WITH abandoned AS (
    UPDATE usage_runs r SET status = 'failed', finished_at = now(),
           error = 'abandoned: the process running it stopped before recording an outcome'
     WHERE status = 'running'
    RETURNING r.id, r AS rec
), proof AS (`+appendLeaves+`(SELECT 1 AS o, 'usage_run' AS kind, id::text AS key, mps_proof_usage_run(rec) AS data FROM abandoned) l)
INSERT INTO usage_runs (trigger, host, backfill, from_day, to_day) SELECT $1, $2, $3, $4, $5 FROM proof RETURNING id`,
		trigger, host, backfill, date(from), date(to)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("insert usage run: %w", interpretError(err))
	}
	return id, nil
}

// date is t's calendar day for a date column (NULL for the zero time).
func date(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.Format(time.DateOnly)
}

// StoreUsage replaces the figures of q's region, types and days with rows:
// new figures are added, changed ones revised, and ones the API no longer
// reports set to zero, each replaced figure kept in usage_revisions; then
// q's days join the coverage of each type. One transaction: a query's days
// are stored whole or not at all.
func (s *Store) StoreUsage(ctx context.Context, runID int64, q mps.UsageQuery, ans mps.UsageAnswer) (usage.Stored, error) {
	var st usage.Stored
	rows := ans.Rows
	// Only the types asked for: one the answer has no Data item for keeps
	// its figures (an answer that leaves a type out says nothing of it).
	answered := make([]string, 0, len(q.Types))
	for _, t := range q.Types {
		if slices.Contains(ans.Types, t) {
			answered = append(answered, t)
		}
	}
	days := make([]string, len(rows))
	types := make([]string, len(rows))
	specs := make([]string, len(rows))
	counts := make([]int64, len(rows))
	amounts := make([]string, len(rows))
	for i, r := range rows {
		days[i], types[i], specs[i], counts[i], amounts[i] = r.Day.Format(time.DateOnly), r.Type, r.Specification, r.Count, r.Usage
	}
	var chDays, chTypes, chSpecs []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
WITH new AS (
    -- Added up again here: a figure given twice must not fail the upsert.
    SELECT day, type, specification, sum(count)::bigint AS count, sum(usage) AS usage
      FROM unnest($5::date[], $6::text[], $7::text[], $8::bigint[], $9::numeric[]) AS n(day, type, specification, count, usage)
     GROUP BY 1, 2, 3
), old AS (
    -- The figures about to change, as they are: kept in usage_revisions.
    SELECT u.day, u.type, u.specification, u.count, u.usage, u.changed_at
      FROM usage_daily u
     WHERE u.region = $1 AND u.day BETWEEN $3 AND $4 AND u.type = ANY($2)
       AND (CASE WHEN EXISTS (SELECT FROM new n WHERE n.day = u.day AND n.type = u.type AND n.specification = u.specification)
                 THEN EXISTS (SELECT FROM new n WHERE n.day = u.day AND n.type = u.type AND n.specification = u.specification
                                AND (n.count, n.usage) IS DISTINCT FROM (u.count, u.usage))
                 ELSE u.type = ANY($10) AND (u.count > 0 OR u.usage > 0) END)
), kept AS (
    INSERT INTO usage_revisions (day, region, type, specification, count, usage, read_at, run_id)
    SELECT day, $1, type, specification, count, usage, changed_at, $11 FROM old
), gone AS (
    UPDATE usage_daily u SET count = 0, usage = 0, changed_at = now(), revisions = u.revisions + 1
     WHERE u.region = $1 AND u.type = ANY($10) AND u.day BETWEEN $3 AND $4 AND (u.count > 0 OR u.usage > 0)
       AND NOT EXISTS (SELECT FROM new n WHERE n.day = u.day AND n.type = u.type AND n.specification = u.specification)
    RETURNING u.day, u.type, u.specification
), up AS (
    INSERT INTO usage_daily AS u (day, region, type, specification, count, usage)
    SELECT day, $1, type, specification, count, usage FROM new WHERE type = ANY($2)
    ON CONFLICT (day, region, type, specification) DO UPDATE
       SET count = EXCLUDED.count, usage = EXCLUDED.usage, changed_at = now(), revisions = u.revisions + 1
     WHERE (u.count, u.usage) IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.usage)
    RETURNING (u.xmax = 0) AS added, u.day, u.type, u.specification
), changed AS (
    SELECT day, type, specification FROM gone UNION ALL SELECT day, type, specification FROM up
)
SELECT (SELECT count(*) FILTER (WHERE added) FROM up), (SELECT count(*) FILTER (WHERE NOT added) FROM up) + (SELECT count(*) FROM gone),
       (SELECT coalesce(array_agg(day::text), '{}') FROM changed), (SELECT coalesce(array_agg(type), '{}') FROM changed),
       (SELECT coalesce(array_agg(specification), '{}') FROM changed)`,
			q.Region, q.Types, date(q.From), date(q.To), days, types, specs, counts, amounts, answered, runID).Scan(&st.Added, &st.Revised, &chDays, &chTypes, &chSpecs)
		if err != nil {
			return err
		}
		// Coverage grows when the days join on; a hole (no run for over
		// the API's 365 days) starts it again.
		_, err = tx.Exec(ctx, `
INSERT INTO usage_coverage AS c (region, type, first_day, last_day)
SELECT $1, t, $3::date, $4::date FROM unnest($2::text[]) AS t
ON CONFLICT (region, type) DO UPDATE SET
    first_day = CASE WHEN EXCLUDED.first_day <= c.last_day + 1 THEN least(c.first_day, EXCLUDED.first_day) ELSE EXCLUDED.first_day END,
    last_day  = CASE WHEN EXCLUDED.first_day <= c.last_day + 1 THEN greatest(c.last_day, EXCLUDED.last_day) ELSE EXCLUDED.last_day END,
    read_at   = now()`, q.Region, q.Types, date(q.From), date(q.To))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
UPDATE usage_runs SET requests = requests + 1, figures_added = figures_added + $2, figures_revised = figures_revised + $3 WHERE id = $1 AND status = 'running'`,
			runID, st.Added, st.Revised)
		if err != nil || len(chDays) == 0 {
			return err
		}
		// The changed figures join the proof log last: the head's lock is
		// held from here to the commit.
		_, err = tx.Exec(ctx, appendLeaves+`(
SELECT 1 AS o, 'usage' AS kind, mps_proof_usage_key(u) AS key, mps_proof_usage(u) AS data
  FROM usage_daily u JOIN unnest($2::date[], $3::text[], $4::text[]) AS c(day, type, specification)
       ON u.day = c.day AND u.type = c.type AND u.specification = c.specification
 WHERE u.region = $1) l`, q.Region, chDays, chTypes, chSpecs)
		return err
	})
	if err != nil {
		return usage.Stored{}, fmt.Errorf("store usage: %w", interpretError(err))
	}
	return st, nil
}

// FinishUsageRun records a usage run's outcome.
func (s *Store) FinishUsageRun(ctx context.Context, runID int64, res usage.Result, runErr error) error {
	status, msg := "succeeded", ""
	if runErr != nil {
		status, msg = "failed", runErr.Error()
	}
	_, err := s.pool.Exec(ctx, `
WITH r AS (UPDATE usage_runs r SET status = $2, finished_at = now(), error = nullif($3, '') WHERE id = $1 AND status = 'running' RETURNING r.id, r AS rec)
`+appendLeaves+`(SELECT 1 AS o, 'usage_run' AS kind, id::text AS key, mps_proof_usage_run(rec) AS data FROM r) l`, runID, status, msg)
	if err != nil {
		return fmt.Errorf("finish usage run: %w", interpretError(err))
	}
	return nil
}

// UsageStatus is what `status` says of billed usage.
type UsageStatus struct {
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastError   string     `json:"last_error,omitempty"` // of the last run, when it failed
	// ReadThrough is the last day read of the region and type read least
	// far (nil: none read); Pairs counts the regions × types read.
	ReadThrough *time.Time `json:"read_through,omitempty"`
	Pairs       int64      `json:"regions_x_types"`
}

// UsageStatus reads the usage ledger and coverage.
func (s *Store) UsageStatus(ctx context.Context) (UsageStatus, error) {
	var u UsageStatus
	var lastErr *string
	err := s.pool.QueryRow(ctx, `
SELECT (SELECT max(started_at) FROM usage_runs WHERE status = 'succeeded'),
       r.started_at, CASE WHEN r.status = 'failed' THEN r.error END,
       (SELECT min(last_day)::timestamp AT TIME ZONE 'UTC' FROM usage_coverage), (SELECT count(*) FROM usage_coverage)
  FROM (SELECT NULL) AS one LEFT JOIN LATERAL (SELECT started_at, status, error FROM usage_runs ORDER BY id DESC LIMIT 1) AS r ON true`).
		Scan(&u.LastSuccess, &u.LastAttempt, &lastErr, &u.ReadThrough, &u.Pairs)
	if err != nil {
		return u, fmt.Errorf("read usage status: %w", interpretError(err))
	}
	if lastErr != nil {
		u.LastError = *lastErr
	}
	return u, nil
}
