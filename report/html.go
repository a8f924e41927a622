package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/storage"
)

// The HTML report is one file with inline SVG and CSS: no script, no font,
// no network fetch, so it can be mailed, archived or opened offline.

var palette = []string{"#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2", "#97bbf5", "#9c6b4e", "#9498a0"}

// chart geometry, in SVG user units.
const (
	chartW, chartH         = 760.0, 260.0
	padL, padR, padT, padB = 64.0, 16.0, 16.0, 48.0
)

type series struct {
	Name   string
	Color  string
	Values []float64 // one per x; NaN for none
}

// barChart draws stacked bars, one per label.
func barChart(title string, labels []string, ss []series, unit string) template.HTML {
	var b strings.Builder
	maxY := 0.0
	for i := range labels {
		sum := 0.0
		for _, s := range ss {
			if !math.IsNaN(s.Values[i]) {
				sum += s.Values[i]
			}
		}
		maxY = math.Max(maxY, sum)
	}
	maxY = niceCeil(maxY)
	openSVG(&b, title)
	axes(&b, labels, maxY, unit)
	if len(labels) > 0 && maxY > 0 {
		slot := (chartW - padL - padR) / float64(len(labels))
		bw := math.Max(1, slot*0.75)
		for i := range labels {
			y := chartH - padB
			for _, s := range ss {
				v := s.Values[i]
				if math.IsNaN(v) || v <= 0 {
					continue
				}
				h := v / maxY * (chartH - padT - padB)
				y -= h
				fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`,
					padL+float64(i)*slot+(slot-bw)/2, y, bw, h, s.Color, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(s.Name), fmtNum(v))
			}
		}
	}
	legend(&b, ss)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineChart draws one polyline per series.
func lineChart(title string, labels []string, ss []series, unit string) template.HTML {
	var b strings.Builder
	maxY := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				maxY = math.Max(maxY, v)
			}
		}
	}
	maxY = niceCeil(maxY)
	openSVG(&b, title)
	axes(&b, labels, maxY, unit)
	if len(labels) > 0 && maxY > 0 {
		slot := (chartW - padL - padR) / float64(len(labels))
		for _, s := range ss {
			var pts []string
			for i, v := range s.Values {
				if math.IsNaN(v) {
					continue
				}
				x := padL + float64(i)*slot + slot/2
				y := chartH - padB - v/maxY*(chartH-padT-padB)
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %s</title></circle>`,
					x, y, s.Color, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(s.Name), fmtNum(v))
			}
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline class="line" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, s.Color, strings.Join(pts, " "))
			}
		}
	}
	legend(&b, ss)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func openSVG(b *strings.Builder, title string) {
	fmt.Fprintf(b, `<svg class="chart" role="img" aria-label="%s" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" xmlns="http://www.w3.org/2000/svg">`,
		template.HTMLEscapeString(title), chartW, chartH+28, chartW, chartH+28)
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten, so that
// the axis ticks, quarters of it, are round numbers.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 4, 5, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func axes(b *strings.Builder, labels []string, maxY float64, unit string) {
	x0, y0, x1, y1 := padL, chartH-padB, chartW-padR, padT
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, x0, y0, x1, y0)
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`, x0, y0, x0, y1)
	for k := 0; k <= 4; k++ {
		v := maxY * float64(k) / 4
		y := y0 - (y0-y1)*float64(k)/4
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`, x0+1, y, x1, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end" class="tick">%s%s</text>`, x0-6, y+4, fmtNum(v), unit)
	}
	if len(labels) == 0 {
		fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle" class="empty">no data in this range</text>`, (x0+x1)/2, (y0+y1)/2)
		return
	}
	slot := (x1 - x0) / float64(len(labels))
	every := int(math.Ceil(float64(len(labels)) / 12))
	for i, l := range labels {
		if i%every != 0 {
			continue
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle" class="tick">%s</text>`, x0+float64(i)*slot+slot/2, y0+16, template.HTMLEscapeString(l))
	}
}

