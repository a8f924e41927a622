package syncer_test

import (
	"context"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// listRequests counts the DescribeTasks requests a server answered.
func listRequests(sim *simulator.Server) int64 {
	st := sim.Stats()
	return st.Requests - st.RequestsByStatus["detail"]
}

// variantRun syncs tasks, with the product's default settings, against a
// server of variant v, twice (the second run uses what the first learned);
// it returns each run's result and DescribeTasks requests.
func variantRun(t *testing.T, tasks []*simulator.Task, now time.Time, v simulator.Variant, detailRetention time.Duration) (*rig, [2]syncer.Result, [2]int64) {
	t.Helper()
	sim := simulator.New(simulator.Config{
		Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
		Clock: simulator.NewClock(now, 0), Variant: v, DetailRetention: detailRetention,
	}, tasks)
	r := newRig(t, sim, nil)
	def := config.Default()
	r.syncer = syncer.New(r.client, r.st, syncer.Config{Partitions: def.Sync.Partitions, PageSize: r.client.PageSize()}, nil)
	var res [2]syncer.Result
	var reqs [2]int64
	for i := range res {
		before := listRequests(sim)
		var err error
		res[i], err = r.syncer.Run(context.Background(), "variant")
		if err != nil {
			t.Fatalf("%s, run %d: %v", v, i+1, err)
		}
		reqs[i] = listRequests(sim) - before
	}
	r.assertMatchesTruth(t)
	return r, res, reqs
}

// TestEveryDocumentedAPIVariant syncs 3,000 tasks against a server of each
// reading Tencent's pages give of DescribeTasks, with default settings: the
// archive equals the truth every time, and no reading costs the account's
// shared quota much more than one cursor per status.
func TestEveryDocumentedAPIVariant(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	tasks := generated(3000, now, func(c *simulator.GenConfig) { c.Vocabulary = simulator.VocabularyMixed })

	// The yardstick: one cursor per status against the reference reading.
	base := newRig(t, newSim(tasks, simulator.NewClock(now, 0), simulator.Faults{}), nil)
	if _, err := base.syncer.Run(context.Background(), "one cursor"); err != nil {
		t.Fatal(err)
	}
	oneCursor := listRequests(base.sim)
	t.Logf("one cursor per status: %d requests", oneCursor)

	for _, tc := range []struct {
		v         simulator.Variant
		retention time.Duration
		state     string  // what the run learns of the time filters
		maxRatio  float64 // DescribeTasks requests of the first run / oneCursor
		recovered bool    // tasks skipped at page boundaries are read another way
	}{
		{v: simulator.Variant{}, state: syncer.CapSupported, maxRatio: 1.25},
		{v: simulator.Variant{Filters: simulator.FiltersFinishTime}, state: syncer.CapSupported, maxRatio: 1.25},
		{v: simulator.Variant{ExclusiveBounds: true}, state: syncer.CapSupported, maxRatio: 1.25},
		{v: simulator.Variant{DefaultStart72h: true}, state: syncer.CapSupported, maxRatio: 1.25},
		{v: simulator.Variant{Filters: simulator.FiltersIgnored}, state: syncer.CapIgnored, maxRatio: 1.25},
		{v: simulator.Variant{Filters: simulator.FiltersUnsupported}, state: syncer.CapUnsupported, maxRatio: 1.25},
		{v: simulator.Variant{EchoLastToken: true}, state: syncer.CapSupported, maxRatio: 1.25},
		{v: simulator.Variant{RejectMovedTokens: true}, state: syncer.CapSupported, maxRatio: 1.25},
		{v: simulator.Variant{ExclusiveTokens: true}, state: syncer.CapSupported, maxRatio: 1.25, recovered: true},
		// The international site keeps details 72 h: older skipped tasks are
		// read by listing once more from the record before the token.
		{v: simulator.Variant{ExclusiveTokens: true, EchoLastToken: true}, retention: 72 * time.Hour, state: syncer.CapSupported, maxRatio: 2, recovered: true},
		{v: simulator.Variant{ExclusiveTokens: true, Filters: simulator.FiltersUnsupported}, state: syncer.CapUnsupported, maxRatio: 1.25, recovered: true},
	} {
		t.Run(tc.v.String(), func(t *testing.T) {
			t.Parallel()
			r, res, reqs := variantRun(t, tasks, now, tc.v, tc.retention)
			t.Logf("requests: first run %d, second %d (one cursor %d); events %+v", reqs[0], reqs[1], oneCursor, res[0].Events)
			if limit := int64(tc.maxRatio * float64(oneCursor)); reqs[0] > limit || reqs[1] > limit {
				t.Errorf("requests %v, more than %.2fx one cursor per status (%d)", reqs, tc.maxRatio, oneCursor)
			}
			if res[0].TimeRange != tc.state || res[1].TimeRange != tc.state {
				t.Errorf("learned %q then %q, want %q", res[0].TimeRange, res[1].TimeRange, tc.state)
			}
			if got := pgtest.Scalar[string](t, r.dbURL, `SELECT state FROM api_capabilities WHERE name = 'time_range'`); got != tc.state {
				t.Errorf("remembered %q, want %q", got, tc.state)
			}
			if tc.state != syncer.CapSupported && reqs[1] > oneCursor+1 {
				t.Errorf("the second run still paid for partitions: %d requests", reqs[1])
			}
			recovered := res[0].TokensRecovered
			if tc.recovered != (recovered > 0) || res[0].TokensLost != 0 {
				t.Errorf("recovered %d, lost %d", recovered, res[0].TokensLost)
			}
			if tc.v.EchoLastToken && res[0].EchoedTokens == 0 {
				t.Errorf("no echoed token counted")
			}
			if n := pgtest.Scalar[int64](t, r.dbURL, `SELECT sum(tokens_recovered) FROM sync_runs`); n != res[0].TokensRecovered+res[1].TokensRecovered {
				t.Errorf("sync_runs.tokens_recovered %d", n)
			}
		})
	}
}

// TestTokenVariantsWhileTasksMove: exclusive, echoed and rejected tokens at
// once, while tasks move through their lists during the drain.
func TestTokenVariantsWhileTasksMove(t *testing.T) {
	t.Parallel()
	tasks, clock := moving(time.Now().UTC())
	v := simulator.Variant{ExclusiveTokens: true, EchoLastToken: true, RejectMovedTokens: true}
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: clock, Variant: v,
		Faults: simulator.Faults{Latency: time.Millisecond}}, tasks)
	r := newRig(t, sim, func(c *mpsclient.Config) { c.PageSize = 20 })
	cfg := syncer.Config{Partitions: 4, PageSize: 20, MaxRestarts: 50}
	r.syncer = syncer.New(r.client, r.st, cfg, nil)
	var ev syncer.Events
	for i := 0; i < 2; i++ {
		res, err := r.syncer.Run(context.Background(), "moving")
		if err != nil {
			t.Fatal(err)
		}
		ev.Restarts += res.Restarts
		ev.TokensRecovered += res.TokensRecovered
	}
	t.Logf("while moving: %+v", ev)
	if ev.TokensRecovered == 0 {
		t.Fatal("no skipped token recovered: the test did not test exclusive tokens")
	}
	// Freeze the world; one more run catches what moved behind the cursors.
	clock.SetSpeed(0)
	if _, err := r.syncer.Run(context.Background(), "final"); err != nil {
		t.Fatal(err)
	}
	r.assertMatchesTruth(t)
}

// TestSubTaskKindsAgreeWithSQL: Go's vocabulary table and the migration's
// mps_subtask_kind() say the same.
func TestSubTaskKindsAgreeWithSQL(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	for from, to := range mps.SubTaskKinds {
		if got := pgtest.Scalar[string](t, db, `SELECT mps_subtask_kind('`+from+`')`); got != to {
			t.Errorf("mps_subtask_kind(%s) = %s, Go says %s", from, got, to)
		}
	}
	if n := pgtest.Scalar[int64](t, db, `SELECT count(*) FROM regexp_matches(pg_get_functiondef('mps_subtask_kind(text)'::regprocedure), 'WHEN', 'g')`); n != int64(len(mps.SubTaskKinds)) {
		t.Errorf("the SQL function maps %d entries, Go %d", n, len(mps.SubTaskKinds))
	}
}
