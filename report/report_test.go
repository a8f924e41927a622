package report_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/report"
	"github.com/mps-archiver/mps-archiver/storage"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func f(v float64) *float64 { return &v }

// fixture is a fixed report: two weeks of two task types in three
// statuses, percentiles with and without data, sub-task kinds, unfinished
// and stuck tasks, sync health with a failure and a coverage gap.
func fixture() *storage.Report {
	w1 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	w2 := w1.AddDate(0, 0, 7)
	last := time.Date(2026, 11, 15, 23, 55, 0, 0, time.UTC)
	lastErr := "fetch page 3 of FINISH: DescribeTasks failed: InternalError (RequestId 4a2e…) after 6 attempts"
	return &storage.Report{
		Params: storage.ReportParams{StuckAfter: time.Hour},
		Since:  w1, Until: w2.AddDate(0, 0, 7), By: "week",
		Total:    1210,
		ByStatus: map[string]int64{"FINISH": 1200, "PROCESSING": 7, "WAITING": 3},
		Volume: []storage.VolumeRow{
			{Period: w1, TaskType: "EditMediaTask", Status: "FINISH", Tasks: 90},
			{Period: w1, TaskType: "WorkflowTask", Status: "FINISH", Tasks: 510},
			{Period: w2, TaskType: "EditMediaTask", Status: "FINISH", Tasks: 100},
			{Period: w2, TaskType: "WorkflowTask", Status: "FINISH", Tasks: 500},
			{Period: w2, TaskType: "WorkflowTask", Status: "PROCESSING", Tasks: 7},
			{Period: w2, TaskType: "WorkflowTask", Status: "WAITING", Tasks: 3},
		},
		Durations: []storage.DurationRow{
			{Period: w1, TaskType: "*", Tasks: 600, QueueP50: f(95.5), QueueP90: f(301), QueueP99: f(1200.25), ProcessP50: f(410), ProcessP90: f(1500), ProcessP99: f(4000)},
			{Period: w2, TaskType: "*", Tasks: 610, QueueP50: f(120), QueueP90: f(330), QueueP99: f(900), ProcessP50: f(450), ProcessP90: f(1650), ProcessP99: f(3900)},
			{Period: w2, TaskType: "LiveProcessTask", Tasks: 1},
		},
		Subtasks: []storage.SubtaskRow{{SubTaskType: "Transcode", Tasks: 900}, {SubTaskType: "AiRecognition", Tasks: 140}, {SubTaskType: "EditMedia", Tasks: 190}},
		Unfinished: []storage.UnfinishedRow{
			{Status: "PROCESSING", Tasks: 7, OldestS: f(10800), Stuck: 1, MedianS: f(600)},
			{Status: "WAITING", Tasks: 3, OldestS: f(240), MedianS: f(60)},
		},
		Stuck: []storage.StuckRow{{TaskID: "1250000000-WorkflowTask-0a1b2c", TaskType: "WorkflowTask", Begin: last.Add(-3 * time.Hour), ProcessingS: 10800}},
		SyncDays: []storage.SyncDayRow{
			{Day: w2.AddDate(0, 0, 6), Runs: 288, Succeeded: 287, Failed: 1},
			{Day: w2.AddDate(0, 0, 5), Runs: 288, Succeeded: 288, Gaps: 1},
		},
		Runs: storage.RunStats{Total: 576, Succeeded: 575, Failed: 1, LastSuccess: &last, LastError: &lastErr},
		Gaps: []storage.GapRow{{Start: w1.Add(-48 * time.Hour), End: w1.Add(-24 * time.Hour), RunID: 17}},
		Outcomes: []storage.OutcomeRow{
			{Period: w1, TaskType: "EditMediaTask", Finished: 90, Succeeded: 88, Failed: 2, FailureRate: f(2.0 / 90)},
			{Period: w1, TaskType: "WorkflowTask", Finished: 510, Succeeded: 480, Failed: 20, Expired: 10, FailureRate: f(20.0 / 500)},
			{Period: w2, TaskType: "EditMediaTask", Finished: 100, Succeeded: 100, FailureRate: f(0)},
			{Period: w2, TaskType: "WorkflowTask", Finished: 500, Succeeded: 430, Failed: 50, Unknown: 20, FailureRate: f(50.0 / 480)},
		},
		ErrorCodes:      []storage.ErrorCodeRow{{Code: "SourceFileError", Tasks: 40}, {Code: "InvalidInput.DefinitionNotExist", Tasks: 22}, {Code: "30010", Tasks: 10}},
		SubtaskOutcomes: []storage.SubtaskOutcomeRow{{Kind: "Transcode", Subtasks: 900, Failed: 52}, {Kind: "AiRecognition", Subtasks: 140, Failed: 18}},
		Details:         storage.DetailBacklogRow{Queued: 20, Overdue: 3, OldestDeadline: &last, Expired: 10},
		Usage: []storage.BilledRow{{Type: "Snapshot", Specification: "SampleSnapshot", Unit: "images", Count: 40, Usage: 400},
			{Type: "Transcode", Specification: "Standard.H264.HD", Unit: "seconds", Count: 310, Usage: 91250},
			{Type: "Transcode", Specification: "TESHD-10.H265.FHD", Unit: "seconds", Count: 42, Usage: 20160}},
		Reconciliation: []storage.ReconciliationRow{
			{Codec: "H264", Tier: "HD", Specifications: []string{"Standard.H264.HD"}, BilledS: 91250, AccountedS: 80010.5, DifferenceS: 11239.5, Days: 8, DaysAgreeing: 5},
			{Codec: "H265", Tier: "FHD", Specifications: []string{"TESHD-10.H265.FHD"}, BilledS: 20160, AccountedS: 20159.7, DifferenceS: 0.3, Days: 8, DaysAgreeing: 8}},
		Unaccounted:  storage.UnaccountedRow{OutputsWithoutDuration: 17, TasksWithoutOutcome: 10},
		OutputsSince: time.Date(2026, 11, 8, 0, 0, 0, 0, time.UTC), OutputsUntil: time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC),
		Spenders: []storage.SpenderRow{{By: "task_type", Value: "WorkflowTask", Outputs: 330, Minutes: 1668.5},
			{By: "template", Value: "100010", Outputs: 300, Minutes: 1333.5}, {By: "bucket", Value: "archive-1250000000", Outputs: 352, Minutes: 1668.5}},
		Generated: last.Add(5 * time.Minute),
	}
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./report -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run `go test ./report -update` and review the diff):\n%s", name, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n want %s\n got  %s", i+1, w, g)
		}
	}
	return ""
}

