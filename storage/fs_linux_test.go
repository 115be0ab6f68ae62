//go:build linux

package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A package written to the local disk is not left in the page cache, where it would push out
// the index that every request reads; it is still read back whole.
func TestFSPutLeavesNoCachedPages(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("档案"), 1<<19) // 3 MiB
	if _, err := s.Put(context.Background(), "2026/p1.eep", bytes.NewReader(body), int64(len(body)), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "2026", "p1.eep"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := unix.Mmap(int(f.Fd()), 0, len(body), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := make([]byte, (len(body)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&pages[0]))); errno != 0 {
		t.Fatal(errno)
	}
	resident := 0
	for _, p := range pages {
		resident += int(p & 1)
	}
	if resident > len(pages)/10 {
		t.Fatalf("%d of %d pages of the written package are still cached", resident, len(pages))
	}
	rc, _, err := s.Get(context.Background(), "2026/p1.eep")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got bytes.Buffer
	if _, err := got.ReadFrom(rc); err != nil || !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("read back %d bytes (%v)", got.Len(), err)
	}
}
