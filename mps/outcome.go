package mps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The outcomes of a task, as task_details.outcome records them.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeExpired   = "expired" // the detail was gone before it was read
	// OutcomeUndecided: the detail was read but the failure rule cannot
	// say how the task ended (a container of an unknown type, or sub-tasks
	// still running when MPS was about to forget the detail). Never counted
	// as a success.
	OutcomeUndecided = "undecided"
)

// Outcome is how a task ended, by the failure rule: a task failed if its
// container's ErrCode is non-zero (the source failed) or any sub-task
// failed; a sub-task failed if its Status is FAIL, or its ErrCode is
// present and non-zero, or its ErrCodeExt is present and neither "" nor
// "SUCCESS".
type Outcome struct {
	Result string // OutcomeSucceeded, OutcomeFailed or OutcomeUndecided
	// The first failure found, task-level first.
	ErrCode, ErrCodeExt, Message string
	Subtasks                     []SubtaskResult
	// Ambiguities name what the rule could not decide; they never fail a
	// task on their own.
	Ambiguities []string
	// Unsettled: the task or one of its sub-tasks was still WAITING or
	// PROCESSING when the detail was read. Read again later, it may say
	// more; a failure already found stands.
	Unsettled bool
	// UnknownShape: the detail's container is of a type the rule does not
	// know, so it cannot tell success from failure.
	UnknownShape bool
}

// SubtaskResult is one sub-task of a detail.
type SubtaskResult struct {
	Ordinal    int
	Kind       string
	Status     string
	ErrCode    string // "" when absent
	ErrCodeExt string
	Message    string
	Definition string
	OutputPath string
	Failed     bool
}

// Containers are the detail members that hold a task, by TaskType.
var Containers = []string{"WorkflowTask", "EditMediaTask", "LiveStreamProcessTask", "ScheduleTask", "LiveScheduleTask", "ExtractBlindWatermarkTask"}

// resultSets are the WorkflowTask (and activity) members holding
// sub-task results, with the kind their items stand for ("" : the item's
// Type).
var resultSets = []struct{ field, kind string }{
	{"MediaProcessResultSet", ""},
	{"AiContentReviewResultSet", "AiContentReview"},
	{"AiAnalysisResultSet", "AiAnalysis"},
	{"AiRecognitionResultSet", "AiRecognition"},
	{"AiQualityControlTaskResult", "AiQualityControl"},
	{"SmartSubtitlesTaskResult", "SmartSubtitles"},
	{"SmartEraseTaskResult", "SmartErase"},
}

// DecideOutcome applies the failure rule to a DescribeTaskDetail Response.
// It never fails: what it cannot read is an ambiguity.
func DecideOutcome(response []byte) Outcome {
	var r map[string]any
	dec := json.NewDecoder(bytes.NewReader(response))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil || r == nil {
		return Outcome{Result: OutcomeUndecided, UnknownShape: true, Ambiguities: []string{"detail is not a JSON object"}}
	}
	return decideOutcome(r)
}

// decideOutcome applies the failure rule to a decoded Response (numbers as
// json.Number). A failure found decides the task; otherwise a detail that
// has not settled, or whose container is of an unknown type, is undecided,
// never a success by default.
func decideOutcome(r map[string]any) Outcome {
	var o Outcome
	typ, _ := r["TaskType"].(string)
	name, container := "", map[string]any(nil)
	if c, ok := r[typ].(map[string]any); ok {
		name, container = typ, c
		if !slices.Contains(Containers, typ) {
			o.UnknownShape = true
			o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("unknown container type %q", typ))
		}
	} else {
		for _, n := range Containers {
			if c, ok := r[n].(map[string]any); ok {
				name, container = n, c
				break
			}
		}
	}
	if container == nil {
		o.UnknownShape = true
		o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("no known container for TaskType %q", typ))
		name, container = findContainer(r)
	}
	if st := str(r["Status"]); st == string(StatusWaiting) || st == string(StatusProcessing) {
		o.Unsettled = true
		o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("the task is still %s", st))
	}
	if container != nil {
		if code := codeOf(container["ErrCode"]); code != "" && code != "0" {
			o.fail(code, "", str(container["Message"]))
		}
		st := str(container["Status"])
		if st != "" && st != string(StatusFinish) && str(r["Status"]) == string(StatusFinish) {
			o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("%s.Status is %s on a FINISH task", name, st))
		}
		if st == string(StatusWaiting) || st == string(StatusProcessing) {
			o.Unsettled = true
		}
		switch name {
		case "ScheduleTask", "LiveScheduleTask":
			acts, _ := container["ActivityResultSet"].([]any)
			for _, a := range acts {
				am, _ := a.(map[string]any)
				item, _ := am["ActivityResItem"].(map[string]any)
				o.subtask(str(am["ActivityType"]), resultIn(item))
			}
		default:
			for _, rs := range resultSets {
				switch v := container[rs.field].(type) {
				case []any:
					for _, it := range v {
						im, _ := it.(map[string]any)
						kind := rs.kind
						if kind == "" {
							kind = str(im["Type"])
						}
						o.subtask(kind, resultIn(im))
					}
				case map[string]any:
					o.subtask(rs.kind, v)
				}
			}
		}
	}
	o.settle()
	return o
}

