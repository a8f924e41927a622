package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"github.com/mps-archiver/mps-archiver/mps"
	"github.com/mps-archiver/mps-archiver/simulator"
)

const (
	testID  = "AKIDsimulatortest"
	testKey = "simulator-test-key"
)

// specScenario holds the API page's seven tasks.
func specScenario(t *testing.T) []*simulator.Task {
	t.Helper()
	sc := &simulator.Scenario{}
	for i := 1; i <= 7; i++ {
		st := simulator.ScenarioTask{
			TaskId: "taskId" + string(rune('0'+i)), TaskType: "WorkflowTask", SubTaskTypes: []string{"action-trans"},
			Create: "2018-12-27T13:57:15Z", Begin: "2018-12-27T13:57:15Z", Finish: "2018-12-27T13:57:15Z",
		}
		if i == 7 {
			st.Finish = ""
		}
		sc.Tasks = append(sc.Tasks, st)
	}
	tasks, err := sc.Build(time.Date(2018, 12, 28, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}

func newServer(t *testing.T, cfg simulator.Config, tasks []*simulator.Task) (*simulator.Server, string) {
	t.Helper()
	if cfg.Credentials == nil {
		cfg.Credentials = map[string]string{testID: testKey}
	}
	if cfg.Clock == nil {
		cfg.Clock = simulator.NewClock(time.Date(2018, 12, 28, 0, 0, 0, 0, time.UTC), 0)
	}
	s := simulator.New(cfg, tasks)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

// sdkCall sends body as DescribeTasks through the official SDK, signed with
// id/key, and returns the raw answer or the SDK's error.
func sdkCall(t *testing.T, endpoint, id, key, body string) ([]byte, error) {
	t.Helper()
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = endpoint[len("http://"):]
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.Language = "en-US"
	c := (&common.Client{}).Init("")
	c.WithCredential(common.NewCredential(id, key)).WithProfile(cpf)
	rec := &recorder{next: http.DefaultTransport}
	c.WithHttpTransport(rec)
	req := tchttp.NewCommonRequest(mps.Service, mps.Version, mps.ActionDescribeTasks)
	if err := req.SetActionParameters(body); err != nil {
		t.Fatal(err)
	}
	err := c.Send(req, tchttp.NewCommonResponse())
	return rec.body, err
}

// recorder keeps the raw body of the last response: the SDK's
// CommonResponse re-encodes it with sorted keys.
type recorder struct {
	next http.RoundTripper
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.body = b
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, err
}

func errCode(err error) string {
	type coded interface{ GetCode() string }
	if c, ok := err.(coded); ok {
		return c.GetCode()
	}
	return ""
}

func TestSignatureVerification(t *testing.T) {
	t.Parallel()
	_, url := newServer(t, simulator.Config{}, specScenario(t))
	if _, err := sdkCall(t, url, testID, testKey, `{"Status":"FINISH"}`); err != nil {
		t.Fatalf("a correctly signed request was refused: %v", err)
	}
	if _, err := sdkCall(t, url, testID, "wrong-key", `{}`); errCode(err) != mps.CodeSignatureFailure {
		t.Fatalf("wrong key: %v", err)
	}
	if _, err := sdkCall(t, url, "AKIDunknown", testKey, `{}`); errCode(err) != mps.CodeSecretIDNotFound {
		t.Fatalf("unknown SecretId: %v", err)
	}

	// The SDK signs with the real time; a server whose clock is 6 minutes
	// ahead sees a stale timestamp.
	_, skewed := newServer(t, simulator.Config{AuthNow: func() time.Time { return time.Now().Add(6 * time.Minute) }}, nil)
	if _, err := sdkCall(t, skewed, testID, testKey, `{}`); errCode(err) != mps.CodeSignatureExpire {
		t.Fatalf("stale timestamp: %v", err)
	}
	_, slight := newServer(t, simulator.Config{AuthNow: func() time.Time { return time.Now().Add(4 * time.Minute) }}, nil)
	if _, err := sdkCall(t, slight, testID, testKey, `{}`); err != nil {
		t.Fatalf("4 minutes of skew must pass: %v", err)
	}
}

func TestTamperedBodyRejected(t *testing.T) {
	t.Parallel()
	s, _ := newServer(t, simulator.Config{}, specScenario(t))
	var captured *http.Request
	var body []byte
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		captured = r.Clone(context.Background())
		body, _ = readAll(r)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Response":{"RequestId":"x"}}`))
	}))
	defer capture.Close()
	if _, err := sdkCall(t, capture.URL, testID, testKey, `{"Status":"FINISH"}`); err != nil {
		t.Fatal(err)
	}
	replay := func(b []byte) string {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(b))
		r.Header = captured.Header.Clone()
		r.Host = captured.Host
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		var out struct{ Response mps.ErrorBody }
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return out.Response.Error.Code
	}
	if code := replay(body); code != "" {
		t.Fatalf("untouched replay refused: %s", code)
	}
	if code := replay([]byte(`{"Status":"WAITING"}`)); code != mps.CodeSignatureFailure {
		t.Fatalf("tampered body: code %q", code)
	}
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

