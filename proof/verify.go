package proof

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Published is a checkpoint found outside the database: its text and
// where it came from (a file, a URL).
type Published struct {
	Source string
	Text   []byte
}

// VerifyOptions says what Verify trusts.
type VerifyOptions struct {
	Verifiers *Verifiers  // the public keys checkpoints may be signed by
	Published []Published // checkpoints published outside the database
	// MaxPerKind bounds the problems listed of one kind (the rest are
	// counted); 0 is 100.
	MaxPerKind int
}

// Report is what Verify found.
type Report struct {
	Origin      string
	Size        uint64
	Checkpoints int // stored
	Signed      int // stored and signed
	Published   int
	Facts       map[Kind]int // rows checked, by kind
	Problems    []string
}

// Verify checks the proof log and the archive against each other: the
// tree recomputed from every leaf against each stored checkpoint (its
// root, its signature) and each published one; then every table against
// the last leaf of each fact (what is missing, extra or different). Each
// problem is one line naming the fact and the leaf.
func Verify(ctx context.Context, st Reader, opt VerifyOptions) (Report, error) {
	if opt.MaxPerKind <= 0 {
		opt.MaxPerKind = 100
	}
	rep := Report{Facts: map[Kind]int{}}
	problem := func(format string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(format, a...)) }
	head, err := st.ProofHead(ctx)
	if err != nil {
		return rep, err
	}
	rep.Origin = head.Origin
	if !head.Enabled {
		problem("the proof log is switched off (proof_log_head.enabled is false): facts written since are not in it")
	}

	// The checkpoints to hold the tree to, by size.
	type claim struct {
		what string
		cp   Checkpoint
	}
	var claims []claim
	stored, err := st.ProofCheckpoints(ctx)
	if err != nil {
		return rep, err
	}
	rep.Checkpoints = len(stored)
	for _, s := range stored {
		what := fmt.Sprintf("stored checkpoint %d", s.Size)
		claims = append(claims, claim{what, Checkpoint{Origin: head.Origin, Size: s.Size, Root: s.Root}})
		if s.Note == "" {
			continue
		}
		rep.Signed++
		cp, _, err := Open([]byte(s.Note), opt.Verifiers)
		switch {
		case err != nil:
			problem("%s: %v", what, err)
		case cp.Origin != head.Origin:
			problem("%s: signed for log %q, this archive's log is %q", what, cp.Origin, head.Origin)
		case cp.Size != s.Size || !bytes.Equal(cp.Root, s.Root):
			problem("%s: its signed note says size %d root %x, its row size %d root %x", what, cp.Size, cp.Root, s.Size, s.Root)
		}
	}
	for _, p := range opt.Published {
		cp, _, err := Open(p.Text, opt.Verifiers)
		if err != nil {
			problem("published checkpoint %s: %v", p.Source, err)
			continue
		}
		if cp.Origin != head.Origin {
			problem("published checkpoint %s: of log %q, this archive's log is %q", p.Source, cp.Origin, head.Origin)
			continue
		}
		rep.Published++
		claims = append(claims, claim{"published checkpoint " + p.Source + fmt.Sprintf(" (size %d)", cp.Size), cp})
	}
	sort.SliceStable(claims, func(i, j int) bool { return claims[i].cp.Size < claims[j].cp.Size })

	// The tree, leaf by leaf: each claim's root at its size.
	rng := NewRange()
	next := uint64(0)
	checkClaims := func() {
		for len(claims) > 0 && claims[0].cp.Size == rng.Size() {
			if root := rng.Root(); !bytes.Equal(root, claims[0].cp.Root) {
				problem("%s: root %x, the log's first %d leaves hash to %x: a leaf before it was changed, removed or inserted", claims[0].what, claims[0].cp.Root, claims[0].cp.Size, root)
			}
			claims = claims[1:]
		}
	}
	checkClaims()
	// A leaf's kind and key columns are not hashed: each is checked
	// against its data, which is (the facts are compared by them).
	mislabelled := 0
	err = st.ProofLeaves(ctx, 0, 1<<63-1, func(l Leaf) error {
		for l.Index > next {
			// A hole: the tree cannot be built past it.
			problem("leaf %d: missing from proof_log", next)
			return errStop
		}
		// Each leaf must hash to its hash and name its columns' kind and
		// key.
		kind, key, err := describeFast(l.Data)
		switch {
		case !bytes.Equal(LeafHash(l.Data), l.Hash):
			err = errors.New("its hash is not its data's: one of them was changed")
		case err == nil && (kind != l.Kind || key != l.Key):
			err = fmt.Errorf("its columns say %s %s, its data %s %s: a column was changed", l.Kind, l.Key, kind, key)
		}
		if err != nil {
			if mislabelled++; mislabelled <= opt.MaxPerKind {
				problem("leaf %d (%s %s): %v", l.Index, l.Kind, l.Key, err)
			}
		}
		if len(l.Hash) != 32 {
			problem("leaf %d: no SHA-256 hash", l.Index)
			return errStop
		}
		if err := rng.Append(l.Hash); err != nil {
			return err
		}
		next++
		checkClaims()
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return rep, err
	}
	if mislabelled > opt.MaxPerKind {
		problem("… and %d more leaves whose columns do not match their data", mislabelled-opt.MaxPerKind)
	}
	rep.Size = rng.Size()
	if rng.Size() != head.Size {
		problem("the proof log holds %d leaves, its head says %d", rng.Size(), head.Size)
	}
	for _, c := range claims {
		problem("%s: the log holds only %d leaves: leaves were removed, or the database was restored to a state older than the checkpoint", c.what, rng.Size())
	}

	for _, kind := range Kinds {
		n, err := compareKind(ctx, st, kind, rep.Size, opt.MaxPerKind, problem)
		rep.Facts[kind] = n
		if err != nil {
			return rep, err
		}
	}
	orphans, err := st.OrphanSubtasks(ctx)
	if err != nil {
		return rep, err
	}
	for i, id := range orphans {
		if i == opt.MaxPerKind {
			problem("… and %d more tasks with sub-task results but no outcome", len(orphans)-i)
			break
		}
		problem("outcome %s: sub-task results in the archive without their outcome: not in the log", id)
	}
	return rep, nil
}