func legend(b *strings.Builder, ss []series) {
	x := padL
	for _, s := range ss {
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f" class="legend">%s</text>`,
			x, chartH+8, s.Color, x+14, chartH+17, template.HTMLEscapeString(s.Name))
		x += 24 + 7*float64(len(s.Name))
	}
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
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
	for t := start; t.Before(r.Until) && len(out) < 400; t = step(t) {
		out = append(out, t)
	}
	return out
}

type htmlReport struct {
	R                         *storage.Report
	Title                     string
	Volume, Durations         template.HTML
	Unfinished, Sync          template.HTML
	FailureRate, ErrorCodes   template.HTML
	Failed                    int64
	FailureRatePct            string
	Sections                  []section
	Since, Until, GeneratedAt string
}

// WriteHTML renders r as one self-contained page: inline SVG charts and
// tables, no script, no network.
func WriteHTML(w io.Writer, r *storage.Report) error {
	ps := periods(r)
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

	// Sync health by day, gaps marked.
	days := map[int64]storage.SyncDayRow{}
	for _, d := range r.SyncDays {
		days[d.Day.Unix()] = d
	}
	var dayLabels []string
	ok, failed := series{Name: "succeeded runs", Color: palette[4]}, series{Name: "failed runs", Color: palette[2]}
	gapSeries := series{Name: "coverage gaps found", Color: "#b00020"}
	for t := r.Since.UTC().Truncate(24 * time.Hour); t.Before(r.Until) && len(dayLabels) < 400; t = t.AddDate(0, 0, 1) {
		d := days[t.Unix()]
		dayLabels = append(dayLabels, t.Format("01-02"))
		ok.Values = append(ok.Values, float64(d.Succeeded))
		failed.Values = append(failed.Values, float64(d.Failed))
		gapSeries.Values = append(gapSeries.Values, float64(d.Gaps))
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

	data := htmlReport{
		FailureRate:    lineChart("Failure rate of finished tasks, all types (%)", labels, []series{rate}, "%"),
		ErrorCodes:     barChart("Top error codes of failed tasks", codeLabels, []series{codes}, ""),
		Failed:         failedAll,
		FailureRatePct: ratePct,
		R:              r,
		Title:          "MPS task archive",
		Volume:         barChart("Tasks created per "+r.By+", by task type", labels, vol, ""),
		Durations:      lineChart("Queue wait and processing time, all types (seconds)", labels, durs, "s"),
		Unfinished:     barChart("Tasks not finished now, by status", unfLabels, []series{unfTasks, unfStuck}, ""),
		Sync:           barChart("Sync runs per day", dayLabels, []series{ok, failed, gapSeries}, ""),
		Sections:       sections(r),
		Since:          r.Since.UTC().Format(time.RFC3339),
		Until:          r.Until.UTC().Format(time.RFC3339),
		GeneratedAt:    r.Generated.Format(time.RFC3339),
	}
	return htmlTemplate.Execute(w, data)
}

var htmlTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 820px; color: #1b1b1b; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 32px; }
.meta { color: #666; } .kpis { display: flex; gap: 12px; flex-wrap: wrap; margin: 16px 0; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; } .kpi b { display: block; font-size: 20px; }
.bad b { color: #b00020; }
svg.chart { display: block; margin: 8px 0; } .tick, .legend { font-size: 11px; fill: #444; } .empty { fill: #999; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12px; } td, th { border-bottom: 1px solid #eee; padding: 3px 8px; text-align: right; }
th { background: #f6f6f6; } td:first-child, th:first-child { text-align: left; }
details { margin: 8px 0; }
</style></head><body>
<h1>{{.Title}}</h1>
<div class="meta">Tasks created {{.Since}} … {{.Until}}{{if .R.TaskType}}, type {{.R.TaskType}}{{end}}; generated {{.GeneratedAt}}</div>
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
{{range .Sections}}<details><summary>{{.Title}}</summary>
<table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>{{if .Note}}<p>{{.Note}}</p>{{end}}</details>
{{end}}
</body></html>
`))
