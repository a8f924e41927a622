package details_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtemp"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/mpsclient"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	secretID  = "AKIDdetails0000"
	secretKey = "details-secret-key-4c1d"
)

type rig struct {
	sim    *simulator.Server
	db     string
	st     *storage.Store
	client *mpsclient.Client
}

func newRig(t testing.TB, sim *simulator.Server) *rig {
	t.Helper()
	ar := archivetest.NewRig(t, sim, secretID, secretKey, nil)
	return &rig{sim: sim, db: ar.DB, st: ar.Store, client: ar.Client}
}

// population is every task type, both SubTaskTypes vocabularies, 30% of
// tasks failing in every style, spread over the API's whole window.
func population(n int, now time.Time) []*simulator.Task {
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks, cfg.FailureShare, cfg.Vocabulary = n, 0.3, simulator.VocabularyMixed
	return simulator.Generate(cfg, now)
}

// capture syncs the lists with details.mode mode and works the queue until
// it is empty.
func (r *rig) capture(t *testing.T, mode string) details.Stats {
	t.Helper()
	return r.captureWith(t, syncer.Config{Partitions: 4, Details: mode, DetailRetention: 72 * time.Hour})
}

// captureWith syncs the lists with cfg and works the queue until it is
// empty.
func (r *rig) captureWith(t *testing.T, cfg syncer.Config) details.Stats {
	t.Helper()
	s := syncer.New(r.client, r.st, cfg, nil)
	if _, err := s.Run(context.Background(), "details"); err != nil {
		t.Fatal(err)
	}
	f := details.New(r.client, r.st, details.Config{RetryAfter: time.Millisecond}, nil)
	done := make(chan struct{})
	close(done)
	if err := f.Run(context.Background(), done); err != nil {
		t.Fatal(err)
	}
	return f.Stats()
}

// assertOutcomes compares task_details and task_subtask_results with the
// simulator's truth, task by task.
func (r *rig) assertOutcomes(t *testing.T, want func(simulator.TruthTask) bool) (checked map[string]int) {
	t.Helper()
	got := map[string]string{}
	for _, row := range pgtest.Query(t, r.db, `SELECT task_id, outcome, coalesce(err_code, ''), coalesce(err_code_ext, '') FROM task_details`) {
		got[row[0].(string)] = fmt.Sprint(row[1:])
	}
	kinds := map[string]string{}
	for _, row := range pgtest.Query(t, r.db, `SELECT task_id, string_agg(kind, ',' ORDER BY ordinal) FROM task_subtask_results GROUP BY 1`) {
		kinds[row[0].(string)] = row[1].(string)
	}
	checked = map[string]int{}
	bad := 0
	for _, tt := range r.sim.Truth() {
		if tt.Outcome == "" || !want(tt) {
			if _, ok := got[tt.TaskId]; ok && tt.Outcome == "" {
				t.Errorf("task %s (%s) has a detail", tt.TaskId, tt.Status)
			}
			continue
		}
		checked[tt.Outcome]++
		if w := fmt.Sprint([]any{tt.Outcome, tt.ErrCode, tt.ErrCodeExt}); got[tt.TaskId] != w {
			if bad++; bad <= 5 {
				t.Errorf("task %s (%s %v): archive %s, truth %s", tt.TaskId, tt.TaskType, tt.SubTaskTypes, got[tt.TaskId], w)
			}
		}
		delete(got, tt.TaskId)
		if tt.TaskType == mps.TaskTypeImage {
			// An image task's results are one ImageProcess sub-task each.
			k := kinds[tt.TaskId]
			if tt.Outcome != mps.OutcomeExpired && (k == "" || strings.Trim(strings.ReplaceAll(k, mps.ImageSubTaskKind, ""), ",") != "") {
				if bad++; bad <= 5 {
					t.Errorf("image task %s: sub-tasks %q", tt.TaskId, k)
				}
			}
			continue
		}
		var wantKinds []string
		if tt.Outcome != mps.OutcomeExpired && (tt.TaskType == "WorkflowTask" || tt.TaskType == "ScheduleTask") {
			for _, s := range tt.SubTaskTypes {
				wantKinds = append(wantKinds, mps.SubTaskKind(s))
			}
		}
		if k := kinds[tt.TaskId]; k != strings.Join(wantKinds, ",") {
			if bad++; bad <= 5 {
				t.Errorf("task %s (%s): sub-tasks %q, truth %q", tt.TaskId, tt.TaskType, k, strings.Join(wantKinds, ","))
			}
		}
	}
	if len(got) > 0 {
		t.Errorf("%d details of tasks not expected to have one", len(got))
	}
	if bad > 0 {
		t.Errorf("%d tasks differ from the truth", bad)
	}
	if checked[mps.OutcomeSucceeded]+checked[mps.OutcomeFailed] > 0 {
		archivetest.AssertMediaFacts(t, r.db, r.sim.Truth())
	}
	return checked
}

