// Package archivetest holds what the integration tests share: the
// comparison of an archive database with the simulator's ground truth, the
// rig that serves the simulator to the real client, and the scan for
// leaked secrets.
package archivetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/pgtest"
	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/proof"
	"github.com/mps-archiver/mps-archiver/simulator"
	"github.com/mps-archiver/mps-archiver/storage"
)

// AssertMatchesTruth checks that the archive at dbURL holds exactly the
// tasks of truth, field by field, with no duplicate and no recorded status
// regression.
func AssertMatchesTruth(t testing.TB, dbURL string, truth []simulator.TruthTask) {
	t.Helper()
	AssertMatchesTruthSince(t, dbURL, truth, time.Time{})
}

// AssertMatchesTruthSince is AssertMatchesTruth for an API whose window
// moved on: archived tasks created before since (which the API no longer
// lists, and the archive rightly keeps) are left out of the comparison.
func AssertMatchesTruthSince(t testing.TB, dbURL string, truth []simulator.TruthTask, since time.Time) {
	t.Helper()
	AssertProofLog(t, dbURL)
	AssertTasksMatchTruth(t, dbURL, truth, since)
}

// AssertTasksMatchTruth is AssertMatchesTruthSince without the proof log:
// for a test that changed the archive by hand, which the log rightly
// reports.
func AssertTasksMatchTruth(t testing.TB, dbURL string, truth []simulator.TruthTask, since time.Time) {
	t.Helper()
	const ts = `coalesce(to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '0000-00-00T00:00:00Z')`
	rows := pgtest.Query(t, dbURL, `SELECT task_id, status, task_type, array_to_string(sub_task_types, ','), `+
		fmt.Sprintf(ts, "create_time")+`, `+fmt.Sprintf(ts, "begin_process_time")+`, `+fmt.Sprintf(ts, "finish_time")+
		`, coalesce(raw->>'ArchiverSource' = '`+mps.RecoveredSource+`', false), source FROM tasks WHERE $1::timestamptz IS NULL OR create_time >= $1`, nullTime(since))
	got := make(map[string]string, len(rows))
	// A task is archived under the source whose list showed it: the image
	// list's once the image source was drained (a task both lists show
	// included), the media list's before that.
	sources := map[string]string{}
	imageDrained := pgtest.Scalar[bool](t, dbURL, `SELECT EXISTS (SELECT 1 FROM sync_run_sources WHERE source = 'image' AND status = 'succeeded')`)
	// A task the list skipped was read by DescribeTaskDetail, which has no
	// SubTaskTypes: its sub-task kinds stand in for them, and must be kinds
	// the list's entries name.
	recoveredKinds := map[string][]string{}
	for _, row := range rows {
		if row[7].(bool) {
			kinds := strings.Split(row[3].(string), ",")
			if row[3].(string) == "" {
				kinds = nil
			}
			recoveredKinds[row[0].(string)] = kinds
			row[3] = "(recovered)"
		}
		got[row[0].(string)] = fmt.Sprint(row[1:7])
		sources[row[0].(string)] = row[8].(string)
	}
	if len(got) != len(truth) {
		t.Errorf("archive has %d tasks, truth %d", len(got), len(truth))
	}
	inTruth := make(map[string]bool, len(truth))
	for _, tt := range truth {
		inTruth[tt.TaskId] = true
	}
	extra := 0
	for id, row := range got {
		if !inTruth[id] {
			if extra++; extra <= 5 {
				t.Errorf("archived task %s %s is not in the API's truth", id, row)
			}
		}
	}
	bad := 0
	for _, tt := range truth {
		subs := strings.Join(tt.SubTaskTypes, ",")
		if kinds, ok := recoveredKinds[tt.TaskId]; ok {
			subs = "(recovered)"
			for _, k := range kinds {
				if !slices.ContainsFunc(tt.SubTaskTypes, func(s string) bool { return mps.SubTaskKind(s) == mps.SubTaskKind(k) }) {
					t.Errorf("recovered task %s: kind %q is not among its SubTaskTypes %v", tt.TaskId, k, tt.SubTaskTypes)
				}
			}
		}
		want := fmt.Sprint([]any{tt.Status, tt.TaskType, subs, tt.CreateTime, tt.BeginProcessTime, tt.FinishTime})
		if src, ok := sources[tt.TaskId]; ok {
			wantSrc := tt.Source
			if !imageDrained || wantSrc == "" {
				wantSrc = mps.SourceMedia.Name
			}
			if src != wantSrc {
				t.Errorf("task %s: archived from the %s source, want %s", tt.TaskId, src, wantSrc)
			}
		}
		if got[tt.TaskId] != want {
			if bad++; bad <= 5 {
				t.Errorf("task %s: archive %s, truth %s", tt.TaskId, got[tt.TaskId], want)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d tasks differ from the truth", bad, len(truth))
	}
	if n := pgtest.Scalar[int64](t, dbURL, `
SELECT count(*) FROM task_status_changes
 WHERE from_status IS NOT NULL AND mps_status_rank(to_status) <= mps_status_rank(from_status)`); n != 0 {
		t.Errorf("%d status regressions recorded", n)
	}
	AssertRollups(t, dbURL)
}

// AssertProofLog checks that the archive at dbURL verifies against its
// proof log (mps-archiver verify): every fact it holds is the last its
// log says, and the log's tree is every stored checkpoint's. Signatures
// are not checked (no key is given): a test of them sets its own.
func AssertProofLog(t testing.TB, dbURL string) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, dbURL, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap, err := st.ProofSnapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close(ctx)
	rep, err := proof.Verify(ctx, snap, proof.VerifyOptions{Verifiers: &proof.Verifiers{}})
	if err != nil {
		t.Fatalf("verify the proof log: %v", err)
	}
	for _, p := range rep.Problems {
		if !strings.Contains(p, "no public key") {
			t.Errorf("proof log: %s", p)
		}
	}
}

// AssertRollups checks that every daily rollup equals its recomputation
// from the raw rows (`mps-archiver rollups check`): whatever wrote the
// archive, through kills, moves and replicas, the rollups kept in step.
func AssertRollups(t testing.TB, dbURL string) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, dbURL, storage.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()
	diffs, err := st.CheckRollups(ctx)
	if err != nil {
		t.Fatalf("check rollups: %v", err)
	}
	for i, d := range diffs {
		if i == 10 {
			t.Errorf("... and %d more rollup differences", len(diffs)-i)
			break
		}
		t.Errorf("rollup differs: %s", d)
	}
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// LeakedFragment returns the longest piece of three bytes or more of a
// secret found in s, or "".
func LeakedFragment(s string, secrets ...string) string {
	for _, sec := range secrets {
		for n := len(sec); n >= 3; n-- {
			for i := 0; i+n <= len(sec); i++ {
				if strings.Contains(s, sec[i:i+n]) {
					return sec[i : i+n]
				}
			}
		}
	}
	return ""
}

// AssertMediaFacts compares task_outputs and task_inputs with the media
// facts of the truth's tasks whose outcome the archive holds (in full, not
// truncated): every row the truth has, and no other.
func AssertMediaFacts(t testing.TB, dbURL string, truth []simulator.TruthTask) {
	t.Helper()
	held := map[string]bool{}
	for _, r := range pgtest.Query(t, dbURL, `SELECT task_id FROM task_details WHERE raw IS NOT NULL AND NOT raw_truncated AND outcome <> 'expired'`) {
		held[r[0].(string)] = true
	}
	var want []string
	facts := 0
	for _, tt := range truth {
		if !held[tt.TaskId] {
			continue
		}
		for _, o := range tt.Outputs {
			dur := "-"
			if !o.NoDuration {
				dur = fmt.Sprint(o.DurationS)
			}
			want = append(want, fmt.Sprintf("%s/%d %s tmpl=%d %s dur=%s %dx%d %s %s %g %d %d %s %s %s %s", tt.TaskId, o.Ordinal, o.Kind, o.Template,
				o.Container, dur, o.Width, o.Height, MediaTier(o.Width, o.Height), o.VideoCodec, o.FPS, o.Bitrate, o.Size, o.StorageType, o.Bucket, o.Region, o.Path))
		}
		for _, i := range tt.Inputs {
			want = append(want, fmt.Sprintf("%s/in%d %s %s %s %s %s %g %dx%d %d", tt.TaskId, i.Ordinal, i.Type, i.Bucket, i.Region, i.Object, i.URL,
				i.DurationS, i.Width, i.Height, i.Size))
		}
		facts += len(tt.Outputs) + len(tt.Inputs)
	}
	var got []string
	for _, r := range pgtest.Query(t, dbURL, `
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
	norm := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = strings.Join(strings.Fields(x), " ")
		}
		slices.Sort(out)
		return out
	}
	w, g := norm(want), norm(got)
	if !slices.Equal(w, g) {
		missing, extra := 0, 0
		for _, x := range w {
			if _, found := slices.BinarySearch(g, x); !found {
				if missing++; missing <= 5 {
					t.Errorf("media fact missing from the archive: %s", x)
				}
			}
		}
		for _, x := range g {
			if _, found := slices.BinarySearch(w, x); !found {
				if extra++; extra <= 5 {
					t.Errorf("media fact not in the truth: %s", x)
				}
			}
		}
		t.Errorf("media facts: %d missing, %d not in the truth (of %d)", missing, extra, len(w))
	}
	if facts == 0 {
		t.Error("no media fact was compared: the truth has none for the outcomes held")
	}
}

// MediaTier is the billing tier of a resolution's short edge, as Tencent's
// pricing page states it (the tests' own statement of the rule).
func MediaTier(w, h int) string {
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
