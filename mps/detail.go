package mps

import (
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
// typed, and the whole Response (less its RequestId) kept verbatim.
type TaskDetail struct {
	TaskID           string
	TaskType         string
	Status           Status
	CreateTime       time.Time
	BeginProcessTime time.Time
	FinishTime       time.Time
	// Raw is the Response object without RequestId. It can hold secrets
	// (TaskNotifyConfig.NotifyKey, S3 keys): redact before storing it.
	Raw       []byte
	RequestID string
	// ServerTime is the API's clock when it answered (zero when unknown).
	ServerTime time.Time
	// Warnings names each field that was present but unreadable.
	Warnings []string
}

// detailEnvelope is the part of the answer the archiver reads typed.
type detailEnvelope struct {
	Response map[string]json.RawMessage `json:"Response"`
}

// DecodeTaskDetail reads a DescribeTaskDetail body for taskID. An error answer
// is an *APIError; a body that is not of the answer's shape wraps
// ErrMalformed. Unreadable fields are warnings, never errors.
func DecodeTaskDetail(taskID string, body []byte) (*TaskDetail, error) {
	var env detailEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, truncate(err.Error(), 120))
	}
	r := env.Response
	if r == nil {
		return nil, fmt.Errorf("%w: no Response object", ErrMalformed)
	}
	var reqID string
	_ = json.Unmarshal(r["RequestId"], &reqID)
	if e, ok := r["Error"]; ok {
		var eb struct{ Code, Message string }
		if json.Unmarshal(e, &eb) == nil && eb.Code != "" {
			return nil, &APIError{Action: ActionDescribeTaskDetail, Code: eb.Code, Message: eb.Message, RequestID: reqID}
		}
	}
	d := &TaskDetail{TaskID: taskID, RequestID: reqID}
	str := func(field string) string {
		v, ok := r[field]
		if !ok || string(v) == "null" {
			return ""
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
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
	d.TaskType = str("TaskType")
	if st := str("Status"); st != "" {
		s, err := ParseStatus(st)
		if err != nil {
			d.Warnings = append(d.Warnings, "Status: "+err.Error())
		}
		d.Status = s
	}
	d.CreateTime, d.BeginProcessTime, d.FinishTime = at("CreateTime"), at("BeginProcessTime"), at("FinishTime")
	delete(r, "RequestId")
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d.Raw = cleanRawJSON(raw)
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
	kinds := SubTaskKindsOf(d.Raw)
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
