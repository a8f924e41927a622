package mps

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDecodeUsageOfOddAnswers: nothing odd in an answer fails it whole
// (one bad figure would stop its region's usage for good): figures given
// twice are added up, an unreadable one is left out and named, a summary
// beyond its specifications is kept as the type's own figure, rounding is
// not, and the days not asked for are left out.
func TestDecodeUsageOfOddAnswers(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 1, d, 0, 0, 0, 0, time.UTC) }
	body := `{"Response":{"RequestId":"r","Data":[
	  {"TaskType":"Transcode",
	   "Summary":[{"Time":"2026-01-01T00:00:00+08:00","Count":5,"Usage":500},
	              {"Time":"2026-01-02T00:00:00+08:00","Count":2,"Usage":61},
	              {"Time":"2026-01-09T00:00:00+08:00","Count":9,"Usage":9}],
	   "Details":[{"Specification":"Audio","Data":[{"Time":"2026-01-01T00:00:00+08:00","Count":1,"Usage":10},
	                                               {"Time":"2025-12-31T16:00:00Z","Count":"1.0","Usage":"5.5"}]},
	              {"Specification":"Audio","Data":[{"Time":"2026-01-01T00:00:00+08:00","Count":1,"Usage":4.5}]},
	              {"Specification":"Standard.H264.HD","Data":[{"Time":"2026-01-02T00:00:00+08:00","Count":1,"Usage":30},
	                                                          {"Time":"2026-01-02T00:00:00+08:00","Count":1,"Usage":30}]},
	              {"Specification":"","Data":[{"Time":"2026-01-03T00:00:00+08:00","Count":1,"Usage":7}]},
	              {"Specification":"Remuxing","Data":[{"Time":"2026-01-03T00:00:00+08:00","Count":-1,"Usage":7},
	                                                  {"Time":"yesterday","Count":1,"Usage":7},
	                                                  {"Time":"2026-01-03T00:00:00+08:00","Count":1,"Usage":"1e999999999"},
	                                                  {"Time":"2026-01-03T00:00:00+08:00","Count":1,"Usage":"2.5e3"}]}]},
	  {"TaskType":"AIReview","Summary":[{"Time":"2026-01-02T00:00:00+08:00","Count":0,"Usage":0},
	                                    {"Time":"2026-01-03T00:00:00+08:00","Count":1,"Usage":"12.25"}],"Details":[]},
	  {"TaskType":"","Summary":[]}]}}`
	ans, err := DecodeUsage([]byte(body), day(1), day(3))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range ans.Rows {
		got = append(got, fmt.Sprintf("%s %s %q %d %s", r.Day.Format("01-02"), r.Type, r.Specification, r.Count, r.Usage))
	}
	want := []string{
		`01-01 Transcode "Audio" 3 20`,            // three times, one of them on the same day written in UTC
		`01-02 Transcode "Standard.H264.HD" 2 60`, // twice
		`01-03 Transcode "" 1 7`,                  // a specification without a name: the type's own
		`01-03 Transcode "Remuxing" 1 2500`,
		`01-01 Transcode "" 2 480`, // the summary beyond its specifications
		`01-03 AIReview "" 1 12.25`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// 01-02: summary 61 s for specifications of 60 s: rounding, not a
	// figure of its own. Three figures unreadable, one Data item without a
	// type: named; and Transcode, with unreadable figures, is not taken as
	// answered (its stored figures are not set to zero for them).
	if len(ans.Problems) != 4 || fmt.Sprint(ans.Types) != "[AIReview]" {
		t.Errorf("problems %q, types %v", ans.Problems, ans.Types)
	}
	for _, p := range ans.Problems {
		if strings.Contains(p, "\n") {
			t.Errorf("a problem of more than one line: %q", p)
		}
	}
	twice, err := DecodeUsage([]byte(`{"Response":{"Data":[{"TaskType":"AIReview","Summary":[{"Time":"2026-01-02T00:00:00+08:00","Count":1,"Usage":5}]},
	  {"TaskType":"AIReview","Summary":[{"Time":"2026-01-02T00:00:00+08:00","Count":1,"Usage":5}]}]}}`), day(1), day(3))
	if err != nil || len(twice.Rows) != 1 || twice.Rows[0].Usage != "10" || len(twice.Problems) != 1 || fmt.Sprint(twice.Types) != "[AIReview]" {
		t.Errorf("a type given twice: %+v, %v", twice, err)
	}
	if _, err := DecodeUsage([]byte(`{"Response":{"Error":{"Code":"InvalidParameterValue","Message":"bad"},"RequestId":"r"}}`), day(1), day(3)); ErrorCode(err) != CodeInvalidParameter {
		t.Errorf("an error answer: %v", err)
	}
	if _, err := DecodeUsage([]byte(`{"Response":{"Data":{}}}`), day(1), day(3)); err == nil {
		t.Error("a Data that is not a list was read")
	}
}

// TestUsageQueryParams: a query asks for whole Beijing days, names its
// types and region, and never spans 90 days or more for 90 days asked.
func TestUsageQueryParams(t *testing.T) {
	q := UsageQuery{From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 31, 0, 0, 0, 0, time.UTC),
		Types: []string{"Transcode"}, Region: "aws"}
	p := q.Params()
	if *p.StartTime != "2026-01-01T00:00:00+08:00" || *p.EndTime != "2026-03-31T23:59:59+08:00" ||
		fmt.Sprint(p.Types, p.ProcessRegions) != "[Transcode] [aws]" {
		t.Errorf("%s %s %v %v", *p.StartTime, *p.EndTime, p.Types, p.ProcessRegions)
	}
	start, _ := time.Parse(time.RFC3339, *p.StartTime)
	end, _ := time.Parse(time.RFC3339, *p.EndTime)
	if end.Sub(start) >= UsageMaxSpanDays*24*time.Hour {
		t.Errorf("90 days asked span %s", end.Sub(start))
	}
}
