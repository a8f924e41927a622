package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/details"
	"github.com/mps-archiver/mps-archiver/internal/archivetest"
	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// TestMediaFacts: the outputs and inputs of captured outcomes equal the
// simulator's truth, for every container type, successes and failures in
// each error style, URL and S3 inputs; an undecided outcome read again
// replaces its facts; no secret reaches the tables; and the migration's
// backfill reads the same facts from outcomes archived before it.
func TestMediaFacts(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	now := time.Now().UTC().Truncate(time.Second)
	var sims []*simulator.Task
	kinds := [][]string{{"action-trans", "action-trans", "action-adaptive-substream"}, {"action-trans", "action-AIAnalysis", "action-snapshotByTimeOffset", "action-sample-snapshot", "action-coverBySnapshot"},
		{"action-trans", "action-animated-graphics", "action-image-sprite"}, {}}
	for i := range 60 {
		created := now.Add(-time.Duration(2+i) * time.Hour)
		typ := []string{"WorkflowTask", "ScheduleTask", "EditMediaTask", "LiveProcessTask"}[i%4]
		sub := kinds[(i/4)%len(kinds)]
		if typ == "EditMediaTask" || typ == "LiveProcessTask" {
			sub = nil
		}
		sims = append(sims, &simulator.Task{ID: fmt.Sprintf("m%02d", i), Type: typ, SubTaskTypes: sub,
			Create: created.UnixNano(), Begin: created.Add(time.Minute).UnixNano(), Finish: created.Add(20 * time.Minute).UnixNano(),
			Failed: i%3 == 0})
	}
	var page []mps.Task
	for _, s := range sims {
		info := s.Info(now.UnixNano())
		raw, _ := json.Marshal(info)
		tk := task(s.ID, time.Unix(0, s.Create).UTC(), s.SubTaskTypes...)
		tk.TaskType, tk.Raw = s.Type, raw
		page = append(page, tk)
	}
	if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusFinish, Tasks: page}); err != nil {
		t.Fatal(err)
	}
	capture := func(s *simulator.Task) {
		t.Helper()
		body, err := json.Marshal(s.Detail(now.UnixNano(), simulator.DefaultDetailErrors))
		if err != nil {
			t.Fatal(err)
		}
		r := details.Capture(&mps.TaskDetail{TaskID: s.ID, Raw: body}, mps.KeepDetailBytes)
		if _, err := st.CompleteDetail(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// sims[0] first read while it ran: undecided, its input without the
	// metadata MPS reads once done; read again below, its facts replaced.
	early, _ := json.Marshal(sims[0].Detail(sims[0].Begin+int64(time.Minute), simulator.DefaultDetailErrors))
	if stored, err := st.CompleteDetail(ctx, details.Capture(&mps.TaskDetail{TaskID: sims[0].ID, Raw: early}, mps.KeepDetailBytes)); err != nil || !stored {
		t.Fatalf("undecided detail: stored %v, %v", stored, err)
	}
	if n := pgtest.Scalar[int64](t, url, `SELECT count(*) FROM task_inputs WHERE task_id = $1 AND duration_s IS NULL`, sims[0].ID); n != 1 {
		t.Fatalf("the undecided detail's input: %d rows without metadata, want 1", n)
	}
	for _, s := range sims {
		capture(s)
	}
	assertMediaTruth(t, url, sims, now)
	// Every shape was exercised: each container type's outputs, outputs
	// without a duration, S3 storage, URL inputs without their query.
	cover := pgtest.Query(t, url, `
SELECT string_agg(DISTINCT kind, ',' ORDER BY kind), count(*) FILTER (WHERE no_duration IS NOT NULL), count(*) FILTER (WHERE storage_type = 'AWS-S3'),
       (SELECT count(*) FROM task_inputs WHERE url <> ''), (SELECT count(*) FROM task_inputs WHERE type = 'AWS-S3'), count(DISTINCT tier)
  FROM task_outputs`)[0]
	if fmt.Sprint(cover[0]) != "AdaptiveDynamicStreaming,AnimatedGraphics,CoverBySnapshot,EditMedia,ImageSprites,SampleSnapshot,SnapshotByTimeOffset,Transcode" ||
		cover[1].(int64) == 0 || cover[2].(int64) == 0 || cover[3].(int64) == 0 || cover[4].(int64) == 0 || cover[5].(int64) < 4 {
		t.Errorf("the facts do not cover every shape: kinds %v, without duration %v, on S3 %v, URL inputs %v, S3 inputs %v, tiers %v", cover...)
	}

	// Archived before the facts were kept: the migration reads them again.
	pgtest.Exec(t, url, `DELETE FROM task_outputs; DELETE FROM task_inputs`)
	if err := storage.Migrate(ctx, url, func(mg *storage.Migrator) error {
		if err := mg.To(16); err != nil {
			return err
		}
		return mg.Up()
	}); err != nil {
		t.Fatal(err)
	}
	assertMediaTruth(t, url, sims, now)

	var text strings.Builder
	for _, r := range pgtest.Query(t, url, `SELECT o::text FROM task_outputs o UNION ALL SELECT i::text FROM task_inputs i`) {
		text.WriteString(fmt.Sprint(r...))
	}
	if leak := archivetest.LeakedFragment(text.String(), simulator.Secrets()...); len(leak) > 8 {
		t.Errorf("the media facts hold a piece of a secret: %q", leak)
	}
	if strings.Contains(text.String(), "?") {
		t.Errorf("an input URL kept its query string")
	}
}

func assertMediaTruth(t *testing.T, url string, sims []*simulator.Task, now time.Time) {
	t.Helper()
	var truth []simulator.TruthTask
	for _, s := range sims {
		tt := simulator.TruthTask{Outputs: s.MediaOutputs(now.UnixNano(), simulator.DefaultDetailErrors),
			Inputs: s.MediaInputs(now.UnixNano(), simulator.DefaultDetailErrors)}
		tt.TaskId = s.ID
		truth = append(truth, tt)
	}
	archivetest.AssertMediaFacts(t, url, truth)
}

// TestMediaFactsOfHostileDetails: details that are unusual or hostile
// store their outcome, and give the facts the API states, no more: values
// of the wrong type or out of range leave columns empty; only the
// container of the TaskType is read; a result failed by any part of the
// failure rule is no output; no URL keeps its query or user info.
func TestMediaFactsOfHostileDetails(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	cases := []struct{ id, raw, outputs, inputs string }{
		{"wrong-types", `{"TaskType":"WorkflowTask","WorkflowTask":{"Status":"FINISH","ErrCode":0,
  "InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://user:pw@example.invalid/a.mp4?sig=x#frag"}},
  "MetaData":{"Duration":"long","Width":1e30,"Height":{"x":1},"Size":-5},
  "MediaProcessResultSet":[
    {"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","Input":{"Definition":"100010"},
      "Output":{"Duration":1e400,"Fps":1e-400,"Width":"1920","Height":1e40,"Bitrate":[1],"Size":1.5e300,"Container":{"a":1},
                "VideoStreamSet":{"Codec":"h264"},"OutputStorage":"COS","Path":["x"]}}},
    {"Type":"Transcode","TranscodeTask":"not an object"},
    {"Type":"Transcode"},
    "not an object",
    {"Type":{"x":1},"TranscodeTask":{"Status":"SUCCESS","Output":{}}}]}}`,
			"[[0 Transcode <nil> <nil> the detail reports no duration <nil> <nil> <nil> <nil> <nil> <nil> <nil>]]",
			"[[URL <nil> <nil> <nil> https://example.invalid/a.mp4]]"},
		{"two-containers", `{"TaskType":"ScheduleTask","WorkflowTask":{"InputInfo":{"Type":"COS","CosInputInfo":{"Bucket":"w"}},
  "MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","Output":{"Duration":9,"Path":"/w"}}}]},
  "EditMediaTask":null,
  "ScheduleTask":{"Status":"FINISH","ErrCode":0,"InputInfo":{"Type":"COS","CosInputInfo":{"Bucket":"s","Region":"r","Object":"/in.mp4"}},
  "ActivityResultSet":[{"ActivityType":"Transcode","ActivityResItem":{"TranscodeTask":{"Status":"SUCCESS",
      "Output":{"Duration":7.5,"Width":1920,"OutputStorage":null,"Storage":{"Type":"VOD","VODOutputStorage":{"Bucket":"v","Region":"vr"}},"Path":"/s"}}}},
    {"ActivityType":"AnimatedGraphics","ActivityResItem":{"TranscodeTask":{"Status":"SUCCESS","Output":{"Duration":3,"Path":"/wrong-member"}}}}]}}`,
			"[[0 Transcode <nil> 7.5 <nil> 1920 <nil> <nil> <nil> VOD v /s]]",
			"[[COS s r /in.mp4 <nil>]]"},
		{"failed-results", `{"TaskType":"WorkflowTask","WorkflowTask":{"Status":"FINISH","ErrCode":0,
  "MediaProcessResultSet":[
    {"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCode":30010,"Output":{"Duration":60,"Path":"/a"}}},
    {"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCode":0,"ErrCodeExt":"InternalError","Output":{"Duration":60,"Path":"/b"}}},
    {"Type":"Transcode","TranscodeTask":{"Status":"FAIL","Output":{"Duration":60,"Path":"/c"}}},
    {"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCode":"0","ErrCodeExt":"SUCCESS","Output":{"Duration":60,"Path":"/d%3Fsign=deadbeef"}}}]},
  "EditMediaTask":{"Status":"FINISH","ErrCode":0,"Output":{"Path":"/edit"}}}`,
			"[[3 Transcode <nil> 60 <nil> <nil> <nil> <nil> <nil> <nil> <nil> /d]]",
			"[]"},
		{"edit-urls", `{"TaskType":"EditMediaTask","EditMediaTask":{"Status":"FINISH","ErrCode":0.0,"Output":{"Path":"/edit"},
  "Input":{"FileInfoSet":[{"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"AKIDuser:SuperSecretPw1@h.example/a.mp4"}}},
    {"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://AKIDuser:pa/ss'w0rd@h.example/b.mp4"}}},
    {"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://h.example/c.mp4%3FX-Amz-Signature%3Ddeadbeef"}}},
    {"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://cdn.example/u/@alice/d.mp4"}}},
    {"InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://cdn.example:8080/u/@bob/e.mp4"}}}]}}}`,
			"[]",
			"[[URL <nil> <nil> <nil> h.example/a.mp4] [URL <nil> <nil> <nil> https://h.example/b.mp4] [URL <nil> <nil> <nil> https://h.example/c.mp4] " +
				"[URL <nil> <nil> <nil> https://cdn.example/u/@alice/d.mp4] [URL <nil> <nil> <nil> https://cdn.example:8080/u/@bob/e.mp4]]"},
	}
	for _, c := range cases {
		if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusFinish, Tasks: []mps.Task{task(c.id, created, "action-trans")}}); err != nil {
			t.Fatal(err)
		}
		r := details.Capture(&mps.TaskDetail{TaskID: c.id, Raw: []byte(c.raw)}, mps.KeepDetailBytes)
		if _, err := st.CompleteDetail(ctx, r); err != nil {
			t.Fatalf("%s: the outcome was not stored: %v", c.id, err)
		}
		outs := pgtest.Query(t, url, `SELECT ordinal, kind, template, duration_s, no_duration, width, height, tier, bitrate, storage_type, bucket, path
  FROM task_outputs WHERE task_id = $1 ORDER BY ordinal`, c.id)
		if got := fmt.Sprint(outs); got != c.outputs {
			t.Errorf("%s: outputs %s, want %s", c.id, got, c.outputs)
		}
		ins := pgtest.Query(t, url, `SELECT type, bucket, region, object, url FROM task_inputs WHERE task_id = $1 ORDER BY ordinal`, c.id)
		if got := fmt.Sprint(ins); got != c.inputs {
			t.Errorf("%s: inputs %s, want %s", c.id, got, c.inputs)
		}
	}
}