func TestFormatsGolden(t *testing.T) {
	t.Parallel()
	for _, format := range report.Formats {
		var b bytes.Buffer
		if err := report.Write(&b, format, fixture()); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		golden(t, "report."+format, b.Bytes())
	}
	if err := report.Write(&bytes.Buffer{}, "yaml", fixture()); err == nil || !strings.Contains(err.Error(), "table, csv, json, markdown") {
		t.Fatalf("an unknown format: %v", err)
	}
}

func TestHTMLGolden(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := report.WriteHTML(&b, fixture()); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	// What the page must hold whatever its styling: charts, the sub-task
	// kinds, the coverage gap, and nothing that reaches the network.
	for _, want := range []string{"<svg", "Transcode", "2026-10-31", "chart-failure-rate", "InvalidInput.DefinitionNotExist", ">72</b>failed tasks (6.2%)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", `src="http`, `href="http`, "url(http"} {
		if strings.Contains(page, banned) {
			t.Errorf("the page holds %q", banned)
		}
	}
	golden(t, "report.html", b.Bytes())
}

// An empty archive renders in every format without failing.
func TestEmptyReport(t *testing.T) {
	t.Parallel()
	empty := &storage.Report{ByStatus: map[string]int64{}, By: "day"}
	for _, format := range report.Formats {
		if err := report.Write(&bytes.Buffer{}, format, empty); err != nil {
			t.Errorf("%s: %v", format, err)
		}
	}
	if err := report.WriteHTML(&bytes.Buffer{}, empty); err != nil {
		t.Error(err)
	}
}
