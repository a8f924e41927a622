package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/proof"
	"github.com/mps-archiver/mps-archiver/storage"
)

// runProve writes a proof bundle of one task's facts.
func runProve(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "prove", "[flags] TASK_ID", `prove writes a bundle of a task's facts as the proof log holds them (the task
as written, each status change, its outcome with its sub-tasks, and the raw
records they name by hash), each with its inclusion proof against the
latest signed checkpoint, made now when a signing key is configured.
`+"`mps-archiver verify --bundle FILE`"+` checks it offline with the public key alone.`)
	var cf commonFlags
	cf.register(fs, env)
	out := fs.String("out", "", "write the bundle to this `file` (default: standard output)")
	pos, stop, err := parseMixed(fs, args, 1)
	if stop {
		return err
	}
	if len(pos) != 1 || pos[0] == "" {
		return usageErrorf("want `mps-archiver prove TASK_ID` (see `mps-archiver prove -h`)")
	}
	id := pos[0]
	return writeBundle(ctx, env, &cf, *out, func(l proof.Leaf) bool {
		switch l.Kind {
		case proof.KindTask, proof.KindOutcome, proof.KindStatusChange:
			return proof.TaskOf(l.Kind, l.Key) == id
		}
		return false
	}, func(b proof.Bundle) error {
		if len(b.Leaves) == 0 {
			return fmt.Errorf("task %s: no fact of it in the proof log up to the checkpoint (not archived, or archived after it)", id)
		}
		return nil
	}, []string{id})
}

// runExport writes a proof bundle of a time range's facts.
func runExport(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "export", "[flags] --since DATE --until DATE | --month YYYY-MM [--to DEST]", `export writes a bundle of the facts of a time range: every task created in
[since, until) with its status changes and outcome, and the runs started and
coverage gaps detected in it, each with its inclusion proof against the
latest signed checkpoint (made now when a signing key is configured), and
the raw records the facts name by hash. `+"`mps-archiver verify --bundle FILE`"+`
checks it offline with the public key alone. Dates are YYYY-MM-DD (UTC) or
RFC 3339 times. The bundle holds the proof log's leaves in memory while it
is built (64 bytes a leaf of the whole log).

With --month, export writes a closed month instead (its tasks, status
changes, outcomes, sub-task results, media facts and billed usage) as
Parquet files with a manifest, to --to or archive.destination (a
directory or s3://bucket/prefix), records the manifest's SHA-256 in the
proof log, then reads the files back and compares them with the
database (docs/scaling.md). It detaches nothing: archive.keep_months does.`)
	var cf commonFlags
	cf.register(fs, env)
	out := fs.String("out", "", "write the bundle to this `file` (default: standard output)")
	sinceS := fs.String("since", "", "the range's start (inclusive)")
	untilS := fs.String("until", "", "the range's end (exclusive)")
	monthS := fs.String("month", "", "export this closed `month` (YYYY-MM, UTC) as Parquet")
	to := fs.String("to", "", "with --month: the `destination` (default archive.destination)")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	if *monthS != "" {
		if *sinceS != "" || *untilS != "" || *out != "" {
			return usageErrorf("--month exports a month as Parquet; --since, --until and --out write a proof bundle: give one or the other")
		}
		return exportMonth(ctx, env, &cf, *monthS, *to)
	}
	if *to != "" {
		return usageErrorf("--to goes with --month")
	}
	since, err := parseWhen("--since", *sinceS)
	if err != nil {
		return err
	}
	until, err := parseWhen("--until", *untilS)
	if err != nil {
		return err
	}
	if !until.After(since) {
		return usageErrorf("--until (%s) must be after --since (%s)", *untilS, *sinceS)
	}
	var tasks, runs, gaps map[string]bool
	pick := func(l proof.Leaf) bool {
		switch l.Kind {
		case proof.KindTask, proof.KindOutcome, proof.KindStatusChange:
			return tasks[proof.TaskOf(l.Kind, l.Key)]
		case proof.KindRun:
			return runs[l.Key]
		case proof.KindGap:
			return gaps[l.Key]
		}
		return false
	}
	return writeBundleWith(ctx, env, &cf, *out, pick, nil, func(ctx context.Context, st *storage.Store) ([]string, error) {
		t, r, g, err := st.ProofRange(ctx, since, until)
		tasks, runs, gaps = set(t), set(r), set(g)
		return t, err
	})
}

func set(keys []string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

func parseWhen(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, usageErrorf("%s is required (YYYY-MM-DD or an RFC 3339 time)", name)
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, usageErrorf("%s %q: not YYYY-MM-DD or an RFC 3339 time", name, v)
	}
	return t, nil
}

func writeBundle(ctx context.Context, env *Env, cf *commonFlags, out string, pick func(proof.Leaf) bool, check func(proof.Bundle) error, taskIDs []string) error {
	return writeBundleWith(ctx, env, cf, out, pick, check, func(context.Context, *storage.Store) ([]string, error) { return taskIDs, nil })
}

// writeBundleWith makes a checkpoint when a signing key is configured,
// builds the bundle of the picked leaves against the latest signed one,
// and writes it. tasks lists the tasks whose raw records it may need.
func writeBundleWith(ctx context.Context, env *Env, cf *commonFlags, out string, pick func(proof.Leaf) bool, check func(proof.Bundle) error,
	tasks func(context.Context, *storage.Store) ([]string, error)) error {
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	signer, err := cfg.Proof.Signer()
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := tasks(ctx, st)
	if err != nil {
		return err
	}
	if signer != nil {
		v, err := cfg.Proof.Verifiers()
		if err != nil {
			return err
		}
		if _, _, err := makeCheckpoint(ctx, st, signer, v, cfg.Proof.CheckpointDir, 0); err != nil {
			return err
		}
	}
	c, ok, err := st.LatestProofCheckpoint(ctx, true)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no signed checkpoint: set MPS_ARCHIVER_SIGNING_KEY_FILE (docs/operations.md, \"Proof\")")
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	b, err := proof.BuildBundle(ctx, st, c, pick, func(ctx context.Context, _ []string) (map[string]string, error) {
		return st.ProofRaw(ctx, ids)
	})
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(b); err != nil {
			return err
		}
	}
	data, err := b.Marshal()
	if err != nil {
		return err
	}
	if out == "" {
		_, err = env.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return fmt.Errorf("--out: %w", config.UnwrapPathError(err))
	}
	fmt.Fprintf(env.Stderr, "wrote %s: %d facts against checkpoint %d\n", out, len(b.Leaves), c.Size)
	return nil
}
