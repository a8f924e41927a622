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
	var r map[string]any
	if json.Unmarshal(response, &r) != nil {
		return []string{}
	}
	return subTaskKindsOf(r)
}

// subTaskKindsOf is SubTaskKindsOf over a decoded Response.
func subTaskKindsOf(r map[string]any) []string {
	out := []string{}
	add := func(v any) {
		k, _ := v.(string)
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	if wf, ok := r["WorkflowTask"].(map[string]any); ok {
		items, _ := wf["MediaProcessResultSet"].([]any)
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				add(m["Type"])
			}
		}
		for _, rs := range resultSets {
			if rs.kind != "" && presentValue(wf[rs.field]) {
				add(rs.kind)
			}
		}
	}
	if sched, ok := r["ScheduleTask"].(map[string]any); ok {
		acts, _ := sched["ActivityResultSet"].([]any)
		for _, a := range acts {
			if m, ok := a.(map[string]any); ok {
				add(m["ActivityType"])
			}
		}
	}
	if presentValue(r["EditMediaTask"]) {
		add("EditMedia")
	}
	if presentValue(r[imageResultSet]) {
		add(ImageSubTaskKind)
	}
	return out
}

// presentValue reports whether a decoded member holds something.
func presentValue(v any) bool {
	switch t := v.(type) {
	case nil:
		return false
	case []any:
		return len(t) > 0
	case map[string]any:
		return len(t) > 0
	case string:
		return strings.TrimSpace(t) != ""
	}
	return true
}
