package mps

import (
	"encoding/json"
	"slices"
	"strings"
)

// SubTaskKinds maps the seed page's SubTaskTypes vocabulary ("action-trans")
// onto the one the current API examples and DescribeTaskDetail use
// ("Transcode"), so that both count as the same kind. The migration that
// defines mps_subtask_kind() holds the same table; a test keeps them equal.
var SubTaskKinds = map[string]string{
	"action-trans":                "Transcode",
	"action-animated-graphics":    "AnimatedGraphics",
	"action-snapshotByTimeOffset": "SnapshotByTimeOffset",
	"action-sample-snapshot":      "SampleSnapshot",
	"action-image-sprite":         "ImageSprites",
	"action-coverBySnapshot":      "CoverBySnapshot",
	"action-adaptive-substream":   "AdaptiveDynamicStreaming",
	"action-AIReview":             "AiContentReview",
	"action-AIAnalysis":           "AiAnalysis",
	"action-AIRecognition":        "AiRecognition",
	"action-AIQualityControl":     "AiQualityControl",
	"action-editmedia":            "EditMedia",
}

// SubTaskKind is the kind a SubTaskTypes entry names, in the current
// vocabulary; an entry of neither vocabulary is returned as it is.
func SubTaskKind(s string) string {
	if k, ok := SubTaskKinds[s]; ok {
		return k
	}
	return s
}

// SubTaskKindsOf lists, in order and without repeats, the sub-task kinds a
// DescribeTaskDetail Response holds: media-processing results by Type,
// schedule activities by ActivityType, AI and other results by their
// member, and EditMedia for an EditMediaTask. Unknown shapes give none.
func SubTaskKindsOf(response []byte) []string {
	var r map[string]json.RawMessage
	if json.Unmarshal(response, &r) != nil {
		return []string{}
	}
	out := []string{}
	add := func(k string) {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	var wf struct {
		MediaProcessResultSet []struct{ Type string }
	}
	var results map[string]json.RawMessage
	if raw, ok := r["WorkflowTask"]; ok && json.Unmarshal(raw, &wf) == nil {
		for _, m := range wf.MediaProcessResultSet {
			add(m.Type)
		}
		_ = json.Unmarshal(raw, &results)
		for _, rs := range resultSets {
			if rs.kind != "" && present(results[rs.field]) {
				add(rs.kind)
			}
		}
	}
	var sched struct {
		ActivityResultSet []struct{ ActivityType string }
	}
	if raw, ok := r["ScheduleTask"]; ok && json.Unmarshal(raw, &sched) == nil {
		for _, a := range sched.ActivityResultSet {
			add(a.ActivityType)
		}
	}
	if present(r["EditMediaTask"]) {
		add("EditMedia")
	}
	return out
}

func present(v json.RawMessage) bool {
	s := strings.TrimSpace(string(v))
	return s != "" && s != "null" && s != "[]" && s != "{}"
}