// settle decides the result once every failure is found: a failure
// decides the task; otherwise a detail that has not settled, or whose
// shape the rule does not know, is undecided, never a success by default.
func (o *Outcome) settle() {
	switch {
	case o.Result == OutcomeFailed:
	case o.Unsettled || o.UnknownShape:
		o.Result = OutcomeUndecided
	default:
		o.Result = OutcomeSucceeded
	}
}

func (o *Outcome) fail(code, ext, msg string) {
	if o.Result != OutcomeFailed {
		o.Result, o.ErrCode, o.ErrCodeExt, o.Message = OutcomeFailed, code, ext, msg
	}
}

// subtask records one result (r: the object with Status and the error
// fields).
func (o *Outcome) subtask(kind string, r map[string]any) {
	s := SubtaskResult{Ordinal: len(o.Subtasks), Kind: kind}
	if s.Kind == "" {
		s.Kind = "unknown"
	}
	if r == nil {
		o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("sub-task %d (%s) has no result", s.Ordinal, s.Kind))
		o.Subtasks = append(o.Subtasks, s)
		return
	}
	s.Status = str(r["Status"])
	s.ErrCode = codeOf(r["ErrCode"])
	s.ErrCodeExt = str(r["ErrCodeExt"])
	if s.Message = str(r["Message"]); s.Message == "" {
		s.Message = str(r["ErrMsg"]) // the spelling some results use
	}
	if in, ok := r["Input"].(map[string]any); ok {
		s.Definition = codeOf(in["Definition"])
	}
	if out, ok := r["Output"].(map[string]any); ok {
		s.OutputPath = str(out["Path"])
		if s.OutputPath == "" {
			s.OutputPath = str(out["OutputObjectPath"])
		}
	}
	s.Failed = s.Status == "FAIL" || s.ErrCode != "" && s.ErrCode != "0" ||
		s.ErrCodeExt != "" && s.ErrCodeExt != "SUCCESS"
	if s.Status == "PROCESSING" || s.Status == "WAITING" {
		o.Unsettled = true
		o.Ambiguities = append(o.Ambiguities, fmt.Sprintf("sub-task %d (%s) is still %s", s.Ordinal, s.Kind, s.Status))
	}
	if s.Failed {
		code := s.ErrCode
		if code == "0" {
			code = ""
		}
		o.fail(code, s.ErrCodeExt, s.Message)
	}
	o.Subtasks = append(o.Subtasks, s)
}

// resultIn is the member of a result-set item that holds the result: the
// first object with a Status (TranscodeTask, ClassificationTask, …), or the
// item itself when it has one.
func resultIn(item map[string]any) map[string]any {
	if item == nil {
		return nil
	}
	if _, ok := item["Status"]; ok {
		return item
	}
	for _, k := range sortedKeys(item) {
		if m, ok := item[k].(map[string]any); ok {
			if _, ok := m["Status"]; ok {
				return m
			}
		}
	}
	return nil
}

// findContainer is the first object member with a TaskId, for a detail of
// a type this archiver does not know.
func findContainer(r map[string]any) (string, map[string]any) {
	for _, k := range sortedKeys(r) {
		if m, ok := r[k].(map[string]any); ok {
			if _, ok := m["TaskId"]; ok {
				return k, m
			}
		}
	}
	return "", nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// codeOf reads an error code that may be a number or a string.
func codeOf(v any) string {
	switch c := v.(type) {
	case json.Number:
		return c.String()
	case string:
		return strings.TrimSpace(c)
	case float64:
		return strconv.FormatFloat(c, 'f', -1, 64)
	case bool:
		if c {
			return "true"
		}
	}
	return ""
}

func str(v any) string {
	switch s := v.(type) {
	case string:
		return cleanText(s)
	case json.Number:
		return s.String()
	}
	return ""
}
