package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/storage"
)

// The HTML report is one file with inline SVG and CSS: no script, no font,
// no network fetch, so it can be mailed, archived or opened offline.
//
// Every chart is drawn twice, for a wide and a narrow screen, and CSS shows
// one: an SVG scales as a whole, so one drawing either has tiny text on a
// phone or a cramped layout on a desktop. Labels are placed from an
// estimate of their width (textWidth) so that they never overlap; the
// layout test in Chromium measures the real boxes.

var palette = []string{"#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"}

// fontSize is the size of every chart text, in SVG user units.
const fontSize = 12.0

// geom is one drawing size. Heights grow with legends and bar rows.
type geom struct {
	class string  // "wide" or "narrow": which screens show it
	w     float64 // width in user units
	plotH float64 // height of a time chart's plot area
}

var (
	wide   = geom{class: "wide", w: 760, plotH: 200}
	narrow = geom{class: "narrow", w: 400, plotH: 170}
)

// minPeriods is the fewest periods a time axis shows when the requested
// range has that many, so one day of data is not one bar as wide as the page.
const minPeriods = 7

type series struct {
	Name   string
	Color  string
	Values []float64 // one per x; NaN for none
}

// textWidth estimates the width of s in user units at size fs, on the wide
// side for DejaVu Sans (what system-ui is on a Debian box) and for the
// usual system fonts.
func textWidth(s string, fs float64) float64 {
	w := 0.0
	for _, r := range s {
		switch {
		case strings.ContainsRune("ijlrtf.,:;'|!-() ", r):
			w += 0.42
		case r == 'm' || r == 'w' || r == 'M' || r == 'W':
			w += 1.0
		case r >= 'A' && r <= 'Z':
			w += 0.78
		case r >= '0' && r <= '9':
			w += 0.66
		case r >= 'a' && r <= 'z':
			w += 0.64
		default:
			w += 0.8
		}
	}
	return w * fs
}

// truncate shortens s with an ellipsis to fit width maxW.
func truncate(s string, maxW float64) string {
	if textWidth(s, fontSize) <= maxW {
		return s
	}
	rs := []rune(s)
	for n := len(rs) - 1; n > 0; n-- {
		t := string(rs[:n]) + "…"
		if textWidth(t, fontSize) <= maxW {
			return t
		}
	}
	return "…"
}

// yAxis is a value axis: ticks at 0, step, 2·step … top.
type yAxis struct {
	step, top float64
	unit      string
	div       float64 // 1, 1e3 or 1e6: what tick labels are shown in
	decimals  int
}

// newAxis picks a step of 1, 2 or 5 times a power of ten giving at most
// five intervals up to max; counts (integer) never get a step below 1, so
// their ticks are whole numbers.
func newAxis(max float64, integer bool, unit string) yAxis {
	if max <= 0 || math.IsNaN(max) {
		max = 1
	}
	raw := max / 5
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * p
	for _, m := range []float64{1, 2, 5} {
		if m*p >= raw {
			step = m * p
			break
		}
	}
	if integer && step < 1 {
		step = 1
	}
	a := yAxis{step: step, top: math.Ceil(max/step-1e-9) * step, unit: unit, div: 1}
	switch {
	case a.top >= 1e6:
		a.div = 1e6
	case a.top >= 1e4:
		a.div = 1e3
	}
	if s := step / a.div; s < 1 {
		a.decimals = int(math.Ceil(-math.Log10(s) - 1e-9))
	}
	return a
}

func (a yAxis) ticks() []float64 {
	var out []float64
	for k := 0; float64(k)*a.step <= a.top*(1+1e-9); k++ {
		out = append(out, float64(k)*a.step)
	}
	return out
}

func (a yAxis) label(v float64) string {
	s := fmt.Sprintf("%.*f", a.decimals, v/a.div)
	switch a.div {
	case 1e3:
		s += "k"
	case 1e6:
		s += "M"
	}
	return s + a.unit
}

// width is the room the tick labels need left of the plot.
func (a yAxis) width() float64 {
	w := 0.0
	for _, v := range a.ticks() {
		w = math.Max(w, textWidth(a.label(v), fontSize))
	}
	return w
}

