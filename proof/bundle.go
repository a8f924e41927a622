package proof

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// BundleFormat names the bundle format (docs/operations.md, "Proof").
const BundleFormat = "mps-archiver proof bundle 1"

// Bundle is a set of facts with their inclusion proofs against one signed
// checkpoint, and the raw records their leaves name by hash: all an
// auditor needs, with the public key, to check them offline. It is
// written as canonical JSON (encoding/json, keys sorted, no spaces), so
// that any changed byte either breaks a proof or the canonical form.
type Bundle struct {
	Format     string            `json:"format"`
	Checkpoint string            `json:"checkpoint"`
	Leaves     []BundleLeaf      `json:"leaves"`
	Raw        map[string]string `json:"raw"` // SHA-256 (hex) of a record's text -> the text
}

// BundleLeaf is one fact: its index in the log, its data, and the hashes
// of its inclusion proof (hex).
type BundleLeaf struct {
	Index uint64   `json:"index"`
	Data  string   `json:"data"`
	Proof []string `json:"proof"`
}

// Marshal writes the bundle's canonical form.
func (b Bundle) Marshal() ([]byte, error) {
	out, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// BuildBundle proves the leaves want picks against checkpoint c (which
// must be signed): it reads the log's first c.Size leaves, rebuilds the
// tree in memory (64 bytes a leaf), and checks its root is c's before
// proving anything. texts gives the texts the picked leaves name by hash
// (a task's row by row_sha256, a raw record by raw_sha256, and the raw
// record a row names), those it still has.
func BuildBundle(ctx context.Context, st LeafReader, c Stored, want func(Leaf) bool,
	texts func(ctx context.Context, hashes []string) (map[string]string, error)) (Bundle, error) {
	if c.Note == "" {
		return Bundle{}, errors.New("the checkpoint is not signed: a bundle needs a signing key (MPS_ARCHIVER_SIGNING_KEY_FILE)")
	}
	hashes := make([][32]byte, 0, c.Size)
	var picked []Leaf
	err := st.ProofLeaves(ctx, 0, c.Size, func(l Leaf) error {
		if l.Index != uint64(len(hashes)) {
			return fmt.Errorf("proof log: leaf %d missing (run `mps-archiver verify`)", len(hashes))
		}
		if !bytes.Equal(LeafHash(l.Data), l.Hash) {
			return fmt.Errorf("proof log: leaf %d does not hash to its hash (run `mps-archiver verify`)", l.Index)
		}
		var h [32]byte
		copy(h[:], l.Hash)
		hashes = append(hashes, h)
		if want(l) {
			picked = append(picked, Leaf{Index: l.Index, Kind: l.Kind, Key: l.Key, Hash: bytes.Clone(l.Hash), Data: bytes.Clone(l.Data)})
		}
		return nil
	})
	if err != nil {
		return Bundle{}, err
	}
	tree := NewTree(hashes)
	if root, err := tree.Root(c.Size); err != nil || !bytes.Equal(root, c.Root) {
		return Bundle{}, fmt.Errorf("the log's first %d leaves do not hash to checkpoint %d's root: the log was changed (run `mps-archiver verify`)", c.Size, c.Size)
	}
	b := Bundle{Format: BundleFormat, Checkpoint: c.Note, Leaves: []BundleLeaf{}, Raw: map[string]string{}}
	var named []string
	for _, l := range picked {
		p, err := tree.Inclusion(l.Index, c.Size)
		if err != nil {
			return Bundle{}, err
		}
		hx := make([]string, len(p))
		for i, h := range p {
			hx[i] = hex.EncodeToString(h)
		}
		b.Leaves = append(b.Leaves, BundleLeaf{Index: l.Index, Data: string(l.Data), Proof: hx})
		if f, err := ParseFields(l.Data); err == nil {
			named = append(named, namedHashes(f)...)
		}
	}
	if len(named) > 0 {
		got, err := texts(ctx, named)
		if err != nil {
			return Bundle{}, err
		}
		// A row names its raw record in turn.
		for _, h := range named {
			if t, ok := got[h]; ok {
				b.Raw[h] = t
				if f, err := ParseFields([]byte(t)); err == nil {
					for _, r := range namedHashes(f) {
						if t, ok := got[r]; ok {
							b.Raw[r] = t
						}
					}
				}
			}
		}
	}
	return b, nil
}

// namedHashes are the texts a leaf or row names by hash.
func namedHashes(f Fields) []string {
	var out []string
	for _, name := range []string{"row_sha256", "raw_sha256"} {
		if h, ok := f[name].(string); ok && h != "" {
			out = append(out, h)
		}
	}
	return out
}

// LeafReader reads the log's leaves by index.
type LeafReader interface {
	ProofLeaves(ctx context.Context, from, to uint64, fn func(Leaf) error) error
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// BundleSummary is what a verified bundle holds.
type BundleSummary struct {
	Origin  string
	Size    uint64
	KeyName string
	Facts   map[Kind]int
	Tasks   int
	Raw     int
	// RawNotKept counts texts named by leaves that the bundle lacks (an
	// earlier version of a task's row or record, replaced in the archive).
	RawNotKept int
}

// VerifyBundle checks a bundle offline with the trusted keys: its
// canonical form, the checkpoint's signature (and its origin, when one is
// expected), each leaf's inclusion proof, and each raw record against the
// hash a leaf gives it; the record of each fact's last leaf in the bundle
// must be there. A bundle proves that its facts are in the log, not that
// the log holds no others. Each problem is one line; a bundle that cannot
// be read at all is an error.
func VerifyBundle(data []byte, v *Verifiers, origin string) (BundleSummary, []string, error) {
	var sum BundleSummary
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return sum, nil, fmt.Errorf("not a proof bundle: %v", err)
	}
	if b.Format != BundleFormat {
		return sum, nil, fmt.Errorf("not a proof bundle of this format (%q; expected %q)", b.Format, BundleFormat)
	}
	var problems []string
	problem := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if canon, err := b.Marshal(); err != nil || !bytes.Equal(canon, data) {
		problem("the bundle is not in its canonical form: it was edited after it was written")
	}
	cp, key, err := Open([]byte(b.Checkpoint), v)
	if err != nil {
		problem("checkpoint: %v", err)
		return sum, problems, nil
	}
	sum.Origin, sum.Size, sum.KeyName = cp.Origin, cp.Size, key
	if origin != "" && cp.Origin != origin {
		problem("checkpoint: of log %q, not %q", cp.Origin, origin)
	}
	sum.Facts = map[Kind]int{}
	tasks := map[string]bool{}
	named := map[string]bool{}
	// The raw record each fact's last leaf names: the one the archive
	// still keeps.
	last := map[string]string{}
	for i, l := range b.Leaves {
		proofHashes := make([][]byte, len(l.Proof))
		bad := false
		for j, h := range l.Proof {
			if proofHashes[j], err = hex.DecodeString(h); err != nil || len(proofHashes[j]) != sha256.Size || hex.EncodeToString(proofHashes[j]) != h {
				bad = true
			}
		}
		kind, key, f, derr := Describe([]byte(l.Data))
		what := fmt.Sprintf("leaf %d", l.Index)
		if derr == nil {
			what = fmt.Sprintf("leaf %d (%s %s)", l.Index, kind, key)
		}
		switch {
		case bad:
			problem("%s: its proof is not a list of SHA-256 hashes in lower-case hex", what)
			continue
		case derr != nil:
			problem("%s: %v", what, derr)
			continue
		}
		if err := VerifyInclusion([]byte(l.Data), l.Index, cp.Size, proofHashes, cp.Root); err != nil {
			problem("%s: not in the checkpoint's log: %v", what, err)
			continue
		}
		if i > 0 && b.Leaves[i-1].Index >= l.Index {
			problem("%s: leaves out of order", what)
		}
		sum.Facts[kind]++
		if kind == KindTask || kind == KindOutcome || kind == KindStatusChange {
			tasks[TaskOf(kind, key)] = true
		}
		hs := namedHashes(f)
		for _, h := range hs {
			named[h] = true
		}
		last[string(kind)+" "+key] = strings.Join(hs, " ")
	}

	facts := make([]string, 0, len(last))
	for fact := range last {
		facts = append(facts, fact)
	}
	sort.Strings(facts)
	for _, fact := range facts {
		for _, h := range strings.Fields(last[fact]) {
			if _, ok := b.Raw[h]; !ok {
				problem("%s: the text its last leaf names (sha256 %s) is not in the bundle", fact, h)
			}
		}
	}
	// A row in the bundle names its raw record, which must be there too.
	for h, t := range b.Raw {
		if f, err := ParseFields([]byte(t)); err == nil {
			for _, r := range namedHashes(f) {
				named[r] = true
				if _, ok := b.Raw[r]; !ok && sha256Hex(t) == h {
					problem("raw record %s: the row %s names it, and it is not in the bundle", r, h)
				}
			}
		}
	}
	// A superseded leaf names a text the archive no longer keeps (a task
	// keeps its last row): its hash still commits to it.
	for h := range named {
		if _, ok := b.Raw[h]; !ok {
			sum.RawNotKept++
		}
	}
	hashes := make([]string, 0, len(b.Raw))
	for h := range b.Raw {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		switch {
		case sha256Hex(b.Raw[h]) != h:
			problem("raw record %s: its text does not hash to its name: it was changed", h)
		case !named[h]:
			problem("raw record %s: no proven leaf names it", h)
		default:
			sum.Raw++
		}
	}
	sum.Tasks = len(tasks)
	return sum, problems, nil
}
