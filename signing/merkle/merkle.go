// Package merkle is the append-only Merkle tree of RFC 6962 (and RFC 9162 §2.1): leaf hashes
// are H(0x00 ‖ leaf), interior nodes H(0x01 ‖ left ‖ right). dangan uses SM3 for H; the
// hash is a parameter so the published SHA-256 vectors can test the structure.
//
// A tree is read through a NodeFunc that returns the hash of a perfect subtree (level l,
// index i covers leaves [i·2^l, (i+1)·2^l)); proofs are built from O(log n) such nodes.
//
//	h := merkle.SM3
//	root, _ := h.Root(size, nodes)
//	proof, _ := h.InclusionProof(index, size, nodes)
//	err := h.VerifyInclusion(index, size, h.LeafHash(entry), proof, root)
package merkle

import (
	"bytes"
	"errors"
	"fmt"
	"hash"
	"math/bits"

	"github.com/emmansun/gmsm/sm3"
)

// Sentinel errors; verification failures wrap ErrVerify, so callers decide with errors.Is,
// and the message says what did not match.
var (
	ErrVerify  = errors.New("merkle proof does not verify")
	ErrBadSize = errors.New("index or size out of range")
)

// Hasher computes the hashes of one hash function.
type Hasher struct {
	New  func() hash.Hash
	Size int
}

// SM3 is the hasher dangan's log uses.
var SM3 = Hasher{New: sm3.New, Size: sm3.Size}

// NodeFunc returns the hash of the perfect subtree at level over leaves [index<<level,
// (index+1)<<level).
type NodeFunc func(level uint8, index uint64) ([]byte, error)

// EmptyRoot is the root of the empty tree: the hash of nothing.
func (h Hasher) EmptyRoot() []byte { return h.New().Sum(nil) }

// LeafHash is H(0x00 ‖ leaf).
func (h Hasher) LeafHash(leaf []byte) []byte {
	d := h.New()
	d.Write([]byte{0})
	d.Write(leaf)
	return d.Sum(nil)
}

// NodeHash is H(0x01 ‖ left ‖ right).
func (h Hasher) NodeHash(left, right []byte) []byte {
	d := h.New()
	d.Write([]byte{1})
	d.Write(left)
	d.Write(right)
	return d.Sum(nil)
}

// Root is the root of the tree of the first size leaves.
func (h Hasher) Root(size uint64, node NodeFunc) ([]byte, error) {
	if size == 0 {
		return h.EmptyRoot(), nil
	}
	return h.rangeHash(0, size, node)
}

// rangeHash is MTH(D[begin:end]) for a range the RFC 6962 recursion produces: begin is a
// multiple of the largest power of two not above end-begin.
func (h Hasher) rangeHash(begin, end uint64, node NodeFunc) ([]byte, error) {
	n := end - begin
	if n&(n-1) == 0 { // a perfect subtree
		level := uint8(bits.TrailingZeros64(n))
		return node(level, begin>>level)
	}
	k := largestPow2Below(n)
	left, err := h.rangeHash(begin, begin+k, node)
	if err != nil {
		return nil, err
	}
	right, err := h.rangeHash(begin+k, end, node)
	if err != nil {
		return nil, err
	}
	return h.NodeHash(left, right), nil
}

// largestPow2Below is the largest power of two smaller than n (n ≥ 2).
func largestPow2Below(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// InclusionProof is PATH(index, D[0:size]) of RFC 6962 §2.1.1: the sibling hashes from the
// leaf up to the root.
func (h Hasher) InclusionProof(index, size uint64, node NodeFunc) ([][]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d in a tree of %d", ErrBadSize, index, size)
	}
	return h.path(index, 0, size, node)
}

