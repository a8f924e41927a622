package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mps-archiver/mps-archiver/internal/config"
	"github.com/mps-archiver/mps-archiver/proof"
)

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runVerify checks the archive against its proof log, or a bundle offline.
func runVerify(ctx context.Context, env *Env, args []string) error {
	fs := newFlagSet(env, "verify", "[flags]", `Without --bundle, verify reads the whole archive (DATABASE_URL): it recomputes
the Merkle tree from every leaf of the proof log and checks each stored
checkpoint (its root, its signature) and each published one given with
--checkpoint, then checks every task, status change, outcome, run, coverage
gap and usage figure against the last leaf the log holds for it: what is
missing, extra or different. One line per problem; exit 1 if there is any.
With --bundle FILE it needs no database: it checks a bundle that prove or
export wrote, with the public keys alone.
Public keys: --key, MPS_ARCHIVER_VERIFIER_KEYS, and the signing key's own.`)
	var cf commonFlags
	cf.register(fs, env)
	var checkpoints, keys listFlag
	fs.Var(&checkpoints, "checkpoint", "a published checkpoint to hold the archive to: a `file`, a directory of them, or an http(s) URL such as serve's /checkpoint (may repeat)")
	fs.Var(&keys, "key", "a trusted public `key` (name+hash+key; may repeat)")
	bundle := fs.String("bundle", "", "verify this bundle `file` offline instead of the database")
	origin := fs.String("origin", "", "with --bundle: the log the bundle must come from (as `status` or verify print it)")
	max := fs.Int("max-problems", 100, "problems listed of one kind before the rest are counted")
	if stop, err := parse(fs, args, 0); stop {
		return err
	}
	if *bundle != "" {
		if len(checkpoints) > 0 {
			return usageErrorf("--bundle is checked offline: --checkpoint applies to the database")
		}
		cfg, err := config.Load(config.ExpandPath(cf.configPath), env.Getenv)
		if err != nil {
			return err
		}
		v, err := cfg.Proof.Verifiers(keys...)
		if err != nil {
			return err
		}
		return verifyBundle(env, *bundle, v, *origin)
	}
	cfg, err := cf.loadValid(env, false)
	if err != nil {
		return err
	}
	v, err := cfg.Proof.Verifiers(keys...)
	if err != nil {
		return err
	}
	var published []proof.Published
	for _, c := range checkpoints {
		p, err := readPublished(ctx, c)
		if err != nil {
			return err
		}
		published = append(published, p...)
	}
	st, err := openStore(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	snap, err := st.ProofSnapshot(ctx)
	if err != nil {
		return err
	}
	defer snap.Close(ctx)
	rep, err := proof.Verify(ctx, snap, proof.VerifyOptions{Verifiers: v, Published: published, MaxPerKind: *max})
	if err != nil {
		return err
	}
	// A detached month's facts are left to its export: that export must
	// be the one the log holds.
	unlogged, err := st.UnloggedDetachedMonths(ctx)
	if err != nil {
		return err
	}
	for _, m := range unlogged {
		rep.Problems = append(rep.Problems, fmt.Sprintf("month %s: detached, but its export is not in the proof log as archive_months names it: its facts have no logged copy",
			m.Format("2006-01")))
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(env.Stdout, p)
	}
	var facts []string
	for _, k := range proof.Kinds {
		facts = append(facts, fmt.Sprintf("%d %s", rep.Facts[k], k))
	}
	summary := fmt.Sprintf("log %s: %d leaves, %d checkpoints (%d signed), %d published; checked %s (%s)",
		rep.Origin, rep.Size, rep.Checkpoints, rep.Signed, rep.Published, strings.Join(facts, ", "), time.Since(start).Round(time.Millisecond))
	// The facts of months detached to cold storage are in their exports,
	// whose manifests are export leaves: said, not compared here.
	if months, err := st.DetachedMonths(ctx); err != nil {
		return err
	} else if len(months) > 0 {
		names := make([]string, len(months))
		for i, m := range months {
			names[i] = m.Format("2006-01")
		}
		summary += fmt.Sprintf("; %d months detached to cold storage, their tasks' facts in their exports (not compared): %s",
			len(months), strings.Join(names, " "))
	}
	if len(rep.Problems) > 0 {
		fmt.Fprintln(env.Stdout, "FAILED: "+summary)
		return &exitError{code: exitFailed, err: fmt.Errorf("%d problems", len(rep.Problems)), logged: true}
	}
	fmt.Fprintln(env.Stdout, "OK: "+summary)
	switch {
	case rep.Signed == 0:
		fmt.Fprintln(env.Stderr, "note: no checkpoint is signed, so nothing outside the database vouches for the log; set MPS_ARCHIVER_SIGNING_KEY_FILE (docs/operations.md, \"Proof\")")
	case rep.Published == 0:
		fmt.Fprintln(env.Stderr, "note: no published checkpoint was given (--checkpoint): OK says the database agrees with the checkpoints it holds, not that it was not rolled back or rewritten since one was published")
	}
	return nil
}

func verifyBundle(env *Env, path string, v *proof.Verifiers, origin string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bundle: %w", config.UnwrapPathError(err))
	}
	sum, problems, err := proof.VerifyBundle(data, v, origin)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, p := range problems {
		fmt.Fprintln(env.Stdout, p)
	}
	var kinds []string
	for _, k := range proof.Kinds {
		if n := sum.Facts[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
	}
	raw := fmt.Sprintf("%d raw records", sum.Raw)
	if sum.RawNotKept > 0 {
		raw += fmt.Sprintf(" (%d earlier ones not kept by the archive)", sum.RawNotKept)
	}
	summary := fmt.Sprintf("%s: %s of %d tasks and %s, in log %s at size %d signed by %s",
		path, strings.Join(kinds, ", "), sum.Tasks, raw, sum.Origin, sum.Size, sum.KeyName)
	if len(problems) > 0 {
		fmt.Fprintln(env.Stdout, "FAILED: "+summary)
		return &exitError{code: exitFailed, err: fmt.Errorf("%d problems", len(problems)), logged: true}
	}
	fmt.Fprintln(env.Stdout, "OK: "+summary)
	return nil
}

// readPublished reads published checkpoints: a file, every file of a
// directory that holds one, or a URL.
func readPublished(ctx context.Context, src string) ([]proof.Published, error) {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint %s: %w", src, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("--checkpoint %s: %w", src, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("--checkpoint %s: %s: %s", src, resp.Status, strings.TrimSpace(string(body)))
		}
		return []proof.Published{{Source: src, Text: body}}, nil
	}
	fi, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", config.UnwrapPathError(err))
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", config.UnwrapPathError(err))
		}
		return []proof.Published{{Source: src, Text: b}}, nil
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", config.UnwrapPathError(err))
	}
	var out []proof.Published
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "checkpoint.") {
			continue
		}
		path := filepath.Join(src, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--checkpoint: %w", config.UnwrapPathError(err))
		}
		out = append(out, proof.Published{Source: path, Text: b})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--checkpoint %s: no checkpoint.* file in the directory", src)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out, nil
}
