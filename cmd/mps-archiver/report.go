package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mps-archiver/mps-archiver/storage"
)

// runReport prints a summary of the archive.
func runReport(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "report", "[--since DATE] [--until DATE] [--format table|json]")
	var cf commonFlags
	cf.register(fs, env)
	since := fs.String("since", "", "first day (YYYY-MM-DD or RFC 3339) of tasks' create time (default: everything)")
	until := fs.String("until", "", "end (exclusive) of the range (default: now)")
	format := fs.String("format", "table", "output format: table or json")
	if stop, err := handleParse(parseFlags(fs, args)); stop {
		return err
	}
	from, err := parseDay("--since", *since, time.Unix(0, 0).UTC())
	if err != nil {
		return err
	}
	to, err := parseDay("--until", *until, time.Now().UTC().Add(time.Second))
	if err != nil {
		return err
	}
	if !to.After(from) {
		return fmt.Errorf("--until %s is not after --since %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if *format != "table" && *format != "json" {
		return fmt.Errorf("--format %q: want table or json", *format)
	}
	cfg, err := cf.load(env)
	if err != nil {
		return err
	}
	if err := cfg.Validate(false); err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	sum, err := st.Summarize(ctx, from, to)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	writeSummary(env.Stdout, sum)
	return nil
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
		return time.Time{}, fmt.Errorf("%s %q: want YYYY-MM-DD or an RFC 3339 time", flagName, v)
	}
	return t, nil
}

func writeSummary(w io.Writer, sum *storage.Summary) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Archived tasks: %d\n", sum.Total)
	for _, c := range sum.ByStatus {
		fmt.Fprintf(tw, "  %s\t%d\n", c.Label, c.N)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TASK TYPE\tTASKS\tFINISHED\tQUEUE p50\tQUEUE p90\tPROCESS p50\tPROCESS p90")
	for _, t := range sum.ByType {
		name := t.TaskType
		if name == "" {
			name = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\n", name, t.Tasks, t.Finished,
			secs(t.QueueP50), secs(t.QueueP90), secs(t.ProcessP50), secs(t.ProcessP90))
	}
	fmt.Fprintln(tw)
	r := sum.Runs
	last := "never"
	if r.LastSuccess != nil {
		last = r.LastSuccess.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(tw, "Sync runs: %d (%d succeeded, %d failed, %d running); last success %s\n", r.Total, r.Succeeded, r.Failed, r.Running, last)
	if r.LastError != nil {
		fmt.Fprintf(tw, "Last failure: %s\n", truncateLine(*r.LastError, 160))
	}
	if len(sum.Gaps) == 0 {
		fmt.Fprintln(tw, "Coverage gaps: none")
	}
	for _, g := range sum.Gaps {
		fmt.Fprintf(tw, "Coverage gap: tasks created %s … %s may be missing (found by run %d)\n",
			g.Start.UTC().Format(time.RFC3339), g.End.UTC().Format(time.RFC3339), g.RunID)
	}
	tw.Flush()
}

func secs(v *float64) string {
	if v == nil {
		return "-"
	}
	return (time.Duration(*v * float64(time.Second))).Round(time.Second).String()
}

func truncateLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
