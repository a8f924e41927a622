package simulator_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

// actionCall sends body as action through the official SDK (real TC3
// signatures) and returns the raw answer or the SDK's error.
func actionCall(t *testing.T, endpoint, action, body string) ([]byte, error) {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = endpoint[len("http://"):]
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.Language = "en-US"
	c := (&common.Client{}).Init("")
	c.WithCredential(common.NewCredential(testID, testKey)).WithProfile(cpf)
	rec := &recorder{next: http.DefaultTransport}
	c.WithHttpTransport(rec)
	req := tchttp.NewCommonRequest(mps.Service, mps.Version, action)
	if err := req.SetActionParameters(body); err != nil {
		t.Fatal(err)
	}
	err := c.Send(req, tchttp.NewCommonResponse())
	return rec.body, err
}

// imagePage is a DescribeImageTasks answer.
type imagePage struct {
	Response struct {
		TotalCount  int64
		TaskSet     []mps.ImageTaskInfo
		ScrollToken string
	}
}

// mediaPage is a DescribeTasks answer.
type mediaPage struct {
	Response struct {
		TotalCount  int64
		TaskSet     []mps.TaskSimpleInfo
		ScrollToken string
	}
}

// page sends a list request and decodes it into out; it returns the
// error code ("" for none).
func page(t *testing.T, url, action, body string, out any) string {
	t.Helper()
	b, err := actionCall(t, url, action, body)
	if err != nil {
		if c := errCode(err); c != "" {
			return c
		}
		t.Fatalf("%s %s: %v", action, body, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %v in %s", action, body, err, b)
	}
	return ""
}

// drainImages lists every image task of status, 100 a page, and checks
// that each page's TotalCount counts its records and the rest.
func drainImages(t *testing.T, url, status string) []mps.ImageTaskInfo {
	t.Helper()
	var out []mps.ImageTaskInfo
	var totals []int64
	token := ""
	for range 1000 {
		var p imagePage
		if code := page(t, url, mps.ActionDescribeImageTasks, fmt.Sprintf(`{"Status":%q,"Limit":100,"ScrollToken":%q}`, status, token), &p); code != "" {
			t.Fatalf("DescribeImageTasks %s: %s", status, code)
		}
		totals = append(totals, p.Response.TotalCount, int64(len(out)))
		out = append(out, p.Response.TaskSet...)
		if p.Response.ScrollToken == "" {
			for i := 0; i < len(totals); i += 2 {
				if totals[i]+totals[i+1] != int64(len(out)) {
					t.Fatalf("%s: a page after %d records says TotalCount %d, of %d", status, totals[i+1], totals[i], len(out))
				}
			}
			return out
		}
		token = p.Response.ScrollToken
	}
	t.Fatal("the image list never ended")
	return nil
}

// drainMedia lists every task DescribeTasks has under status.
func drainMedia(t *testing.T, url, status string) []mps.TaskSimpleInfo {
	t.Helper()
	var out []mps.TaskSimpleInfo
	token := ""
	for range 1000 {
		var p mediaPage
		if code := page(t, url, mps.ActionDescribeTasks, fmt.Sprintf(`{"Status":%q,"Limit":100,"ScrollToken":%q}`, status, token), &p); code != "" {
			t.Fatalf("DescribeTasks %s: %s", status, code)
		}
		out = append(out, p.Response.TaskSet...)
		if p.Response.ScrollToken == "" {
			return out
		}
		token = p.Response.ScrollToken
	}
	t.Fatal("the media list never ended")
	return nil
}

// imagePopulation is 1500 tasks, a third of them image tasks, around now.
func imagePopulation(now time.Time) []*simulator.Task {
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks, cfg.ImageShare, cfg.FailureShare = 1500, 0.33, 0.3
	cfg.QueueMean, cfg.ProcessMean = 4*time.Hour, 8*time.Hour // all three statuses
	return simulator.Generate(cfg, now)
}

// truthBy is the truth's tasks of source by status.
func truthBy(s *simulator.Server, source string) map[string][]simulator.TruthTask {
	out := map[string][]simulator.TruthTask{}
	for _, tt := range s.Truth() {
		if tt.Source == source {
			out[tt.Status] = append(out[tt.Status], tt)
		}
	}
	return out
}

// TestImageListDrainsImageTasksOnly: DescribeImageTasks pages through every
// image task of a status, and no media task; DescribeTasks lists no image
// task; both agree with the truth.
func TestImageListDrainsImageTasksOnly(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	s, url := newServer(t, simulator.Config{Clock: simulator.NewClock(now, 0), RateLimit: -1}, imagePopulation(now))
	images, media := truthBy(s, mps.SourceImage.Name), truthBy(s, mps.SourceMedia.Name)
	for _, st := range []string{"WAITING", "PROCESSING", "FINISH"} {
		if len(images[st]) == 0 || len(media[st]) == 0 {
			t.Fatalf("%s: %d image and %d media tasks in the truth", st, len(images[st]), len(media[st]))
		}
		got := drainImages(t, url, st)
		if len(got) != len(images[st]) {
			t.Fatalf("%s: %d image records, truth has %d", st, len(got), len(images[st]))
		}
		for i, rec := range got {
			want := images[st][i]
			if rec.TaskId != want.TaskId || rec.Status != st || rec.CreateTime != want.CreateTime || rec.BeginProcessTime != want.BeginProcessTime || rec.FinishTime != want.FinishTime {
				t.Fatalf("%s record %d: %+v, truth %+v", st, i, rec, want)
			}
			if rec.SubTaskHasFailed != (want.Failed && st == "FINISH") || rec.Input == "" || !strings.Contains(rec.TaskId, "-ImageTask-") {
				t.Fatalf("%s record %d: %+v", st, i, rec)
			}
			if want.TaskType != mps.TaskTypeImage || want.SubTaskTypes == nil || len(want.SubTaskTypes) != 0 || len(want.Outputs)+len(want.Inputs) != 0 {
				t.Fatalf("truth of an image task: %+v", want)
			}
		}
		for _, rec := range drainMedia(t, url, st) {
			if rec.TaskType == mps.TaskTypeImage || strings.Contains(rec.TaskId, "ImageTask") {
				t.Fatalf("DescribeTasks %s lists the image task %s", st, rec.TaskId)
			}
		}
		var p mediaPage
		page(t, url, mps.ActionDescribeTasks, fmt.Sprintf(`{"Status":%q,"Limit":1}`, st), &p)
		if p.Response.TotalCount != int64(len(media[st])) {
			t.Fatalf("DescribeTasks %s TotalCount %d, %d media tasks", st, p.Response.TotalCount, len(media[st]))
		}
	}
}

// TestImageListStatusRequired: DescribeImageTasks documents Status as
// required, and otherwise takes DescribeTasks' parameters.
func TestImageListStatusRequired(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	_, url := newServer(t, simulator.Config{Clock: simulator.NewClock(now, 0), RateLimit: -1}, imagePopulation(now))
	for body, want := range map[string]string{
		`{}`:                              "MissingParameter",
		`{"Limit":5}`:                     "MissingParameter",
		`{"Status":"DONE"}`:               mps.CodeInvalidParameter,
		`{"Status":"FINISH","Bogus":1}`:   mps.CodeUnknownParameter,
		`{"Status":"FINISH","Limit":101}`: mps.CodeInvalidLimit,
		`{"Status":"FINISH","Limit":"5","SubTaskHasFailed":true}`:                                 "",
		`{"Status":"FINISH","StartTime":"2026-07-30T00:00:00Z","EndTime":"2026-08-01T00:00:00Z"}`: "",
	} {
		var p imagePage
		if got := page(t, url, mps.ActionDescribeImageTasks, body, &p); got != want {
			t.Errorf("%s: code %q, want %q", body, got, want)
		}
		if want == "" && strings.Contains(body, "SubTaskHasFailed") {
			for _, r := range p.Response.TaskSet {
				if !r.SubTaskHasFailed {
					t.Errorf("SubTaskHasFailed filter listed %+v", r)
				}
			}
		}
	}
}

// TestImageTasksInTaskList: with the variant, DescribeTasks lists image
// tasks too (TaskType ImageTask, no SubTaskTypes), counts them, and
// DescribeTaskDetail describes them; DescribeImageTasks is unchanged.
func TestImageTasksInTaskList(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	s, url := newServer(t, simulator.Config{Clock: simulator.NewClock(now, 0), RateLimit: -1, Variant: simulator.Variant{ImageTasksInTaskList: true}},
		imagePopulation(now))
	images, media := truthBy(s, mps.SourceImage.Name), truthBy(s, mps.SourceMedia.Name)
	st := "FINISH"
	var p mediaPage
	page(t, url, mps.ActionDescribeTasks, `{"Status":"FINISH","Limit":1}`, &p)
	if want := int64(len(images[st]) + len(media[st])); p.Response.TotalCount != want {
		t.Fatalf("TotalCount %d, want %d (both kinds)", p.Response.TotalCount, want)
	}
	n := 0
	for _, rec := range drainMedia(t, url, st) {
		if rec.TaskType == mps.TaskTypeImage {
			n++
			if rec.SubTaskTypes == nil || len(rec.SubTaskTypes) != 0 {
				t.Fatalf("image record %+v: SubTaskTypes should be []", rec)
			}
		}
	}
	if n != len(images[st]) {
		t.Fatalf("DescribeTasks listed %d image tasks, truth has %d", n, len(images[st]))
	}
	if got := drainImages(t, url, st); len(got) != len(images[st]) {
		t.Fatalf("DescribeImageTasks: %d, want %d", len(got), len(images[st]))
	}
	// Truth lists each task once, under its own source.
	if len(s.Truth()) != len(images["WAITING"])+len(images["PROCESSING"])+len(images["FINISH"])+
		len(media["WAITING"])+len(media["PROCESSING"])+len(media["FINISH"]) {
		t.Fatal("truth counts a task twice")
	}
	// The media list's detail action now knows image tasks, in their shape.
	id := images[st][0].TaskId
	d := detailOf(t, url, mps.ActionDescribeTaskDetail, id)
	if d == nil || d["ImageProcessTaskResultSet"] == nil || d["TaskType"] != nil {
		t.Fatalf("DescribeTaskDetail of an image task: %v", d)
	}
}

// imageScenario is three media and six image tasks: i1…i5 FINISH, i6
// PROCESSING, each a second apart.
func imageScenario(t *testing.T, v simulator.Variant) (*simulator.Server, string) {
	t.Helper()
	start := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	sc := &simulator.Scenario{}
	for i := 1; i <= 9; i++ {
		st := simulator.ScenarioTask{TaskId: fmt.Sprintf("m%d", i), TaskType: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: fmt.Sprintf("-%ds", 3600-i), Begin: "-10m", Finish: "-5m"}
		if i > 3 {
			st.TaskId, st.TaskType, st.SubTaskTypes, st.Image = fmt.Sprintf("i%d", i-3), "", nil, true
		}
		if i == 9 {
			st.Finish = "+1h"
		}
		sc.Tasks = append(sc.Tasks, st)
	}
	tasks, err := sc.Build(start)
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, simulator.Config{Clock: simulator.NewClock(start, 0), RateLimit: -1, Variant: v}, tasks)
}

