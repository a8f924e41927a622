package mps

import (
	"fmt"
	"strings"
	"testing"
)

func TestDecideOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, detail string
		want         string // result code ext message #subtasks #ambiguities
	}{
		{"success, ErrCodeExt SUCCESS", `{"TaskType":"WorkflowTask","Status":"FINISH","WorkflowTask":{"TaskId":"a","Status":"FINISH","ErrCode":0,
			"MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCode":0,"ErrCodeExt":"SUCCESS","Message":"SUCCESS","Input":{"Definition":100030},"Output":{"Path":"/o/a.mp4"}}}]}}`,
			"succeeded||| 1 0"},
		{"success, empty ErrCodeExt", `{"TaskType":"WorkflowTask","WorkflowTask":{"ErrCode":0,"AiAnalysisResultSet":[{"Type":"Tag","TagTask":{"Status":"SUCCESS","ErrCodeExt":""}}]}}`,
			"succeeded||| 1 0"},
		{"source failed (task level first)", `{"TaskType":"WorkflowTask","WorkflowTask":{"ErrCode":30010,"Message":"source gone","MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"FAIL","ErrCodeExt":"InternalError"}}]}}`,
			"failed|30010||source gone 1 0"},
		{"ErrCode style", `{"TaskType":"WorkflowTask","WorkflowTask":{"MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","ErrCode":0}},{"Type":"SnapshotByTimeOffset","SnapshotByTimeOffsetTask":{"Status":"FAIL","ErrCode":40000,"Message":"bad offset"}}]}}`,
			"failed|40000||bad offset 2 0"},
		{"ErrCodeExt style, code as string", `{"TaskType":"WorkflowTask","WorkflowTask":{"AiRecognitionResultSet":[{"Type":"FaceRecognition","FaceTask":{"Status":"SUCCESS","ErrCode":"0","ErrCodeExt":"InvalidInput.DefinitionNotExist","Message":"no template"}}]}}`,
			"failed||InvalidInput.DefinitionNotExist|no template 1 0"},
		{"schedule activities", `{"TaskType":"ScheduleTask","ScheduleTask":{"ActivityResultSet":[{"ActivityType":"Transcode","ActivityResItem":{"TranscodeTask":{"Status":"SUCCESS"}}},{"ActivityType":"AiAnalysis","ActivityResItem":{"AnalysisTask":{"Status":"FAIL","ErrCodeExt":"SourceFileError"}}}]}}`,
			"failed||SourceFileError| 2 0"},
		{"edit media failed", `{"TaskType":"EditMediaTask","EditMediaTask":{"ErrCode":70000,"Message":"bad clip"}}`, "failed|70000||bad clip 0 0"},
		{"sub-task still processing", `{"TaskType":"WorkflowTask","Status":"FINISH","WorkflowTask":{"MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"PROCESSING"}}]}}`,
			"undecided||| 1 1"},
		{"unknown container", `{"TaskType":"BatchTask","BatchTask":{"TaskId":"x","ErrCode":5}}`, "failed|5|| 0 1"},
		{"no container at all", `{"TaskType":"Mystery"}`, "undecided||| 0 1"},
		{"wrong types", `{"TaskType":"WorkflowTask","WorkflowTask":{"ErrCode":"oops","MediaProcessResultSet":"nope","AiAnalysisResultSet":[42,{"Type":7}]}}`,
			"failed|oops|| 2 2"},
		{"not JSON", `[1,2`, "undecided||| 0 1"},
		{"live schedule activities", `{"TaskType":"LiveScheduleTask","LiveScheduleTask":{"ErrCode":0,"ActivityResultSet":[{"ActivityType":"LiveRecord","ActivityResItem":{"LiveRecordTask":{"Status":"FAIL","ErrCode":10,"ErrCodeExt":"SourceFileError"}}}]}}`,
			"failed|10|SourceFileError| 1 0"},
		{"blind watermark", `{"TaskType":"ExtractBlindWatermark","ExtractBlindWatermarkTask":{"TaskId":"w","Status":"FINISH","ErrCode":0}}`, "succeeded||| 0 0"},
	} {
		o := DecideOutcome([]byte(tc.detail))
		got := fmt.Sprintf("%s|%s|%s|%s %d %d", o.Result, o.ErrCode, o.ErrCodeExt, o.Message, len(o.Subtasks), len(o.Ambiguities))
		if got != tc.want {
			t.Errorf("%s: got %q, want %q (%v)", tc.name, got, tc.want, o.Ambiguities)
		}
	}
	o := DecideOutcome([]byte(`{"TaskType":"WorkflowTask","WorkflowTask":{"MediaProcessResultSet":[{"Type":"Transcode","TranscodeTask":{"Status":"SUCCESS","Input":{"Definition":100030},"Output":{"Path":"/o/a.mp4"}}}]}}`))
	if s := o.Subtasks[0]; s.Kind != "Transcode" || s.Definition != "100030" || s.OutputPath != "/o/a.mp4" || s.Failed {
		t.Errorf("sub-task %+v", s)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	in := `{"TaskNotifyConfig":{"NotifyKey":"k-1","NotifyUrl":"https://x","AwsSQS":{"S3SecretId":"AKID-2","S3SecretKey":"sk-3","SQSRegion":"r"}},
		"WorkflowTask":{"InputInfo":{"S3InputInfo":{"S3SecretId":"AKID-4","S3SecretKey":"sk-5"}},"Items":[{"sessionToken":"tok-6"},{"DbPassword":"pw-7","Password":null}],
		"Count":12345678901234567890,"Text":"S3SecretKey is mentioned, not a secret"}}`
	out, n := Redact([]byte(in))
	s := string(out)
	for _, secret := range []string{"k-1", "AKID-2", "sk-3", "AKID-4", "sk-5", "tok-6", "pw-7"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q survives: %s", secret, s)
		}
	}
	if n != 7 || !strings.Contains(s, "12345678901234567890") || !strings.Contains(s, "not a secret") || !strings.Contains(s, `"SQSRegion":"r"`) {
		t.Errorf("%d redacted: %s", n, s)
	}
	if out, _ := Redact([]byte(`{"NotifyKey":"x"`)); strings.Contains(string(out), "NotifyKey") {
		t.Errorf("unparseable input came back: %s", out)
	}
}