func openSVG(b *strings.Builder, g geom, title string, h float64) {
	fmt.Fprintf(b, `<svg class="chart %s" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" font-size="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		g.class, template.HTMLEscapeString(title), g.w, h, g.w, h, fontSize)
}

// legendLayout places legend items in rows that fit between x0 and x1.
func legendLayout(ss []series, x0, x1 float64) (xs, rows []float64, n int) {
	x, row := x0, 0
	for _, s := range ss {
		iw := 14 + textWidth(s.Name, fontSize)
		if x > x0 && x+iw > x1 {
			x, row = x0, row+1
		}
		xs, rows = append(xs, x), append(rows, float64(row))
		x += iw + 16
	}
	if len(ss) == 0 {
		return nil, nil, 0
	}
	return xs, rows, row + 1
}

const legendRowH = 18.0

func drawLegend(b *strings.Builder, ss []series, xs, rows []float64, top float64) {
	for i, s := range ss {
		y := top + rows[i]*legendRowH
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f" class="legend">%s</text>`,
			xs[i], y, s.Color, xs[i]+14, y+9.5, template.HTMLEscapeString(s.Name))
	}
}

// timeChart draws stacked bars (bars) or one polyline per series over the
// period labels, in both sizes.
func timeChart(title string, labels []string, ss []series, unit string, integer, bars bool) template.HTML {
	maxY, hasData := 0.0, false
	for i := range labels {
		sum := 0.0
		for _, s := range ss {
			if v := s.Values[i]; !math.IsNaN(v) {
				hasData = true
				if bars {
					sum += v
				} else {
					maxY = math.Max(maxY, v)
				}
			}
		}
		maxY = math.Max(maxY, sum)
	}
	ax := newAxis(maxY, integer, unit)
	var b strings.Builder
	fmt.Fprintf(&b, `<p class="caption">%s</p>`, template.HTMLEscapeString(title))
	for _, g := range []geom{wide, narrow} {
		drawTime(&b, g, title, labels, ss, ax, bars, hasData)
	}
	return template.HTML(b.String())
}

func drawTime(b *strings.Builder, g geom, title string, labels []string, ss []series, ax yAxis, bars, hasData bool) {
	padL, padR, padT := ax.width()+10, 24.0, 10.0
	x0, x1, y1 := padL, g.w-padR, padT
	y0 := y1 + g.plotH
	xs, rows, nrows := legendLayout(ss, x0, x1)
	legendTop := y0 + 32
	h := legendTop + float64(nrows)*legendRowH + 4
	openSVG(b, g, title, h)
	for _, v := range ax.ticks() {
		y := y0 - v/ax.top*(y0-y1)
		if v > 0 {
			fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`, x0+1, y, x1, y)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" class="tick">%s</text>`, x0-6, y+4, ax.label(v))
	}
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, x0, y0, x1, y0)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, x0, y0, x0, y1)
	if len(labels) > 0 {
		slot := (x1 - x0) / float64(len(labels))
		lw := 0.0
		for _, l := range labels {
			lw = math.Max(lw, textWidth(l, fontSize))
		}
		every := int(math.Ceil((lw + 10) / slot))
		for i, l := range labels {
			if i%every != 0 {
				continue
			}
			fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="tick">%s</text>`, x0+float64(i)*slot+slot/2, y0+17, template.HTMLEscapeString(l))
		}
		if bars {
			bw := math.Min(slot*0.75, 56)
			for i := range labels {
				y := y0
				for _, s := range ss {
					v := s.Values[i]
					if math.IsNaN(v) || v <= 0 {
						continue
					}
					bh := v / ax.top * (y0 - y1)
					y -= bh
					fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
						x0+float64(i)*slot+(slot-bw)/2, y, bw, bh, s.Color, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(s.Name), fmtNum(v))
				}
			}
		} else {
			for _, s := range ss {
				var pts []string
				for i, v := range s.Values {
					if math.IsNaN(v) {
						continue
					}
					x := x0 + float64(i)*slot + slot/2
					y := y0 - v/ax.top*(y0-y1)
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
					fmt.Fprintf(b, `<circle class="point" cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %s</title></circle>`,
						x, y, s.Color, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(s.Name), fmtNum(v))
				}
				if len(pts) > 1 {
					fmt.Fprintf(b, `<polyline class="line" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.Join(pts, " "))
				}
			}
		}
	}
	if !hasData {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" class="empty">no data in this range</text>`, (x0+x1)/2, (y0+y1)/2)
	}
	drawLegend(b, ss, xs, rows, legendTop)
	b.WriteString(`</svg>`)
}

