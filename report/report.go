// Package report renders the archive's report (storage.Report) as a
// terminal table, CSV, JSON, Markdown, or a self-contained HTML page with
// inline SVG charts. It does no I/O of its own beyond the writer it is
// given, so a fixed report value renders to fixed bytes (the golden files
// under testdata/).
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mps-archiver/mps-archiver/storage"
)

// Formats are the text formats Write knows, in the order help lists them.
var Formats = []string{"table", "csv", "json", "markdown"}

// Write renders r to w in format, one of Formats.
func Write(w io.Writer, format string, r *storage.Report) error {
	write, ok := writers[format]
	if !ok {
		return fmt.Errorf("format %q: want %s", format, strings.Join(Formats, ", "))
	}
	return write(w, r)
}

// KnownFormat reports whether format is one of Formats.
func KnownFormat(format string) bool {
	_, ok := writers[format]
	return ok
}

var writers = map[string]func(io.Writer, *storage.Report) error{
	"table":    func(w io.Writer, r *storage.Report) error { return writeSections(w, r, tableSection) },
	"markdown": func(w io.Writer, r *storage.Report) error { return writeSections(w, r, markdownSection) },
	"csv":      writeCSV,
	"json": func(w io.Writer, r *storage.Report) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	},
}

// SectionNames are the report's tables, in order: what --section takes.
var SectionNames = []string{"volume", "durations", "subtasks", "unfinished", "sync_health", "coverage_gaps",
	"outcomes", "error_codes", "subtask_outcomes", "detail_backlog", "billed_usage", "usage_reconciliation", "output_minutes"}

// WriteSection writes one table of the report in format: for csv a plain
// table (its header, then its rows) that any tool loads as it is; for
// json the table's title, header and rows.
func WriteSection(w io.Writer, format string, r *storage.Report, name string) error {
	var s *section
	for _, c := range sections(r) {
		if c.Name == name {
			s = &c
			break
		}
	}
	if s == nil {
		return fmt.Errorf("section %q: want one of %s", name, strings.Join(SectionNames, ", "))
	}
	switch format {
	case "table":
		return tableSection(w, *s)
	case "markdown":
		return markdownSection(w, *s)
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(s.Header); err != nil {
			return err
		}
		if err := cw.WriteAll(s.Rows); err != nil {
			return err
		}
		return cw.Error()
	case "json":
		rows := s.Rows
		if rows == nil {
			rows = [][]string{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Name   string     `json:"name"`
			Title  string     `json:"title"`
			Header []string   `json:"header"`
			Rows   [][]string `json:"rows"`
			Note   string     `json:"note,omitempty"`
		}{s.Name, s.Title, s.Header, rows, s.Note})
	}
	return fmt.Errorf("format %q: want %s", format, strings.Join(Formats, ", "))
}

// section is one titled table of the report.
type section struct {
	Name, Title string
	Header      []string
	Rows        [][]string
	Note        string
}

