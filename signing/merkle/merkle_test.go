package merkle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

var sha = Hasher{New: sha256.New, Size: sha256.Size}

// The leaves and roots published with RFC 6962's reference implementation
// (certificate-transparency, merkle_tree_test.cc), over SHA-256.
var rfcLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}
var rfcRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

// tree is a test tree: every perfect node kept in a map, filled by Compact.Append.
type tree struct {
	h      Hasher
	leaves [][]byte
	nodes  map[[2]uint64][]byte
	c      *Compact
}

func newTree(h Hasher) *tree { return &tree{h: h, nodes: map[[2]uint64][]byte{}, c: h.NewCompact()} }

func (t *tree) add(leaf []byte) {
	t.leaves = append(t.leaves, leaf)
	t.c.Append(t.h.LeafHash(leaf), func(l uint8, i uint64, h []byte) { t.nodes[[2]uint64{uint64(l), i}] = h })
}

func (t *tree) node(l uint8, i uint64) ([]byte, error) {
	h, ok := t.nodes[[2]uint64{uint64(l), i}]
	if !ok {
		return nil, fmt.Errorf("no node %d/%d", l, i)
	}
	return h, nil
}

// The reference: RFC 6962 §2.1 written as it reads, over the leaves themselves.
func refMTH(h Hasher, d [][]byte) []byte {
	switch len(d) {
	case 0:
		return h.EmptyRoot()
	case 1:
		return h.LeafHash(d[0])
	}
	k := int(largestPow2Below(uint64(len(d))))
	return h.NodeHash(refMTH(h, d[:k]), refMTH(h, d[k:]))
}

func refPath(h Hasher, m int, d [][]byte) [][]byte {
	if len(d) <= 1 {
		return nil
	}
	k := int(largestPow2Below(uint64(len(d))))
	if m < k {
		return append(refPath(h, m, d[:k]), refMTH(h, d[k:]))
	}
	return append(refPath(h, m-k, d[k:]), refMTH(h, d[:k]))
}

func refSubproof(h Hasher, m int, d [][]byte, b bool) [][]byte {
	n := len(d)
	if m == n {
		if b {
			return nil
		}
		return [][]byte{refMTH(h, d)}
	}
	k := int(largestPow2Below(uint64(n)))
	if m <= k {
		return append(refSubproof(h, m, d[:k], b), refMTH(h, d[k:]))
	}
	return append(refSubproof(h, m-k, d[k:], false), refMTH(h, d[:k]))
}

func TestRFC6962Roots(t *testing.T) {
	tr := newTree(sha)
	for i, l := range rfcLeaves {
		b, _ := hex.DecodeString(l)
		tr.add(b)
		want := rfcRoots[i]
		got, err := sha.Root(uint64(i+1), tr.node)
		if err != nil || hex.EncodeToString(got) != want {
			t.Fatalf("root of %d leaves: %x, %v; want %s", i+1, got, err, want)
		}
		if hex.EncodeToString(tr.c.Root()) != want {
			t.Fatalf("compact root of %d leaves: %x, want %s", i+1, tr.c.Root(), want)
		}
	}
	if hex.EncodeToString(sha.EmptyRoot()) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatal("empty root")
	}
}

// Every proof for every size up to 70 equals the reference's and verifies; over SM3.
func TestProofsAgainstReference(t *testing.T) {
	h := SM3
	tr := newTree(h)
	for n := 1; n <= 70; n++ {
		tr.add([]byte(fmt.Sprintf("event %d", n-1)))
		root, err := h.Root(uint64(n), tr.node)
		if err != nil {
			t.Fatal(err)
		}
		if want := refMTH(h, tr.leaves); !bytes.Equal(root, want) || !bytes.Equal(tr.c.Root(), want) {
			t.Fatalf("root of %d differs from the reference", n)
		}
		for m := 0; m < n; m++ {
			p, err := h.InclusionProof(uint64(m), uint64(n), tr.node)
			if err != nil {
				t.Fatal(err)
			}
			if want := refPath(h, m, tr.leaves); !equalProofs(p, want) {
				t.Fatalf("inclusion %d/%d differs from the reference", m, n)
			}
			if err := h.VerifyInclusion(uint64(m), uint64(n), h.LeafHash(tr.leaves[m]), p, root); err != nil {
				t.Fatalf("inclusion %d/%d: %v", m, n, err)
			}
		}
		for m := 1; m <= n; m++ {
			p, err := h.ConsistencyProof(uint64(m), uint64(n), tr.node)
			if err != nil {
				t.Fatal(err)
			}
			var want [][]byte
			if m < n {
				want = refSubproof(h, m, tr.leaves, true)
			}
			if !equalProofs(p, want) {
				t.Fatalf("consistency %d→%d differs from the reference", m, n)
			}
			old := refMTH(h, tr.leaves[:m])
			if err := h.VerifyConsistency(uint64(m), uint64(n), old, root, p); err != nil {
				t.Fatalf("consistency %d→%d: %v", m, n, err)
			}
		}
	}
}