type stopError struct{}

func (stopError) Error() string { return "stop" }

var errStop error = stopError{}

// compareKind merges a kind's leaves (of the tree's first size, by key
// then index) with its table's rows (by key), and reports what differs:
// a row against the last leaf of its fact, and each leaf against the one
// before it of the same fact (a change the archiver never makes, such as
// a final outcome replaced, is a problem even when logged). It returns
// how many rows it read.
func compareKind(ctx context.Context, st Reader, kind Kind, size uint64, max int, problem func(string, ...any)) (int, error) {
	type row struct {
		key  string
		data []byte
	}
	// The rows stream on a goroutine of their own; the leaves drive.
	rows := make(chan row, 256)
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(rows)
		errc <- st.Facts(ctx, kind, func(key string, data []byte) error {
			select {
			case rows <- row{key, slices.Clone(data)}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	n, listed := 0, 0
	report := func(format string, a ...any) {
		if listed++; listed <= max {
			problem(format, a...)
		}
	}
	var pending *row
	nextRow := func() *row {
		if pending != nil {
			r := pending
			pending = nil
			return r
		}
		r, ok := <-rows
		if !ok {
			return nil
		}
		n++
		return &r
	}
	// A run (or usage run) still running has no leaf yet: one newer than
	// every run the log holds is no problem, any other is.
	var maxLogged int64 = -1
	var running []string
	extra := func(r *row) {
		if kind == KindRun || kind == KindUsageRun {
			if f, err := ParseFields(r.data); err == nil && f["status"] == "running" {
				running = append(running, r.key)
				return
			}
		}
		report("%s %s: in the archive, not in the proof log", kind, r.key)
	}
	// match compares the last leaf of a fact with its row(s).
	match := func(l Leaf) {
		for {
			r := nextRow()
			switch {
			case r == nil:
				report("%s %s: in the proof log (leaf %d), not in the archive: deleted", kind, l.Key, l.Index)
				return
			case r.key < l.Key:
				extra(r)
				continue
			case r.key > l.Key:
				pending = r
				report("%s %s: in the proof log (leaf %d), not in the archive: deleted", kind, l.Key, l.Index)
				return
			}
			// The common case: the row reads as its leaf's very bytes.
			if !bytes.Equal(l.Data, r.data) {
				leaf, err := ParseFields(l.Data)
				got, rerr := ParseFields(r.data)
				switch {
				case err != nil || rerr != nil:
					report("%s %s: leaf %d or its row is not a JSON object", kind, l.Key, l.Index)
				default:
					if d := Diff(leaf, got); len(d) > 0 {
						report("%s %s: %s (leaf %d)", kind, l.Key, strings.Join(d, "; "), l.Index)
					}
				}
			}
			// The same key again is a second row for one fact.
			for {
				r2 := nextRow()
				if r2 == nil {
					return
				}
				if r2.key != l.Key {
					pending = r2
					return
				}
				report("%s %s: a second row in the archive for one fact of the log (leaf %d)", kind, l.Key, l.Index)
			}
		}
	}
	var prev *Leaf
	err := st.KindLeaves(ctx, kind, size, func(l Leaf) error {
		if kind == KindRun || kind == KindUsageRun {
			if id, err := strconv.ParseInt(l.Key, 10, 64); err == nil && id > maxLogged {
				maxLogged = id
			}
		}
		if prev != nil && prev.Key == l.Key {
			if why := transition(kind, prev.Data, l.Data); why != "" {
				report("%s %s: %s (leaves %d and %d)", kind, l.Key, why, prev.Index, l.Index)
			}
		} else if prev != nil {
			match(*prev)
		}
		c := Leaf{Index: l.Index, Kind: l.Kind, Key: l.Key, Hash: slices.Clone(l.Hash), Data: slices.Clone(l.Data)}
		prev = &c
		return nil
	})
	if err != nil {
		return n, err
	}
	if prev != nil {
		match(*prev)
	}
	for r := nextRow(); r != nil; r = nextRow() {
		extra(r)
	}
	if err := <-errc; err != nil {
		return n, err
	}
	for _, key := range running {
		if id, err := strconv.ParseInt(key, 10, 64); err != nil || id <= maxLogged {
			report("%s %s: running in the archive, older than runs the log holds: not a run the archiver started", kind, key)
		}
	}
	if listed > max {
		problem("… and %d more %s problems", listed-max, kind)
	}
	return n, nil
}

// transition says what is wrong with a fact's leaf following another of
// the same fact, as no writer of the archiver ever changes it ("" when
// the change is one the archiver makes).
func transition(kind Kind, before, after []byte) string {
	a, err1 := ParseFields(before)
	b, err2 := ParseFields(after)
	if err1 != nil || err2 != nil {
		return "a leaf is not a JSON object"
	}
	str := func(f Fields, name string) string { s, _ := f[name].(string); return s }
	switch kind {
	case KindStatusChange, KindGap, KindExport:
		return "logged twice: a " + string(kind) + " is written once"
	case KindTask:
		for _, name := range []string{"task_id", "create_time"} {
			if !equal(a[name], b[name]) {
				return fmt.Sprintf("%s changed from %s to %s, which the archiver never changes", name, show(a[name]), show(b[name]))
			}
		}
		if rank(str(b, "status")) < rank(str(a, "status")) {
			return fmt.Sprintf("status went back from %s to %s", str(a, "status"), str(b, "status"))
		}
	case KindOutcome:
		switch {
		case str(a, "outcome") == "undecided":
		case str(a, "outcome") == "expired" && str(a, "err_code") == "gave_up" && str(b, "outcome") == "undecided":
		default:
			return fmt.Sprintf("a final outcome (%s) was replaced by %s", str(a, "outcome"), str(b, "outcome"))
		}
	case KindRun, KindUsageRun:
		if str(a, "status") != "failed" || !strings.HasPrefix(str(a, "error"), "abandoned:") {
			return fmt.Sprintf("a finished run (%s) was logged again", str(a, "status"))
		}
	}
	return ""
}

func rank(status string) int {
	switch status {
	case "WAITING":
		return 1
	case "PROCESSING":
		return 2
	case "FINISH":
		return 3
	}
	return 0
}