func sections(r *storage.Report) []section {
	period := func(t time.Time) string {
		if r.By == "month" {
			return t.UTC().Format("2006-01")
		}
		return t.UTC().Format(time.DateOnly)
	}
	var out []section
	vol := section{Name: "volume", Title: fmt.Sprintf("Tasks by %s, type and status (%d in all)", r.By, r.Total),
		Header: []string{r.By, "task_type", "status", "tasks"}}
	for _, v := range r.Volume {
		vol.Rows = append(vol.Rows, []string{period(v.Period), orNone(v.TaskType), v.Status, strconv.FormatInt(v.Tasks, 10)})
	}
	out = append(out, vol)
	dur := section{Name: "durations", Title: "Queue wait and processing time (seconds)",
		Header: []string{r.By, "task_type", "tasks", "queue_p50", "queue_p90", "queue_p99", "processing_p50", "processing_p90", "processing_p99"}}
	for _, d := range r.Durations {
		dur.Rows = append(dur.Rows, []string{period(d.Period), orNone(d.TaskType), strconv.FormatInt(d.Tasks, 10),
			num(d.QueueP50), num(d.QueueP90), num(d.QueueP99), num(d.ProcessP50), num(d.ProcessP90), num(d.ProcessP99)})
	}
	out = append(out, dur)
	sub := section{Name: "subtasks", Title: "Sub-task kinds used (action-trans and Transcode count as one kind)", Header: []string{"sub_task_type", "tasks"}}
	for _, s := range r.Subtasks {
		sub.Rows = append(sub.Rows, []string{s.SubTaskType, strconv.FormatInt(s.Tasks, 10)})
	}
	out = append(out, sub)
	unf := section{Name: "unfinished", Title: fmt.Sprintf("Unfinished now (stuck: PROCESSING over %s)", r.Params.StuckAfter),
		Header: []string{"status", "tasks", "median_in_state_s", "oldest_in_state_s", "stuck"}}
	for _, u := range r.Unfinished {
		unf.Rows = append(unf.Rows, []string{u.Status, strconv.FormatInt(u.Tasks, 10), num(u.MedianS), num(u.OldestS), strconv.FormatInt(u.Stuck, 10)})
	}
	out = append(out, unf)
	sy := section{Name: "sync_health", Title: "Sync runs by day", Header: []string{"day", "runs", "succeeded", "failed", "gaps_found"}}
	for _, d := range r.SyncDays {
		sy.Rows = append(sy.Rows, []string{d.Day.Format(time.DateOnly), strconv.FormatInt(d.Runs, 10), strconv.FormatInt(d.Succeeded, 10),
			strconv.FormatInt(d.Failed, 10), strconv.FormatInt(d.Gaps, 10)})
	}
	last := "never"
	if r.Runs.LastSuccess != nil {
		last = r.Runs.LastSuccess.UTC().Format(time.RFC3339)
	}
	sy.Note = fmt.Sprintf("%d runs in the range (%d succeeded, %d failed, %d running); last success %s", r.Runs.Total, r.Runs.Succeeded, r.Runs.Failed, r.Runs.Running, last)
	if r.Runs.LastError != nil {
		sy.Note += "; last failure: " + truncateLine(*r.Runs.LastError, 160)
	}
	out = append(out, sy)
	gaps := section{Name: "coverage_gaps", Title: "Coverage gaps (tasks created in these periods may be missing)", Header: []string{"gap_start", "gap_end", "found_by_run"}}
	for _, g := range r.Gaps {
		gaps.Rows = append(gaps.Rows, []string{g.Start.UTC().Format(time.RFC3339), g.End.UTC().Format(time.RFC3339), strconv.FormatInt(g.RunID, 10)})
	}
	if len(r.Gaps) == 0 {
		gaps.Note = "none"
	}
	out = append(out, gaps)

	oc := section{Name: "outcomes", Title: "How finished tasks ended (failure rate = failed / (succeeded + failed))",
		Header: []string{r.By, "task_type", "finished", "succeeded", "failed", "expired", "unknown", "failure_rate"}}
	for _, o := range r.Outcomes {
		oc.Rows = append(oc.Rows, []string{period(o.Period), orNone(o.TaskType), strconv.FormatInt(o.Finished, 10), strconv.FormatInt(o.Succeeded, 10),
			strconv.FormatInt(o.Failed, 10), strconv.FormatInt(o.Expired, 10), strconv.FormatInt(o.Unknown, 10), percent(o.FailureRate)})
	}
	out = append(out, oc)
	ec := section{Name: "error_codes", Title: "Top error codes of failed tasks", Header: []string{"error_code", "tasks"}}
	for _, e := range r.ErrorCodes {
		ec.Rows = append(ec.Rows, []string{e.Code, strconv.FormatInt(e.Tasks, 10)})
	}
	out = append(out, ec)
	so := section{Name: "subtask_outcomes", Title: "Sub-task results by kind", Header: []string{"kind", "subtasks", "failed"}}
	for _, k := range r.SubtaskOutcomes {
		so.Rows = append(so.Rows, []string{k.Kind, strconv.FormatInt(k.Subtasks, 10), strconv.FormatInt(k.Failed, 10)})
	}
	out = append(out, so)
	d := r.Details
	oldest := "-"
	if d.OldestDeadline != nil {
		oldest = d.OldestDeadline.UTC().Format(time.RFC3339)
	}
	out = append(out, section{Name: "detail_backlog", Title: "Detail capture",
		Header: []string{"queued", "overdue", "gave_up", "oldest_deadline", "expired_uncaptured"},
		Rows: [][]string{{strconv.FormatInt(d.Queued, 10), strconv.FormatInt(d.Overdue, 10), strconv.FormatInt(d.GaveUp, 10), oldest,
			strconv.FormatInt(d.Expired, 10)}}})
	return append(out, usageSections(r)...)
}

