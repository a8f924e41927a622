package proof

import (
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

var rangeFactory = compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}

// Range is the compact range of a log's first Size leaves: its root
// without the tree (at most 64 hashes), extended leaf by leaf.
type Range struct{ r *compact.Range }

// NewRange is the range of an empty log.
func NewRange() *Range { return &Range{r: rangeFactory.NewEmptyRange(0)} }

// LoadRange is the range of size leaves from its stored hashes.
func LoadRange(size uint64, hashes [][]byte) (*Range, error) {
	r, err := rangeFactory.NewRange(0, size, hashes)
	if err != nil {
		return nil, err
	}
	return &Range{r: r}, nil
}

// Append adds a leaf by its hash.
func (r *Range) Append(leafHash []byte) error { return r.r.Append(leafHash, nil) }

// Size is how many leaves the range holds.
func (r *Range) Size() uint64 { return r.r.End() }

// Hashes are the range's hashes, to store beside a checkpoint.
func (r *Range) Hashes() [][]byte { return r.r.Hashes() }

// Root is the tree's root hash (RFC 6962's hash of an empty tree for none).
func (r *Range) Root() []byte {
	if r.r.End() == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	root, err := r.r.GetRootHash(nil)
	if err != nil {
		// A range from 0 always has a root.
		panic(err)
	}
	return root
}

// Tree holds every perfect subtree's hash of a log's first leaves, in
// memory (64 bytes a leaf): what inclusion proofs are made from.
type Tree struct {
	levels [][][32]byte
	size   uint64
}

// NewTree builds the tree of the given leaf hashes.
func NewTree(leafHashes [][32]byte) *Tree {
	t := &Tree{levels: [][][32]byte{leafHashes}, size: uint64(len(leafHashes))}
	for cur := leafHashes; len(cur) > 1; {
		next := make([][32]byte, len(cur)/2)
		for i := range next {
			copy(next[i][:], rfc6962.DefaultHasher.HashChildren(cur[2*i][:], cur[2*i+1][:]))
		}
		t.levels = append(t.levels, next)
		cur = next
	}
	return t
}

// Inclusion is the proof that leaf index is in the tree of the first size
// leaves.
func (t *Tree) Inclusion(index, size uint64) ([][]byte, error) {
	if size > t.size || index >= size {
		return nil, fmt.Errorf("no leaf %d in a tree of %d", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, err
	}
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		level := t.levels[id.Level]
		if id.Index >= uint64(len(level)) {
			return nil, fmt.Errorf("node %d.%d beyond the tree", id.Level, id.Index)
		}
		h := level[id.Index]
		hashes[i] = h[:]
	}
	return nodes.Rehash(hashes, rfc6962.DefaultHasher.HashChildren)
}

// Root is the root of the first size leaves.
func (t *Tree) Root(size uint64) ([]byte, error) {
	if size > t.size {
		return nil, fmt.Errorf("no tree of %d leaves in one of %d", size, t.size)
	}
	r := NewRange()
	// The perfect subtrees of [0, size), left to right.
	for begin := uint64(0); begin < size; {
		level := uint(0)
		for level < 63 && begin%(uint64(1)<<(level+1)) == 0 && begin+uint64(1)<<(level+1) <= size {
			level++
		}
		h := t.levels[level][begin>>level]
		if err := r.appendSubtree(level, h[:]); err != nil {
			return nil, err
		}
		begin += uint64(1) << level
	}
	return r.Root(), nil
}

func (r *Range) appendSubtree(level uint, hash []byte) error {
	begin := r.r.End()
	other, err := rangeFactory.NewRange(begin, begin+uint64(1)<<level, [][]byte{hash})
	if err != nil {
		return err
	}
	return r.r.AppendRange(other, nil)
}

// VerifyInclusion checks an inclusion proof of a leaf's data.
func VerifyInclusion(data []byte, index, size uint64, proofHashes [][]byte, root []byte) error {
	return proof.VerifyInclusion(rfc6962.DefaultHasher, index, size, LeafHash(data), proofHashes, root)
}