// TestOutcomesMatchTheTruth: every FINISH task's outcome, first error code
// (both styles) and sub-tasks equal the simulator's; details gone before
// they were read are expired, counted and stored as such.
func TestOutcomesMatchTheTruth(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
		Clock: simulator.NewClock(now, 0), DetailRetention: 72 * time.Hour}, population(3000, now))
	r := newRig(t, sim)
	stats := r.capture(t, syncer.DetailsAll)
	checked := r.assertOutcomes(t, func(simulator.TruthTask) bool { return true })
	t.Logf("checked %v; fetcher %+v", checked, stats)
	if checked[mps.OutcomeFailed] < 300 || checked[mps.OutcomeSucceeded] < 300 || checked[mps.OutcomeExpired] < 300 {
		t.Fatalf("the population did not cover every outcome: %v", checked)
	}
	if stats.Expired != int64(checked[mps.OutcomeExpired]) || stats.Fetched != int64(checked[mps.OutcomeSucceeded]+checked[mps.OutcomeFailed]) {
		t.Fatalf("stats %+v, truth %v", stats, checked)
	}
	// Both error styles, task-level and sub-task failures, were among them.
	styles := pgtest.Query(t, r.db, `SELECT count(*) FILTER (WHERE err_code IS NOT NULL AND err_code_ext IS NULL),
	       count(*) FILTER (WHERE err_code IS NULL AND err_code_ext IS NOT NULL), count(*) FILTER (WHERE err_code IS NOT NULL AND err_code_ext IS NOT NULL)
	  FROM task_details WHERE outcome = 'failed'`)[0]
	for i, n := range styles {
		if n.(int64) == 0 {
			t.Errorf("no failure of style %d: %v", i, styles)
		}
	}
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_detail_queue`); n != 0 {
		t.Errorf("%d jobs left in the queue", n)
	}
	// A second sync queues nothing new: every detail is read once.
	before := sim.Stats().RequestsByStatus["detail"]
	if s := r.capture(t, syncer.DetailsAll); s.Fetched+s.Expired != 0 || sim.Stats().RequestsByStatus["detail"] != before {
		t.Fatalf("the second sync read details again: %+v", s)
	}
}

// TestFailedModeReadsOnlyFailedTasks: details.mode failed lists FINISH with
// SubTaskHasFailed=true and reads those details only; where the API rejects
// the filter, every FINISH task's detail is read instead.
func TestFailedModeReadsOnlyFailedTasks(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	for _, v := range []simulator.Variant{{}, {Filters: simulator.FiltersUnsupported}} {
		sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
			Clock: simulator.NewClock(now, 0), Variant: v}, population(2000, now))
		r := newRig(t, sim)
		r.capture(t, syncer.DetailsFailed)
		if v.Filters == simulator.FiltersUnsupported {
			r.assertOutcomes(t, func(simulator.TruthTask) bool { return true })
			continue
		}
		checked := r.assertOutcomes(t, func(tt simulator.TruthTask) bool { return tt.Failed })
		if checked[mps.OutcomeSucceeded] != 0 || checked[mps.OutcomeFailed] < 100 {
			t.Fatalf("failed mode: %v", checked)
		}
		if got := sim.Stats().RequestsByStatus["detail"]; got != int64(checked[mps.OutcomeFailed]) {
			t.Fatalf("%d detail requests for %d failed tasks", got, checked[mps.OutcomeFailed])
		}
	}
}

// TestSecretsNeverStored: the notify key and S3 keys the simulator puts in
// every detail appear in no byte of a pg_dump of the archive.
func TestSecretsNeverStored(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
		Clock: simulator.NewClock(now, 0)}, population(500, now))
	r := newRig(t, sim)
	r.capture(t, syncer.DetailsAll)
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_details WHERE raw::text LIKE '%[REDACTED]%'`); n < 400 {
		t.Fatalf("only %d details were redacted", n)
	}
	bin, err := pgtemp.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	dump, err := exec.Command(filepath.Join(bin, "pg_dump"), "--dbname", r.db).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	if !strings.Contains(string(dump), "task_details") {
		t.Fatal("the dump holds no task_details")
	}
	for _, secret := range simulator.Secrets() {
		if strings.Contains(string(dump), secret) {
			t.Errorf("pg_dump holds %s", secret)
		}
	}
}