// usageSections are what MPS billed over the range (Beijing days), its
// transcoding next to the archived outputs, and who spent it.
func usageSections(r *storage.Report) []section {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	billed := section{Name: "billed_usage", Title: "What MPS billed (DescribeUsageData, every region; Beijing days)",
		Header: []string{"type", "specification", "count", "usage", "unit"}}
	for _, u := range r.Usage {
		billed.Rows = append(billed.Rows, []string{u.Type, orNone(u.Specification), strconv.FormatInt(u.Count, 10), f(u.Usage), u.Unit})
	}
	if len(r.Usage) == 0 {
		billed.Note = "none archived for these days (usage.mode off, or no usage run yet: `mps-archiver usage`)"
	}
	span := fmt.Sprintf("%s … %s", r.OutputsSince.Format(time.DateOnly), r.OutputsUntil.Format(time.DateOnly))
	rec := section{Name: "usage_reconciliation", Title: "Billed transcoding against the archived outputs, " + span + " (seconds, by codec × tier of the short edge)",
		Header: []string{"codec", "tier", "specifications", "billed_s", "accounted_s", "difference_s", "days", "days_agreeing"}}
	for _, c := range r.Reconciliation {
		rec.Rows = append(rec.Rows, []string{orNone(c.Codec), orNone(c.Tier), strings.Join(c.Specifications, " "), f(c.BilledS), f(c.AccountedS),
			f(c.DifferenceS), strconv.FormatInt(c.Days, 10), strconv.FormatInt(c.DaysAgreeing, 10)})
	}
	rec.Note = fmt.Sprintf("billed but not placed by the archive: %d outputs without a duration (adaptive streaming), %d without a codec or a resolution, %d finished tasks without a captured outcome; why the two differ: docs/reporting.md",
		r.Unaccounted.OutputsWithoutDuration, r.Unaccounted.OutputsUnclassified, r.Unaccounted.TasksWithoutOutcome)
	if !r.OutputsSince.Equal(r.Since.UTC().Truncate(24 * time.Hour)) {
		rec.Note += fmt.Sprintf("; these sections read the archived outputs, and cover the range's last %d days at most (any range: mps_usage_reconciliation)", storage.ReportOutputDays)
	}
	sp := section{Name: "output_minutes", Title: "Who spent it: transcoded output minutes, " + span + ", top 5 task types, templates and buckets",
		Header: []string{"by", "value", "outputs", "minutes"}}
	for _, x := range r.Spenders {
		sp.Rows = append(sp.Rows, []string{x.By, x.Value, strconv.FormatInt(x.Outputs, 10), f(x.Minutes)})
	}
	return []section{billed, rec, sp}
}

func percent(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(100**v, 'f', 1, 64) + "%"
}

func writeSections(w io.Writer, r *storage.Report, one func(io.Writer, section) error) error {
	head := fmt.Sprintf("Tasks created %s … %s", r.Since.UTC().Format(time.RFC3339), r.Until.UTC().Format(time.RFC3339))
	if r.TaskType != "" {
		head += ", type " + r.TaskType
	}
	if _, err := fmt.Fprintln(w, head); err != nil {
		return err
	}
	for _, s := range sections(r) {
		if err := one(w, s); err != nil {
			return err
		}
	}
	return nil
}

func tableSection(w io.Writer, s section) error {
	fmt.Fprintf(w, "\n%s\n", s.Title)
	if len(s.Rows) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  "+strings.ToUpper(strings.Join(s.Header, "\t")))
		for _, row := range s.Rows {
			fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if s.Note != "" {
		fmt.Fprintf(w, "  %s\n", s.Note)
	} else if len(s.Rows) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	return nil
}

func markdownSection(w io.Writer, s section) error {
	fmt.Fprintf(w, "\n## %s\n\n", s.Title)
	if len(s.Rows) > 0 {
		fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(s.Header, " | "), strings.Repeat(" --- |", len(s.Header)))
		for _, row := range s.Rows {
			esc := make([]string, len(row))
			for i, c := range row {
				esc[i] = strings.ReplaceAll(c, "|", `\|`)
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(esc, " | "))
		}
	}
	if s.Note != "" {
		fmt.Fprintf(w, "\n%s\n", s.Note)
	}
	return nil
}

// writeCSV writes every section into one CSV: a header row whose first cell
// is "section", then the section's rows with its name in the first cell.
func writeCSV(w io.Writer, r *storage.Report) error {
	cw := csv.NewWriter(w)
	for _, s := range sections(r) {
		if err := cw.Write(append([]string{"section"}, s.Header...)); err != nil {
			return err
		}
		for _, row := range s.Rows {
			if err := cw.Write(append([]string{s.Name}, row...)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func truncateLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
