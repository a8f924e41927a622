package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mps-archiver/mps-archiver/mps"
)

// NotifyKey is the callback signing key every simulated task's
// TaskNotifyConfig carries: a value distinctive enough that a scan of a
// database dump or a log finds it if the archiver ever stores it.
const NotifyKey = "SIMULATOR-NOTIFY-KEY-5b1f0e7d"

// serveDetail answers DescribeTaskDetail: the task's detail while it is
// younger than the detail retention, ResourceNotFound after.
func (s *Server) serveDetail(w http.ResponseWriter, r *http.Request, reqID string, body []byte) {
	var m map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &m); err != nil {
		s.fail(w, reqID, "", "InvalidParameter", "the request body is not a JSON object")
		return
	}
	var id string
	for k, v := range m {
		if k != "TaskId" {
			s.fail(w, reqID, "", mps.CodeUnknownParameter, fmt.Sprintf("The parameter `%s` is not recognized.", k))
			return
		}
		if json.Unmarshal(v, &id) != nil || strings.TrimSpace(id) == "" {
			s.fail(w, reqID, "", mps.CodeInvalidParameter, "TaskId must be a non-empty string")
			return
		}
	}
	if id == "" {
		s.fail(w, reqID, "", "MissingParameter", "The request is missing a required parameter `TaskId`.")
		return
	}
	s.count("detail")
	if s.inject(w, r, reqID, query{status: "detail"}) {
		return
	}
	now := s.clock.Now().UnixNano()
	s.mu.RLock()
	i, ok := s.index[id]
	var t *Task
	if ok {
		t = s.tasks[i]
	}
	s.mu.RUnlock()
	if !ok || t.Raw != nil || t.Create > now || now-t.Create > int64(s.cfg.DetailRetention) {
		s.fail(w, reqID, "", mps.CodeResourceNotFound, "The task does not exist.")
		return
	}
	resp := t.Detail(now)
	resp["RequestId"] = reqID
	writeJSON(w, map[string]any{"Response": resp})
}

// detailTypes is the detail's TaskType where the list spells it otherwise.
var detailTypes = map[string]string{"LiveProcessTask": "LiveStreamProcessTask"}

// mediaMembers names the member of a MediaProcessResultSet item per Type.
var mediaMembers = map[string]string{
	"Transcode":                "TranscodeTask",
	"AnimatedGraphics":         "AnimatedGraphicTask",
	"SnapshotByTimeOffset":     "SnapshotByTimeOffsetTask",
	"SampleSnapshot":           "SampleSnapshotTask",
	"ImageSprites":             "ImageSpriteTask",
	"CoverBySnapshot":          "CoverBySnapshotTask",
	"AdaptiveDynamicStreaming": "AdaptiveDynamicStreamingTask",
}

// aiSets names the WorkflowTask member holding each AI kind's results.
var aiSets = map[string]string{
	"AiContentReview":  "AiContentReviewResultSet",
	"AiAnalysis":       "AiAnalysisResultSet",
	"AiRecognition":    "AiRecognitionResultSet",
	"AiQualityControl": "AiQualityControlTaskResult",
}

// Detail is the task's DescribeTaskDetail Response at now, without
// RequestId: the container of its type with one result per sub-task.
func (t *Task) Detail(now int64) map[string]any {
	info := t.Info(now)
	status := t.StatusAt(now)
	typ := t.Type
	if d, ok := detailTypes[typ]; ok {
		typ = d
	}
	subStatus := "PROCESSING"
	if status == mps.StatusFinish {
		subStatus = "SUCCESS"
	}
	result := func(kind string, i int) map[string]any {
		r := map[string]any{"Status": subStatus, "ErrCode": 0, "ErrCodeExt": "", "Message": "SUCCESS",
			"Input": map[string]any{"Definition": 100010 + i*10}}
		if status == mps.StatusFinish {
			r["Output"] = map[string]any{"Path": fmt.Sprintf("/output/%s/%s-%d", t.ID, kind, i),
				"OutputStorage": map[string]any{"Type": "COS", "CosOutputStorage": map[string]any{"Bucket": "archive-1250000000", "Region": "ap-guangzhou"}}}
		}
		if t.Failed && i == 0 && status == mps.StatusFinish {
			r["Status"], r["ErrCode"], r["ErrCodeExt"], r["Message"] = "FAIL", 30010, "SourceFileError", "source file error"
		}
		return r
	}
	container := map[string]any{"TaskId": t.ID, "Status": string(status), "ErrCode": 0, "Message": ""}
	out := map[string]any{
		"TaskType": typ, "Status": string(status),
		"CreateTime": info.CreateTime, "BeginProcessTime": info.BeginProcessTime, "FinishTime": info.FinishTime,
		"TaskNotifyConfig": map[string]any{"NotifyType": "URL", "NotifyMode": "Finish", "NotifyUrl": "https://callback.invalid/mps", "NotifyKey": NotifyKey},
		"TasksPriority":    0, "SessionId": "", "SessionContext": "", "ExtInfo": "",
	}
	input := map[string]any{"Type": "COS", "CosInputInfo": map[string]any{"Bucket": "media-1250000000", "Region": "ap-guangzhou", "Object": "/input/" + t.ID + ".mp4"}}
	switch typ {
	case "EditMediaTask":
		container["Input"] = map[string]any{"FileInfoSet": []any{map[string]any{"InputInfo": input}}}
		container["Output"] = map[string]any{"Path": "/output/" + t.ID + "/edited.mp4"}
		if t.Failed && status == mps.StatusFinish {
			container["ErrCode"], container["Message"] = 30010, "source file error"
		}
	case "LiveStreamProcessTask":
		container["Url"] = "rtmp://live.invalid/app/" + t.ID
		if t.Failed && status == mps.StatusFinish {
			container["ErrCode"], container["Message"] = 30020, "live stream interrupted"
		}
	case "ScheduleTask":
		container["InputInfo"] = input
		activities := []any{}
		for i, st := range t.SubTaskTypes {
			kind := mps.SubTaskKind(st)
			activities = append(activities, map[string]any{"ActivityType": kind, "ActivityResItem": map[string]any{resultMember(kind): result(kind, i)}})
		}
		container["ActivityResultSet"] = activities
	default:
		container["InputInfo"] = input
		media := []any{}
		for i, st := range t.SubTaskTypes {
			kind := mps.SubTaskKind(st)
			if set, ok := aiSets[kind]; ok {
				r := result(kind, i)
				if kind == "AiQualityControl" {
					container[set] = r
					continue
				}
				prev, _ := container[set].([]any)
				container[set] = append(prev, map[string]any{"Type": kind, kind + "Task": r})
				continue
			}
			media = append(media, map[string]any{"Type": kind, resultMember(kind): result(kind, i)})
		}
		container["MediaProcessResultSet"] = media
	}
	out[typ] = container
	return out
}

func resultMember(kind string) string {
	if m, ok := mediaMembers[kind]; ok {
		return m
	}
	return kind + "Task"
}
