package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/report"
	"github.com/mps-archiver/mps-archiver/storage"
)

// runReport answers the common questions of the archive in the terminal,
// as CSV/JSON/Markdown for other tools, or as a self-contained HTML page.
func runReport(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "report", "[--since DATE] [--until DATE] [--by day|week|month] [--type T] [--format table|csv|json|markdown] [--section NAME] [--html FILE]")
	var cf commonFlags
	cf.register(fs, env)
	since := fs.String("since", "", "start of the range of tasks' create time: YYYY-MM-DD or RFC 3339 (default: 30 days before --until)")
	until := fs.String("until", "", "end (exclusive) of the range (default: now)")
	by := fs.String("by", "day", "period: day, week or month")
	taskType := fs.String("type", "", "only this task type (e.g. WorkflowTask)")
	format := fs.String("format", "table", "output: table, csv, json or markdown")
	stuck := fs.Duration("stuck-after", time.Hour, "a task PROCESSING longer than this is stuck")
	section := fs.String("section", "", "only this table ("+strings.Join(report.SectionNames, ", ")+"); with --format csv a plain CSV of it")
	html := fs.String("html", "", "also write a self-contained HTML report with charts to this file (- : write the page to standard output instead of the text report)")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	to, err := parseDay("--until", *until, time.Now().UTC())
	if err != nil {
		return err
	}
	from, err := parseDay("--since", *since, to.AddDate(0, 0, -30))
	if err != nil {
		return err
	}
	if !to.After(from) {
		return usageErrorf("--until %s is not after --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	switch *by {
	case "day", "week", "month":
	default:
		return usageErrorf("--by %q: want day, week or month", *by)
	}
	if !report.KnownFormat(*format) {
		return usageErrorf("--format %q: want %s", *format, strings.Join(report.Formats, ", "))
	}
	if *stuck <= 0 {
		return usageErrorf("--stuck-after %s must be positive", *stuck)
	}
	if *section != "" && *html == "-" {
		return usageErrorf("--section and --html - both choose what goes to standard output: use one")
	}
	if *section != "" && !slices.Contains(report.SectionNames, *section) {
		return usageErrorf("--section %q: want one of %s", *section, strings.Join(report.SectionNames, ", "))
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if *taskType != "" {
		types, err := st.TaskTypes(ctx)
		if err != nil {
			return err
		}
		if !slices.Contains(types, *taskType) {
			return fmt.Errorf("--type %q: the archive has no task of that type (it has: %s)", *taskType, strings.Join(types, ", "))
		}
	}
	rep, err := st.Report(ctx, storage.ReportParams{Since: from, Until: to, By: *by, TaskType: *taskType, StuckAfter: *stuck})
	if err != nil {
		return err
	}
	if *html == "-" {
		// The page on standard output, instead of the text report.
		return report.WriteHTML(env.Stdout, rep)
	}
	if *html != "" {
		f, err := os.Create(*html)
		if err != nil {
			return fmt.Errorf("--html: %w", err)
		}
		if err := report.WriteHTML(f, rep); err != nil {
			f.Close()
			return fmt.Errorf("--html: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--html: %w", err)
		}
	}
	if *section != "" {
		return report.WriteSection(env.Stdout, *format, rep, *section)
	}
	return report.Write(env.Stdout, *format, rep)
}

func parseDay(flagName, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q: want YYYY-MM-DD or an RFC 3339 time", flagName, v)
	}
	return t.UTC(), nil
}
