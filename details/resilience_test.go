package details_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// logBuffer collects a logger's lines.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// queued is a rig whose archive holds n generated tasks, synced once with
// details.mode all, so that every finished task's detail is queued.
func queued(t *testing.T, n int, retention time.Duration) (*simulator.Server, *rig) {
	t.Helper()
	now := time.Now().UTC()
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
		Clock: simulator.NewClock(now, 0)}, population(n, now))
	r := newRig(t, sim)
	s := syncer.New(r.client, r.st, syncer.Config{Details: syncer.DetailsAll, DetailRetention: retention}, nil)
	if _, err := s.Run(context.Background(), "details"); err != nil {
		t.Fatal(err)
	}
	return sim, r
}

// drainQueue works the queue until nothing is claimable.
func drainQueue(t *testing.T, f *details.Fetcher) {
	t.Helper()
	done := make(chan struct{})
	close(done)
	if err := f.Run(context.Background(), done); err != nil {
		t.Fatal(err)
	}
}

// wake makes every queued job claimable now, as time passing would.
func wake(t *testing.T, db string) {
	t.Helper()
	pgtest.Exec(t, db, `UPDATE task_detail_queue SET not_before = '-infinity'`)
}

// TestOutageLosesNoOutcome: DescribeTaskDetail refused for every task (a
// key whose CAM policy lacks mps:DescribeTaskDetail) for longer than five
// attempts: nothing is given up while MPS still has the details, the
// fetcher says once, loudly, that capture is failing and why, and once the
// policy is fixed every outcome is stored.
func TestOutageLosesNoOutcome(t *testing.T) {
	t.Parallel()
	sim, r := queued(t, 200, 72*time.Hour)
	queued := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_detail_queue`)
	if queued < 50 {
		t.Fatalf("only %d details queued", queued)
	}
	sim.SetFaults(simulator.Faults{ErrorRate: 1, ErrorCodes: []string{"UnauthorizedOperation"}, Actions: []string{mps.ActionDescribeTaskDetail}})
	var logs logBuffer
	f := details.New(r.client, r.st, details.Config{RetryAfter: time.Minute, SystemicAfter: 5, SystemicPause: time.Millisecond},
		slog.New(slog.NewTextHandler(&logs, nil)))
	for range 8 { // eight rounds: more attempts than any earlier limit
		drainQueue(t, f)
		wake(t, r.db)
	}
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_details`); n != 0 {
		t.Fatalf("%d outcomes recorded during the outage", n)
	}
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_detail_queue WHERE attempts >= 8`); n != queued {
		t.Fatalf("%d of %d jobs were tried 8 times", n, queued)
	}
	fl, failing := f.Failing()
	if !failing || fl.Code != "UnauthorizedOperation" || !strings.Contains(fl.Hint, "mps:DescribeTaskDetail") {
		t.Fatalf("failing %v %+v", failing, fl)
	}
	if n := strings.Count(logs.String(), "detail capture is failing for every task"); n != 1 {
		t.Fatalf("said %d times that capture is failing:\n%s", n, logs.String())
	}
	b, err := r.st.DetailBacklog(context.Background())
	if err != nil || b.Pending != queued || b.Failing != queued || b.GaveUp != 0 {
		t.Fatalf("backlog %+v %v", b, err)
	}

	// The policy is fixed: everything comes in.
	sim.SetFaults(simulator.Faults{})
	wake(t, r.db)
	drainQueue(t, f)
	if _, failing := f.Failing(); failing {
		t.Fatal("still failing after a success")
	}
	if !strings.Contains(logs.String(), "detail capture recovered") {
		t.Fatal("recovery not logged")
	}
	r.assertOutcomes(t, func(simulator.TruthTask) bool { return true })
}

// TestGaveUpOnlyWhenMPSForgot: a job whose reads fail until its task is
// older than the API's window is recorded expired with its last error
// (counted as given up); `details requeue` brings back what MPS may still
// hold.
func TestGaveUpOnlyWhenMPSForgot(t *testing.T) {
	t.Parallel()
	sim, r := queued(t, 100, 72*time.Hour)
	sim.SetFaults(simulator.Faults{ErrorRate: 1, ErrorCodes: []string{"InternalError"}, Actions: []string{mps.ActionDescribeTaskDetail}})
	f := details.New(r.client, r.st, details.Config{RetryAfter: time.Minute, SystemicPause: time.Millisecond}, nil)
	drainQueue(t, f)
	// One job's task is past the window now (as if a week went by).
	victim := pgtest.Scalar[string](t, r.db, `SELECT task_id FROM task_detail_queue ORDER BY task_id LIMIT 1`)
	pgtest.Exec(t, r.db, `UPDATE task_detail_queue SET give_up_at = now() - interval '1 minute', not_before = '-infinity' WHERE task_id = $1`, victim)
	drainQueue(t, f)
	row := pgtest.Query(t, r.db, `SELECT outcome, err_code, message FROM task_details WHERE task_id = $1`, victim)
	if len(row) != 1 || row[0][0] != "expired" || row[0][1] != "gave_up" || !strings.Contains(row[0][2].(string), "InternalError") {
		t.Fatalf("victim %v", row)
	}
	if st := f.Stats(); st.GaveUp != 1 {
		t.Fatalf("stats %+v", st)
	}
	if b, _ := r.st.DetailBacklog(context.Background()); b.GaveUp != 1 {
		t.Fatalf("backlog %+v", b)
	}
	// Made readable again (the window was a mistake: its task is young):
	// requeue reads it.
	pgtest.Exec(t, r.db, `UPDATE task_details SET fetched_at = now() WHERE task_id = $1`, victim)
	sim.SetFaults(simulator.Faults{})
	requeued, woken, err := r.st.RequeueDetails(context.Background(), 72*time.Hour)
	if err != nil || requeued != 1 || woken == 0 {
		t.Fatalf("requeue: %d %d %v", requeued, woken, err)
	}
	drainQueue(t, f)
	r.assertOutcomes(t, func(simulator.TruthTask) bool { return true })
}

// TestSlowAnswersReadEachDetailOnce: answers slower than the old lease
// (a worker's eighth job started after its lease ran out, so idle workers
// read it again) cost one DescribeTaskDetail per job, and the counters
// count each stored detail once.
func TestSlowAnswersReadEachDetailOnce(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	sc := &simulator.Scenario{}
	for i := range 8 {
		sc.Tasks = append(sc.Tasks, simulator.ScenarioTask{TaskId: fmt.Sprintf("slow-%d", i), TaskType: "WorkflowTask",
			SubTaskTypes: []string{"Transcode"}, Create: "-2h", Begin: "-90m", Finish: "-1h"})
	}
	tasks, err := sc.Build(now)
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: simulator.NewClock(now, 0)}, tasks)
	r := newRig(t, sim)
	s := syncer.New(r.client, r.st, syncer.Config{Details: syncer.DetailsAll, DetailRetention: 72 * time.Hour}, nil)
	if _, err := s.Run(context.Background(), "details"); err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(simulator.Faults{Latency: time.Second, Actions: []string{mps.ActionDescribeTaskDetail}})
	before := sim.Stats().RequestsByStatus["detail"]
	// A lease of four answers: a worker's old batch of 8 outlived it (its
	// fifth job was read again by an idle worker); one job at a time keeps
	// three seconds of margin per answer on a busy machine.
	f := details.New(r.client, r.st, details.Config{Workers: 4, Lease: 4 * time.Second}, nil)
	drainQueue(t, f)
	if got := sim.Stats().RequestsByStatus["detail"] - before; got != 8 {
		t.Fatalf("%d DescribeTaskDetail calls for 8 jobs", got)
	}
	if st := f.Stats(); st.Fetched != 8 {
		t.Fatalf("stats %+v", st)
	}
}

// TestInvalidParameterValueIsNotExpiry: the exact code
// InvalidParameterValue, answered for a task still inside its retention,
// is retried, not recorded as expired for good.
func TestInvalidParameterValueIsNotExpiry(t *testing.T) {
	t.Parallel()
	sim, r := queued(t, 60, 168*time.Hour)
	sim.SetFaults(simulator.Faults{ErrorRate: 1, ErrorCodes: []string{mps.CodeInvalidParameter}, Actions: []string{mps.ActionDescribeTaskDetail}})
	f := details.New(r.client, r.st, details.Config{RetryAfter: time.Minute, SystemicPause: time.Millisecond}, nil)
	drainQueue(t, f)
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_details`); n != 0 {
		t.Fatalf("%d details recorded from InvalidParameterValue", n)
	}
	sim.SetFaults(simulator.Faults{})
	wake(t, r.db)
	drainQueue(t, f)
	r.assertOutcomes(t, func(simulator.TruthTask) bool { return true })
}