func (h Hasher) path(m, begin, end uint64, node NodeFunc) ([][]byte, error) {
	n := end - begin
	if n == 1 {
		return nil, nil
	}
	k := largestPow2Below(n)
	var sub [][]byte
	var sib []byte
	var err error
	if m < k {
		if sub, err = h.path(m, begin, begin+k, node); err == nil {
			sib, err = h.rangeHash(begin+k, end, node)
		}
	} else {
		if sub, err = h.path(m-k, begin+k, end, node); err == nil {
			sib, err = h.rangeHash(begin, begin+k, node)
		}
	}
	if err != nil {
		return nil, err
	}
	return append(sub, sib), nil
}

// ConsistencyProof is PROOF(m, D[0:n]) of RFC 6962 §2.1.2: what shows that the tree of size
// m is a prefix of the tree of size n.
func (h Hasher) ConsistencyProof(m, n uint64, node NodeFunc) ([][]byte, error) {
	if m > n {
		return nil, fmt.Errorf("%w: consistency from %d to %d", ErrBadSize, m, n)
	}
	if m == 0 || m == n {
		return nil, nil
	}
	return h.subproof(m, 0, n, true, node)
}

func (h Hasher) subproof(m, begin, end uint64, whole bool, node NodeFunc) ([][]byte, error) {
	n := end - begin
	if m == n {
		if whole {
			return nil, nil
		}
		r, err := h.rangeHash(begin, end, node)
		if err != nil {
			return nil, err
		}
		return [][]byte{r}, nil
	}
	k := largestPow2Below(n)
	var sub [][]byte
	var sib []byte
	var err error
	if m <= k {
		if sub, err = h.subproof(m, begin, begin+k, whole, node); err == nil {
			sib, err = h.rangeHash(begin+k, end, node)
		}
	} else {
		if sub, err = h.subproof(m-k, begin+k, end, false, node); err == nil {
			sib, err = h.rangeHash(begin, begin+k, node)
		}
	}
	if err != nil {
		return nil, err
	}
	return append(sub, sib), nil
}

// RootFromInclusion recomputes the root from a leaf hash and its inclusion proof (RFC 9162
// §2.1.3.2).
func (h Hasher) RootFromInclusion(index, size uint64, leafHash []byte, proof [][]byte) ([]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: leaf %d in a tree of %d", ErrBadSize, index, size)
	}
	if err := h.checkLen(leafHash, proof); err != nil {
		return nil, err
	}
	fn, sn := index, size-1
	r := leafHash
	for i, p := range proof {
		if sn == 0 {
			return nil, fmt.Errorf("%w: the inclusion proof is longer than the path (%d hashes, %d used)", ErrVerify, len(proof), i)
		}
		if fn&1 == 1 || fn == sn {
			r = h.NodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = h.NodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return nil, fmt.Errorf("%w: the inclusion proof is shorter than the path (%d hashes)", ErrVerify, len(proof))
	}
	return r, nil
}

// VerifyInclusion checks that leafHash is leaf index of the tree of size with root.
func (h Hasher) VerifyInclusion(index, size uint64, leafHash []byte, proof [][]byte, root []byte) error {
	got, err := h.RootFromInclusion(index, size, leafHash, proof)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, root) {
		return fmt.Errorf("%w: leaf %d with its proof gives root %x, the tree of %d has root %x", ErrVerify, index, got, size, root)
	}
	return nil
}

