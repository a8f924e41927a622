package proof

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Head is the proof log's head row.
type Head struct {
	Origin  string
	Size    uint64
	Enabled bool
}

// Stored is a checkpoint as the database keeps it.
type Stored struct {
	Origin    string // the log's (from its head; not a column)
	Size      uint64
	Root      []byte
	Note      string // the signed note; "" when no signing key was configured
	KeyName   string
	Compact   [][]byte
	RunID     int64
	CreatedAt time.Time
}

// Store is the live database side of the proof log (a *storage.Store):
// what a checkpoint is made from and kept in.
type Store interface {
	ProofHead(ctx context.Context) (Head, error)
	// ProofLeaves calls fn for the leaves with from <= index < to, by index.
	ProofLeaves(ctx context.Context, from, to uint64, fn func(Leaf) error) error
	// LatestProofCheckpoint is the largest stored checkpoint (signed: the
	// largest signed one).
	LatestProofCheckpoint(ctx context.Context, signed bool) (Stored, bool, error)
	SaveProofCheckpoint(ctx context.Context, c Stored) (bool, error)
}

// Reader is what Verify reads, all of it in one snapshot (a
// *storage.ProofSnapshot).
type Reader interface {
	ProofHead(ctx context.Context) (Head, error)
	ProofLeaves(ctx context.Context, from, to uint64, fn func(Leaf) error) error
	ProofCheckpoints(ctx context.Context) ([]Stored, error)
	// KindLeaves calls fn with every leaf of a kind (by its kind column)
	// with index < below, by key (bytewise), then index.
	KindLeaves(ctx context.Context, kind Kind, below uint64, fn func(Leaf) error) error
	// Facts calls fn with each row of a kind's table as JSON, by key
	// (bytewise), a raw record as its raw_sha256.
	Facts(ctx context.Context, kind Kind, fn func(key string, row []byte) error) error
	// OrphanSubtasks lists the tasks with sub-task results but no outcome.
	OrphanSubtasks(ctx context.Context) ([]string, error)
}

