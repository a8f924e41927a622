package storage_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestReconciliationClasses: an output with a duration but no video stream
// and no resolution is accounted as Audio, next to the billed Audio
// figures; one with a codec but no resolution is counted as unclassified,
// not guessed; Remuxing is billed only; a video class agrees within the
// rounding of its figures.
func TestReconciliationClasses(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	// Finished at 20:00 UTC: the next Beijing day.
	created := time.Now().UTC().Add(-48 * time.Hour).Truncate(24 * time.Hour).Add(19 * time.Hour)
	tk := task("audio-task", created, "Transcode")
	tk.BeginProcessTime, tk.FinishTime = created.Add(time.Minute), created.Add(time.Hour)
	if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusFinish, Tasks: []mps.Task{tk}}); err != nil {
		t.Fatal(err)
	}
	out := func(o string) string {
		return `{"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCode":0,"Message":"SUCCESS","Input":{"Definition":100010},"Output":` + o + `}}`
	}
	raw := `{"TaskType":"WorkflowTask","Status":"FINISH","WorkflowTask":{"TaskId":"audio-task","Status":"FINISH","ErrCode":0,"MediaProcessResultSet":[` +
		out(`{"Path":"/a.m4a","Container":"m4a","Duration":120.4,"AudioStreamSet":[{"Codec":"aac"}]}`) + `,` +
		out(`{"Path":"/v.mp4","Container":"mp4","Duration":60.2,"Width":1280,"Height":720,"VideoStreamSet":[{"Codec":"h264","Width":1280,"Height":720}]}`) + `,` +
		out(`{"Path":"/x.mp4","Container":"mp4","Duration":30,"VideoStreamSet":[{"Codec":"h265"}]}`) + `]}}`
	if _, err := st.CompleteDetail(ctx, details.Record{TaskID: "audio-task", Outcome: mps.DecideOutcome([]byte(raw)), Raw: []byte(raw)}); err != nil {
		t.Fatal(err)
	}
	day := mps.UsageDay(tk.FinishTime)
	urun, err := st.StartUsageRun(ctx, "test", true, day, day)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.StoreUsage(ctx, urun, mps.UsageQuery{From: day, To: day, Types: []string{"Transcode"}, Region: "ap-guangzhou"}, mps.UsageAnswer{
		Types: []string{"Transcode"}, Rows: []mps.UsageRow{
			{Day: day, Type: "Transcode", Specification: "Audio", Count: 1, Usage: "120"},
			{Day: day, Type: "Transcode", Specification: "Standard.H264.HD", Count: 1, Usage: "60"},
			{Day: day, Type: "Transcode", Specification: "Remuxing", Count: 1, Usage: "45"},
			{Day: day, Type: "Transcode", Specification: "Standard.H265.HD", Count: 1, Usage: "30"},
		}}); err != nil {
		t.Fatal(err)
	}
	rows := pgtest.Query(t, url, `
SELECT coalesce(codec, '-'), coalesce(tier, '-'), array_to_string(specifications, ','), billed_s::float8, accounted_s::float8, outputs_unclassified, status
  FROM mps_usage_reconciliation($1::date, $1::date) ORDER BY 3`, day.Format(time.DateOnly))
	got := fmt.Sprint(rows)
	want := "[[- - Audio 120 120.4 1 agrees] [- - Remuxing 45 0 1 billed_only] [H264 HD Standard.H264.HD 60 60.2 1 agrees] [H265 HD Standard.H265.HD 30 0 1 billed_only]]"
	if got != want {
		t.Errorf("reconciliation:\n got %s\nwant %s", got, want)
	}
}