// VerifyConsistency checks that the tree of size m with root1 is a prefix of the tree of
// size n with root2 (RFC 9162 §2.1.4.2).
func (h Hasher) VerifyConsistency(m, n uint64, root1, root2 []byte, proof [][]byte) error {
	switch {
	case m > n:
		return fmt.Errorf("%w: consistency from %d to %d", ErrBadSize, m, n)
	case m == n:
		if len(proof) != 0 {
			return fmt.Errorf("%w: a proof between equal sizes must be empty", ErrVerify)
		}
		if !bytes.Equal(root1, root2) {
			return fmt.Errorf("%w: two different roots for size %d: the log forked", ErrVerify, m)
		}
		return nil
	case m == 0:
		if len(proof) != 0 {
			return fmt.Errorf("%w: a proof from the empty tree must be empty", ErrVerify)
		}
		return nil
	case len(proof) == 0:
		return fmt.Errorf("%w: empty consistency proof from %d to %d", ErrVerify, m, n)
	}
	if err := h.checkLen(root1, proof); err != nil {
		return err
	}
	if m&(m-1) == 0 { // m is a power of two: the old root is the first node of the path
		proof = append([][]byte{root1}, proof...)
	}
	fn, sn := m-1, n-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := proof[0], proof[0]
	for i, c := range proof[1:] {
		if sn == 0 {
			return fmt.Errorf("%w: the consistency proof is longer than the path (%d hashes, %d used)", ErrVerify, len(proof), i+1)
		}
		if fn&1 == 1 || fn == sn {
			fr = h.NodeHash(c, fr)
			sr = h.NodeHash(c, sr)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			sr = h.NodeHash(sr, c)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: the consistency proof is shorter than the path", ErrVerify)
	}
	if !bytes.Equal(fr, root1) {
		return fmt.Errorf("%w: the proof gives %x for the tree of %d, whose root is %x", ErrVerify, fr, m, root1)
	}
	if !bytes.Equal(sr, root2) {
		return fmt.Errorf("%w: the proof gives %x for the tree of %d, whose root is %x", ErrVerify, sr, n, root2)
	}
	return nil
}

func (h Hasher) checkLen(first []byte, proof [][]byte) error {
	if len(first) != h.Size {
		return fmt.Errorf("%w: a hash of %d bytes, expected %d", ErrVerify, len(first), h.Size)
	}
	for i, p := range proof {
		if len(p) != h.Size {
			return fmt.Errorf("%w: proof hash %d has %d bytes, expected %d", ErrVerify, i, len(p), h.Size)
		}
	}
	if len(proof) > 64 {
		return fmt.Errorf("%w: a proof of %d hashes is longer than any tree allows", ErrVerify, len(proof))
	}
	return nil
}

// Compact is the right edge of a tree: the roots of its perfect subtrees, largest first.
// It appends leaves in O(log n) and yields the root without storing the tree; replaying a
// log uses it to recompute every root.
type Compact struct {
	h     Hasher
	size  uint64
	nodes [][]byte
}

// NewCompact starts an empty compact range.
func (h Hasher) NewCompact() *Compact { return &Compact{h: h} }

// Size is the number of leaves appended.
func (c *Compact) Size() uint64 { return c.size }

// Append adds a leaf hash and calls visit (when non-nil) with every perfect subtree the
// append completes, the leaf itself first.
func (c *Compact) Append(leafHash []byte, visit func(level uint8, index uint64, hash []byte)) {
	if visit != nil {
		visit(0, c.size, leafHash)
	}
	h := leafHash
	level := uint8(0)
	for s := c.size; s&1 == 1; s >>= 1 {
		h = c.h.NodeHash(c.nodes[len(c.nodes)-1], h)
		c.nodes = c.nodes[:len(c.nodes)-1]
		level++
		if visit != nil {
			visit(level, (c.size+1)>>level-1, h)
		}
	}
	c.nodes = append(c.nodes, h)
	c.size++
}

// Root is the tree's root.
func (c *Compact) Root() []byte {
	if c.size == 0 {
		return c.h.EmptyRoot()
	}
	r := c.nodes[len(c.nodes)-1]
	for i := len(c.nodes) - 2; i >= 0; i-- {
		r = c.h.NodeHash(c.nodes[i], r)
	}
	return r
}

// Clone returns an independent copy.
func (c *Compact) Clone() *Compact {
	return &Compact{h: c.h, size: c.size, nodes: append([][]byte(nil), c.nodes...)}
}

// CompactAt rebuilds the compact range of a tree of size from its stored perfect nodes.
func (h Hasher) CompactAt(size uint64, node NodeFunc) (*Compact, error) {
	c := &Compact{h: h, size: size}
	var begin uint64
	for level := 63; level >= 0; level-- {
		if size&(1<<level) == 0 {
			continue
		}
		n, err := node(uint8(level), begin>>level)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		begin += 1 << level
	}
	return c, nil
}
