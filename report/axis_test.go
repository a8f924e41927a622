package report

import (
	"math"
	"testing"
	"time"
)

// Count axes tick whole numbers in steps of 1, 2 or 5 times a power of
// ten, and reach the largest value.
func TestCountAxis(t *testing.T) {
	t.Parallel()
	for _, max := range []float64{0, 1, 3, 7, 8, 23, 25, 35, 99, 101, 288, 1210, 9999, 12500, 2.4e6} {
		a := newAxis(max, true, "")
		p := math.Pow(10, math.Floor(math.Log10(a.step)))
		if m := a.step / p; m != 1 && m != 2 && m != 5 {
			t.Errorf("max %v: step %v", max, a.step)
		}
		if a.top < max || len(a.ticks()) > 6 || len(a.ticks()) < 2 {
			t.Errorf("max %v: ticks %v", max, a.ticks())
		}
		for _, v := range a.ticks() {
			if v != math.Trunc(v) {
				t.Errorf("max %v: fractional tick %v", max, v)
			}
		}
	}
	if got := newAxis(25, true, "").label(20); got != "20" {
		t.Errorf("label %q", got)
	}
	if got := newAxis(2.4e6, true, "").label(1.5e6); got != "1.5M" {
		t.Errorf("label %q", got)
	}
	if got := newAxis(0.09, false, "s").label(0.06); got != "0.06s" {
		t.Errorf("label %q", got)
	}
}

// TestLongRangeChartsTheRecentPeriods: a range longer than a chart's axis
// (two years by day) charts its most recent periods, from the first with
// data, never the oldest (empty) ones.
func TestLongRangeChartsTheRecentPeriods(t *testing.T) {
	t.Parallel()
	var days []time.Time
	for d := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC); d.Before(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	first := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	ps := fromFirstData(days, first, true)
	if !ps[0].Equal(first) || !ps[len(ps)-1].Equal(days[len(days)-1]) {
		t.Fatalf("charted %s … %s", ps[0], ps[len(ps)-1])
	}
	if ps := fromFirstData(days, time.Time{}, false); len(ps) != maxPeriods || !ps[len(ps)-1].Equal(days[len(days)-1]) {
		t.Fatalf("no data: %d periods ending %s", len(ps), ps[len(ps)-1])
	}
}
