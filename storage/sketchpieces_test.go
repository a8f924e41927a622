package storage

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestSketchPiecesCoverTheRangeOnce: whatever the range and the fold
// horizon, the pieces a report reads count every day of the range once and
// no other day, a monthly sketch standing for its month's days before the
// horizon.
func TestSketchPiecesCoverTheRangeOnce(t *testing.T) {
	day := func(n int) time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n) }
	rng := rand.New(rand.NewPCG(1, 2))
	usedMonthly := 0
	for i := 0; i < 5000; i++ {
		since := day(rng.IntN(500))
		until := since.AddDate(0, 0, 1+rng.IntN(400))
		var horizon time.Time
		if rng.IntN(8) > 0 {
			horizon = day(rng.IntN(1000))
		}
		byMonth := rng.IntN(4) > 0
		pieces := sketchPieces(since, until, horizon, byMonth)
		for _, p := range pieces {
			if p.monthly {
				usedMonthly++
				if !byMonth || p.lo.Day() != 1 || !p.hi.Equal(p.lo.AddDate(0, 1, 0)) || !p.lo.Before(horizon) {
					t.Fatalf("since %s until %s horizon %s: monthly piece %+v", since, until, horizon, p)
				}
			}
		}
		for d := since.AddDate(0, -2, 0); d.Before(until.AddDate(0, 2, 0)); d = d.AddDate(0, 0, 1) {
			n := 0
			for _, p := range pieces {
				month := time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, time.UTC)
				switch {
				case p.monthly && !month.Before(p.lo) && month.Before(p.hi) && d.Before(horizon):
					n += p.sign
				case !p.monthly && !d.Before(p.lo) && d.Before(p.hi):
					n += p.sign
				}
			}
			want := 0
			if !d.Before(since) && d.Before(until) {
				want = 1
			}
			if n != want {
				t.Fatalf("since %s until %s horizon %s by month %v: day %s counted %d times, want %d\npieces %+v",
					since.Format(time.DateOnly), until.Format(time.DateOnly), horizon.Format(time.DateOnly), byMonth,
					d.Format(time.DateOnly), n, want, pieces)
			}
		}
	}
	if usedMonthly == 0 {
		t.Fatal("no monthly sketch was ever read")
	}
}

// TestSketchPiecesReadAYearByMonth: a year by month, folded up to eight
// days ago, reads twelve monthly sketches and the days since the horizon,
// not 365 days.
func TestSketchPiecesReadAYearByMonth(t *testing.T) {
	until := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	since := until.AddDate(-1, 0, 0)
	horizon := until.AddDate(0, 0, -9)
	daily, monthly := 0, 0
	for _, p := range sketchPieces(since, until, horizon, true) {
		if p.monthly {
			monthly++
		} else {
			daily += int(p.hi.Sub(p.lo).Hours() / 24)
		}
	}
	if monthly != 12 || daily > 12 {
		t.Errorf("a year by month reads %d monthly sketches and %d days, want 12 and at most 12 (1 and 2 December 2025 taken away, 24 November to 2 December 2026 added)", monthly, daily)
	}
	if ps := sketchPieces(since, until, horizon, false); len(ps) != 1 || ps[0].monthly {
		t.Errorf("by day: %+v, want the range's days", ps)
	}
}
