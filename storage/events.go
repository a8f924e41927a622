package storage

import (
	"context"
	"fmt"
	"time"
)

// LastEvents reads when the archive last detected a coverage gap and last
// recorded a detail as expired (zero: never). The alerts on a pushed `sync`
// hold on to these times: read from the archive, they are the same in every
// push, where a process's counters start again at zero.
func (s *Store) LastEvents(ctx context.Context) (gapDetected, detailExpired time.Time, err error) {
	var gap, expired *time.Time
	err = s.pool.QueryRow(ctx, `
SELECT (SELECT max(detected_at) FROM coverage_gaps),
       (SELECT max(fetched_at) FROM task_details WHERE outcome = 'expired')`).Scan(&gap, &expired)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("read the last gap and expiry: %w", interpretError(err))
	}
	if gap != nil {
		gapDetected = *gap
	}
	if expired != nil {
		detailExpired = *expired
	}
	return gapDetected, detailExpired, nil
}
