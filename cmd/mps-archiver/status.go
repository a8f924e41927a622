package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mps-archiver/mps-archiver/migrations"
	"github.com/mps-archiver/mps-archiver/storage"
	"github.com/mps-archiver/mps-archiver/syncer"
)

// exitAttention is status's exit when something needs an operator.
const exitAttention = 4

// statusReport is what `status` shows, and its JSON.
type statusReport struct {
	Version         string               `json:"version"`
	SchemaVersion   uint                 `json:"schema_version"`
	SchemaDirty     bool                 `json:"schema_dirty"`
	BinarySchema    uint                 `json:"binary_schema_version"`
	LastSuccess     *storage.RunSummary  `json:"last_success,omitempty"`
	LastRun         *storage.RunSummary  `json:"last_run,omitempty"`
	Running         *storage.RunSummary  `json:"running,omitempty"`
	HeadroomSeconds float64              `json:"retention_headroom_seconds"`
	FullFailures    int64                `json:"full_run_failures"`
	CoverageGaps    int64                `json:"coverage_gaps"`
	LastGap         *storage.CoverageGap `json:"last_coverage_gap,omitempty"`
	DetailsQueued   int64                `json:"details_queued"`
	DetailsFailing  int64                `json:"details_failing"`
	DetailsGaveUp   int64                `json:"details_gave_up_7d"`
	OldestDeadline  *time.Time           `json:"details_oldest_deadline,omitempty"`
	API             map[string]string    `json:"api_capabilities"`
	// Dated tasks the last successful run's start could not move into a
	// month's partition.
	WaitingForPartition int64 `json:"tasks_waiting_for_partition"`
	// Usage is billed usage's ledger and coverage (absent with usage.mode
	// off).
	Usage *storage.UsageStatus `json:"usage,omitempty"`
	Proof *storage.ProofStatus `json:"proof_log,omitempty"`
	// CheckpointDir is where signed checkpoints are published ("": nowhere).
	CheckpointDir string `json:"proof_checkpoint_dir,omitempty"`
	// ColdMonths are the months exported or on their way to cold storage
	// (archive_months), KeepMonths archive.keep_months.
	ColdMonths []coldMonth `json:"cold_months,omitempty"`
	KeepMonths int         `json:"archive_keep_months"`
	Attention  []string    `json:"attention"`
}

// coldMonth is a month's place on its way to cold storage.
type coldMonth struct {
	Month       string `json:"month"`
	State       string `json:"state"`
	Destination string `json:"destination"`
	Tasks       int64  `json:"tasks"`
	Error       string `json:"error,omitempty"`
}

