package mps

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

func TestDecodeSpecExamples(t *testing.T) {
	t.Parallel()
	created := time.Date(2018, 12, 27, 13, 57, 15, 0, time.UTC)
	cases := []struct {
		file   string
		ids    []string
		token  string
		total  int64
		finish time.Time
	}{
		{"example1", []string{"taskId1", "taskId2", "taskId3", "taskId4", "taskId5"}, "taskId6", 12, created},
		{"example2", []string{"taskId6"}, "", 1, created},
		{"example3", []string{"taskId7"}, "", 1, time.Time{}},
	}
	for _, c := range cases {
		body, err := os.ReadFile("testdata/spec/" + c.file + ".response.json")
		if err != nil {
			t.Fatal(err)
		}
		p, err := DecodePage(body)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if p.ScrollToken != c.token || p.TotalCount == nil || *p.TotalCount != c.total ||
			p.RequestID != "46311b39-10ce-47eb-b2b6-7ce82bb4476d" || p.Skipped != 0 {
			t.Fatalf("%s: page = token %q total %v request %q skipped %d", c.file, p.ScrollToken, p.TotalCount, p.RequestID, p.Skipped)
		}
		if len(p.Tasks) != len(c.ids) {
			t.Fatalf("%s: %d tasks, want %d", c.file, len(p.Tasks), len(c.ids))
		}
		for i, task := range p.Tasks {
			if task.TaskID != c.ids[i] || task.TaskType != "WorkflowTask" ||
				len(task.SubTaskTypes) != 1 || task.SubTaskTypes[0] != "action-trans" ||
				!task.CreateTime.Equal(created) || !task.BeginProcessTime.Equal(created) ||
				!task.FinishTime.Equal(c.finish) || len(task.Warnings) != 0 {
				t.Fatalf("%s: task %d = %+v", c.file, i, task)
			}
			var raw map[string]any
			if err := json.Unmarshal(task.Raw, &raw); err != nil || raw["TaskId"] != c.ids[i] {
				t.Fatalf("%s: raw %s", c.file, task.Raw)
			}
		}
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	utc := time.Date(2024, 4, 3, 3, 23, 58, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"2024-04-03T03:23:58Z", utc, false},
		{"2024-04-03T11:23:58+08:00", utc, false},
		{"2024-04-02T22:23:58-05:00", utc, false},
		{"2024-04-03T03:23:58.000Z", utc, false},
		{"2024-04-03 03:23:58", utc, false},
		{"0000-00-00T00:00:00Z", time.Time{}, false},
		{"", time.Time{}, false},
		{"2024-13-45T99:00:00Z", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"10000-01-01T00:00:00Z", time.Time{}, true},
	}
	for _, c := range cases {
		got, err := ParseTime(c.in)
		if (err != nil) != c.bad || !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v, bad=%v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestDecodeHostileRecords(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 20_000)
	body := `{"Response":{"TaskSet":[
	  {"TaskId":"ok-1","TaskType":"WorkflowTask","SubTaskTypes":["a"],"CreateTime":"2024-01-01T00:00:00Z","BeginProcessTime":"0000-00-00T00:00:00Z","FinishTime":"0000-00-00T00:00:00Z","Extra":{"nested":[1,2,3]}},
	  {"TaskType":"WorkflowTask"},
	  {"TaskId":"","TaskType":"x"},
	  {"TaskId":42},
	  "not an object",
	  null,
	  {"TaskId":"bad-times","CreateTime":12345,"BeginProcessTime":"not a time","FinishTime":null,"SubTaskTypes":null},
	  {"TaskId":"weird-\u0000-id'; DROP TABLE tasks;--","TaskType":"$(rm -rf /)\u0000","SubTaskTypes":["ok",7,null,"\"quoted\""]},
	  {"TaskId":"long","TaskType":"` + long + `","SubTaskTypes":"action-trans"},
	  {"TaskId":"ünïcødé-任务-🎬","TaskType":"编辑"}
	],"ScrollToken":"","RequestId":"r"}}`
	p, err := DecodePage([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if p.Skipped != 5 {
		t.Errorf("skipped = %d, want 5 (no id, empty id, numeric id, string, null)", p.Skipped)
	}
	ids := map[string]Task{}
	for _, task := range p.Tasks {
		ids[task.TaskID] = task
	}
	if len(ids) != 5 {
		t.Fatalf("kept %d tasks: %v", len(ids), ids)
	}
	bt := ids["bad-times"]
	if !bt.CreateTime.IsZero() || !bt.BeginProcessTime.IsZero() || len(bt.Warnings) != 2 || len(bt.SubTaskTypes) != 0 {
		t.Errorf("bad-times = %+v", bt)
	}
	w := ids["weird-\uFFFD-id'; DROP TABLE tasks;--"]
	if w.TaskID == "" || strings.ContainsRune(w.TaskType, 0) || len(w.SubTaskTypes) != 2 || w.SubTaskTypes[1] != `"quoted"` || len(w.Warnings) != 1 {
		t.Errorf("weird = %+v", w)
	}
	if strings.Contains(string(w.Raw), `\u0000`) {
		t.Errorf("raw still has a NUL escape: %s", w.Raw)
	}
	if l := ids["long"]; len(l.TaskType) != 20_000 || len(l.Warnings) != 1 {
		t.Errorf("long: type len %d, warnings %v", len(l.TaskType), l.Warnings)
	}
	if _, ok := ids["ünïcødé-任务-🎬"]; !ok {
		t.Error("unicode TaskId lost")
	}
}

func TestDecodeMalformedPages(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		``, `{"Response":{"TaskSet":[`, `<html>502</html>`, `[1,2,3]`, `{"Other":{}}`,
		`{"Response":{"TaskSet":[],"ScrollToken":5}}`, `{"Response":{"TaskSet":{"a":1}}}`,
	} {
		if _, err := DecodePage([]byte(body)); err == nil {
			t.Errorf("DecodePage(%q) succeeded", body)
		}
	}
}

func FuzzDecodePage(f *testing.F) {
	for _, n := range []string{"example1", "example2", "example3"} {
		b, err := os.ReadFile("testdata/spec/" + n + ".response.json")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Response":{"TaskSet":[{"TaskId":"\u0000"}],"ScrollToken":""}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePage(body)
		if err != nil {
			return
		}
		for _, task := range p.Tasks {
			if task.TaskID == "" || strings.ContainsRune(task.TaskID, 0) || strings.ContainsRune(task.TaskType, 0) {
				t.Fatalf("unstorable task %+v", task)
			}
			if !json.Valid(task.Raw) {
				t.Fatalf("raw is not JSON: %q", task.Raw)
			}
		}
	})
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2018-12-27T13:57:15Z", "0000-00-00T00:00:00Z", "2024-04-03T11:23:58+08:00", "", "2024-04-03 03:23:58"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s)
		if err != nil && !got.IsZero() {
			t.Fatalf("error with a time: %v %v", got, err)
		}
		if err == nil && !got.IsZero() {
			if got.Location() != time.UTC || got.Year() < 1 || got.Year() > 9999 {
				t.Fatalf("ParseTime(%q) = %v", s, got)
			}
			back, err := ParseTime(FormatTime(got))
			if err != nil || !back.Equal(got.Truncate(time.Second)) {
				t.Fatalf("round trip of %v: %v %v", got, back, err)
			}
		}
	})
}

func TestDecodeKeepsRawStorable(t *testing.T) {
	t.Parallel()
	body := "{\"Response\":{\"TaskSet\":[" +
		"{\"TaskId\":\"ctl\",\"TaskType\":\"a\tb\"}," + // raw tab inside a string: not JSON
		"{\"TaskId\":\"esc\",\"TaskType\":\"bad \\q escape\"}," +
		"{\"TaskId\":\"ok\",\"TaskType\":\"quote \\\" and \\u4efb\"}" +
		"],\"ScrollToken\":\"\"}}"
	p, err := DecodePage([]byte(body))
	if err != nil {
		t.Fatalf("the page was refused as a whole: %v", err)
	}
	for _, task := range p.Tasks {
		if !json.Valid(task.Raw) || strings.ContainsAny(string(task.Raw), "\t\x00") {
			t.Errorf("%s: raw not storable: %q", task.TaskID, task.Raw)
		}
	}
	if len(p.Tasks) == 0 {
		t.Fatal("nothing decoded")
	}
}