// TestReplaySpecExamples sends the API page's three requests, as written
// (Limit as the string "5"), and compares the answers with the page's
// answers key by key and in order.
func TestReplaySpecExamples(t *testing.T) {
	t.Parallel()
	_, url := newServer(t, simulator.Config{}, specScenario(t))
	for _, n := range []string{"example1", "example2", "example3"} {
		req, err := os.ReadFile(filepath.Join("..", "mps", "testdata", "spec", n+".request.json"))
		if err != nil {
			t.Fatal(err)
		}
		wantBody, err := os.ReadFile(filepath.Join("..", "mps", "testdata", "spec", n+".response.json"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := sdkCall(t, url, testID, testKey, string(req))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		gotTree, wantTree := ordered(t, got), ordered(t, wantBody)
		// RequestIds are unique per request; the page's TotalCount of 12 in
		// example 1 contradicts its own six records (see README).
		for _, tree := range []*node{gotTree, wantTree} {
			resp := tree.get("Response")
			resp.set("RequestId", "<id>")
			if n == "example1" {
				resp.set("TotalCount", "<n>")
			}
		}
		if !reflect.DeepEqual(gotTree, wantTree) {
			t.Errorf("%s:\n got  %s\n want %s", n, gotTree, wantTree)
		}
	}
}

func TestLimitAndParameters(t *testing.T) {
	t.Parallel()
	_, url := newServer(t, simulator.Config{}, specScenario(t))
	for body, code := range map[string]string{
		`{"Limit":5}`:                    "",
		`{"Limit":"100"}`:                "",
		`{"Limit":0}`:                    mps.CodeInvalidLimit,
		`{"Limit":101}`:                  mps.CodeInvalidLimit,
		`{"Limit":"five"}`:               mps.CodeInvalidLimit,
		`{"Status":"DONE"}`:              mps.CodeInvalidParameter,
		`{"ScrollToken":"no-such-task"}`: mps.CodeInvalidParameter,
		`{"Bogus":1}`:                    "UnknownParameter",
		`{"StartTime":"yesterday"}`:      mps.CodeInvalidParameter,
		`{"SubTaskHasFailed":true}`:      "",
		`{"StartTime":"2018-12-27T00:00:00Z","EndTime":"2018-12-28T00:00:00Z"}`: "",
	} {
		_, err := sdkCall(t, url, testID, testKey, body)
		if errCode(err) != code {
			t.Errorf("%s: got %v, want code %q", body, err, code)
		}
	}
	// Default Limit is 10, and without a Status every task is listed.
	out, err := sdkCall(t, url, testID, testKey, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Response mps.DescribeTasksResponseParams
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Response.TaskSet) != 7 || *resp.Response.ScrollToken != "" {
		t.Fatalf("unfiltered listing: %d tasks, token %q", len(resp.Response.TaskSet), *resp.Response.ScrollToken)
	}
}

func TestRetentionWindowAndLiveStatus(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	clock := simulator.NewClock(start, 0)
	sc := &simulator.Scenario{Tasks: []simulator.ScenarioTask{
		{TaskId: "old", Create: "-169h", Begin: "-168h59m", Finish: "-168h58m"},
		{TaskId: "moving", Create: "-1m", Begin: "+1m", Finish: "+2m"},
	}}
	tasks, err := sc.Build(start)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := newServer(t, simulator.Config{Clock: clock}, tasks)
	status := func() map[string]string {
		out := map[string]string{}
		for _, tt := range s.Truth() {
			out[tt.TaskId] = tt.Status
		}
		return out
	}
	if got := status(); len(got) != 1 || got["moving"] != "WAITING" {
		t.Fatalf("at start: %v", got)
	}
	clock.Advance(90 * time.Second)
	if got := status(); got["moving"] != "PROCESSING" {
		t.Fatalf("after 90s: %v", got)
	}
	clock.Advance(time.Minute)
	if got := status(); got["moving"] != "FINISH" {
		t.Fatalf("after 150s: %v", got)
	}
	clock.Advance(169 * time.Hour)
	if got := status(); len(got) != 0 {
		t.Fatalf("after a week: %v", got)
	}
}

func TestRateLimitPerSecretID(t *testing.T) {
	t.Parallel()
	_, url := newServer(t, simulator.Config{RateLimit: 5}, specScenario(t))
	limited := 0
	for range 20 {
		if _, err := sdkCall(t, url, testID, testKey, `{"Limit":1}`); errCode(err) == mps.CodeRequestLimitExceeded {
			limited++
		}
	}
	if limited < 10 {
		t.Fatalf("only %d of 20 back-to-back requests were limited at 5 req/s", limited)
	}
}

func TestGeneratorIsDeterministic(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := simulator.DefaultGenConfig()
	cfg.Tasks = 500
	a, b := simulator.Generate(cfg, now), simulator.Generate(cfg, now)
	if len(a) != 500 || !reflect.DeepEqual(a, b) {
		t.Fatal("same seed, different tasks")
	}
	cfg.Seed = 2
	if c := simulator.Generate(cfg, now); reflect.DeepEqual(a[0], c[0]) {
		t.Fatal("different seeds, same tasks")
	}
	for _, tk := range a {
		if tk.Create > now.UnixNano() || tk.Create < now.Add(-cfg.Window).UnixNano() || tk.Begin < tk.Create || tk.Finish < tk.Begin {
			t.Fatalf("task out of shape: %+v", tk)
		}
	}
}

// TestVariants: each reading of the open behaviours, on the API page's
// seven tasks (taskId1…6 FINISH, taskId7 PROCESSING).
func TestVariants(t *testing.T) {
	t.Parallel()
	type page struct {
		ids   []string
		token string
		code  string
	}
	call := func(s *simulator.Server, url, body string) page {
		t.Helper()
		out, err := sdkCall(t, url, testID, testKey, body)
		if err != nil {
			return page{code: errCode(err)}
		}
		var resp struct {
			Response mps.DescribeTasksResponseParams
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatal(err)
		}
		p := page{token: *resp.Response.ScrollToken}
		for _, r := range resp.Response.TaskSet {
			p.ids = append(p.ids, r.TaskId)
		}
		return p
	}
	ranged := `{"Status":"FINISH","StartTime":"2018-12-27T13:57:16Z","EndTime":"2018-12-28T00:00:00Z"}`
	for _, tc := range []struct {
		v    simulator.Variant
		body string
		want page
	}{
		// The Chinese page: the page after token taskId6 starts at it.
		{simulator.Variant{}, `{"Status":"FINISH","Limit":5,"ScrollToken":"taskId6"}`, page{ids: []string{"taskId6"}}},
		// The international page: it starts after it.
		{simulator.Variant{ExclusiveTokens: true}, `{"Status":"FINISH","Limit":5,"ScrollToken":"taskId5"}`, page{ids: []string{"taskId6"}}},
		{simulator.Variant{ExclusiveTokens: true}, `{"Status":"FINISH","Limit":5,"ScrollToken":"taskId6"}`, page{}},
		// DescribeImageTasks: the last page repeats the request's token.
		{simulator.Variant{EchoLastToken: true}, `{"Status":"FINISH","Limit":5,"ScrollToken":"taskId6"}`, page{ids: []string{"taskId6"}, token: "taskId6"}},
		// A token whose task is in another list.
		{simulator.Variant{}, `{"Status":"FINISH","ScrollToken":"taskId7"}`, page{}},
		{simulator.Variant{RejectMovedTokens: true}, `{"Status":"FINISH","ScrollToken":"taskId7"}`, page{code: mps.CodeInvalidParameter}},
		// Time filters: on CreateTime (13:57:15, outside the range), on
		// FinishTime (the same), ignored, or unknown to the seed page's API.
		{simulator.Variant{}, ranged, page{}},
		{simulator.Variant{Filters: simulator.FiltersFinishTime}, ranged, page{}},
		{simulator.Variant{Filters: simulator.FiltersIgnored}, ranged, page{ids: []string{"taskId1", "taskId2", "taskId3", "taskId4", "taskId5", "taskId6"}}},
		{simulator.Variant{Filters: simulator.FiltersUnsupported}, ranged, page{code: mps.CodeUnknownParameter}},
		{simulator.Variant{Filters: simulator.FiltersUnsupported}, `{"SubTaskHasFailed":false}`, page{code: mps.CodeUnknownParameter}},
		// Inclusive and exclusive bounds, on the tasks' own second.
		{simulator.Variant{}, `{"Status":"FINISH","StartTime":"2018-12-27T13:57:15Z","EndTime":"2018-12-27T13:57:15Z","Limit":1}`, page{ids: []string{"taskId1"}, token: "taskId2"}},
		{simulator.Variant{ExclusiveBounds: true}, `{"Status":"FINISH","StartTime":"2018-12-27T13:57:15Z","EndTime":"2018-12-27T13:57:16Z"}`, page{}},
		// A missing StartTime means the last 72 hours; the tasks are 10 h old.
		{simulator.Variant{DefaultStart72h: true}, `{"Status":"FINISH","EndTime":"2018-12-28T00:00:00Z","Limit":1}`, page{ids: []string{"taskId1"}, token: "taskId2"}},
	} {
		s, url := newServer(t, simulator.Config{Variant: tc.v}, specScenario(t))
		if got := call(s, url, tc.body); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s: got %+v, want %+v", tc.v, tc.body, got, tc.want)
		}
	}
	// The 72 h default drops tasks older than that.
	s, url := newServer(t, simulator.Config{Variant: simulator.Variant{DefaultStart72h: true}, Clock: simulator.NewClock(time.Date(2018, 12, 31, 0, 0, 0, 0, time.UTC), 0)}, specScenario(t))
	if got := call(s, url, `{"Status":"FINISH","EndTime":"2018-12-31T00:00:00Z"}`); len(got.ids) != 0 || got.code != "" {
		t.Errorf("72 h default: %+v", got)
	}
	if got := call(s, url, `{"Status":"FINISH","StartTime":"2018-12-24T00:00:00Z","EndTime":"2018-12-31T00:00:00Z"}`); len(got.ids) != 6 {
		t.Errorf("both bounds: %+v", got)
	}
}
