package syncer_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// outageStore is the real store whose pages and outcomes fail while down,
// as they do when PostgreSQL goes away under a running process.
type outageStore struct {
	*storage.Store
	down atomic.Bool
	// backAfter, when positive, brings the database back after this many
	// outcome writes failed.
	backAfter atomic.Int32
}

var errOutage = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *outageStore) WritePage(ctx context.Context, p syncer.WritePageParams) (syncer.PageResult, error) {
	if s.down.Load() {
		return syncer.PageResult{}, errOutage
	}
	return s.Store.WritePage(ctx, p)
}

func (s *outageStore) FinishRun(ctx context.Context, p syncer.FinishRunParams) (syncer.FinishResult, error) {
	if s.down.Load() {
		if s.backAfter.Add(-1) == 0 {
			s.down.Store(false)
		}
		return syncer.FinishResult{}, errOutage
	}
	return s.Store.FinishRun(ctx, p)
}

// TestOutcomeOfARunTheDatabaseMissed: a run fails because the database went
// away, and its outcome cannot be written either. The run's real cause, not
// "abandoned", is what the ledger shows once the database is back: written
// by the same run if the database returns within OutcomeTimeout, else by
// the next run, before it starts (which would call it abandoned), with the
// time the run really ended.
func TestOutcomeOfARunTheDatabaseMissed(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	for _, tc := range []struct {
		name string
		// backAfter failed outcome writes the database returns; 0: only
		// after the run gave up.
		backAfter int32
		timeout   time.Duration
	}{
		{"back within the run", 2, time.Minute},
		{"back after the run", 0, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, newSim(generated(500, now, nil), simulator.NewClock(now, 0), simulator.Faults{}), nil)
			st := &outageStore{Store: r.st}
			s := syncer.New(r.client, st, syncer.Config{OutcomeTimeout: tc.timeout}, nil)
			st.down.Store(true)
			st.backAfter.Store(tc.backAfter)
			res, err := s.Run(context.Background(), "test")
			if err == nil {
				t.Fatal("a run without its database succeeded")
			}
			ended := time.Now()
			if tc.backAfter == 0 {
				if got := pgtest.Scalar[string](t, r.dbURL, `SELECT status FROM sync_runs WHERE id = $1`, res.RunID); got != "running" {
					t.Fatalf("run %d is %s while the database was away", res.RunID, got)
				}
				st.down.Store(false)
				if _, err := s.Run(context.Background(), "test"); err != nil {
					t.Fatalf("the run after the outage: %v", err)
				}
			}
			row := pgtest.Query(t, r.dbURL, `SELECT status, error, finished_at FROM sync_runs WHERE id = $1`, res.RunID)[0]
			status, errText, finished := row[0].(string), row[1].(string), row[2].(time.Time)
			if status != "failed" || !strings.Contains(errText, "connection refused") || strings.Contains(errText, "abandoned") {
				t.Errorf("run %d recorded as %s: %q", res.RunID, status, errText)
			}
			if tc.backAfter == 0 && finished.After(ended) {
				t.Errorf("run %d finished at %s, after it ended (%s)", res.RunID, finished, ended)
			}
			if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM sync_runs WHERE error LIKE 'abandoned:%'`); n != 0 {
				t.Errorf("%d runs called abandoned", n)
			}
		})
	}
}