// TestHostileDetails: details of several MB, deep nesting, an unknown
// container and wrong types are stored (the large one truncated, flagged),
// never crash a run, and never cost a task row.
func TestHostileDetails(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	asr := strings.Repeat("word ", 1_200_000) // 6 MB of ASR text
	deep := strings.Repeat(`{"x":`, 3000) + `1` + strings.Repeat(`}`, 3000)
	detail := map[string]string{
		"big": `{"TaskType":"WorkflowTask","Status":"FINISH","TaskNotifyConfig":{"NotifyKey":"` + simulator.NotifyKey + `"},
			"WorkflowTask":{"TaskId":"big","ErrCode":0,"AiRecognitionResultSet":[{"Type":"AsrFullTextRecognition",
			"AsrFullTextTask":{"Status":"FAIL","ErrCodeExt":"InternalError","Output":{"SegmentSet":[{"Text":"` + asr + `"}]}}}]}}`,
		"deep":    `{"TaskType":"WorkflowTask","Status":"FINISH","WorkflowTask":{"TaskId":"deep","ErrCode":0,"Extra":` + deep + `}}`,
		"unknown": `{"TaskType":"BatchTask","Status":"FINISH","BatchTask":{"TaskId":"unknown","ErrCode":0,"Results":[{"Kind":"Mystery"}]}}`,
		"wrong":   `{"TaskType":"WorkflowTask","Status":7,"CreateTime":false,"WorkflowTask":{"ErrCode":"30010","MediaProcessResultSet":{"not":"a list"}}}`,
		"still":   `{"TaskType":"WorkflowTask","Status":"FINISH","WorkflowTask":{"MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"PROCESSING"}}]}}`,
	}
	sc := &simulator.Scenario{}
	for id, d := range detail {
		sc.Tasks = append(sc.Tasks, simulator.ScenarioTask{TaskId: id, TaskType: "WorkflowTask", SubTaskTypes: []string{"Transcode"},
			Create: "-2h", Begin: "-90m", Finish: "-1h", Detail: []byte(d)})
	}
	tasks, err := sc.Build(now)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1, Clock: simulator.NewClock(now, 0)}, tasks))
	stats := r.capture(t, syncer.DetailsAll)
	rows := map[string]string{}
	for _, row := range pgtest.Query(t, r.db, `SELECT task_id, outcome, coalesce(err_code, ''), coalesce(err_code_ext, ''), raw_truncated, cardinality(ambiguities) > 0, raw_bytes > 5000000 FROM task_details`) {
		rows[row[0].(string)] = fmt.Sprint(row[1:])
	}
	want := map[string]string{
		"big":     "[failed  InternalError true false true]",
		"deep":    "[succeeded   false false false]",
		"unknown": "[undecided   false true false]",
		"wrong":   "[failed 30010  false false false]",
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("details:\n got  %v\n want %v", rows, want)
	}
	if stats.Truncated != 1 || stats.Ambiguous != 1 || stats.Undecided != 1 || stats.Unsettled != 1 {
		t.Errorf("stats %+v", stats)
	}
	// The detail read before its sub-tasks settled waits to be read again.
	if got := pgtest.Query(t, r.db, `SELECT task_id, last_error FROM task_detail_queue`); fmt.Sprint(got) != "[[still not settled: sub-task 0 (Transcode) is still PROCESSING]]" {
		t.Errorf("queue %v", got)
	}
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM tasks`); n != int64(len(detail)) {
		t.Errorf("%d task rows, want %d", n, len(detail))
	}
	if n := pgtest.Scalar[int64](t, r.db, `SELECT count(*) FROM task_details WHERE raw::text LIKE '%`+simulator.NotifyKey+`%'`); n != 0 {
		t.Errorf("the notify key survived in %d details", n)
	}
}

// TestImageOutcomesMatchTheTruth: image tasks, drained from
// DescribeImageTasks beside the media tasks, have their outcomes read by
// DescribeImageTaskDetail: every one equals the truth, in every error
// style, with details.mode all and failed; the secrets their records and
// details carry are stored nowhere.
func TestImageOutcomesMatchTheTruth(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	for _, mode := range []string{syncer.DetailsAll, syncer.DetailsFailed} {
		cfg := simulator.DefaultGenConfig()
		cfg.Tasks, cfg.FailureShare, cfg.ImageShare = 2000, 0.3, 0.5
		sim := simulator.New(simulator.Config{Credentials: map[string]string{secretID: secretKey}, RateLimit: -1,
			Clock: simulator.NewClock(now, 0), DetailRetention: 72 * time.Hour}, simulator.Generate(cfg, now))
		r := newRig(t, sim)
		r.captureWith(t, syncer.Config{Sources: mps.Sources, Partitions: 4, Details: mode, DetailRetention: 72 * time.Hour})
		want := func(tt simulator.TruthTask) bool { return mode == syncer.DetailsAll || tt.Failed }
		checked := r.assertOutcomes(t, want)
		images := map[string]int{}
		for _, row := range pgtest.Query(t, r.db, `SELECT d.outcome, count(*) FROM task_details d JOIN tasks t USING (task_id)
 WHERE t.source = 'image' GROUP BY 1`) {
			images[row[0].(string)] = int(row[1].(int64))
		}
		t.Logf("%s: checked %v; image outcomes %v", mode, checked, images)
		if images[mps.OutcomeFailed] < 50 || mode == syncer.DetailsAll && (images[mps.OutcomeSucceeded] < 50 || images[mps.OutcomeExpired] < 50) {
			t.Fatalf("%s: the image outcomes do not cover every case: %v", mode, images)
		}
		if mode == syncer.DetailsFailed && images[mps.OutcomeSucceeded] != 0 {
			t.Fatalf("failed mode read %d succeeded image tasks", images[mps.OutcomeSucceeded])
		}
		for _, row := range pgtest.Query(t, r.db, `SELECT t.raw::text || coalesce(d.raw::text, '') FROM tasks t LEFT JOIN task_details d USING (task_id)
 WHERE t.source = 'image'`) {
			// Pieces of 8 bytes or less occur by chance (in hex ids).
			if leak := archivetest.LeakedFragment(row[0].(string), simulator.Secrets()...); len(leak) > 8 {
				t.Fatalf("an image task's record or detail keeps a secret: %s", leak)
			}
		}
	}
}