// barList draws one horizontal (stacked) bar per label, labels in a column
// on the left, so long labels (error codes) never collide: a label wider
// than the column is cut with an ellipsis and keeps its full text as a
// tooltip. The value axis counts, so its ticks are whole numbers.
func barList(title string, labels []string, ss []series) template.HTML {
	totals := make([]float64, len(labels))
	maxV := 0.0
	for i := range labels {
		for _, s := range ss {
			if v := s.Values[i]; !math.IsNaN(v) && v > 0 {
				totals[i] += v
			}
		}
		maxV = math.Max(maxV, totals[i])
	}
	ax := newAxis(maxV, true, "")
	var b strings.Builder
	fmt.Fprintf(&b, `<p class="caption">%s</p>`, template.HTMLEscapeString(title))
	for _, g := range []geom{wide, narrow} {
		drawBarList(&b, g, title, labels, ss, totals, ax)
	}
	return template.HTML(b.String())
}

func drawBarList(b *strings.Builder, g geom, title string, labels []string, ss []series, totals []float64, ax yAxis) {
	const rowH, padT = 24.0, 6.0
	colW := 0.0
	for _, l := range labels {
		colW = math.Max(colW, textWidth(l, fontSize))
	}
	colW = math.Min(math.Max(colW, 40), math.Floor(g.w*0.38))
	valW := textWidth(fmtNum(ax.top), fontSize) + 8
	x0 := colW + 16
	x1 := g.w - math.Max(valW, textWidth(ax.label(ax.top), fontSize)/2+4)
	rowsN := math.Max(1, float64(len(labels)))
	y0 := padT + rowsN*rowH
	legend := ss
	if len(ss) == 1 {
		legend = nil // the caption names the one series
	}
	xs, rows, nrows := legendLayout(legend, x0, x1)
	legendTop := y0 + 30
	h := legendTop + float64(nrows)*legendRowH + 4
	if nrows == 0 {
		h = y0 + 26
	}
	openSVG(b, g, title, h)
	lw := 0.0
	for _, v := range ax.ticks() {
		lw = math.Max(lw, textWidth(ax.label(v), fontSize))
	}
	every := int(math.Ceil((lw + 8) / ((x1 - x0) * ax.step / ax.top)))
	for k, v := range ax.ticks() {
		x := x0 + v/ax.top*(x1-x0)
		stroke := "#eee"
		if v == 0 {
			stroke = "#888"
		}
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="%s"/>`, x, padT, x, y0, stroke)
		if k%every == 0 {
			fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="tick">%s</text>`, x, y0+17, ax.label(v))
		}
	}
	if len(labels) == 0 {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" class="empty">none in this range</text>`, (x0+x1)/2, padT+rowH/2+4)
	}
	for i, l := range labels {
		y := padT + float64(i)*rowH
		short := truncate(l, colW)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" class="label">%s<title>%s</title></text>`, colW+8, y+rowH/2+4, template.HTMLEscapeString(short), template.HTMLEscapeString(l))
		x := x0
		for _, s := range ss {
			v := s.Values[i]
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			bw := v / ax.top * (x1 - x0)
			fmt.Fprintf(b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
				x, y+4, bw, rowH-8, s.Color, template.HTMLEscapeString(l), template.HTMLEscapeString(s.Name), fmtNum(v))
			x += bw
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="value">%s</text>`, x+4, y+rowH/2+4, fmtNum(totals[i]))
	}
	drawLegend(b, legend, xs, rows, legendTop)
	b.WriteString(`</svg>`)
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// periods lists the report's periods from Since to Until.
func periods(r *storage.Report) []time.Time {
	step := func(t time.Time) time.Time {
		switch r.By {
		case "week":
			return t.AddDate(0, 0, 7)
		case "month":
			return t.AddDate(0, 1, 0)
		}
		return t.AddDate(0, 0, 1)
	}
	start := r.Since.UTC().Truncate(24 * time.Hour)
	switch r.By {
	case "week":
		for start.Weekday() != time.Monday {
			start = start.AddDate(0, 0, -1)
		}
	case "month":
		start = time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	var out []time.Time
	for t := start; t.Before(r.Until); t = step(t) {
		out = append(out, t)
	}
	return out
}

// maxPeriods bounds a chart's axis: a longer range shows its most recent
// periods (the tables keep them all).
const maxPeriods = 400

// fromFirstData drops the periods before the first one with data, keeping
// at least minPeriods (or all there are): a new archive's charts start
// where its data starts instead of showing weeks of nothing. The axis
// still runs to the end of the range, so quiet recent periods show.
func fromFirstData(ps []time.Time, first time.Time, found bool) []time.Time {
	if !found {
		if len(ps) > maxPeriods {
			ps = ps[len(ps)-maxPeriods:]
		}
		return ps
	}
	k := sort.Search(len(ps), func(i int) bool { return !ps[i].Before(first) })
	if k > 0 && (k == len(ps) || ps[k].After(first)) {
		k-- // first falls inside period k-1
	}
	ps = ps[min(k, max(0, len(ps)-minPeriods)):]
	if len(ps) > maxPeriods {
		ps = ps[len(ps)-maxPeriods:]
	}
	return ps
}

type htmlReport struct {
	R                         *storage.Report
	Title                     string
	Volume, Durations         template.HTML
	Unfinished, Sync          template.HTML
	FailureRate, ErrorCodes   template.HTML
	Failed                    int64
	FailureRatePct            string
	Sections                  []htmlSection
	Since, Until, GeneratedAt string
	ChartsFrom                string // the first period charted, when after Since
	ChartsFromNote            string // why the charts start there
}

// htmlSection is a section with the alignment of each column: numbers
// right, text left.
type htmlSection struct {
	section
	Numeric []bool
}

var numeric = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?%?$`)

func alignSections(ss []section) []htmlSection {
	out := make([]htmlSection, len(ss))
	for i, s := range ss {
		out[i] = htmlSection{section: s, Numeric: make([]bool, len(s.Header))}
		for c := range s.Header {
			seen, all := false, true
			for _, row := range s.Rows {
				if c >= len(row) || row[c] == "-" {
					continue
				}
				seen = true
				all = all && numeric.MatchString(row[c])
			}
			out[i].Numeric[c] = seen && all
		}
	}
	return out
}

// WriteHTML renders r as one self-contained page: inline SVG charts and
// tables, no script, no network.
func WriteHTML(w io.Writer, r *storage.Report) error {
	var first time.Time
	found := false
	note := func(t time.Time) {
		if !found || t.Before(first) {
			first, found = t, true
		}
	}
	for _, v := range r.Volume {
		note(v.Period)
	}
	for _, d := range r.Durations {
		note(d.Period)
	}
	for _, o := range r.Outcomes {
		note(o.Period)
	}
	all := periods(r)
	ps := fromFirstData(all, first, found)
	labels := make([]string, len(ps))
	index := map[int64]int{}
	for i, p := range ps {
		labels[i] = p.Format("01-02")
		if r.By == "month" {
			labels[i] = p.Format("2006-01")
		}
		index[p.Unix()] = i
	}
	nanSeries := func(name, color string) series {
		v := make([]float64, len(ps))
		for i := range v {
			v[i] = math.NaN()
		}
		return series{Name: name, Color: color, Values: v}
	}

	// Volume stacked by task type.
	byType := map[string]*series{}
	var types []string
	for _, v := range r.Volume {
		i, ok := index[v.Period.Unix()]
		if !ok {
			continue
		}
		s, ok := byType[v.TaskType]
		if !ok {
			ns := nanSeries(orNone(v.TaskType), "")
			s = &ns
			byType[v.TaskType] = s
			types = append(types, v.TaskType)
		}
		if math.IsNaN(s.Values[i]) {
			s.Values[i] = 0
		}
		s.Values[i] += float64(v.Tasks)
	}
	sort.Strings(types)
	var vol []series
	for k, t := range types {
		s := byType[t]
		s.Color = palette[k%len(palette)]
		vol = append(vol, *s)
	}

	// Percentiles of every type together.
	durs := []series{nanSeries("queue p50", palette[0]), nanSeries("queue p90", palette[7]),
		nanSeries("processing p50", palette[2]), nanSeries("processing p90", palette[1])}
	for _, d := range r.Durations {
		i, ok := index[d.Period.Unix()]
		if !ok || d.TaskType != "*" {
			continue
		}
		for k, v := range []*float64{d.QueueP50, d.QueueP90, d.ProcessP50, d.ProcessP90} {
			if v != nil {
				durs[k].Values[i] = *v
			}
		}
	}

	// Unfinished now: tasks and stuck per status.
	var unfLabels []string
	unfTasks, unfStuck := series{Name: "unfinished", Color: palette[0]}, series{Name: "stuck", Color: palette[2]}
	for _, u := range r.Unfinished {
		unfLabels = append(unfLabels, u.Status)
		unfTasks.Values = append(unfTasks.Values, float64(u.Tasks-u.Stuck))
		unfStuck.Values = append(unfStuck.Values, float64(u.Stuck))
	}

	// Sync health by day, from the first day with a run; gaps marked.
	days := map[int64]storage.SyncDayRow{}
	var firstRun time.Time
	for _, d := range r.SyncDays {
		days[d.Day.Unix()] = d
		if firstRun.IsZero() || d.Day.Before(firstRun) {
			firstRun = d.Day
		}
	}
	var allDays []time.Time
	for t := r.Since.UTC().Truncate(24 * time.Hour); t.Before(r.Until); t = t.AddDate(0, 0, 1) {
		allDays = append(allDays, t)
	}
	var dayLabels []string
	ok, failed := series{Name: "succeeded runs", Color: palette[4]}, series{Name: "failed runs", Color: palette[2]}
	gapSeries := series{Name: "coverage gaps found", Color: "#b00020"}
	for _, t := range fromFirstData(allDays, firstRun, !firstRun.IsZero()) {
		d := days[t.Unix()]
		dayLabels = append(dayLabels, t.Format("01-02"))
		ok.Values = append(ok.Values, float64(d.Succeeded))
		failed.Values = append(failed.Values, float64(d.Failed))
		gapSeries.Values = append(gapSeries.Values, float64(d.Gaps))
	}
	if len(r.SyncDays) == 0 {
		for _, s := range []*series{&ok, &failed, &gapSeries} {
			for i := range s.Values {
				s.Values[i] = math.NaN()
			}
		}
	}

	// Failure rate of every type together, per period; top error codes.
	rate := nanSeries("failure rate", palette[2])
	succ, fail := make([]float64, len(ps)), make([]float64, len(ps))
	var failedAll, decidedAll int64
	for _, o := range r.Outcomes {
		failedAll += o.Failed
		decidedAll += o.Succeeded + o.Failed
		if i, ok := index[o.Period.Unix()]; ok {
			succ[i] += float64(o.Succeeded)
			fail[i] += float64(o.Failed)
		}
	}
	for i := range ps {
		if succ[i]+fail[i] > 0 {
			rate.Values[i] = 100 * fail[i] / (succ[i] + fail[i])
		}
	}
	var codeLabels []string
	codes := series{Name: "failed tasks", Color: palette[2]}
	for _, e := range r.ErrorCodes {
		codeLabels = append(codeLabels, e.Code)
		codes.Values = append(codes.Values, float64(e.Tasks))
	}
	ratePct := "-"
	if decidedAll > 0 {
		ratePct = fmt.Sprintf("%.1f%%", 100*float64(failedAll)/float64(decidedAll))
	}
	from, fromNote := "", ""
	if len(ps) > 0 && len(all) > 0 && ps[0].After(all[0]) {
		from = ps[0].Format(time.DateOnly)
		switch {
		case found && !ps[0].After(first) && (len(ps) == 1 || ps[1].After(first)):
			fromNote = "the first " + r.By + " with data"
		case len(ps) == maxPeriods:
			fromNote = fmt.Sprintf("the last %d %ss of the range", maxPeriods, r.By)
		default:
			fromNote = fmt.Sprintf("at least %d %ss before the end of the range", minPeriods, r.By)
		}
	}

	data := htmlReport{
		FailureRate:    timeChart("Failure rate of finished tasks, all types (%)", labels, []series{rate}, "%", false, false),
		ErrorCodes:     barList("Top error codes of failed tasks", codeLabels, []series{codes}),
		Failed:         failedAll,
		FailureRatePct: ratePct,
		R:              r,
		Title:          "MPS task archive",
		Volume:         timeChart("Tasks created per "+r.By+", by task type", labels, vol, "", true, true),
		Durations:      timeChart("Queue wait and processing time, all types (seconds)", labels, durs, "s", false, false),
		Unfinished:     barList("Tasks not finished now, by status", unfLabels, []series{unfTasks, unfStuck}),
		Sync:           timeChart("Sync runs per day", dayLabels, []series{ok, failed, gapSeries}, "", true, true),
		Sections:       alignSections(sections(r)),
		Since:          r.Since.UTC().Format(time.RFC3339),
		Until:          r.Until.UTC().Format(time.RFC3339),
		GeneratedAt:    r.Generated.Format(time.RFC3339),
		ChartsFrom:     from,
		ChartsFromNote: fromNote,
	}
	return htmlTemplate.Execute(w, data)
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; padding: 0 16px; max-width: 820px; color: #1b1b1b; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
.meta { color: #666; overflow-wrap: anywhere; } .kpis { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; } .kpi b { display: block; font-size: 20px; }
.bad b { color: #b00020; } p { overflow-wrap: anywhere; }
.caption { margin: 12px 0 0; color: #444; font-size: 13px; }
svg.chart { display: block; margin: 8px 0; width: 100%; height: auto; font-family: system-ui, sans-serif; }
svg.wide { max-width: 760px; } svg.narrow { display: none; }
@media (max-width: 600px) { svg.wide { display: none; } svg.narrow { display: block; } }
.tick, .legend, .label, .value { fill: #444; } .empty { fill: #999; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; } td, th { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: left; }
th { background: #f6f6f6; } .num { text-align: right; font-variant-numeric: tabular-nums; }
details { margin: 8px 0; }
</style></head><body>
<h1>{{.Title}}</h1>
<div class="meta">Tasks created {{.Since}} … {{.Until}}{{if .R.TaskType}}, type {{.R.TaskType}}{{end}}; generated {{.GeneratedAt}}{{if .ChartsFrom}}; charts start at {{.ChartsFrom}}, {{.ChartsFromNote}}{{end}}</div>
<div class="kpis">
<div class="kpi"><b id="kpi-total">{{.R.Total}}</b>tasks</div>
{{range $k, $v := .R.ByStatus}}<div class="kpi"><b>{{$v}}</b>{{$k}}</div>{{end}}
<div class="kpi{{if .R.Runs.Failed}} bad{{end}}"><b>{{.R.Runs.Failed}}</b>failed runs of {{.R.Runs.Total}}</div>
<div class="kpi{{if .R.Gaps}} bad{{end}}"><b>{{len .R.Gaps}}</b>coverage gaps</div>
<div class="kpi{{if .Failed}} bad{{end}}"><b id="kpi-failed">{{.Failed}}</b>failed tasks ({{.FailureRatePct}})</div>
<div class="kpi{{if .R.Details.Overdue}} bad{{end}}"><b>{{.R.Details.Queued}}</b>details queued, {{.R.Details.Overdue}} overdue</div>
<div class="kpi{{if .R.Details.Expired}} bad{{end}}"><b>{{.R.Details.Expired}}</b>details expired uncaptured</div>
</div>
<h2>Volume</h2>
<div id="chart-volume">{{.Volume}}</div>
<h2>Durations</h2>
<div id="chart-durations">{{.Durations}}</div>
<h2>Outcomes</h2>
<div id="chart-failure-rate">{{.FailureRate}}</div>
<div id="chart-error-codes">{{.ErrorCodes}}</div>
<h2>Unfinished and stuck</h2>
<div id="chart-unfinished">{{.Unfinished}}</div>
<h2>Sync health</h2>
<div id="chart-sync">{{.Sync}}</div>
{{if .R.Gaps}}<p class="bad">Coverage gaps: {{range .R.Gaps}}tasks created {{.Start.UTC.Format "2006-01-02 15:04"}} … {{.End.UTC.Format "2006-01-02 15:04"}} UTC may be missing (found by run {{.RunID}}). {{end}}</p>{{end}}
<h2>Tables</h2>
{{range .Sections}}{{$num := .Numeric}}<details><summary>{{.Title}}</summary>
<div class="scroll"><table><tr>{{range $i, $h := .Header}}<th{{if index $num $i}} class="num"{{end}}>{{$h}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range $i, $c := .}}<td{{if index $num $i}} class="num"{{end}}>{{$c}}</td>{{end}}</tr>{{end}}</table></div>{{if .Note}}<p>{{.Note}}</p>{{end}}</details>
{{end}}
</body></html>
`))