// MakeCheckpoint records a checkpoint of the log as it stands, signed
// when a signer is given. It never signs what it has not checked: the
// last signed checkpoint stored must verify with the trusted keys (else
// nothing is signed); it is extended from its compact range when this
// signer signed it, else the log is hashed from its first leaf and must
// give its root; and the tree must give the root of published, the newest
// checkpoint published outside the database (nil: none), at its size. A
// log that has not grown since the last checkpoint gets none (made
// reports false).
func MakeCheckpoint(ctx context.Context, st Store, signer *Signer, trusted *Verifiers, published *Checkpoint, runID int64) (c Stored, made bool, err error) {
	// The checkpoint before the head: one stored meanwhile by another
	// process is then never larger than the head read.
	last, ok, err := st.LatestProofCheckpoint(ctx, signer != nil)
	if err != nil {
		return Stored{}, false, err
	}
	head, err := st.ProofHead(ctx)
	if err != nil {
		return Stored{}, false, err
	}
	refuse := func(format string, a ...any) (Stored, bool, error) {
		return Stored{}, false, fmt.Errorf(format+"; nothing is signed (run `mps-archiver verify --checkpoint`)", a...)
	}
	var anchors []Checkpoint // roots the tree must give at their sizes
	if published != nil {
		if published.Origin != head.Origin {
			return refuse("the proof log's origin is %q, the published checkpoints' %q: the log was replaced", head.Origin, published.Origin)
		}
		anchors = append(anchors, *published)
	}
	rng := NewRange()
	switch {
	case ok && signer != nil:
		cp, _, err := Open([]byte(last.Note), trusted)
		if err != nil {
			return refuse("the last signed checkpoint stored (size %d) does not verify: %v", last.Size, err)
		}
		if cp.Origin != head.Origin || cp.Size != last.Size || !bytes.Equal(cp.Root, last.Root) {
			return refuse("the last signed checkpoint stored (size %d) does not say what its row does", last.Size)
		}
		if base, err := trustedBase(last, head.Origin, signer); err == nil {
			rng = base
		} else {
			// Another key's (a rotation): hashed again from the first leaf.
			anchors = append(anchors, cp)
		}
	case ok:
		if base, err := LoadRange(last.Size, last.Compact); err == nil && last.Size <= head.Size {
			rng = base
		}
	}
	for _, a := range anchors {
		if a.Size > head.Size {
			return refuse("the proof log has %d leaves, a checkpoint of it %d: it was cut, or the database restored from an older backup", head.Size, a.Size)
		}
	}
	if ok && last.Size == head.Size && rng.Size() == head.Size {
		last.Origin = head.Origin
		return last, false, nil
	}
	checkAnchors := func() error {
		for _, a := range anchors {
			if a.Size == rng.Size() && !bytes.Equal(rng.Root(), a.Root) {
				_, _, err := refuse("the proof log's first %d leaves do not give the root of its checkpoint of that size: the log was changed", a.Size)
				return err
			}
		}
		return nil
	}
	if err := checkAnchors(); err != nil {
		return Stored{}, false, err
	}
	next := rng.Size()
	err = st.ProofLeaves(ctx, rng.Size(), head.Size, func(l Leaf) error {
		if l.Index != next {
			return fmt.Errorf("proof log: leaf %d missing", next)
		}
		next++
		if len(l.Hash) != 32 {
			return fmt.Errorf("proof log: leaf %d has no SHA-256 hash (run `mps-archiver verify`)", l.Index)
		}
		if err := rng.Append(l.Hash); err != nil {
			return err
		}
		return checkAnchors()
	})
	if err != nil {
		return Stored{}, false, err
	}
	if next != head.Size {
		return Stored{}, false, fmt.Errorf("proof log: leaves %d to %d missing", next, head.Size-1)
	}
	c = Stored{Origin: head.Origin, Size: head.Size, Root: rng.Root(), Compact: rng.Hashes(), RunID: runID}
	if signer != nil {
		n, err := Sign(Checkpoint{Origin: head.Origin, Size: c.Size, Root: c.Root}, signer)
		if err != nil {
			return Stored{}, false, err
		}
		c.Note, c.KeyName = string(n), signer.Name()
	}
	made, err = st.SaveProofCheckpoint(ctx, c)
	return c, made, err
}

// trustedBase is the compact range of a stored checkpoint this signer
// signed, checked: its note verifies, names the log's origin, and says
// the root its compact range gives.
func trustedBase(c Stored, origin string, signer *Signer) (*Range, error) {
	v, err := NewVerifiers(signer.PublicKey())
	if err != nil {
		return nil, err
	}
	cp, _, err := Open([]byte(c.Note), v)
	if err != nil {
		return nil, err
	}
	rng, err := LoadRange(c.Size, c.Compact)
	if err != nil {
		return nil, err
	}
	if cp.Origin != origin || cp.Size != c.Size || !bytes.Equal(cp.Root, rng.Root()) {
		return nil, errors.New("the stored checkpoint does not say what its compact range gives")
	}
	return rng, nil
}

// LatestPublished is the largest checkpoint in dir that verifies with v
// (nil: none there).
func LatestPublished(dir string, v *Verifiers) (*Checkpoint, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var best *Checkpoint
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "checkpoint.") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		cp, _, err := Open(b, v)
		if err != nil {
			continue
		}
		if best == nil || cp.Size > best.Size {
			best = &cp
		}
	}
	return best, nil
}

// Publish writes a signed checkpoint to dir as checkpoint.<size> (zero
// padded, so that names sort by size), never replacing a file: dir may be
// write-once storage. A file already there with the same note is fine.
func Publish(dir string, c Stored) (string, error) {
	if c.Note == "" {
		return "", errors.New("an unsigned checkpoint is not published (set MPS_ARCHIVER_SIGNING_KEY_FILE)")
	}
	path := filepath.Join(dir, fmt.Sprintf("checkpoint.%015d", c.Size))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		old, rerr := os.ReadFile(path)
		if rerr == nil && bytes.Equal(old, []byte(c.Note)) {
			return path, nil
		}
		return "", fmt.Errorf("%s exists with another checkpoint of the same size: the log was rewritten, or two archives publish to one directory", path)
	}
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(c.Note); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}