// runStatus shows the archive's health on one screen and exits 4 when
// something needs attention.
func runStatus(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "status", "[--format text|json]", `Exit statuses:
  0  nothing needs attention
  1  the archive could not be read
  2  usage error
  4  something needs attention: each reason is listed`)
	var cf commonFlags
	cf.register(fs, env)
	format := fs.String("format", "text", "text, or json for scripts")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	if *format != "text" && *format != "json" {
		return usageErrorf("--format %q: want text or json", *format)
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, false)
	if err != nil {
		return err
	}
	defer st.Close()
	r := statusReport{Version: buildVersion(), BinarySchema: migrations.Latest(), API: map[string]string{}}
	if r.SchemaVersion, r.SchemaDirty, err = st.SchemaVersion(ctx); err != nil {
		return err
	}
	if r.SchemaVersion != r.BinarySchema || r.SchemaDirty {
		r.Attention = append(r.Attention, schemaAttention(r))
		if r.SchemaVersion < 14 {
			// Older schemas lack what the rest reads: say what can be said.
			return printStatus(env, *format, r)
		}
	}
	a, err := st.Status(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	r.LastSuccess, r.LastRun, r.Running, r.FullFailures = a.LastSuccess, a.LastRun, a.Running, a.FullFailures
	r.CoverageGaps, r.LastGap = a.Gaps, a.LastGap
	r.WaitingForPartition = a.WaitingForPartition
	r.DetailsQueued, r.DetailsFailing, r.DetailsGaveUp = a.Details.Pending, a.Details.Failing, a.Details.GaveUp
	if !a.Details.OldestDeadline.IsZero() {
		r.OldestDeadline = &a.Details.OldestDeadline
	}
	for _, c := range a.Capabilities {
		r.API[c.Name] = c.State
	}
	basis := now
	switch {
	case a.LastSuccess != nil:
		basis = a.LastSuccess.StartedAt
	case a.FirstRun != nil:
		basis = *a.FirstRun
	}
	headroom := syncer.Window - now.Sub(basis)
	r.HeadroomSeconds = headroom.Seconds()
	switch {
	case a.LastSuccess == nil && a.LastRun == nil && a.Running == nil:
		r.Attention = append(r.Attention, "no run yet: run `mps-archiver sync` (or start `serve`)")
	case a.LastSuccess == nil && a.LastRun == nil:
		// The first drain is under way (hours on a large account): the
		// headroom counts from it, as the alerts do.
	case headroom < 72*time.Hour:
		r.Attention = append(r.Attention, fmt.Sprintf("the last successful run is %s old: tasks leave MPS unarchived in %s", ago(now, basis), max(headroom, 0).Round(time.Minute)))
	}
	if a.LastRun != nil && a.LastRun.Status == "failed" && !stoppedRun(a.LastRun.Error) {
		r.Attention = append(r.Attention, fmt.Sprintf("the last run (%d) failed: %s", a.LastRun.ID, firstLine(a.LastRun.Error)))
	}
	if a.FullFailures >= 2 {
		r.Attention = append(r.Attention, fmt.Sprintf("%d full runs failed since the last full success (see sync_runs.error)", a.FullFailures))
	}
	if a.LastGap != nil && now.Sub(a.LastGap.DetectedAt) < 7*24*time.Hour {
		r.Attention = append(r.Attention, fmt.Sprintf("a coverage gap was found %s ago: tasks created %s … %s may be missing",
			ago(now, a.LastGap.DetectedAt), a.LastGap.Start.UTC().Format(time.RFC3339), a.LastGap.End.UTC().Format(time.RFC3339)))
	}
	if r.OldestDeadline != nil && r.OldestDeadline.Sub(now) < 12*time.Hour {
		advice := "raise details.rate_limit (the API allows 100/s)"
		if a.Details.Failing > 0 {
			// Speed is not the problem of a read that fails.
			advice = fmt.Sprintf("%d queued reads are failing: see task_detail_queue.last_error (each is retried until MPS forgets it)", a.Details.Failing)
		}
		r.Attention = append(r.Attention, fmt.Sprintf("the oldest queued outcome's deadline is %s: %s", deadlineText(now, *r.OldestDeadline), advice))
	}
	if a.Details.GaveUp > 0 {
		r.Attention = append(r.Attention, fmt.Sprintf("%d outcomes failed to be read until MPS forgot them in the last 7 days (task_details.err_code = 'gave_up')", a.Details.GaveUp))
	}
	if a.Details.Failing > 0 && a.Details.Failing == a.Details.Pending {
		r.Attention = append(r.Attention, fmt.Sprintf("every queued outcome (%d) failed its last read: see task_detail_queue.last_error; after the fix, `mps-archiver details requeue`", a.Details.Failing))
	}
	if cfg.UsageOn() && (r.SchemaVersion > 18 || r.SchemaVersion == 18 && !r.SchemaDirty) {
		u, err := st.UsageStatus(ctx)
		if err != nil {
			return err
		}
		r.Usage = &u
		// As MPSArchiverUsageStale: a usage run was tried, and none has
		// succeeded for two days.
		if u.LastAttempt != nil && u.LastError != "" && (u.LastSuccess == nil || now.Sub(*u.LastSuccess) > 48*time.Hour) {
			since := "since the install"
			if u.LastSuccess != nil {
				since = "for " + ago(now, *u.LastSuccess)
			}
			r.Attention = append(r.Attention, fmt.Sprintf("billed usage has not been read %s: the last usage run failed: %s (see usage_runs; MPS keeps usage 365 days)", since, firstLine(u.LastError)))
		}
	}
	if r.SchemaVersion > 19 || r.SchemaVersion == 19 && !r.SchemaDirty {
		p, err := st.ProofStatus(ctx)
		if err != nil {
			return err
		}
		r.Proof = &p
		r.CheckpointDir = cfg.Proof.CheckpointDir
		if !p.Enabled {
			r.Attention = append(r.Attention, "the proof log is switched off (proof_log_head.enabled): facts written since are not in it, and `mps-archiver verify` fails; UPDATE proof_log_head SET enabled = true")
		}
	}
	r.KeepMonths = cfg.Archive.KeepMonths
	if r.SchemaVersion > 21 || r.SchemaVersion == 21 && !r.SchemaDirty {
		months, err := st.ArchiveMonths(ctx)
		if err != nil {
			return err
		}
		for _, m := range months {
			r.ColdMonths = append(r.ColdMonths, coldMonth{Month: m.Month.Format("2006-01"), State: m.State, Destination: m.Destination,
				Tasks: m.Rows["tasks"], Error: m.Error})
			if m.Error != "" && now.Sub(m.UpdatedAt) > 24*time.Hour {
				r.Attention = append(r.Attention, fmt.Sprintf("cold storage: %s has been stuck %s for %s: %s (archive_months.error)",
					m.Month.Format("2006-01"), m.State, ago(now, m.UpdatedAt), firstLine(m.Error)))
			}
		}
	}
	if r.WaitingForPartition > 0 {
		r.Attention = append(r.Attention, fmt.Sprintf("%d tasks wait in the DEFAULT partition for their month's partition, which runs could not make: see the run log's warning (a lock not granted within 3 s, or a role without EXECUTE on mps_maintain_partitions: re-run deploy/postgres/least-privilege.sql)", r.WaitingForPartition))
	}
	return printStatus(env, *format, r)
}

