package mps

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// DescribeTaskDetailRequestParams is the JSON body of a DescribeTaskDetail
// call.
type DescribeTaskDetailRequestParams struct {
	TaskId *string `json:"TaskId,omitempty"`
}

// TaskDetail is a decoded DescribeTaskDetail answer: the task's own fields,
// typed, how it ended by the failure rule, and the Response (less its
// RequestId) with its secrets redacted. The answer is parsed once: a large
// detail costs one decoded tree, briefly, and is never held whole again.
type TaskDetail struct {
	TaskID           string
	TaskType         string
	Status           Status
	CreateTime       time.Time
	BeginProcessTime time.Time
	FinishTime       time.Time
	// Outcome is the failure rule's reading of the whole answer.
	Outcome Outcome
	// Kinds are the sub-task kinds the answer holds (see SubTaskKindsOf).
	Kinds []string
	// Raw is the Response without RequestId, its secrets replaced by
	// Redacted (Redact's rules); nil when the answer was larger than
	// KeepDetailBytes (see Size).
	Raw []byte
	// Redactions counts the secrets replaced.
	Redactions int
	// Size is the answer's size in bytes, as received.
	Size      int
	RequestID string
	// ServerTime is the API's clock when it answered (zero when unknown).
	ServerTime time.Time
	// Warnings names each field that was present but unreadable.
	Warnings []string
}

// KeepDetailBytes is the largest answer whose redacted Response is kept
// whole in TaskDetail.Raw. Larger ones are decided and counted but not
// re-encoded: the archive stores a stand-in for them anyway.
const KeepDetailBytes = 1 << 20

// DecodeTaskDetail reads a DescribeTaskDetail body for taskID. An error answer
// is an *APIError; a body that is not of the answer's shape wraps
// ErrMalformed. Unreadable fields are warnings, never errors.
func DecodeTaskDetail(taskID string, body []byte) (*TaskDetail, error) {
	return DecodeSourceDetail(SourceMedia, taskID, body)
}

// DecodeSourceDetail reads the answer of src's detail action for taskID,
// as DecodeTaskDetail does. An answer without a TaskType is typed as the
// source's tasks are (DescribeImageTaskDetail names none).
func DecodeSourceDetail(src Source, taskID string, body []byte) (*TaskDetail, error) {
	src = src.Of()
	var env struct {
		Response map[string]any `json:"Response"`
	}
	var err error
	if len(body) <= KeepDetailBytes {
		// Kept whole: numbers stay exactly as written.
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		err = dec.Decode(&env)
	} else {
		// Only decided, never re-encoded: decoded in place, without the
		// decoder's copy of the body (numbers as float64 are enough for
		// error codes).
		err = json.Unmarshal(body, &env)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, truncate(err.Error(), 120))
	}
	r := env.Response
	if r == nil {
		return nil, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	reqID, _ := r["RequestId"].(string)
	if e, ok := r["Error"].(map[string]any); ok {
		code, _ := e["Code"].(string)
		msg, _ := e["Message"].(string)
		if code != "" {
			return nil, &APIError{Action: src.DetailAction, Code: code, Message: msg, RequestID: reqID}
		}
	}
	d := &TaskDetail{TaskID: taskID, RequestID: reqID, Size: len(body)}
	str := func(field string) string {
		v, ok := r[field]
		if !ok || v == nil {
			return ""
		}
		s, ok := v.(string)
		if !ok {
			d.Warnings = append(d.Warnings, field+" is not a string")
		}
		return cleanText(s)
	}
	at := func(field string) time.Time {
		t, err := ParseTime(str(field))
		if err != nil {
			d.Warnings = append(d.Warnings, field+": "+err.Error())
		}
		return t
	}
	if d.TaskType = str("TaskType"); d.TaskType == "" {
		d.TaskType = src.TaskType
		if _, ok := r[imageResultSet]; ok {
			// An image task's detail, whichever action answered (one that
			// lists image tasks in DescribeTasks may read them there too).
			d.TaskType = TaskTypeImage
		}
	}
	if st := str("Status"); st != "" {
		s, err := ParseStatus(st)
		if err != nil {
			d.Warnings = append(d.Warnings, "Status: "+err.Error())
		}
		d.Status = s
	}
	d.CreateTime, d.BeginProcessTime, d.FinishTime = at("CreateTime"), at("BeginProcessTime"), at("FinishTime")
	delete(r, "RequestId")
	// Redacted first: the outcome's messages and output paths are stored
	// too, and can quote a signed URL.
	redacted, n := RedactValue(r)
	d.Redactions = n
	if m, ok := redacted.(map[string]any); ok {
		r = m
	}
	if d.TaskType == TaskTypeImage {
		d.Outcome = decideImageOutcome(r)
	} else {
		d.Outcome = decideOutcome(r)
	}
	d.Kinds = subTaskKindsOf(r)
	if len(body) <= KeepDetailBytes {
		raw, err := json.Marshal(redacted)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		d.Raw = cleanRawJSON(raw)
	}
	return d, nil
}

// detailListTypes maps the detail's TaskType onto the list's spelling where
// the two differ (the list says LiveProcessTask).
var detailListTypes = map[string]string{"LiveStreamProcessTask": "LiveProcessTask"}

// RecoveredSource marks a tasks.raw record that the archiver built from a
// DescribeTaskDetail answer because the list skipped the task.
const RecoveredSource = "DescribeTaskDetail"

// ListTask is the task as the list would have shown it, built from the
// detail, for a task the list skipped. The list's SubTaskTypes are not part
// of the detail: the sub-task kinds the detail holds stand in for them. Its
// raw record says where it came from.
func (d *TaskDetail) ListTask() Task {
	typ := d.TaskType
	if t, ok := detailListTypes[typ]; ok {
		typ = t
	}
	kinds := d.Kinds
	if kinds == nil {
		kinds = SubTaskKindsOf(d.Raw)
	}
	if typ == TaskTypeImage {
		kinds = []string{} // the image list gives none
	}
	rec, _ := json.Marshal(struct {
		TaskSimpleInfo
		Source string `json:"ArchiverSource"`
	}{TaskSimpleInfo{
		TaskId: d.TaskID, TaskType: typ, SubTaskTypes: kinds,
		CreateTime: FormatTime(d.CreateTime), BeginProcessTime: FormatTime(d.BeginProcessTime), FinishTime: FormatTime(d.FinishTime),
	}, RecoveredSource})
	return Task{
		TaskID: d.TaskID, TaskType: typ, SubTaskTypes: kinds,
		CreateTime: d.CreateTime, BeginProcessTime: d.BeginProcessTime, FinishTime: d.FinishTime,
		Raw: rec, Warnings: d.Warnings,
	}
}
