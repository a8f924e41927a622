package proof

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memStore is a proof log in memory: what the bundle tests need of a
// Store (the database side is tested in storage and e2e).
type memStore struct {
	head        Head
	leaves      []Leaf
	checkpoints []Stored
}

func (m *memStore) ProofHead(context.Context) (Head, error) { return m.head, nil }
func (m *memStore) ProofLeaves(_ context.Context, from, to uint64, fn func(Leaf) error) error {
	for _, l := range m.leaves {
		if l.Index >= from && l.Index < to {
			if err := fn(l); err != nil {
				return err
			}
		}
	}
	return nil
}
func (m *memStore) LatestProofCheckpoint(_ context.Context, signed bool) (Stored, bool, error) {
	for i := len(m.checkpoints) - 1; i >= 0; i-- {
		if !signed || m.checkpoints[i].Note != "" {
			return m.checkpoints[i], true, nil
		}
	}
	return Stored{}, false, nil
}
func (m *memStore) SaveProofCheckpoint(_ context.Context, c Stored) (bool, error) {
	m.checkpoints = append(m.checkpoints, c)
	return true, nil
}

func (m *memStore) append(data string) {
	kind, key, _, err := Describe([]byte(data))
	if err != nil {
		panic(err)
	}
	m.leaves = append(m.leaves, Leaf{Index: uint64(len(m.leaves)), Kind: kind, Key: key, Hash: LeafHash([]byte(data)), Data: []byte(data)})
	m.head.Size++
}

// TestTreeProofs: the in-memory tree's roots are the compact range's, and
// every inclusion proof of every leaf in every tree size verifies (and
// fails for another leaf's data).
func TestTreeProofs(t *testing.T) {
	const n = 70
	var hashes [][32]byte
	var data [][]byte
	rng := NewRange()
	roots := [][]byte{rng.Root()}
	for i := range n {
		d := []byte(fmt.Sprintf(`{"fact":"run","id":%d}`, i))
		data = append(data, d)
		var h [32]byte
		copy(h[:], LeafHash(d))
		hashes = append(hashes, h)
		if err := rng.Append(h[:]); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, rng.Root())
	}
	tree := NewTree(hashes)
	for size := uint64(1); size <= n; size++ {
		root, err := tree.Root(size)
		if err != nil || !bytes.Equal(root, roots[size]) {
			t.Fatalf("root of %d: %x, %v; the compact range says %x", size, root, err, roots[size])
		}
		for i := uint64(0); i < size; i++ {
			p, err := tree.Inclusion(i, size)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyInclusion(data[i], i, size, p, root); err != nil {
				t.Fatalf("leaf %d of %d: %v", i, size, err)
			}
			if err := VerifyInclusion(data[(i+1)%n], i, size, p, root); err == nil && size > 1 {
				t.Fatalf("leaf %d of %d: another leaf's data verified", i, size)
			}
		}
	}
	// A range stored and loaded again extends to the same roots.
	half := NewRange()
	for _, h := range hashes[:33] {
		_ = half.Append(h[:])
	}
	loaded, err := LoadRange(half.Size(), half.Hashes())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hashes[33:] {
		_ = loaded.Append(h[:])
	}
	if !bytes.Equal(loaded.Root(), roots[n]) {
		t.Fatal("a loaded range extends to another root")
	}
}

