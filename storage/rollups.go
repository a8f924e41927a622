package storage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// RollupDifference is one rollup row that does not equal what the raw rows
// say: Key names the group (day=… task_type=… …), Kept and Raw its
// counters in the rollup and recomputed from raw rows ("-" when absent).
type RollupDifference struct {
	Rollup string
	Key    string
	Kept   string
	Raw    string
}

func (d RollupDifference) String() string {
	return fmt.Sprintf("%s %s: %s in the rollup, %s in the raw rows", d.Rollup, d.Key, d.Kept, d.Raw)
}

// rollupNames lists the rollup tables, in the order checks report them.
func (s *Store) rollupNames(ctx context.Context, q pgx.Tx) ([]string, error) {
	var names []string
	if err := q.QueryRow(ctx, `SELECT mps_rollup_names()`).Scan(&names); err != nil {
		return nil, fmt.Errorf("list rollups: %w", interpretError(err))
	}
	return names, nil
}

// CheckRollups recomputes every rollup from the raw rows, in one snapshot,
// and returns each group whose counters differ. Duration sketches are
// compared bucket by bucket, so a difference is exact, not within the
// sketch's error. It reads the whole archive: an operator's tool, not a
// dashboard query.
func (s *Store) CheckRollups(ctx context.Context) ([]RollupDifference, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("check rollups: %w", interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	names, err := s.rollupNames(ctx, tx)
	if err != nil {
		return nil, err
	}
	var out []RollupDifference
	for _, name := range names {
		var keys, counters []string
		var raw string
		if err := tx.QueryRow(ctx, `
SELECT mps_rollup_keys($1), mps_rollup_counters($1),
       mps_rollup_select($1, mps_rollup_raw_source($1, '-infinity', 'infinity', true))`, name).Scan(&keys, &counters, &raw); err != nil {
			return nil, fmt.Errorf("check %s: %w", name, interpretError(err))
		}
		rows, err := tx.Query(ctx, checkSQL(name, keys, counters, raw))
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", name, interpretError(err))
		}
		diffs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RollupDifference, error) {
			d := RollupDifference{Rollup: name}
			return d, r.Scan(&d.Key, &d.Kept, &d.Raw)
		})
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", name, interpretError(err))
		}
		out = append(out, diffs...)
	}
	return out, nil
}

// checkSQL compares a rollup with its raw recomputation. Rollup rows whose
// counters are all zero (a group every task has left) count as absent.
// Bounds of create_time are only ever widened by the triggers, so a kept
// range must contain the raw one.
func checkSQL(name string, keys, counters []string, raw string) string {
	qk := make([]string, len(keys))
	for i, k := range keys {
		qk[i] = pgx.Identifier{k}.Sanitize()
	}
	keyText := make([]string, len(keys))
	for i, k := range keys {
		keyText[i] = fmt.Sprintf("'%s=' || coalesce(%s::text, 'null')", k, qk[i])
	}
	var keptText, rawText, nonzero, differ []string
	for _, c := range counters {
		qc := pgx.Identifier{c}.Sanitize()
		keptText = append(keptText, fmt.Sprintf("'%s ' || coalesce(k.%s::text, '-')", c, qc))
		rawText = append(rawText, fmt.Sprintf("'%s ' || coalesce(r.%s::text, '-')", c, qc))
		nonzero = append(nonzero, qc+" <> 0")
		differ = append(differ, fmt.Sprintf("k.%s IS DISTINCT FROM r.%s", qc, qc))
	}
	if name == "rollup_daily_subtasks" || name == "rollup_daily_error_codes" {
		keptText = append(keptText, `'created ' || coalesce(k.first_created::text, '-') || '..' || coalesce(k.last_created::text, '-')`)
		rawText = append(rawText, `'created ' || coalesce(r.first_created::text, '-') || '..' || coalesce(r.last_created::text, '-')`)
		differ = append(differ, `k.first_created > r.first_created`, `k.last_created < r.last_created`)
	}
	return fmt.Sprintf(`
WITH r AS (%s),
     k AS (SELECT * FROM %s WHERE (%s) AND `+keptHere(keys)+`)
SELECT %s AS key, %s AS kept, %s AS raw
  FROM k FULL JOIN r USING (%s)
 WHERE %s
 ORDER BY %s`,
		raw, pgx.Identifier{name}.Sanitize(), strings.Join(nonzero, " OR "),
		strings.Join(keyText, " || ' ' || "), strings.Join(keptText, " || ', ' || "), strings.Join(rawText, " || ', ' || "),
		strings.Join(qk, ", "), strings.Join(differ, " OR "), strings.Join(qk, ", "))
}

// keptHere is the condition on a rollup's rows that they count tasks the
// database holds: not those of months detached to cold storage, whose
// tasks are in their exports while the rollups keep counting them.
func keptHere(keys []string) string {
	for _, k := range []string{"day", "month"} {
		if slices.Contains(keys, k) {
			return fmt.Sprintf(`NOT coalesce(date_trunc('month', %s)::date = ANY (SELECT month FROM archive_months WHERE state = 'detached'), false)`, k)
		}
	}
	return "true"
}

// RebuildRollups empties every rollup (but for the months detached to
// cold storage) and builds it again from the raw rows, a month at a time, in one transaction that holds writers off
// (syncs and detail workers wait; readers do not). progress is called after
// each month. It needs the role that owns the schema (the one migrate
// uses): the archiver's own role may not delete rollup rows.
func (s *Store) RebuildRollups(ctx context.Context, progress func(month time.Time, done, total int)) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild rollups: %w", interpretError(err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT mps_rollup_lock(); LOCK TABLE tasks, task_details, task_subtask_results IN SHARE MODE`); err != nil {
		return fmt.Errorf("rebuild rollups: %w", interpretError(err))
	}
	names, err := s.rollupNames(ctx, tx)
	if err != nil {
		return err
	}
	for _, n := range names {
		var keys []string
		if err := tx.QueryRow(ctx, `SELECT mps_rollup_keys($1)`, n).Scan(&keys); err != nil {
			return fmt.Errorf("rebuild rollups: %w", interpretError(err))
		}
		// The detached months' rows stay: their tasks are in cold storage.
		if _, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{n}.Sanitize()+` WHERE `+keptHere(keys)); err != nil {
			return fmt.Errorf("rebuild rollups: empty %s: %w", n, interpretError(err))
		}
	}
	if _, err := tx.Exec(ctx, `SELECT mps_rollups_build('-infinity', '-infinity', true)`); err != nil {
		return fmt.Errorf("rebuild rollups: tasks without a create_time: %w", interpretError(err))
	}
	// The months that hold tasks, and no others.
	rows, err := tx.Query(ctx, `
SELECT DISTINCT date_trunc('month', create_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
  FROM tasks WHERE create_time IS NOT NULL ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("rebuild rollups: %w", interpretError(err))
	}
	months, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return fmt.Errorf("rebuild rollups: %w", interpretError(err))
	}
	for i, m := range months {
		m = m.UTC()
		if _, err := tx.Exec(ctx, `SELECT mps_rollups_build($1, $2, false)`, m, m.AddDate(0, 1, 0)); err != nil {
			return fmt.Errorf("rebuild rollups of %s: %w", m.Format("2006-01"), interpretError(err))
		}
		if progress != nil {
			progress(m, i+1, len(months))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rebuild rollups: %w", interpretError(err))
	}
	return nil
}
