package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadDashboardExpandsEveryPanel: the archive dashboard in the checkout
// has its 15 SQL panels, and each expands to SQL with no Grafana macro
// left, bounded by the range as Grafana bounds it.
func TestLoadDashboardExpandsEveryPanel(t *testing.T) {
	t.Parallel()
	d, err := LoadDashboard("../../deploy/grafana/mps-task-archive.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) != 15 {
		t.Errorf("%d SQL panels, want 15", len(d.Panels))
	}
	if len(d.Variables) != 1 || d.Variables[0].Name != "task_type" {
		t.Errorf("variables %+v, want task_type alone", d.Variables)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 0, 30)
	for _, p := range d.Panels {
		sql, err := expandMacros(p.SQL, from, to, map[string]string{"task_type": "'A','B'"})
		if err != nil {
			t.Errorf("%q: %v", p.Title, err)
			continue
		}
		if strings.Contains(sql, "$") || !strings.Contains(sql, "BETWEEN '2026-01-01T00:00:00Z' AND '2026-01-31T00:00:00Z')") {
			t.Errorf("%q expands to:\n%s", p.Title, sql)
		}
	}
}

// TestExpandMacros: a time filter's argument may hold parentheses, the
// longer of two variable names wins, and a macro the bench does not know
// is an error rather than SQL that measures something else.
func TestExpandMacros(t *testing.T) {
	t.Parallel()
	from, to := time.Unix(0, 0), time.Unix(60, 0)
	got, err := expandMacros("WHERE $__timeFilter(coalesce(a, b)) AND t IN ($task_type) AND u = ${task}", from, to,
		map[string]string{"task": "'x'", "task_type": "'A','B'"})
	want := "WHERE (coalesce(a, b) BETWEEN '1970-01-01T00:00:00Z' AND '1970-01-01T00:01:00Z') AND t IN ('A','B') AND u = 'x'"
	if err != nil || got != want {
		t.Errorf("got %q, %v\nwant %q", got, err, want)
	}
	for _, sql := range []string{"WHERE $__timeFilter(a", "WHERE $__unixEpochFilter(a)"} {
		if _, err := expandMacros(sql, from, to, nil); err == nil {
			t.Errorf("%q: no error", sql)
		}
	}
}

// TestLoadDashboardMissing names the flag that fixes it.
func TestLoadDashboardMissing(t *testing.T) {
	t.Parallel()
	_, err := LoadDashboard(filepath.Join(t.TempDir(), "nope.json"))
	if err == nil || !strings.Contains(err.Error(), "--dashboard") {
		t.Errorf("err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"panels": [{"title": "p", "targets": [{"rawSql": "SELECT $__timeTo()"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDashboard(bad); err == nil || !strings.Contains(err.Error(), "$__timeTo") {
		t.Errorf("err = %v", err)
	}
}

// TestWriteHistoryJudgesAtRate: the history ratios are judged from
// TargetPerDay tasks a day, and the baseline from TargetTasks tasks; the
// standard ratios are not printed in history mode.
func TestWriteHistoryJudgesAtRate(t *testing.T) {
	t.Parallel()
	year := &Timing{Median: 0.030}
	archives := []Archive{
		{Months: 1, Report30: Timing{Median: 0.010}, Dashboard: Timing{Median: 0.020}, Panels: []PanelTiming{{Title: "p", Median: 0.020}}},
		{Months: 12, Report30: Timing{Median: 0.011}, Dashboard: Timing{Median: 0.030}, Report12: year, Report12ByDay: year,
			Panels: []PanelTiming{{Title: "p", Median: 0.030}}},
	}
	h := &HistoryReport{PerDay: TargetPerDay, Archives: archives, Ratios: historyRatios(archives)}
	near := func(a, b float64) bool { return math.Abs(a-b) < 0.01 }
	if q := h.Ratios; !near(q.Report30, 1.1) || !near(q.Dashboard30, 1.5) || !near(q.Report12Vs30, 2.73) {
		t.Errorf("ratios %+v", q)
	}
	base := &BaselineReport{Tasks: TargetTasks, Ratio: 0.95}
	var full bytes.Buffer
	Write(&full, &Report{History: h, Baseline: base})
	s := full.String()
	for _, want := range []string{"(target <= 1.25x: met)", "(target <= 1.25x: MISSED)", "(target <= 2x: MISSED)", "(target >= 0.9x: met)", "12 months / 1 month archive"} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "COPY ceiling") || strings.Contains(s, "not judged") {
		t.Errorf("history run:\n%s", s)
	}
	h.PerDay = 300
	var small bytes.Buffer
	Write(&small, &Report{History: h, Baseline: &BaselineReport{Tasks: 1000}})
	if s := small.String(); strings.Contains(s, "MISSED") || strings.Count(s, "not judged") != 4 || !strings.Contains(s, "--history-per-day 3000") {
		t.Errorf("small run:\n%s", s)
	}
}