// TestImageListPaging: the paging readings hold on the image list, and a
// token naming a task of the other list is invalid there.
func TestImageListPaging(t *testing.T) {
	t.Parallel()
	type result struct {
		ids   []string
		token string
		code  string
		total int64
	}
	list := func(url, action, body string) result {
		var p struct {
			Response struct {
				TotalCount  int64
				TaskSet     []struct{ TaskId string }
				ScrollToken string
			}
		}
		r := result{code: page(t, url, action, body, &p)}
		for _, x := range p.Response.TaskSet {
			r.ids = append(r.ids, x.TaskId)
		}
		r.token, r.total = p.Response.ScrollToken, p.Response.TotalCount
		return r
	}
	img, med := mps.ActionDescribeImageTasks, mps.ActionDescribeTasks
	for _, tc := range []struct {
		v      simulator.Variant
		action string
		body   string
		want   result
	}{
		{simulator.Variant{}, img, `{"Status":"FINISH","Limit":3}`, result{ids: []string{"i1", "i2", "i3"}, token: "i4", total: 5}},
		{simulator.Variant{}, img, `{"Status":"FINISH","Limit":3,"ScrollToken":"i4"}`, result{ids: []string{"i4", "i5"}, total: 2}},
		{simulator.Variant{EchoLastToken: true}, img, `{"Status":"FINISH","Limit":3,"ScrollToken":"i4"}`, result{ids: []string{"i4", "i5"}, token: "i4", total: 2}},
		{simulator.Variant{ExclusiveTokens: true}, img, `{"Status":"FINISH","Limit":3,"ScrollToken":"i3"}`, result{ids: []string{"i4", "i5"}, total: 2}},
		{simulator.Variant{}, img, `{"Status":"PROCESSING"}`, result{ids: []string{"i6"}, total: 1}},
		// A moved token keeps its place, unless the variant rejects it.
		{simulator.Variant{}, img, `{"Status":"FINISH","ScrollToken":"i6"}`, result{}},
		{simulator.Variant{RejectMovedTokens: true}, img, `{"Status":"FINISH","ScrollToken":"i6"}`, result{code: mps.CodeInvalidParameter}},
		// Tokens of the other list.
		{simulator.Variant{}, img, `{"Status":"FINISH","ScrollToken":"m2"}`, result{code: mps.CodeInvalidParameter}},
		{simulator.Variant{}, med, `{"Status":"FINISH","ScrollToken":"i2"}`, result{code: mps.CodeInvalidParameter}},
		{simulator.Variant{}, img, `{"Status":"FINISH","ScrollToken":"nope"}`, result{code: mps.CodeInvalidParameter}},
		{simulator.Variant{ImageTasksInTaskList: true}, med, `{"Status":"FINISH","Limit":2,"ScrollToken":"m3"}`, result{ids: []string{"m3", "i1"}, token: "i2", total: 6}},
		{simulator.Variant{ImageTasksInTaskList: true}, img, `{"Status":"FINISH","ScrollToken":"m2"}`, result{code: mps.CodeInvalidParameter}},
		{simulator.Variant{}, med, `{"Status":"FINISH"}`, result{ids: []string{"m1", "m2", "m3"}, total: 3}},
		// Filters, on the image list as on the media list.
		{simulator.Variant{}, img, `{"Status":"FINISH","StartTime":"2026-07-31T23:00:07Z","EndTime":"2026-07-31T23:00:08Z"}`, result{ids: []string{"i4", "i5"}, total: 2}},
		{simulator.Variant{ExclusiveBounds: true}, img, `{"Status":"FINISH","StartTime":"2026-07-31T23:00:07Z","EndTime":"2026-07-31T23:00:08Z"}`, result{total: 0}},
		{simulator.Variant{Filters: simulator.FiltersIgnored}, img, `{"Status":"FINISH","StartTime":"2026-07-31T23:00:07Z","EndTime":"2026-07-31T23:00:08Z"}`, result{ids: []string{"i1", "i2", "i3", "i4", "i5"}, total: 5}},
		{simulator.Variant{Filters: simulator.FiltersUnsupported}, img, `{"Status":"FINISH","SubTaskHasFailed":false}`, result{code: mps.CodeUnknownParameter}},
		{simulator.Variant{Filters: simulator.FiltersFinishTime}, img, `{"Status":"FINISH","StartTime":"2026-07-31T23:55:00Z","EndTime":"2026-08-01T00:00:00Z","Limit":1}`, result{ids: []string{"i1"}, token: "i2", total: 5}},
		{simulator.Variant{DefaultStart72h: true}, img, `{"Status":"FINISH","EndTime":"2026-08-01T00:00:00Z","Limit":1}`, result{ids: []string{"i1"}, token: "i2", total: 5}},
	} {
		_, url := imageScenario(t, tc.v)
		if got := list(url, tc.action, tc.body); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s %s: got %+v, want %+v", tc.v, tc.action, tc.body, got, tc.want)
		}
	}
}