func equalProofs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// Tampered proofs fail, each for its reason.
func TestNegative(t *testing.T) {
	h := SM3
	tr := newTree(h)
	for i := 0; i < 13; i++ {
		tr.add([]byte(fmt.Sprintf("e%d", i)))
	}
	root, _ := h.Root(13, tr.node)
	proof, _ := h.InclusionProof(5, 13, tr.node)
	leaf := h.LeafHash(tr.leaves[5])
	flip := func(p [][]byte, i, bit int) [][]byte {
		out := make([][]byte, len(p))
		for j := range p {
			out[j] = append([]byte(nil), p[j]...)
		}
		out[i][bit/8] ^= 1 << (bit % 8)
		return out
	}
	for i := range proof {
		for _, bit := range []int{0, 77, 255} {
			if err := h.VerifyInclusion(5, 13, leaf, flip(proof, i, bit), root); !errors.Is(err, ErrVerify) {
				t.Fatalf("hash %d bit %d flipped: %v", i, bit, err)
			}
		}
	}
	cases := map[string]error{
		"other leaf":    h.VerifyInclusion(5, 13, h.LeafHash(tr.leaves[6]), proof, root),
		"other index":   h.VerifyInclusion(6, 13, leaf, proof, root),
		"other size":    h.VerifyInclusion(5, 7, leaf, proof, root),
		"short proof":   h.VerifyInclusion(5, 13, leaf, proof[:len(proof)-1], root),
		"long proof":    h.VerifyInclusion(5, 13, leaf, append(proof, root), root),
		"truncated":     h.VerifyInclusion(5, 13, leaf, [][]byte{proof[0][:31]}, root),
		"index ≥ size":  h.VerifyInclusion(13, 13, leaf, proof, root),
		"leaf as root":  h.VerifyInclusion(5, 13, leaf, nil, leaf),
		"other root":    h.VerifyInclusion(5, 13, leaf, proof, h.LeafHash([]byte("x"))),
		"empty to root": h.VerifyConsistency(3, 3, root, leaf, nil),
	}
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}

	// A fork: two trees that agree on 7 leaves and differ at the 8th.
	fork := newTree(h)
	for i := 0; i < 13; i++ {
		l := []byte(fmt.Sprintf("e%d", i))
		if i == 7 {
			l = []byte("rewritten")
		}
		fork.add(l)
	}
	forkRoot, _ := h.Root(13, fork.node)
	for m := uint64(8); m < 13; m++ {
		old, _ := h.Root(m, tr.node)
		p, _ := h.ConsistencyProof(m, 13, fork.node)
		if err := h.VerifyConsistency(m, 13, old, forkRoot, p); !errors.Is(err, ErrVerify) {
			t.Fatalf("consistency %d→13 across a fork: %v", m, err)
		}
	}
	// Before the fork point the histories agree and the proof holds.
	old7, _ := h.Root(7, tr.node)
	p, _ := h.ConsistencyProof(7, 13, fork.node)
	if err := h.VerifyConsistency(7, 13, old7, forkRoot, p); err != nil {
		t.Fatalf("the common prefix: %v", err)
	}
	// A consistency proof with a bit flipped.
	old5, _ := h.Root(5, tr.node)
	cp, _ := h.ConsistencyProof(5, 13, tr.node)
	for i := range cp {
		if err := h.VerifyConsistency(5, 13, old5, root, flip(cp, i, 3)); !errors.Is(err, ErrVerify) {
			t.Fatalf("consistency hash %d flipped: %v", i, err)
		}
	}
}

func BenchmarkInclusionProof(b *testing.B) {
	h := SM3
	tr := newTree(h)
	for i := 0; i < 1<<16; i++ {
		tr.add([]byte(fmt.Sprint(i)))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.InclusionProof(uint64(i)%(1<<16-5), 1<<16-5, tr.node); err != nil {
			b.Fatal(err)
		}
	}
}
