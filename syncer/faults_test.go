package syncer_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// runsByStatus counts sync_runs rows by status.
func runsByStatus(t *testing.T, db string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, row := range pgtest.Query(t, db, `SELECT status, count(*) FROM sync_runs GROUP BY status`) {
		out[row[0].(string)] = row[1].(int64)
	}
	return out
}

// TestAPIFaultRates: at 20% of requests failing in every transient way the
// sync completes; at 60% it either completes or fails cleanly and quickly,
// and a failed run is never recorded as a success.
func TestAPIFaultRates(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0.2, 0.6} {
		now := time.Now().UTC()
		f := simulator.Faults{Seed: uint64(rate * 100), ErrorRate: rate / 2,
			ErrorCodes:  []string{"InternalError", "RequestLimitExceeded", "ServiceUnavailable", "ResourceUnavailable", "InternalError.DbError"},
			HTML5xxRate: rate / 6, TruncateRate: rate / 6, StallRate: rate / 6, StallFor: 3 * time.Second}
		sim := newSim(generated(3000, now, nil), simulator.NewClock(now, 0), f)
		r := newRig(t, sim, func(c *mpsclient.Config) { c.RequestTimeout, c.MaxAttempts = 500*time.Millisecond, 6 })
		start := time.Now()
		res, err := r.syncer.Run(context.Background(), "faults")
		elapsed := time.Since(start)
		runs := runsByStatus(t, r.dbURL)
		stats := sim.Stats()
		t.Logf("fault rate %.0f%%: %d requests, %d faults, err=%v, %s", rate*100, stats.Requests, stats.FaultsInjected, err, elapsed.Round(time.Millisecond))
		if got := float64(stats.FaultsInjected) / float64(stats.Requests); stats.Requests > 20 && math.Abs(got-rate) > 0.2 {
			t.Fatalf("injected %.0f%% faults, configured %.0f%%", got*100, rate*100)
		}
		switch {
		case err == nil:
			if runs["succeeded"] != 1 {
				t.Fatalf("runs %v", runs)
			}
			r.assertMatchesTruth(t)
		case rate < 0.5:
			t.Fatalf("at %.0f%% the sync must complete: %v", rate*100, err)
		default:
			if runs["failed"] != 1 || runs["succeeded"] != 0 || len(res.Drained) == 3 {
				t.Fatalf("a failed run must be recorded failed: %v, drained %v", runs, res.Drained)
			}
			if !mps.Transient(mps.ErrorCode(err)) {
				t.Fatalf("failed on a non-transient code: %v", err)
			}
		}
		if elapsed > 2*time.Minute {
			t.Fatalf("took %s", elapsed)
		}
	}
}

// TestPostgresFaults: killed connections, a statement timeout and a
// read-only database each fail the run cleanly (recorded where the database
// allows), and the next run after recovery completes the archive.
func TestPostgresFaults(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()

	t.Run("terminated connections", func(t *testing.T) {
		t.Parallel()
		sim := newSim(generated(3000, now, nil), simulator.NewClock(now, 0), simulator.Faults{Latency: 20 * time.Millisecond})
		r := newRig(t, sim, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(300 * time.Millisecond)
			pgtest.Exec(t, pgtest.AdminURL(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbOf(r.dbURL))
		}()
		_, err := r.syncer.Run(context.Background(), "killed")
		<-done
		if err == nil {
			t.Fatal("a run whose connections were killed succeeded")
		}
		t.Logf("run with killed connections: %v", err)
		sim.SetFaults(simulator.Faults{})
		if _, err := r.syncer.Run(context.Background(), "after"); err != nil {
			t.Fatalf("run after recovery: %v", err)
		}
		r.assertMatchesTruth(t)
		if runs := runsByStatus(t, r.dbURL); runs["succeeded"] != 1 || runs["running"] != 0 {
			t.Fatalf("runs %v", runs)
		}
	})

	t.Run("statement timeout", func(t *testing.T) {
		t.Parallel()
		sim := newSim(generated(2000, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
		r := newRig(t, sim, nil)
		// Only this store's sessions have the timeout, and only a page write
		// (held by the trigger for 1.5x the timeout) can reach it: the run's
		// other statements have seconds to spare however busy the machine,
		// and the recovery run's sessions have no timeout at all.
		pgtest.Exec(t, r.dbURL, `CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$`)
		pgtest.Exec(t, r.dbURL, `CREATE TRIGGER slow BEFORE INSERT ON tasks FOR EACH STATEMENT EXECUTE FUNCTION slow()`)
		st, err := storage.Open(context.Background(), r.dbURL+"&statement_timeout=2000", storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = syncer.New(r.client, st, syncer.Config{}, nil).Run(context.Background(), "timeout")
		if !errors.Is(err, storage.ErrTimeout) {
			t.Fatalf("want a statement timeout, got %v", err)
		}
		if runs := runsByStatus(t, r.dbURL); runs["failed"] != 1 {
			t.Fatalf("runs %v", runs)
		}
		pgtest.Exec(t, r.dbURL, `DROP TRIGGER slow ON tasks`)
		if _, err := r.syncer.Run(context.Background(), "after"); err != nil {
			t.Fatalf("run after recovery: %v", err)
		}
		r.assertMatchesTruth(t)
	})

	t.Run("read-only database", func(t *testing.T) {
		t.Parallel()
		sim := newSim(generated(2000, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
		r := newRig(t, sim, nil)
		if _, err := r.syncer.Run(context.Background(), "before"); err != nil {
			t.Fatal(err)
		}
		pgtest.Exec(t, r.dbURL, `ALTER DATABASE `+dbOf(r.dbURL)+` SET default_transaction_read_only = on`)
		st, err := storage.Open(context.Background(), r.dbURL, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = syncer.New(r.client, st, syncer.Config{}, nil).Run(context.Background(), "read-only")
		st.Close()
		if !errors.Is(err, storage.ErrReadOnly) {
			t.Fatalf("want a read-only error, got %v", err)
		}
		before := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM tasks`)
		pgtest.Exec(t, r.dbURL+"&default_transaction_read_only=off", `ALTER DATABASE `+dbOf(r.dbURL)+` RESET default_transaction_read_only`)
		st2, err := storage.Open(context.Background(), r.dbURL, storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st2.Close()
		if _, err := syncer.New(r.client, st2, syncer.Config{}, nil).Run(context.Background(), "after"); err != nil {
			t.Fatalf("run after recovery: %v", err)
		}
		if before != 2000 {
			t.Fatalf("committed data lost: %d tasks", before)
		}
		r.assertMatchesTruth(t)
	})
}

// dbOf is the database name of a pgtest URL.
func dbOf(url string) string {
	name := url[strings.LastIndex(url, "/")+1:]
	if i := strings.IndexByte(name, '?'); i >= 0 {
		name = name[:i]
	}
	return name
}
