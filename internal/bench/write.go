package bench

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// writeHistory prints the history mode's archives, the dashboard's panels
// on each, and the ratios against their targets (not judged below
// TargetPerDay).
func writeHistory(w io.Writer, h *HistoryReport) {
	ledger := "the build's own runs only"
	if h.LedgerRunsPerDay > 0 {
		ledger = fmt.Sprintf("padded to %d runs a day", h.LedgerRunsPerDay)
	}
	fmt.Fprintf(w, "\nhistory: %d tasks a day, built a simulated day a sync (details.mode %s), run ledger %s;\n"+
		"times in ms, the median of %d repetitions after a warm-up; dashboard: %s over the last 30 days\n\n",
		h.PerDay, h.Details, ledger, h.Repetitions, h.Dashboard)
	ms := func(sec float64) string { return fmt.Sprintf("%.2f", 1000*sec) }
	opt := func(t *Timing) string {
		if t == nil {
			return "-"
		}
		return ms(t.Median)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "archive\ttasks\tsyncs\tbuild s\tledger runs\tdatabase\t30-day report\t12-month report\t12 months by day\tdashboard\tvariables\t")
	for _, a := range h.Archives {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%d\t%.0f MiB\t%s\t%s\t%s\t%s\t%s\t\n", monthsLabel(a.Months), a.Tasks, a.Syncs, a.BuildSeconds,
			a.LedgerRuns, float64(a.Bytes)/(1<<20), ms(a.Report30.Median), opt(a.Report12), opt(a.Report12ByDay), ms(a.Dashboard.Median), ms(a.Variables.Median))
	}
	tw.Flush()

	if len(h.Archives) > 0 {
		fmt.Fprintln(w)
		head := "dashboard panel (ms, rows)\t"
		for _, a := range h.Archives {
			head += monthsLabel(a.Months) + "\t"
		}
		fmt.Fprintln(tw, head)
		for i, p := range h.Archives[0].Panels {
			line := p.Title + "\t"
			for _, a := range h.Archives {
				line += fmt.Sprintf("%s (%d)\t", ms(a.Panels[i].Median), a.Panels[i].Rows)
			}
			fmt.Fprintln(tw, line)
		}
		total := fmt.Sprintf("total of %d panels\t", len(h.Archives[0].Panels))
		for _, a := range h.Archives {
			total += ms(a.Dashboard.Median) + "\t"
		}
		fmt.Fprintln(tw, total)
		tw.Flush()
	}

	q := h.Ratios
	small := h.PerDay < TargetPerDay
	verdict := judge(small)
	var lines [][2]string
	line := func(label, format string, a ...any) {
		lines = append(lines, [2]string{label + ":", fmt.Sprintf(format, a...)})
	}
	vs := fmt.Sprintf("%s / %s archive", monthsLabel(q.LargeMonths), monthsLabel(q.SmallMonths))
	if q.Report30 > 0 {
		line("30-day report, "+vs, "%.2fx   (target <= 1.25x: %s)", q.Report30, verdict(q.Report30 <= 1.25))
		line("dashboard, 30 days, "+vs, "%.2fx   (target <= 1.25x: %s)", q.Dashboard30, verdict(q.Dashboard30 <= 1.25))
	}
	if q.Report12Vs30 > 0 {
		on := " (" + monthsLabel(q.LargeMonths) + " archive)"
		line("12-month report by month / 30-day report"+on, "%.2fx   (target <= 2x: %s)", q.Report12Vs30, verdict(q.Report12Vs30 <= 2))
		line("12-month report by day / 30-day report"+on, "%.2fx   (not a target: 12 times the rows out)", q.Report12DayVs30)
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l[0]))
	}
	fmt.Fprintln(w)
	for _, l := range lines {
		fmt.Fprintf(w, "%-*s  %s\n", width, l[0], l[1])
	}
	if small {
		fmt.Fprintf(w, "\nThe history targets are judged from %d tasks a day: below that, fixed costs (a round trip,\n"+
			"planning) hide what grows with the archive. Run with --history-per-day %d to judge them.\n", TargetPerDay, TargetPerDay)
	}
}

// writeBaseline prints this binary's cold sync against the baseline's
// (not judged below TargetTasks).
func writeBaseline(w io.Writer, b *BaselineReport) {
	verdict := "not judged"
	switch {
	case b.Tasks < TargetTasks:
	case b.Ratio >= 0.9:
		verdict = "met"
	default:
		verdict = "MISSED"
	}
	fmt.Fprintf(w, "\ncold sync, this binary / baseline:          %.2fx   (target >= 0.9x: %s)\n", b.Ratio, verdict)
	fmt.Fprintf(w, "  this:     %8.0f tasks/s  %s\n", b.ThisTasksPerSec, b.ThisVersion)
	fmt.Fprintf(w, "  baseline: %8.0f tasks/s  %s (%s)\n", b.BaselineTasksPerSec, b.Version, b.Binary)
	fmt.Fprintf(w, "  %d tasks unthrottled, the median of %d runs each, alternating, a fresh database each\n", b.Tasks, b.Rounds)
}

func monthsLabel(m int) string {
	if m == 1 {
		return "1 month"
	}
	return fmt.Sprintf("%d months", m)
}
