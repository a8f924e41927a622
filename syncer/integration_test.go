package syncer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	secretID  = "AKIDintegration0000"
	secretKey = "integration-secret-key-9f8e7d"
)

// rig is a simulator behind real HTTP, the real client and a fresh database.
type rig struct {
	sim    *simulator.Server
	dbURL  string
	st     *storage.Store
	client *mpsclient.Client
	syncer *syncer.Syncer
}

func newRig(t testing.TB, sim *simulator.Server, mod func(*mpsclient.Config)) *rig {
	t.Helper()
	ar := archivetest.NewRig(t, sim, secretID, secretKey, func(c *mpsclient.Config) {
		c.RequestTimeout, c.MaxAttempts, c.BackoffMax = 2*time.Second, 10, 20*time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
	r := &rig{sim: sim, dbURL: ar.DB, st: ar.Store, client: ar.Client}
	r.syncer = syncer.New(r.client, r.st, syncer.Config{}, nil)
	return r
}

func newSim(tasks []*simulator.Task, clock *simulator.Clock, f simulator.Faults) *simulator.Server {
	return simulator.New(simulator.Config{
		Credentials: map[string]string{secretID: secretKey},
		RateLimit:   -1,
		Clock:       clock,
		Faults:      f,
	}, tasks)
}

func generated(n int, now time.Time, mod func(*simulator.GenConfig)) []*simulator.Task {
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks = n
	if mod != nil {
		mod(&cfg)
	}
	return simulator.Generate(cfg, now)
}

func (r *rig) assertMatchesTruth(t *testing.T) {
	t.Helper()
	archivetest.AssertMatchesTruth(t, r.dbURL, r.sim.Truth())
}

func TestSyncSpecExamples(t *testing.T) {
	t.Parallel()
	at := time.Date(2018, 12, 28, 0, 0, 0, 0, time.UTC)
	sc := &simulator.Scenario{}
	for i := 1; i <= 7; i++ {
		st := simulator.ScenarioTask{TaskId: fmt.Sprintf("taskId%d", i), TaskType: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: "2018-12-27T13:57:15Z", Begin: "2018-12-27T13:57:15Z", Finish: "2018-12-27T13:57:15Z"}
		if i == 7 {
			st.Finish = ""
		}
		sc.Tasks = append(sc.Tasks, st)
	}
	tasks, err := sc.Build(at)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, newSim(tasks, simulator.NewClock(at, 0), simulator.Faults{}), func(c *mpsclient.Config) { c.PageSize = 5 })
	res, err := r.syncer.Run(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	// WAITING: one empty page; PROCESSING: one; FINISH: two, as the page shows.
	if res.Pages != 4 || res.Inserted != 7 {
		t.Fatalf("result %+v", res)
	}
	rows := pgtest.Query(t, r.dbURL, `SELECT task_id, status, create_time = '2018-12-27T13:57:15Z', finish_time IS NULL, raw->>'FinishTime' FROM tasks ORDER BY task_id`)
	want := "[[taskId1 FINISH true false 2018-12-27T13:57:15Z] [taskId2 FINISH true false 2018-12-27T13:57:15Z] [taskId3 FINISH true false 2018-12-27T13:57:15Z] [taskId4 FINISH true false 2018-12-27T13:57:15Z] [taskId5 FINISH true false 2018-12-27T13:57:15Z] [taskId6 FINISH true false 2018-12-27T13:57:15Z] [taskId7 PROCESSING true true 0000-00-00T00:00:00Z]]"
	if fmt.Sprint(rows) != want {
		t.Fatalf("archive:\n%v\nwant\n%v", rows, want)
	}
	r.assertMatchesTruth(t)
}

func TestSyncTenThousandTasksWithFaults(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	sim := newSim(generated(10_000, now, nil), simulator.NewClock(now, 0), simulator.Faults{
		Seed:         7,
		ErrorRate:    0.08,
		ErrorCodes:   []string{"InternalError", "RequestLimitExceeded", "RequestLimitExceeded.UinLimitExceeded", "ServiceUnavailable"},
		HTML5xxRate:  0.05,
		TruncateRate: 0.05,
		StallRate:    0.02,
		StallFor:     5 * time.Second, // past the client's 2 s deadline
	})
	r := newRig(t, sim, nil)
	res, err := r.syncer.Run(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	stats := sim.Stats()
	t.Logf("%d pages, %d requests, %d faults injected", res.Pages, stats.Requests, stats.FaultsInjected)
	if stats.FaultsInjected < int64(res.Pages)/10 {
		t.Fatalf("only %d faults over %d pages: the test did not test faults", stats.FaultsInjected, res.Pages)
	}
	if res.Inserted != 10_000 {
		t.Fatalf("inserted %d", res.Inserted)
	}
	r.assertMatchesTruth(t)
}

func TestSyncWhileTasksMove(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	tasks, clock := moving(now)
	sim := newSim(tasks, clock, simulator.Faults{Latency: time.Millisecond})
	r := newRig(t, sim, func(c *mpsclient.Config) { c.PageSize = 20 })
	for i := 0; i < 2; i++ {
		if _, err := r.syncer.Run(context.Background(), "moving"); err != nil {
			t.Fatal(err)
		}
	}
	moved := pgtest.Scalar[int64](t, r.dbURL, `SELECT count(*) FROM task_status_changes WHERE from_status IS NOT NULL`)
	if moved < 100 {
		t.Fatalf("only %d transitions observed: the test did not move tasks", moved)
	}
	// Freeze the world; one more run catches what moved behind the cursors.
	r.sim = newSimFrozen(t, r, tasks, clock.Now())
	res, err := r.syncer.Run(context.Background(), "final")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d transitions observed while moving; final run updated %d", moved, res.Updated)
	r.assertMatchesTruth(t)
}

// moving is a population whose tasks queue and process for minutes, on a
// clock running 20 simulated minutes a second: most of the WAITING and
// PROCESSING lists move during a drain, and new tasks keep arriving.
func moving(now time.Time) ([]*simulator.Task, *simulator.Clock) {
	return generated(3000, now, func(c *simulator.GenConfig) {
		c.Window = 2 * time.Hour
		c.QueueMean, c.ProcessMean = 3*time.Minute, 5*time.Minute
		c.ArrivalsPerHour, c.Horizon = 3000, 4*time.Hour
	}), simulator.NewClock(now, 1200)
}

// newSimFrozen swaps the rig's API for one frozen at at.
func newSimFrozen(t *testing.T, r *rig, tasks []*simulator.Task, at time.Time) *simulator.Server {
	t.Helper()
	sim := newSim(tasks, simulator.NewClock(at, 0), simulator.Faults{})
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	client, err := mpsclient.New(mpsclient.Config{Endpoint: hs.URL, Credential: common.NewCredential(secretID, secretKey), RateLimit: 10_000, Burst: 100})
	if err != nil {
		t.Fatal(err)
	}
	r.syncer = syncer.New(client, r.st, syncer.Config{}, nil)
	return sim
}

func TestWrongCredentialsFailFastAndLeakNothing(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	sim := newSim(generated(50, now, nil), simulator.NewClock(now, 0), simulator.Faults{})
	const wrongKey = "WRONG-secret-key-do-not-leak-5521"
	r := newRig(t, sim, func(c *mpsclient.Config) { c.Credential = common.NewCredential(secretID, wrongKey) })
	start := time.Now()
	res, err := r.syncer.Run(context.Background(), "test")
	if mps.ErrorCode(err) != mps.CodeSignatureFailure {
		t.Fatalf("err %v", err)
	}
	if el := time.Since(start); el > 2*time.Second || sim.Stats().Requests != 1 {
		t.Fatalf("%d requests in %s: a fatal code must not be retried", sim.Stats().Requests, el)
	}
	if len(res.RequestIDs) != 1 {
		t.Fatalf("request ids %v", res.RequestIDs)
	}
	dump := pgtest.Query(t, r.dbURL, `SELECT row_to_json(r)::text FROM sync_runs r`)
	text := fmt.Sprint(dump) + err.Error()
	if !strings.Contains(text, "AuthFailure.SignatureFailure") || !strings.Contains(text, "failed") {
		t.Fatalf("run not recorded as failed with the code: %s", text)
	}
	if strings.Contains(text, wrongKey) || strings.Contains(text, secretKey) {
		t.Fatalf("a secret leaked: %s", text)
	}
}

func TestCoverageGapAfterEightDayOutage(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	clock := simulator.NewClock(now, 0)
	tasks := generated(500, now, func(c *simulator.GenConfig) { c.ArrivalsPerHour, c.Horizon = 20, 10*24*time.Hour })
	r := newRig(t, newSim(tasks, clock, simulator.Faults{}), nil)
	if res, err := r.syncer.Run(context.Background(), "before"); err != nil || res.Gap != nil {
		t.Fatalf("first run: %v %+v", err, res.Gap)
	}
	clock.Advance(8 * 24 * time.Hour)
	res, err := r.syncer.Run(context.Background(), "after")
	if err != nil {
		t.Fatal(err)
	}
	if res.Gap == nil || !res.Gap.Start.Equal(now) || !res.Gap.End.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("gap %+v", res.Gap)
	}
	rows := pgtest.Query(t, r.dbURL, `SELECT gap_end - gap_start FROM coverage_gaps`)
	if len(rows) != 1 {
		t.Fatalf("gaps %v", rows)
	}
}

func TestHostileRecordsFromTheAPI(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	long := strings.Repeat("長", 7000)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	sc := &simulator.Scenario{Tasks: []simulator.ScenarioTask{
		{TaskId: "good-1", TaskType: "WorkflowTask", SubTaskTypes: []string{"action-trans"}, Create: "-2h", Begin: "-1h", Finish: "-30m"},
		{Status: "FINISH", Create: "-2h", Raw: raw(`{"TaskId":"bad-times","TaskType":"WorkflowTask","CreateTime":"2026-13-99T00:00:00Z","BeginProcessTime":12,"FinishTime":"2026-04-30T23:00:00+08:00"}`)},
		{Status: "FINISH", Create: "-2h", Raw: raw(`{"TaskType":"NoId"}`)},
		{Status: "FINISH", Create: "-2h", Raw: raw(`{"TaskId":"sql'); DROP TABLE tasks; --","TaskType":"$(touch /tmp/pwned)` + "`id`" + `","SubTaskTypes":null,"Unknown":{"deep":[null,{"x":1}]}}`)},
		{Status: "FINISH", Create: "-2h", Raw: raw(`{"TaskId":"nul\u0000byte","TaskType":"a\u0000b","SubTaskTypes":["x\u0000"]}`)},
		{Status: "FINISH", Create: "-2h", Raw: raw(`{"TaskId":"long","TaskType":"` + long + `","SubTaskTypes":[` + strings.Repeat(`"s",`, 5000) + `"s"]}`)},
		{Status: "FINISH", Create: "-2h", Raw: raw(`{"TaskId":"good-1","TaskType":"Duplicate","SubTaskTypes":[]}`)},
		{Status: "FINISH", Create: "-2h", Raw: raw(`"just a string"`)},
		{Status: "PROCESSING", Create: "-2h", Raw: raw(`{"TaskId":"emoji-🎬-任务","TaskType":"LiveProcessTask","SubTaskTypes":["ü"],"CreateTime":"2026-04-30T20:00:00Z"}`)},
	}}
	tasks, err := sc.Build(at)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, newSim(tasks, simulator.NewClock(at, 0), simulator.Faults{}), func(c *mpsclient.Config) { c.PageSize = 3 })
	res, err := r.syncer.Run(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 2 || res.Warnings < 2 {
		t.Fatalf("skipped %d, warnings %d", res.Skipped, res.Warnings)
	}
	rows := pgtest.Query(t, r.dbURL, `SELECT task_id, status, create_time IS NULL, finish_time, length(task_type), cardinality(sub_task_types) FROM tasks ORDER BY task_id`)
	got := map[string][]any{}
	for _, row := range rows {
		got[row[0].(string)] = row[1:]
	}
	if len(got) != 6 {
		t.Fatalf("archived %d: %v", len(got), rows)
	}
	if bt := got["bad-times"]; bt[1] != true || !bt[2].(time.Time).Equal(time.Date(2026, 4, 30, 15, 0, 0, 0, time.UTC)) {
		t.Errorf("bad-times: %v", bt)
	}
	if l := got["long"]; l[3] != int32(7000) || l[4] != int32(5001) {
		t.Errorf("long: %v", l)
	}
	if _, ok := got["sql'); DROP TABLE tasks; --"]; !ok {
		t.Errorf("the SQL-looking id was not archived verbatim")
	}
	if _, ok := got["nul\uFFFDbyte"]; !ok {
		t.Errorf("NUL id: %v", rows)
	}
	if e := got["emoji-🎬-任务"]; e == nil || e[0] != "PROCESSING" {
		t.Errorf("emoji: %v", e)
	}
	// The two records with TaskId good-1 on FINISH: the later one wins,
	// and nothing fails.
	if g := got["good-1"]; g == nil || g[0] != "FINISH" {
		t.Errorf("good-1: %v", g)
	}
	// A second run inserts nothing; only good-1, listed twice with different
	// content on different pages, is rewritten (twice: once per record).
	res, err = r.syncer.Run(context.Background(), "again")
	if err != nil || res.Inserted != 0 || res.Updated > 2 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
}

func TestPartitionedFinishDrain(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	tasks := generated(5000, now, nil)
	// Tasks created exactly on the partition boundaries of a 4-way split.
	for i := 1; i < 4; i++ {
		at := now.Add(-syncer.Window + time.Duration(i)*syncer.Window/4)
		tasks = append(tasks, &simulator.Task{ID: fmt.Sprintf("boundary-%d", i), Type: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: at.UnixNano(), Begin: at.Add(time.Second).UnixNano(), Finish: at.Add(2 * time.Second).UnixNano()})
	}
	for _, parts := range []int{4, 7} {
		sim := newSim(tasks, simulator.NewClock(now, 0), simulator.Faults{Latency: 2 * time.Millisecond})
		r := newRig(t, sim, nil)
		r.syncer = syncer.New(r.client, r.st, syncer.Config{Partitions: parts}, nil)
		res, err := r.syncer.Run(context.Background(), "partitioned")
		if err != nil {
			t.Fatal(err)
		}
		if res.Inserted != int64(len(sim.Truth())) {
			t.Fatalf("%d partitions: inserted %d of %d", parts, res.Inserted, len(sim.Truth()))
		}
		if n := sim.Stats().RequestsByStatus["FINISH"]; n < int64(parts) {
			t.Fatalf("%d FINISH requests for %d partitions", n, parts)
		}
		r.assertMatchesTruth(t)
	}
}