func printStatus(env *Env, format string, r statusReport) error {
	if r.Attention == nil {
		r.Attention = []string{}
	}
	if format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		now := time.Now()
		w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "mps-archiver %s\n", r.Version)
		schema := fmt.Sprintf("%d (this binary: %d)", r.SchemaVersion, r.BinarySchema)
		if r.SchemaDirty {
			schema += ", dirty"
		}
		fmt.Fprintf(w, "Schema\t%s\n", schema)
		if r.LastSuccess != nil {
			fmt.Fprintf(w, "Last success\trun %d (%s), started %s ago\n", r.LastSuccess.ID, r.LastSuccess.Kind, ago(now, r.LastSuccess.StartedAt))
		} else {
			fmt.Fprintf(w, "Last success\tnone\n")
		}
		if r.LastRun != nil && (r.LastSuccess == nil || r.LastRun.ID != r.LastSuccess.ID) {
			how := r.LastRun.Status
			if how == "failed" && stoppedRun(r.LastRun.Error) {
				how = "stopped by a shutdown"
			}
			fmt.Fprintf(w, "Last run\trun %d (%s) %s, started %s ago\n", r.LastRun.ID, r.LastRun.Kind, how, ago(now, r.LastRun.StartedAt))
		}
		if r.Running != nil {
			fmt.Fprintf(w, "Running\trun %d (%s), started %s ago\n", r.Running.ID, r.Running.Kind, ago(now, r.Running.StartedAt))
		}
		fmt.Fprintf(w, "Retention headroom\t%s before tasks leave MPS unarchived\n", (time.Duration(r.HeadroomSeconds) * time.Second).Round(time.Minute))
		gaps := "none"
		if r.LastGap != nil {
			gaps = fmt.Sprintf("%d, the last found %s ago (%s … %s)", r.CoverageGaps, ago(now, r.LastGap.DetectedAt),
				r.LastGap.Start.UTC().Format(time.RFC3339), r.LastGap.End.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(w, "Coverage gaps\t%s\n", gaps)
		outcomes := fmt.Sprintf("%d queued", r.DetailsQueued)
		if r.OldestDeadline != nil {
			outcomes += ", oldest deadline " + deadlineText(now, *r.OldestDeadline)
		}
		outcomes += fmt.Sprintf("; %d failing their last read; %d given up in 7 days", r.DetailsFailing, r.DetailsGaveUp)
		fmt.Fprintf(w, "Outcomes\t%s\n", outcomes)
		var api []string
		// The image list: whether the endpoint serves it ("image:action").
		for _, k := range []string{syncer.CapTimeRange, syncer.CapTimeField, syncer.CapFailedFilter, "image:" + syncer.CapAction} {
			if v, ok := r.API[k]; ok {
				api = append(api, k+"="+v)
			}
		}
		if len(api) == 0 {
			api = []string{"not learned yet"}
		}
		fmt.Fprintf(w, "API\t%s\n", strings.Join(api, ", "))
		if r.KeepMonths > 0 || len(r.ColdMonths) > 0 {
			line := "everything kept in PostgreSQL (archive.keep_months 0)"
			if r.KeepMonths > 0 {
				line = fmt.Sprintf("the %d newest months kept in PostgreSQL", r.KeepMonths)
			}
			byState := map[string][]string{}
			for _, m := range r.ColdMonths {
				byState[m.State] = append(byState[m.State], m.Month)
			}
			for _, st := range []string{"detached", "verified", "exported", "exporting"} {
				if ms := byState[st]; len(ms) > 0 {
					line += fmt.Sprintf("; %s: %s", st, strings.Join(ms, " "))
				}
			}
			fmt.Fprintf(w, "Cold months\t%s\n", line)
		}
		if u := r.Usage; u != nil {
			line := "not read yet (serve, or a sync when usage.schedule comes round, or `mps-archiver usage`)"
			if u.LastSuccess != nil {
				line = "last read " + ago(now, *u.LastSuccess) + " ago"
			}
			if u.ReadThrough != nil {
				line += fmt.Sprintf("; every one of %d regions × types read through %s", u.Pairs, u.ReadThrough.Format(time.DateOnly))
			}
			if u.LastError != "" {
				line += "; the last run failed"
			}
			fmt.Fprintf(w, "Billed usage\t%s\n", line)
		}
		if p := r.Proof; p != nil {
			line := fmt.Sprintf("%d facts", p.Leaves)
			switch {
			case p.SignedAt != nil:
				line += fmt.Sprintf("; last signed checkpoint at %d, %s ago", p.SignedSize, ago(now, *p.SignedAt))
				if p.CheckpointKey != "" {
					line += " by " + p.CheckpointKey
				}
			case p.CheckpointAt != nil:
				line += fmt.Sprintf("; last checkpoint at %d, %s ago, unsigned (set MPS_ARCHIVER_SIGNING_KEY_FILE)", p.CheckpointSize, ago(now, *p.CheckpointAt))
			default:
				line += "; no checkpoint yet (one is made after each run)"
			}
			if p.SignedAt != nil && r.CheckpointDir == "" {
				line += "; not published outside the database (set MPS_ARCHIVER_CHECKPOINT_DIR)"
			}
			fmt.Fprintf(w, "Proof log\t%s\n", line)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if len(r.Attention) == 0 {
			fmt.Fprintln(env.Stdout, "\nNothing needs attention.")
		} else {
			fmt.Fprintln(env.Stdout, "\nNeeds attention:")
			for _, a := range r.Attention {
				fmt.Fprintln(env.Stdout, "  - "+a)
			}
		}
	}
	if len(r.Attention) > 0 {
		return &exitError{code: exitAttention, err: fmt.Errorf("%d thing(s) need attention", len(r.Attention)), logged: true}
	}
	return nil
}

func schemaAttention(r statusReport) string {
	switch {
	case r.SchemaDirty:
		return fmt.Sprintf("the schema is dirty at version %d: a migration failed; fix what it left, then `mps-archiver migrate force`", r.SchemaVersion)
	case r.SchemaVersion < r.BinarySchema:
		return fmt.Sprintf("the schema is at version %d, this binary needs %d: run `mps-archiver migrate up` as the schema owner", r.SchemaVersion, r.BinarySchema)
	}
	return fmt.Sprintf("the schema is at version %d, newer than this binary's %d: run the newer binary", r.SchemaVersion, r.BinarySchema)
}

func ago(now, t time.Time) string { return now.Sub(t).Round(time.Second).String() }

func deadlineText(now, t time.Time) string {
	if t.Before(now) {
		return "passed " + ago(now, t) + " ago"
	}
	return "in " + t.Sub(now).Round(time.Minute).String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return s
}

// stoppedRun reports whether a failed run's error says a shutdown or a
// second signal stopped it: routine (a deploy), not a failure to act on.
func stoppedRun(errText string) bool {
	return strings.HasPrefix(errText, "shutdown") || strings.Contains(errText, "(shutdown") ||
		strings.Contains(errText, "stopped at once")
}
