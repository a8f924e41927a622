package storage_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
	for _, s := range sims {
		capture(s)
	}
	assertMediaTruth(t, url, sims, now)
	// Every shape was exercised: each container type's outputs, outputs
	// without a duration, S3 storage, URL inputs without their query.
	cover := pgtest.Query(t, url, `
SELECT string_agg(DISTINCT kind, ',' ORDER BY kind), count(*) FILTER (WHERE no_duration IS NOT NULL), count(*) FILTER (WHERE storage_type = 'AWS-S3'),
       (SELECT count(*) FROM task_inputs WHERE url <> ''), (SELECT count(*) FROM task_inputs WHERE type = 'S3'), count(DISTINCT tier)
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
	var want, got []string
	for _, s := range sims {
		for _, o := range s.MediaOutputs(now.UnixNano(), simulator.DefaultDetailErrors) {
			dur := "-"
			if !o.NoDuration {
				dur = fmt.Sprint(o.DurationS)
			}
			want = append(want, fmt.Sprintf("%s/%d %s tmpl=%d %s dur=%s %dx%d %s %s %g %d %d %s %s %s %s", s.ID, o.Ordinal, o.Kind, o.Template,
				o.Container, dur, o.Width, o.Height, tier(o.Width, o.Height), o.VideoCodec, o.FPS, o.Bitrate, o.Size, o.StorageType, o.Bucket, o.Region, o.Path))
		}
		for _, i := range s.MediaInputs(now.UnixNano(), simulator.DefaultDetailErrors) {
			want = append(want, fmt.Sprintf("%s/in%d %s %s %s %s %s %g %dx%d %d", s.ID, i.Ordinal, i.Type, i.Bucket, i.Region, i.Object, i.URL,
				i.DurationS, i.Width, i.Height, i.Size))
		}
	}
	for _, r := range pgtest.Query(t, url, `
SELECT format('%s/%s %s tmpl=%s %s dur=%s %sx%s %s %s %s %s %s %s %s %s %s', task_id, ordinal, kind, coalesce(template, 0),
              coalesce(container, ''), coalesce(duration_s::text, CASE WHEN no_duration IS NOT NULL THEN '-' END), coalesce(width, 0), coalesce(height, 0),
              coalesce(tier, ''), coalesce(video_codec, ''), coalesce(fps, 0), coalesce(bitrate, 0), coalesce(size_bytes, 0),
              storage_type, bucket, region, path)
  FROM task_outputs
UNION ALL
SELECT format('%s/in%s %s %s %s %s %s %s %sx%s %s', task_id, ordinal, type, coalesce(bucket, ''), coalesce(region, ''), coalesce(object, ''),
              coalesce(url, ''), coalesce(duration_s, 0), coalesce(width, 0), coalesce(height, 0), coalesce(size_bytes, 0))
  FROM task_inputs`) {
		got = append(got, r[0].(string))
	}
	norm := func(xs []string) string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = strings.Join(strings.Fields(x), " ")
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	if w, g := norm(want), norm(got); w != g {
		t.Errorf("media facts differ from the simulator's truth\nwant:\n%s\ngot:\n%s", w, g)
	}
	if len(want) == 0 {
		t.Fatal("the simulator reported no media facts")
	}
}

// tier is the billing tier of the short edge, as Tencent's pricing page
// states it.
func tier(w, h int) string {
	e := min(w, h)
	switch {
	case e <= 0:
		return ""
	case e <= 480:
		return "SD"
	case e <= 720:
		return "HD"
	case e <= 1080:
		return "FHD"
	case e <= 1440:
		return "2K"
	case e <= 2160:
		return "4K"
	case e <= 4320:
		return "8K"
	}
	return "above 8K"
}

// TestMediaFactsOfAHostileDetail: a detail whose facts have the wrong
// types (strings for numbers, numbers out of range, objects for strings,
// arrays for objects) stores its outcome, with those facts left empty.
func TestMediaFactsOfAHostileDetail(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDB(t)
	st := open(t, url)
	ctx := context.Background()
	run := startRun(t, st)
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	if _, err := st.WritePage(ctx, syncer.WritePageParams{RunID: run, Status: mps.StatusFinish, Tasks: []mps.Task{task("h", created, "action-trans")}}); err != nil {
		t.Fatal(err)
	}
	raw := `{"TaskType":"WorkflowTask","Status":"FINISH","WorkflowTask":{"TaskId":"h","Status":"FINISH","ErrCode":0,
  "InputInfo":{"Type":"URL","UrlInputInfo":{"Url":"https://user:pw@example.invalid/a.mp4?sig=x#frag"}},
  "MetaData":{"Duration":"long","Width":1e30,"Height":{"x":1},"Size":-5},
  "MediaProcessResultSet":[
    {"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","Input":{"Definition":"100010"},
      "Output":{"Duration":"12.5","Width":"1920","Height":1e40,"Bitrate":[1],"Size":1.5e300,"Container":{"a":1},
                "VideoStreamSet":{"Codec":"h264"},"OutputStorage":"COS","Path":["x"]}}},
    {"Type":"Transcode","TranscodeTask":"not an object"},
    {"Type":"Transcode"},
    "not an object",
    {"Type":{"x":1},"TranscodeTask":{"Status":"SUCCESS","Output":{}}}]}}`
	r := details.Capture(&mps.TaskDetail{TaskID: "h", Raw: []byte(raw)}, mps.KeepDetailBytes)
	if _, err := st.CompleteDetail(ctx, r); err != nil {
		t.Fatalf("a hostile detail's outcome was not stored: %v", err)
	}
	got := pgtest.Query(t, url, `SELECT ordinal, kind, template, duration_s, no_duration, width, height, bitrate, size_bytes, container, path FROM task_outputs`)
	if fmt.Sprint(got) != "[[0 Transcode <nil> <nil> the detail reports no duration <nil> <nil> <nil> <nil> <nil> <nil>]]" {
		t.Errorf("outputs of a hostile detail: %v", got)
	}
	in := pgtest.Query(t, url, `SELECT type, url, duration_s, width, height, size_bytes FROM task_inputs`)
	if fmt.Sprint(in) != "[[URL https://example.invalid/a.mp4 <nil> <nil> <nil> -5]]" {
		t.Errorf("inputs of a hostile detail: %v", in)
	}
}
