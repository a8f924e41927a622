package simulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mps-archiver/mps-archiver/simulator"
)

func TestControlSurface(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	s := simulator.New(simulator.Config{Credentials: map[string]string{testID: testKey}, Clock: simulator.NewClock(start, 0)}, specScenarioAt(t, start))
	api := httptest.NewServer(s)
	defer api.Close()
	ctl := httptest.NewServer(s.ControlHandler())
	defer ctl.Close()

	getJSON := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(ctl.URL + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp, err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var truth []simulator.TruthTask
	getJSON("/truth", &truth)
	if len(truth) != 2 || truth[0].Status != "WAITING" {
		t.Fatalf("truth %+v", truth)
	}
	if _, err := sdkCall(t, api.URL, testID, testKey, `{"Status":"WAITING"}`); err != nil {
		t.Fatal(err)
	}
	var stats simulator.Stats
	getJSON("/stats", &stats)
	if stats.Requests != 1 || stats.RequestsByStatus["WAITING"] != 1 {
		t.Fatalf("stats %+v", stats)
	}
	resp, err := http.Post(ctl.URL+"/clock?advance=2h", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("advance: %v %v", resp, err)
	}
	getJSON("/truth", &truth)
	if truth[0].Status != "FINISH" {
		t.Fatalf("after 2h: %+v", truth)
	}
	req, _ := http.NewRequest(http.MethodPut, ctl.URL+"/faults", strings.NewReader(`{"error_rate":1,"error_codes":["InternalError"]}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("faults: %v %v", resp, err)
	}
	if _, err := sdkCall(t, api.URL, testID, testKey, `{}`); errCode(err) != "InternalError" {
		t.Fatalf("injected fault: %v", err)
	}
	req, _ = http.NewRequest(http.MethodPut, ctl.URL+"/faults", strings.NewReader(`{"eror_rate":1}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown fault field accepted: %v %v", resp, err)
	}
	// The control surface is not on the API port.
	resp, err = http.Get(api.URL + "/truth")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `"Error"`) || strings.Contains(string(body), `"TaskId"`) {
		t.Fatalf("the API port serves /truth: %s", body)
	}
}

func specScenarioAt(t *testing.T, at time.Time) []*simulator.Task {
	t.Helper()
	sc := &simulator.Scenario{Tasks: []simulator.ScenarioTask{
		{TaskId: "a", TaskType: "WorkflowTask", Create: "-1m", Begin: "+30m", Finish: "+1h"},
		{TaskId: "b", TaskType: "WorkflowTask", Create: "-2m", Begin: "+30m", Finish: "+1h"},
	}}
	tasks, err := sc.Build(at)
	if err != nil {
		t.Fatal(err)
	}
	return tasks
}