// TestOversizedDetailRefusedUnread: an answer above the client's limit is
// not read into memory nor decoded; it costs one request, and the task's
// outcome is recorded as undecided (reading it again cannot help), never
// as a success and never retried forever.
func TestOversizedDetailRefusedUnread(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	sc := &simulator.Scenario{Tasks: []simulator.ScenarioTask{
		{TaskId: "huge", TaskType: "WorkflowTask", SubTaskTypes: []string{"AiRecognition"}, Create: "-2h", Begin: "-90m", Finish: "-1h",
			Detail: largeDetailJSON("huge", 3<<20)},
		{TaskId: "small", TaskType: "WorkflowTask", SubTaskTypes: []string{"AiRecognition"}, Create: "-2h", Begin: "-90m", Finish: "-1h",
			Detail: largeDetailJSON("small", 1<<20)},
	}}
	tasks, err := sc.Build(now)
	if err != nil {
		t.Fatal(err)
	}
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: simulator.NewClock(now, 0)}, tasks)
	r := newRig(t, sim)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	client, err := mpsclient.New(mpsclient.Config{Endpoint: hs.URL, Credential: common.NewCredential(secretID, secretKey),
		RateLimit: 10_000, DetailRateLimit: 10_000, Burst: 100, BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond,
		MaxResponseBytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.TaskDetail(context.Background(), mps.SourceMedia, "huge"); mps.ErrorCode(err) != mps.CodeResponseTooLarge ||
		!strings.Contains(err.Error(), "larger than 2097152 bytes") {
		t.Fatalf("huge detail: %v", err)
	}
	s := syncer.New(client, r.st, syncer.Config{Details: syncer.DetailsAll, DetailRetention: 72 * time.Hour}, nil)
	if _, err := s.Run(context.Background(), "details"); err != nil {
		t.Fatal(err)
	}
	before := sim.Stats().RequestsByStatus["detail"]
	drainQueue(t, details.New(client, r.st, details.Config{}, nil))
	if got := sim.Stats().RequestsByStatus["detail"] - before; got != 2 {
		t.Fatalf("%d detail requests for 2 tasks", got)
	}
	got := pgtest.Query(t, r.db, `SELECT task_id, outcome, coalesce(err_code, ''), raw_truncated FROM task_details ORDER BY task_id`)
	if fmt.Sprint(got) != "[[huge undecided ClientError.ResponseTooLarge false] [small succeeded  false]]" {
		t.Fatalf("details %v", got)
	}
}

// TestFarFutureDateExpiresNothing: one answer whose Date is 30 days ahead
// (a proxy's clock) does not make every queued job look past its deadline:
// beyond MaxClockSkew the API's Date is not believed.
func TestFarFutureDateExpiresNothing(t *testing.T) {
	t.Parallel()
	sim, r := queued(t, 200, 72*time.Hour)
	sim.SetFaults(simulator.Faults{DateSkew: 30 * 24 * time.Hour})
	f := details.New(r.client, r.st, details.Config{MaxClockSkew: 5 * time.Minute}, nil)
	drainQueue(t, f)
	r.assertOutcomes(t, func(simulator.TruthTask) bool { return true })
}

// TestOutcomeColumnsRedacted: a failed sub-task whose message quotes its
// signed input URL, and an output path with a token, reach no stored
// column whole: the outcome is decided on the redacted detail, and the
// stand-in of a large one is made from it too.
func TestOutcomeColumnsRedacted(t *testing.T) {
	t.Parallel()
	const sig, ak = "deadbeefcafebabe0123456789SIG", "AKIDreviewLeakKey123"
	url := "https://b-125.cos.ap-guangzhou.myqcloud.com/in.mp4?q-sign-algorithm=sha1&q-ak=" + ak + "&q-signature=" + sig
	body := `{"Response":{"TaskType":"WorkflowTask","Status":"FINISH","CreateTime":"2025-01-01T00:00:00Z","FinishTime":"2025-01-01T00:01:00Z",
"WorkflowTask":{"TaskId":"t1","Status":"FINISH","ErrCode":0,"Message":"SUCCESS","MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"FAIL","ErrCode":30010,"ErrCodeExt":"SourceFileError","Message":"download ` + url + ` failed","Input":{"Definition":10},"Output":{"Path":"/out/x.mp4?token=OUTPUTTOKEN123456"}}}]}},"RequestId":"r"}`
	d, err := mps.DecodeTaskDetail("t1", []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []details.Record{details.Capture(d, 1<<20), details.Capture(d, 10)} {
		o := rec.Outcome
		if o.Result != mps.OutcomeFailed || o.ErrCode != "30010" || len(o.Subtasks) != 1 || !strings.Contains(o.Message, "download https://b-125.cos") {
			t.Fatalf("outcome %+v", o)
		}
		for _, s := range []string{string(rec.Raw), o.Message, o.Subtasks[0].Message, o.Subtasks[0].OutputPath} {
			for _, secret := range []string{sig, ak, "OUTPUTTOKEN"} {
				if strings.Contains(s, secret) {
					t.Errorf("%s in a stored column: %q", secret, s)
				}
			}
		}
	}
}
