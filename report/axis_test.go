package report

import (
	"math"
	"testing"
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