// testLog is a small log of a task, its change and its outcome, with a
// signed checkpoint.
func testLog(t *testing.T) (*memStore, *Signer, string) {
	t.Helper()
	private, public, err := GenerateKey("archive-test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(private)
	if err != nil {
		t.Fatal(err)
	}
	if signer.PublicKey() != public {
		t.Fatalf("public key %q, generated %q", signer.PublicKey(), public)
	}
	raw := `{"TaskId": "t-1", "Status": "FINISH"}`
	sum := sha256.Sum256([]byte(raw))
	m := &memStore{head: Head{Origin: "mps-archiver/test", Enabled: true}}
	m.append(`{"fact": "run", "id": 1, "status": "succeeded"}`)
	m.append(fmt.Sprintf(`{"fact": "task", "task_id": "t-1", "create_time": null, "status": "WAITING", "raw_sha256": %q}`, hex.EncodeToString(sum[:])))
	m.append(`{"fact": "task", "task_id": "t-2", "create_time": "2026-12-01T10:00:00+08:00", "status": "WAITING", "raw_sha256": null}`)
	m.append(`{"fact": "status_change", "task_id": "t-1", "id": 7, "from_status": "WAITING", "to_status": "FINISH", "observed_at": "2026-12-01T10:00:00+08:00"}`)
	m.append(`{"fact": "outcome", "task_id": "t-1", "create_time": null, "outcome": "failed", "raw_sha256": null, "subtasks": [{"ordinal": 0, "status": "FAIL"}]}`)
	if _, _, err := MakeCheckpoint(context.Background(), m, signer, mustVerifiers(t, signer.PublicKey()), nil, 1); err != nil {
		t.Fatal(err)
	}
	return m, signer, raw
}

// TestBundle: a task's bundle verifies offline with the public key
// alone; with another key it does not; and every single changed byte of
// it is found.
func TestBundle(t *testing.T) {
	m, signer, raw := testLog(t)
	c := m.checkpoints[0]
	b, err := BuildBundle(context.Background(), m, c, func(l Leaf) bool {
		return TaskOf(l.Kind, l.Key) == "t-1"
	}, func(_ context.Context, hashes []string) (map[string]string, error) {
		sum := sha256.Sum256([]byte(raw))
		return map[string]string{hex.EncodeToString(sum[:]): raw}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifiers(signer.PublicKey())
	sum, problems, err := VerifyBundle(data, v, "")
	if err != nil || len(problems) > 0 {
		t.Fatalf("untouched bundle: %v %q", err, problems)
	}
	if sum.Facts[KindTask] != 1 || sum.Facts[KindStatusChange] != 1 || sum.Facts[KindOutcome] != 1 || sum.Tasks != 1 || sum.Raw != 1 || sum.Size != 5 {
		t.Fatalf("summary %+v", sum)
	}

	_, otherPublic, _ := GenerateKey("archive-test")
	other, _ := NewVerifiers(otherPublic)
	if _, problems, _ := VerifyBundle(data, other, ""); len(problems) == 0 || !strings.Contains(problems[0], "not trusted") {
		t.Fatalf("verified with another key of the same name: %q", problems)
	}

	for i := range data {
		for _, flip := range []byte{0x01, 0x20} {
			changed := bytes.Clone(data)
			changed[i] ^= flip
			if _, problems, err := VerifyBundle(changed, v, ""); err == nil && len(problems) == 0 {
				t.Fatalf("byte %d (%q) xor %#x: the changed bundle verifies: %s", i, data[i], flip, data[max(0, i-40):min(len(data), i+20)])
			}
		}
	}
	// Nor is a byte added or removed.
	if _, problems, err := VerifyBundle(append(bytes.Clone(data), ' '), v, ""); err == nil && len(problems) == 0 {
		t.Fatal("a trailing space verifies")
	}
}

// TestCheckpointRotation: a checkpoint signed by a retired key verifies
// while its public key is trusted, and names the key that signed.
func TestCheckpointRotation(t *testing.T) {
	oldPriv, oldPub, _ := GenerateKey("archive-2025")
	_, newPub, _ := GenerateKey("archive-2026")
	s, _ := NewSigner(oldPriv)
	note, err := Sign(Checkpoint{Origin: "o", Size: 3, Root: bytes.Repeat([]byte{1}, 32)}, s)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifiers(newPub, oldPub)
	cp, key, err := Open(note, v)
	if err != nil || key != "archive-2025" || cp.Size != 3 || cp.Origin != "o" {
		t.Fatalf("open: %+v %q %v", cp, key, err)
	}
	v2, _ := NewVerifiers(newPub)
	if _, _, err := Open(note, v2); err == nil || !strings.Contains(err.Error(), "archive-2025") {
		t.Fatalf("retired key not trusted: %v", err)
	}
	if _, err := NewSigner("PRIVATE+KEY+secretmaterial"); err == nil || strings.Contains(err.Error(), "secretmaterial") {
		t.Fatalf("a bad key's error: %v", err)
	}
	if _, err := NewVerifiers("not-a-key"); err == nil {
		t.Fatal("a bad public key is accepted")
	}
}

// TestPublish: a checkpoint is written once; the same again is fine,
// another of the same size is refused.
func TestPublish(t *testing.T) {
	m, signer, _ := testLog(t)
	dir := t.TempDir()
	c := m.checkpoints[0]
	path, err := Publish(dir, c)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "checkpoint.000000000000005" {
		t.Fatalf("published as %s", path)
	}
	if _, err := Publish(dir, c); err != nil {
		t.Fatalf("the same checkpoint again: %v", err)
	}
	forged := c
	n, _ := Sign(Checkpoint{Origin: c.Origin, Size: c.Size, Root: bytes.Repeat([]byte{9}, 32)}, signer)
	forged.Note = string(n)
	if _, err := Publish(dir, forged); err == nil {
		t.Fatal("another checkpoint of the same size replaced the published one")
	}
	got, _ := os.ReadFile(path)
	if string(got) != c.Note {
		t.Fatal("the published file changed")
	}
	if _, err := Publish(dir, Stored{Size: 9}); err == nil {
		t.Fatal("an unsigned checkpoint was published")
	}
}

// TestDiff: a row equals its leaf field by field; timestamps in another
// zone and numbers written otherwise are equal, a column the leaf does
// not know is not checked, and a changed or missing one is named.
func TestDiff(t *testing.T) {
	leaf, _ := ParseFields([]byte(`{"fact": "task", "task_id": "t", "finish_time": "2026-12-01T10:00:00+08:00", "usage": 1.50, "sub": [1, {"a": null}]}`))
	row, _ := ParseFields([]byte(`{"task_id": "t", "finish_time": "2026-12-01T02:00:00+00:00", "usage": 1.5, "sub": [1, {"a": null}], "added_later": 3}`))
	if d := Diff(leaf, row); len(d) != 0 {
		t.Fatalf("equal rows differ: %q", d)
	}
	row["finish_time"] = "2026-12-01T03:00:00+00:00"
	delete(row, "usage")
	d := Diff(leaf, row)
	if len(d) != 2 || !strings.HasPrefix(d[0], "finish_time is") || !strings.HasPrefix(d[1], "usage missing") {
		t.Fatalf("diff %q", d)
	}
}

// TestKeys: a leaf's key is derived from its data as the writers derive
// it: a task's and an outcome's with the create time in microseconds
// (whatever the zone it is written in), and TaskOf reads the TaskId back
// even when it holds the separators.
func TestKeys(t *testing.T) {
	for _, c := range []struct{ data, kind, key string }{
		{`{"fact": "task", "task_id": "a@b#c", "create_time": "2026-12-01T10:00:00.000123+08:00"}`, "task", "a@b#c@1796090400000123"},
		{`{"fact": "task", "task_id": "a@b#c", "create_time": "2026-12-01T02:00:00.000123+00:00"}`, "task", "a@b#c@1796090400000123"},
		{`{"fact": "outcome", "task_id": "t", "create_time": null}`, "outcome", "t@"},
		{`{"fact": "status_change", "task_id": "a#1", "id": 7}`, "status_change", "a#1#7"},
		{`{"fact": "run", "id": 12}`, "run", "12"},
		{`{"fact": "usage", "day": "2026-12-01", "region": "ap-guangzhou", "type": "Transcode", "specification": ""}`, "usage", "2026-12-01|ap-guangzhou|Transcode|"},
	} {
		kind, key, err := describeFast([]byte(c.data))
		if err != nil || string(kind) != c.kind || key != c.key {
			t.Errorf("%s: %s %q %v, want %s %q", c.data, kind, key, err, c.kind, c.key)
		}
	}
	if got := TaskOf(KindTask, "a@b#c@1796090400000123"); got != "a@b#c" {
		t.Errorf("TaskOf task: %q", got)
	}
	if got := TaskOf(KindStatusChange, "a#1#7"); got != "a#1" {
		t.Errorf("TaskOf status change: %q", got)
	}
	for _, bad := range []string{`[]`, `{"fact": "run"}`, `{"fact": "task"}`, `{"fact": "what", "id": 1}`, `{"fact": "task", "task_id": "t", "create_time": "yesterday"}`} {
		if _, _, err := describeFast([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestTransitions: the changes the archiver makes to a fact pass; the
// ones it never makes are named, logged or not.
func TestTransitions(t *testing.T) {
	for _, c := range []struct {
		kind          Kind
		before, after string
		wrong         string // "" when the change is the archiver's
	}{
		{KindTask, `{"status": "WAITING", "row_sha256": "aa"}`, `{"status": "FINISH", "row_sha256": "bb"}`, ""},
		{KindTask, `{"status": "FINISH"}`, `{"status": "PROCESSING"}`, "status went back"},
		{KindTask, `{"status": "FINISH", "create_time": "2026-12-01T00:00:00+00:00"}`, `{"status": "FINISH", "create_time": "2026-12-01T08:00:00+08:00"}`, ""},
		{KindTask, `{"status": "FINISH", "task_id": "a"}`, `{"status": "FINISH", "task_id": "b"}`, "task_id changed"},
		{KindOutcome, `{"outcome": "undecided"}`, `{"outcome": "failed"}`, ""},
		{KindOutcome, `{"outcome": "expired", "err_code": "gave_up"}`, `{"outcome": "undecided"}`, ""},
		{KindOutcome, `{"outcome": "expired", "err_code": "gave_up"}`, `{"outcome": "succeeded"}`, "final outcome"},
		{KindOutcome, `{"outcome": "failed"}`, `{"outcome": "succeeded"}`, "final outcome (failed) was replaced by succeeded"},
		{KindRun, `{"status": "failed", "error": "abandoned: the process stopped"}`, `{"status": "succeeded"}`, ""},
		{KindRun, `{"status": "failed", "error": "boom"}`, `{"status": "succeeded"}`, "finished run"},
		{KindStatusChange, `{}`, `{}`, "logged twice"},
		{KindGap, `{}`, `{}`, "logged twice"},
		{KindUsage, `{"usage": 1}`, `{"usage": 2}`, ""},
	} {
		got := transition(c.kind, []byte(c.before), []byte(c.after))
		if (c.wrong == "") != (got == "") || !strings.Contains(got, c.wrong) {
			t.Errorf("%s %s -> %s: %q, want %q", c.kind, c.before, c.after, got, c.wrong)
		}
	}
}

// TestCheckpointTrustsOnlyItself: a checkpoint is extended only from one
// the signer's own key signed, and nothing is signed that does not give
// the root of the newest published checkpoint.
func TestCheckpointTrustsOnlyItself(t *testing.T) {
	ctx := context.Background()
	m, signer, _ := testLog(t)
	first := m.checkpoints[0]
	published, _, err := Open([]byte(first.Note), mustVerifiers(t, signer.PublicKey()))
	if err != nil {
		t.Fatal(err)
	}
	m.append(`{"fact": "run", "id": 2, "status": "succeeded"}`)

	// A stored checkpoint whose compact range was forged (another log's)
	// is not extended: the log is hashed from its first leaf.
	forged := first
	forged.Compact = [][]byte{bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)}
	m.checkpoints = []Stored{forged}
	c, made, err := MakeCheckpoint(ctx, m, signer, mustVerifiers(t, signer.PublicKey()), &published, 2)
	if err != nil || !made {
		t.Fatalf("made %v: %v", made, err)
	}
	honest := NewRange()
	for _, l := range m.leaves {
		_ = honest.Append(l.Hash)
	}
	if !bytes.Equal(c.Root, honest.Root()) {
		t.Fatal("the forged compact range was extended")
	}

	// A log whose first leaves were changed since a checkpoint was
	// published is not signed again.
	m.checkpoints = nil
	m.leaves[1].Hash = LeafHash([]byte(`{"fact": "task", "task_id": "t-1", "create_time": null, "status": "FINISH"}`))
	if _, _, err := MakeCheckpoint(ctx, m, signer, mustVerifiers(t, signer.PublicKey()), &published, 3); err == nil || !strings.Contains(err.Error(), "nothing is signed") {
		t.Fatalf("a changed log was signed: %v", err)
	}
	// Nor one shorter than what was published, nor another log's.
	short := published
	short.Size = 99
	if _, _, err := MakeCheckpoint(ctx, m, signer, mustVerifiers(t, signer.PublicKey()), &short, 3); err == nil || !strings.Contains(err.Error(), "cut") {
		t.Fatalf("a log shorter than the published checkpoint was signed: %v", err)
	}
	other := published
	other.Origin = "mps-archiver/other"
	if _, _, err := MakeCheckpoint(ctx, m, signer, mustVerifiers(t, signer.PublicKey()), &other, 3); err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("another log's origin was signed: %v", err)
	}
}

func mustVerifiers(t *testing.T, keys ...string) *Verifiers {
	t.Helper()
	v, err := NewVerifiers(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCheckpointRotationAndForgery: after a key rotation the new key
// extends the old key's checkpoint once the old key is trusted (hashing
// the log again, which must give its root), and refuses while it is not;
// a stored checkpoint signed by a stranger stops all signing.
func TestCheckpointRotationAndForgery(t *testing.T) {
	ctx := context.Background()
	m, old, _ := testLog(t)
	m.append(`{"fact": "run", "id": 2, "status": "succeeded"}`)
	priv, _, _ := GenerateKey("archive-2027")
	rotated, _ := NewSigner(priv)
	if _, _, err := MakeCheckpoint(ctx, m, rotated, mustVerifiers(t, rotated.PublicKey()), nil, 2); err == nil || !strings.Contains(err.Error(), "nothing is signed") {
		t.Fatalf("signed on from a checkpoint whose key is not trusted: %v", err)
	}
	c, made, err := MakeCheckpoint(ctx, m, rotated, mustVerifiers(t, rotated.PublicKey(), old.PublicKey()), nil, 2)
	if err != nil || !made || c.KeyName != "archive-2027" || c.Size != 6 {
		t.Fatalf("after rotation: %+v %v %v", c, made, err)
	}
	// A stranger's checkpoint stored on top: nothing is signed.
	strangerPriv, _, _ := GenerateKey("archive-2027")
	stranger, _ := NewSigner(strangerPriv)
	m.append(`{"fact": "run", "id": 3, "status": "succeeded"}`)
	note, _ := Sign(Checkpoint{Origin: m.head.Origin, Size: 7, Root: bytes.Repeat([]byte{1}, 32)}, stranger)
	m.checkpoints = append(m.checkpoints, Stored{Size: 7, Root: bytes.Repeat([]byte{1}, 32), Note: string(note)})
	if _, _, err := MakeCheckpoint(ctx, m, rotated, mustVerifiers(t, rotated.PublicKey(), old.PublicKey()), nil, 3); err == nil || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("signed on from a stranger's checkpoint: %v", err)
	}
}
