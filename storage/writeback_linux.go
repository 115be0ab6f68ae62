//go:build linux

package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing a range of f to disk without waiting, so
// the fsync at the end of a large Put has little left to do.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE) // advisory: fsync still decides
}

// dropCached tells the kernel that the pages of f, synced, will not be read soon. A package
// is written once and read rarely (a read, an audit), so keeping it in the page cache only
// pushes out the index, which every request reads: at a million packages the objects are
// two thirds of the data.
func dropCached(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED) // advisory
}
