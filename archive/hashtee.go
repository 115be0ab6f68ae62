package archive

import (
	"hash"
	"sync"
	"sync/atomic"
)

// hashTee is an io.Writer that feeds each of its hashes in a goroutine of its own, so on a
// multi-core machine hashing runs beside the writing and beside the other hashes. Writes
// are copied into pooled chunks; at most depth chunks per hash are in flight, which bounds
// memory. Call Sums once, after the last Write.
type hashTee struct {
	hs    []hash.Hash
	chans []chan *teeChunk
	wg    sync.WaitGroup
	cur   *teeChunk
	sums  [][]byte
}

// chunkPool is shared by every tee, so many small concurrent ingests reuse a few chunks.
var chunkPool = sync.Pool{New: func() any { return &teeChunk{b: make([]byte, 0, teeChunkSize)} }}

type teeChunk struct {
	b    []byte
	refs atomic.Int32 // hashers still to read b; the last one returns the chunk to the pool
}

const (
	teeChunkSize = 256 << 10
	teeDepth     = 8
)

func newHashTee(hs ...hash.Hash) *hashTee { return &hashTee{hs: hs} }

// start launches the hashing goroutines, on the first full chunk: small inputs are hashed
// inline by Sums, without goroutines.
func (t *hashTee) start() {
	for _, h := range t.hs {
		ch := make(chan *teeChunk, teeDepth)
		t.chans = append(t.chans, ch)
		t.wg.Add(1)
		go func(h hash.Hash) {
			defer t.wg.Done()
			for c := range ch {
				h.Write(c.b)
				if c.refs.Add(-1) == 0 {
					chunkPool.Put(c)
				}
			}
		}(h)
	}
}

// Write buffers p and hands full chunks to the hashes. It never fails.
func (t *hashTee) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if t.cur == nil {
			t.cur = chunkPool.Get().(*teeChunk)
			t.cur.b = t.cur.b[:0]
		}
		m := min(cap(t.cur.b)-len(t.cur.b), len(p))
		t.cur.b = append(t.cur.b, p[:m]...)
		p = p[m:]
		if len(t.cur.b) == cap(t.cur.b) {
			t.send()
		}
	}
	return n, nil
}

func (t *hashTee) send() {
	if t.chans == nil {
		t.start()
	}
	c := t.cur
	t.cur = nil
	c.refs.Store(int32(len(t.chans)))
	for _, ch := range t.chans {
		ch <- c
	}
}

// Sums flushes, waits for every hash and returns their sums in order. Later calls return
// the same sums.
func (t *hashTee) Sums() [][]byte {
	if t.sums != nil {
		return t.sums
	}
	if t.cur != nil && len(t.cur.b) > 0 {
		if t.chans == nil { // everything fits in one chunk: hash it here
			for _, h := range t.hs {
				h.Write(t.cur.b)
			}
			chunkPool.Put(t.cur)
			t.cur = nil
		} else {
			t.send()
		}
	}
	for _, ch := range t.chans {
		close(ch)
	}
	t.wg.Wait()
	out := make([][]byte, len(t.hs))
	for i, h := range t.hs {
		out[i] = h.Sum(nil)
	}
	t.sums = out
	return out
}

// Close stops the goroutines without using the sums (on error paths).
func (t *hashTee) Close() { t.Sums() }