// TestImageActionsUnsupported: an endpoint older than the image actions
// answers both with InvalidAction, as it does an unknown action, and still
// serves the others.
func TestImageActionsUnsupported(t *testing.T) {
	t.Parallel()
	s, url := imageScenario(t, simulator.Variant{ImageTasks: simulator.ImageTasksUnsupported})
	for _, c := range []struct{ action, body string }{
		{mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`},
		{mps.ActionDescribeImageTaskDetail, `{"TaskId":"i1"}`},
		{"DescribeNoSuchThing", `{}`},
	} {
		_, err := actionCall(t, url, c.action, c.body)
		if errCode(err) != mps.CodeInvalidAction {
			t.Errorf("%s: %v, want %s", c.action, err, mps.CodeInvalidAction)
		}
	}
	if _, err := actionCall(t, url, mps.ActionDescribeTasks, `{"Status":"FINISH"}`); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.RequestsByAction[mps.ActionDescribeImageTasks] != 1 || st.RequestsByAction[mps.ActionDescribeImageTaskDetail] != 1 ||
		st.RequestsByAction["DescribeNoSuchThing"] != 1 || st.RequestsByAction[mps.ActionDescribeTasks] != 1 || st.ErrorsByCode[mps.CodeInvalidAction] != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Switched back on, the same endpoint serves them.
	s.SetVariant(simulator.Variant{})
	if _, err := actionCall(t, url, mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`); err != nil {
		t.Fatal(err)
	}
}

func TestImageVariantNames(t *testing.T) {
	t.Parallel()
	v := simulator.Variant{ImageTasks: simulator.ImageTasksUnsupported, ImageTasksInTaskList: true}
	if err := v.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := v.String(); got != "image_tasks=unsupported,image_tasks_in_task_list" {
		t.Fatalf("String %q", got)
	}
	if (simulator.Variant{ImageTasks: simulator.ImageTasksServed}).String() != "reference" {
		t.Fatal("served is the reference reading")
	}
	if err := (simulator.Variant{ImageTasks: "sometimes"}).Validate(); err == nil {
		t.Fatal("a bad image_tasks value passed")
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"image_tasks":"unsupported","image_tasks_in_task_list":true}` {
		t.Fatalf("JSON %s", b)
	}
}

// detailOf is the detail action's Response for id, or nil with the error
// code reported through t.Fatal unless it is ResourceNotFound.
func detailOf(t *testing.T, url, action, id string) map[string]any {
	t.Helper()
	b, err := actionCall(t, url, action, fmt.Sprintf(`{"TaskId":%q}`, id))
	if errCode(err) == mps.CodeResourceNotFound {
		return nil
	}
	if err != nil {
		t.Fatalf("%s %s: %v", action, id, err)
	}
	var out struct{ Response map[string]any }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out.Response
}

// imageOutcome reads an image detail as the failure rule does: failed with
// the first FAIL result's error, succeeded when every result succeeded.
func imageOutcome(t *testing.T, d map[string]any) (outcome, errCode, errCodeExt string) {
	t.Helper()
	if d["Status"] != "FINISH" {
		return "", "", ""
	}
	for _, x := range d["ImageProcessTaskResultSet"].([]any) {
		r := x.(map[string]any)
		switch r["Status"] {
		case "SUCCESS":
			if _, ok := r["Output"].(map[string]any); !ok {
				t.Fatalf("a SUCCESS result without an Output: %v", r)
			}
		case "FAIL":
			if c, ok := r["ErrCode"].(float64); ok {
				errCode = strconv.Itoa(int(c))
			}
			errCodeExt, _ = r["ErrCodeExt"].(string)
			if _, ok := r["Output"]; ok || r["Message"] == "" {
				t.Fatalf("a FAIL result: %v", r)
			}
			return mps.OutcomeFailed, errCode, errCodeExt
		default:
			t.Fatalf("a result of a FINISH task: %v", r)
		}
	}
	return mps.OutcomeSucceeded, "", ""
}

// TestImageDetail: DescribeImageTaskDetail answers in its shape, with the
// outcome Expected says (and Truth), results PROCESSING until FINISH, and
// the planted secrets in its input and outputs.
func TestImageDetail(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	s, url := newServer(t, simulator.Config{Clock: simulator.NewClock(now, 0), RateLimit: -1}, imagePopulation(now))
	seen := map[string]int{}
	styles := map[string]bool{}
	for _, tt := range s.Truth() {
		if tt.Source != mps.SourceImage.Name || seen[tt.Status+tt.Outcome] >= 25 {
			continue
		}
		seen[tt.Status+tt.Outcome]++
		d := detailOf(t, url, mps.ActionDescribeImageTaskDetail, tt.TaskId)
		keys := slices.Sorted(maps.Keys(d))
		if want := []string{"BeginProcessTime", "CreateTime", "Definition", "FinishTime", "ImageProcessTaskResultSet", "ImageTask", "InputInfo", "RequestId", "Status"}; !slices.Equal(keys, want) {
			t.Fatalf("detail members %v, want %v", keys, want)
		}
		if d["Status"] != tt.Status || d["CreateTime"] != tt.CreateTime || d["FinishTime"] != tt.FinishTime {
			t.Fatalf("detail %v, truth %+v", d, tt)
		}
		if _, ok := d["Definition"].(float64); !ok {
			t.Fatalf("Definition %v", d["Definition"])
		}
		results := d["ImageProcessTaskResultSet"].([]any)
		if len(results) < 1 || len(results) > 3 {
			t.Fatalf("%d results", len(results))
		}
		if tt.Status != "FINISH" {
			for _, x := range results {
				if r := x.(map[string]any); r["Status"] != "PROCESSING" || r["Output"] != nil {
					t.Fatalf("a result of a %s task: %v", tt.Status, r)
				}
			}
		}
		o, c, e := imageOutcome(t, d)
		if o != tt.Outcome || c != tt.ErrCode || e != tt.ErrCodeExt {
			t.Fatalf("%s: detail says %q %q %q, truth %q %q %q", tt.TaskId, o, c, e, tt.Outcome, tt.ErrCode, tt.ErrCodeExt)
		}
		if tt.Outcome == mps.OutcomeFailed {
			styles[fmt.Sprint(c != "", e != "")] = true
		}
		b, _ := json.Marshal(d)
		if tt.Status == "FINISH" && tt.Outcome == mps.OutcomeSucceeded && !strings.Contains(string(b), simulator.COSSignature) {
			t.Fatalf("a finished task's outputs carry no signed URL: %s", b)
		}
	}
	for _, k := range []string{"WAITING", "PROCESSING", "FINISH" + mps.OutcomeSucceeded, "FINISH" + mps.OutcomeFailed} {
		if seen[k] == 0 {
			t.Fatalf("no image task %s among %v", k, seen)
		}
	}
	if len(styles) != 3 {
		t.Fatalf("error styles seen: %v", styles)
	}
}

// TestImageInputsCarrySecrets: the image list's Input strings carry the
// planted secrets (signed URLs, an S3 input's keys as JSON), all of them
// among Secrets().
func TestImageInputsCarrySecrets(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	_, url := newServer(t, simulator.Config{Clock: simulator.NewClock(now, 0), RateLimit: -1}, imagePopulation(now))
	var inputs strings.Builder
	kinds := map[string]int{}
	for _, r := range drainImages(t, url, "FINISH") {
		inputs.WriteString(r.Input + "\n")
		switch {
		case strings.HasPrefix(r.Input, "cos://"):
			kinds["cos"]++
		case strings.HasPrefix(r.Input, "https://"):
			kinds["url"]++
		case strings.HasPrefix(r.Input, "{"):
			var in struct {
				Type        string
				S3InputInfo map[string]string
			}
			if err := json.Unmarshal([]byte(r.Input), &in); err != nil || in.Type != "AWS-S3" || in.S3InputInfo["S3SecretKey"] != simulator.S3SecretKey {
				t.Fatalf("Input %s: %v", r.Input, err)
			}
			kinds["json"]++
		default:
			t.Fatalf("Input %q", r.Input)
		}
	}
	if len(kinds) != 3 {
		t.Fatalf("input kinds %v", kinds)
	}
	for _, secret := range []string{simulator.S3SecretID, simulator.S3SecretKey, simulator.AmzSignature, simulator.AmzAccessKeyID,
		simulator.COSSignature, simulator.COSSecretID, simulator.COSSecurityToken} {
		if !strings.Contains(inputs.String(), secret) || !slices.Contains(simulator.Secrets(), secret) {
			t.Fatalf("%s is not in the inputs, or not in Secrets()", secret)
		}
	}
}

// TestImageDetailAcrossLists: each detail action knows its own list's
// tasks: ResourceNotFound for the other's, after the detail retention, and
// for a Raw record; a scenario's Detail is served verbatim.
func TestImageDetailAcrossLists(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	sc := &simulator.Scenario{Tasks: []simulator.ScenarioTask{
		{TaskId: "media", TaskType: "WorkflowTask", SubTaskTypes: []string{"action-trans"}, Create: "-1h", Begin: "-50m", Finish: "-40m"},
		{TaskId: "image", Image: true, Create: "-1h", Begin: "-50m", Finish: "-40m", Failed: true},
		{TaskId: "pinned", Image: true, Create: "-1h", Begin: "-50m", Finish: "-40m", Detail: json.RawMessage(`{"Status":"FINISH","Hostile":"yes","RequestId":"r"}`)},
		{TaskId: "raw", Image: true, Raw: json.RawMessage(`{"TaskId":"raw","Status":"FINISH","Input":7}`), Status: "FINISH", Create: "-1h"},
		{TaskId: "old", Image: true, Create: "-100h", Begin: "-99h", Finish: "-98h"},
	}}
	tasks, err := sc.Build(start)
	if err != nil {
		t.Fatal(err)
	}
	clock := simulator.NewClock(start, 0)
	s, url := newServer(t, simulator.Config{Clock: clock, RateLimit: -1, DetailRetention: 72 * time.Hour}, tasks)
	img, med := mps.ActionDescribeImageTaskDetail, mps.ActionDescribeTaskDetail
	found := func(action, id string) bool { return detailOf(t, url, action, id) != nil }
	if !found(img, "image") || found(med, "image") || found(img, "media") || !found(med, "media") {
		t.Fatal("a detail action knows the other list's tasks")
	}
	if found(img, "old") || found(img, "raw") || found(img, "nope") {
		t.Fatal("an expired, Raw or unknown image task has a detail")
	}
	if d := detailOf(t, url, img, "pinned"); d["Hostile"] != "yes" {
		t.Fatalf("a scenario's detail: %v", d)
	}
	s.SetVariant(simulator.Variant{ImageTasksInTaskList: true})
	if !found(med, "image") || found(img, "media") {
		t.Fatal("with image tasks in the task list, DescribeTaskDetail should know them (and only them)")
	}
	// Parameters as DescribeTaskDetail checks them.
	for body, want := range map[string]string{`{}`: "MissingParameter", `{"TaskId":""}`: mps.CodeInvalidParameter, `{"TaskId":"image","X":1}`: mps.CodeUnknownParameter} {
		if _, err := actionCall(t, url, img, body); errCode(err) != want {
			t.Errorf("%s: %v, want %s", body, err, want)
		}
	}
	// The Raw record is served verbatim on the image list.
	b, err := actionCall(t, url, mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`)
	if err != nil || !strings.Contains(string(b), `{"TaskId":"raw","Status":"FINISH","Input":7}`) {
		t.Fatalf("the Raw record: %s %v", b, err)
	}
	// The truth: the failed image task's outcome, each task's source.
	for _, tt := range s.Truth() {
		want := mps.SourceImage.Name
		if tt.TaskId == "media" {
			want = mps.SourceMedia.Name
		}
		if tt.Source != want || (tt.TaskId == "image" && tt.Outcome != mps.OutcomeFailed) {
			t.Fatalf("truth %+v", tt)
		}
	}
}

