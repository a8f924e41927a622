package mps

import (
	"strings"
	"testing"
)

// TestImageDetailOutcome: an image detail's outcome comes from its results
// (ImageProcessTaskResultSet), whichever detail action answered it, with
// or without the task's Status; a finished detail without results is
// undecided, never a success.
func TestImageDetailOutcome(t *testing.T) {
	for _, tc := range []struct {
		name, body   string
		src          Source
		result, code string
		status       Status
	}{
		{"succeeded", `{"Status":"FINISH","ImageProcessTaskResultSet":[{"Status":"SUCCESS","ErrCode":0,"ErrCodeExt":"","Message":"SUCCESS"}]}`,
			SourceImage, OutcomeSucceeded, "", StatusFinish},
		{"failed, ErrMsg", `{"ImageProcessTaskResultSet":[{"Status":"SUCCESS"},{"Status":"FAIL","ErrCodeExt":"InvalidInput","ErrMsg":"bad image"}]}`,
			SourceImage, OutcomeFailed, "", ""},
		{"still processing", `{"Status":"PROCESSING","ImageProcessTaskResultSet":[{"Status":"PROCESSING"}]}`,
			SourceImage, OutcomeUndecided, "", StatusProcessing},
		{"no results", `{"Status":"FINISH","Definition":20001}`, SourceImage, OutcomeUndecided, "", StatusFinish},
		{"read by DescribeTaskDetail", `{"Status":"FINISH","ImageProcessTaskResultSet":[{"Status":"FAIL","ErrCode":40000}]}`,
			SourceMedia, OutcomeFailed, "40000", StatusFinish},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := DecodeSourceDetail(tc.src, "img-1", []byte(`{"Response":`+tc.body[:len(tc.body)-1]+`,"RequestId":"r"}}`))
			if err != nil {
				t.Fatal(err)
			}
			if d.TaskType != TaskTypeImage || d.Outcome.Result != tc.result || d.Outcome.ErrCode != tc.code || d.Status != tc.status {
				t.Fatalf("type %q status %q outcome %+v", d.TaskType, d.Status, d.Outcome)
			}
			if tc.name == "failed, ErrMsg" && (d.Outcome.Message != "bad image" || len(d.Outcome.Subtasks) != 2 || d.Outcome.Subtasks[1].Kind != ImageSubTaskKind) {
				t.Fatalf("outcome %+v", d.Outcome)
			}
			if strings.Contains(string(d.Raw), `"Message":"bad image"`) {
				t.Fatal("the stored detail gained a field the API did not send")
			}
			if lt := d.ListTask(); lt.TaskType != TaskTypeImage || len(lt.SubTaskTypes) != 0 {
				t.Fatalf("list record %+v", lt)
			}
		})
	}
}

// TestAdoptImagePage: an image list record is typed ImageTask and keeps no
// secret its Input carries; a media page is left as it is.
func TestAdoptImagePage(t *testing.T) {
	body := `{"Response":{"TotalCount":1,"TaskSet":[{"TaskId":"img-1","Status":"FINISH",` +
		`"Input":"{\"Type\":\"AWS-S3\",\"S3InputInfo\":{\"S3Bucket\":\"b\",\"S3SecretId\":\"AKIDsecret1\",\"S3SecretKey\":\"topsecret-key\"}}",` +
		`"CreateTime":"2026-11-20T00:00:00Z","BeginProcessTime":"2026-11-20T00:00:01Z","FinishTime":"2026-11-20T00:00:09Z","SubTaskHasFailed":false},` +
		`{"TaskId":"img-2","Status":"FINISH","Input":"https://b.cos.ap-guangzhou.myqcloud.com/x.jpg?q-sign-algorithm=sha1&q-ak=AKIDcos&q-signature=cafef00d",` +
		`"CreateTime":"2026-11-20T00:00:00Z"}],"ScrollToken":"","RequestId":"r"}}`
	p, err := DecodePage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := DecodePage([]byte(`{"Response":{"TaskSet":[{"TaskId":"wf-1","TaskType":"WorkflowTask","SubTaskTypes":[],"CreateTime":"2026-11-20T00:00:00Z"}],"ScrollToken":""}}`))
	if err != nil {
		t.Fatal(err)
	}
	before := string(plain.Tasks[0].Raw)
	AdoptPage(SourceMedia, plain)
	if string(plain.Tasks[0].Raw) != before {
		t.Fatal("a media record without input was changed")
	}
	// DescribeTasks listing image tasks with their Input: redacted too,
	// left untyped (the media list's records say their own type).
	AdoptPage(SourceMedia, p)
	if p.Tasks[0].TaskType != "" || strings.Contains(string(p.Tasks[0].Raw), "topsecret-key") {
		t.Fatalf("media adoption: %q %s", p.Tasks[0].TaskType, p.Tasks[0].Raw)
	}
	AdoptPage(SourceImage, p)
	for _, task := range p.Tasks {
		if task.TaskType != TaskTypeImage {
			t.Errorf("%s typed %q", task.TaskID, task.TaskType)
		}
		for _, secret := range []string{"AKIDsecret1", "topsecret-key", "AKIDcos", "cafef00d"} {
			if strings.Contains(string(task.Raw), secret) {
				t.Errorf("%s keeps %s: %s", task.TaskID, secret, task.Raw)
			}
		}
	}
}
