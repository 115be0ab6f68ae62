package archive

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/dangan-archive/dangan/formats"
)

// spoolPool makes buffers for uploads and renditions. A buffer stays in memory while it is
// small and the archive-wide memory budget allows; beyond that it spills to a scratch file.
// Scratch files are reused (truncated, not deleted): creating a file costs far more than
// writing one on some filesystems (over a millisecond of CPU measured on the CI machines).
type spoolPool struct {
	dir       string
	perBuffer int64        // largest buffer kept in memory
	budget    atomic.Int64 // memory still available to all buffers together
	mu        sync.Mutex
	idle      []*os.File
	maxIdle   int
}

func newSpoolPool(dir string, perBuffer, total int64) *spoolPool {
	p := &spoolPool{dir: dir, perBuffer: perBuffer, maxIdle: 32}
	p.budget.Store(total)
	return p
}

func (p *spoolPool) take(n int64) bool {
	if p.budget.Add(-n) >= 0 {
		return true
	}
	p.budget.Add(n)
	return false
}

func (p *spoolPool) scratch() (*os.File, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		f := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return f, nil
	}
	p.mu.Unlock()
	f, err := os.CreateTemp(p.dir, "scratch-*")
	if err != nil {
		return nil, fmt.Errorf("scratch file: %w", err)
	}
	return f, nil
}

func (p *spoolPool) recycle(f *os.File) {
	if err := f.Truncate(0); err == nil {
		p.mu.Lock()
		if len(p.idle) < p.maxIdle {
			p.idle = append(p.idle, f)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	f.Close()
	os.Remove(f.Name())
}

// spoolBuf is one buffer: write it once, then read it at random (formats.Source and
// formats.Sink). Release gives its memory or scratch file back.
type spoolBuf struct {
	p    *spoolPool
	mem  []byte
	held int64
	f    *os.File
	size int64
}

func (p *spoolPool) New() *spoolBuf { return &spoolBuf{p: p} }

func (b *spoolBuf) Write(data []byte) (int, error) {
	if b.f == nil {
		n := int64(len(data))
		if b.size+n <= b.p.perBuffer && b.p.take(n) {
			b.held += n
			b.mem = append(b.mem, data...)
			b.size += n
			return len(data), nil
		}
		f, err := b.p.scratch()
		if err != nil {
			return 0, err
		}
		if _, err := f.WriteAt(b.mem, 0); err != nil {
			b.p.recycle(f)
			return 0, fmt.Errorf("spill to scratch file: %w", err)
		}
		b.f = f
		b.p.budget.Add(b.held)
		b.held, b.mem = 0, nil
	}
	n, err := b.f.WriteAt(data, b.size)
	b.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("write scratch file: %w", err)
	}
	return n, nil
}

func (b *spoolBuf) ReadAt(p []byte, off int64) (int, error) {
	if b.f != nil {
		return b.f.ReadAt(p, off)
	}
	return bytes.NewReader(b.mem).ReadAt(p, off)
}

func (b *spoolBuf) Size() int64 { return b.size }

// Source implements formats.Sink.
func (b *spoolBuf) Source() (formats.Source, error) { return b, nil }

// Release returns the buffer's memory budget or scratch file.
func (b *spoolBuf) Release() {
	if b.f != nil {
		b.p.recycle(b.f)
		b.f = nil
	}
	b.p.budget.Add(b.held)
	b.held, b.mem, b.size = 0, nil, 0
}

// close removes the idle scratch files.
func (p *spoolPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.idle {
		f.Close()
		os.Remove(f.Name())
	}
	p.idle = nil
}