// TestRequestsByAction: every signed request counts under its action,
// refused ones too, so a test can tell what an endpoint without the image
// actions costs.
func TestRequestsByAction(t *testing.T) {
	t.Parallel()
	s, url := imageScenario(t, simulator.Variant{})
	s.SetRateLimit(0.01) // one request per action, then none for 100 s
	for range 3 {
		_, _ = actionCall(t, url, mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`)
	}
	_, _ = actionCall(t, url, mps.ActionDescribeImageTasks, `{}`)
	_, _ = actionCall(t, url, mps.ActionDescribeImageTaskDetail, `{"TaskId":"i1"}`)
	_, _ = actionCall(t, url, mps.ActionDescribeTasks, `{"Status":"FINISH"}`)
	st := s.Stats()
	if st.RequestsByAction[mps.ActionDescribeImageTasks] != 4 || st.RequestsByAction[mps.ActionDescribeImageTaskDetail] != 1 ||
		st.RequestsByAction[mps.ActionDescribeTasks] != 1 || st.ErrorsByCode[mps.CodeRequestLimitExceeded] != 3 {
		t.Fatalf("stats %+v", st)
	}
	// Each action has its own limiter: the detail and DescribeTasks passed.
	if st.RequestsByStatus["image/FINISH"] != 1 || st.RequestsByStatus["image/detail"] != 1 || st.RequestsByStatus["FINISH"] != 1 {
		t.Fatalf("by status %+v", st.RequestsByStatus)
	}
}

// TestImageFaultsByAction: faults limited to DescribeImageTasks hit it
// alone.
func TestImageFaultsByAction(t *testing.T) {
	t.Parallel()
	s, url := imageScenario(t, simulator.Variant{})
	s.SetFaults(simulator.Faults{ErrorRate: 1, Actions: []string{mps.ActionDescribeImageTasks}})
	if _, err := actionCall(t, url, mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`); errCode(err) != mps.CodeInternalError {
		t.Fatalf("DescribeImageTasks: %v", err)
	}
	for _, c := range []struct{ action, body string }{{mps.ActionDescribeTasks, `{}`}, {mps.ActionDescribeImageTaskDetail, `{"TaskId":"i1"}`}} {
		if _, err := actionCall(t, url, c.action, c.body); err != nil {
			t.Fatalf("%s: %v", c.action, err)
		}
	}
	s.SetFaults(simulator.Faults{TruncateRate: 1, Actions: []string{mps.ActionDescribeImageTasks}})
	b, err := actionCall(t, url, mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`)
	if err == nil || !strings.Contains(string(b), `"i1"`) {
		t.Fatalf("a truncated image page: %s %v", b, err)
	}
}

// TestImageShareZeroKeepsGenerate: without image tasks the generator makes
// exactly the population it made before they existed (recorded then); with
// them, a seed's tasks keep their ids' random part and times.
func TestImageShareZeroKeepsGenerate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	digest := func(tasks []*simulator.Task) string {
		h := sha256.New()
		for _, tk := range tasks {
			fmt.Fprintf(h, "%s|%s|%v|%d|%d|%d|%v\n", tk.ID, tk.Type, tk.SubTaskTypes, tk.Create, tk.Begin, tk.Finish, tk.Failed)
		}
		return fmt.Sprintf("%x", h.Sum(nil))
	}
	cfg := simulator.DefaultGenConfig()
	tasks := simulator.Generate(cfg, now)
	var first []string
	for _, tk := range tasks[:5] {
		first = append(first, tk.ID)
	}
	if want := []string{
		"1250000000-WorkflowTask-09853b9c3d9a9358d92faffd1256672d",
		"1250000000-EditMediaTask-d2154f8621b5823c7d94e9a51cfad5df",
		"1250000000-WorkflowTask-932cda161889994a23297f559d2c4b04",
		"1250000000-WorkflowTask-7e453c9e1678e4c038c4d2a89fe5cd5d",
		"1250000000-LiveProcessTask-b131f9636d8020a6aaacd4204e61b58c",
	}; !slices.Equal(first, want) {
		t.Fatalf("first ids %v, want %v", first, want)
	}
	if got := digest(tasks); len(tasks) != 1000 || got != "9d8e09c57308de198c7af01e73680fa081baad704093811a40236a6759375bbf" {
		t.Fatalf("%d tasks, digest %s: the population of seed 1 changed", len(tasks), got)
	}
	live := cfg
	live.Vocabulary, live.ArrivalsPerHour, live.Horizon, live.Seed = simulator.VocabularyMixed, 30, 24*time.Hour, 7
	if got := digest(simulator.Generate(live, now)); got != "9ce77fa4d230a6dd602b3887232f6b26b60d46a4496b5ed83e09a6e895136a4d" {
		t.Fatalf("digest %s: the live population of seed 7 changed", got)
	}
	for _, tk := range tasks {
		if tk.Image {
			t.Fatalf("an image task without ImageShare: %s", tk.ID)
		}
	}
	// With image tasks: the first task keeps its draws; about the share
	// are image tasks, in the image shape.
	cfg.ImageShare = 0.25
	mixed := simulator.Generate(cfg, now)
	if a, b := mixed[0], tasks[0]; a.ID[strings.LastIndexByte(a.ID, '-'):] != b.ID[strings.LastIndexByte(b.ID, '-'):] || a.Create != b.Create || a.Finish != b.Finish {
		t.Fatalf("first task %+v, was %+v", a, b)
	}
	n := 0
	for _, tk := range mixed {
		if tk.Image {
			n++
			if tk.Type != mps.TaskTypeImage || len(tk.SubTaskTypes) != 0 || !strings.HasPrefix(tk.ID, "1250000000-ImageTask-") || len(tk.ID) != len("1250000000-ImageTask-")+32 {
				t.Fatalf("image task %+v", tk)
			}
		}
	}
	if n < 180 || n > 320 {
		t.Fatalf("%d image tasks of 1000 at a share of 0.25", n)
	}
}

// TestImageControlSurface: the control API switches the image readings
// through the Variant's JSON, refuses a bad one, and its truth names each
// task's source.
func TestImageControlSurface(t *testing.T) {
	t.Parallel()
	s, url := imageScenario(t, simulator.Variant{})
	ctl := httptest.NewServer(s.ControlHandler())
	defer ctl.Close()
	put := func(body string) int {
		req, _ := http.NewRequest(http.MethodPut, ctl.URL+"/variant", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := put(`{"image_tasks":"unsupported","image_tasks_in_task_list":true}`); code != http.StatusNoContent {
		t.Fatalf("PUT /variant: %d", code)
	}
	if v := s.Variant(); v.ImageTasks != simulator.ImageTasksUnsupported || !v.ImageTasksInTaskList {
		t.Fatalf("variant %+v", v)
	}
	if _, err := actionCall(t, url, mps.ActionDescribeImageTasks, `{"Status":"FINISH"}`); errCode(err) != mps.CodeInvalidAction {
		t.Fatalf("after PUT: %v", err)
	}
	if code := put(`{"image_tasks":"maybe"}`); code != http.StatusBadRequest {
		t.Fatalf("a bad image_tasks: %d", code)
	}
	resp, err := http.Get(ctl.URL + "/truth")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var truth []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&truth); err != nil {
		t.Fatal(err)
	}
	sources := map[any]int{}
	for _, tt := range truth {
		sources[tt["Source"]]++
	}
	if sources["media"] != 3 || sources["image"] != 6 {
		t.Fatalf("truth sources %v", sources)
	}
	st, err := http.Get(ctl.URL + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Body.Close()
	var stats map[string]any
	_ = json.NewDecoder(st.Body).Decode(&stats)
	if by, _ := stats["requests_by_action"].(map[string]any); by[mps.ActionDescribeImageTasks] != 1.0 {
		t.Fatalf("stats %v", stats)
	}
}
