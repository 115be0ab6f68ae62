package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// FS is the local-filesystem ObjectStore: each object is a file under the root directory.
// Put writes a temporary file, fsyncs it, links it into place (failing if the key exists)
// and fsyncs the directory, so an acknowledged object survives a crash and a failed one
// leaves nothing behind but a temporary file, which Open removes.
type FS struct {
	root string
}

// OpenFS opens (creating when needed) a filesystem store rooted at dir.
func OpenFS(dir string) (*FS, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &FS{root: abs}
	if err := s.removeTemps(); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenFSShared opens an existing filesystem store beside a process that writes to it (a
// running server): it leaves temporary files alone, since they may be writes in flight.
// Readers such as dangan log verify use it.
func OpenFSShared(dir string) (*FS, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("open store %s: not a directory: %w", dir, ErrNotFound)
	}
	return &FS{root: abs}, nil
}

// Root is the directory the store lives in.
func (s *FS) Root() string { return s.root }

// staging is the directory under the root where objects are written before they are
// linked into place: a crash leaves its temporary files there, and only there, so opening
// the store clears one directory instead of walking every object. (Its name is not a valid
// key, and listings pass over it.)
const staging = ".tmp-staging"

func (s *FS) removeTemps() error {
	dir := filepath.Join(s.root, staging)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove leftover temporary files: %w", err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		return fmt.Errorf("store staging directory: %w", err)
	}
	return nil
}

func (s *FS) path(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements ObjectStore.
// The filesystem cannot lock files against their owner: retention (opts.RetainUntil) is
// recorded and enforced by dangan's index instead.
func (s *FS) Put(ctx context.Context, key string, r io.Reader, size int64, _ PutOptions) (ObjectInfo, error) {
	dst, err := s.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	dir := filepath.Dir(dst)
	if err := mkdirDurable(dir); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, ErrExists)
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, staging), ".tmp-*")
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	buf := copyBufs.Get().(*[]byte)
	// The source is passed as is so that one implementing io.WriterTo writes straight into
	// the file; cancellation is checked on each write.
	n, err := io.CopyBuffer(&writebackWriter{ctx: ctx, f: tmp}, r, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: write: %w", key, err)
	}
	if size >= 0 && n != size {
		return ObjectInfo{}, fmt.Errorf("put %s: %w: declared %d, got %d", key, ErrSizeChange, size, n)
	}
	if err := tmp.Sync(); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: fsync: %w", key, err)
	}
	dropCached(tmp)
	if err := tmp.Close(); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: close: %w", key, err)
	}
	// A hard link fails when dst exists, so a concurrent Put of the same key cannot be
	// silently replaced (rename would replace it).
	if err := os.Link(tmp.Name(), dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ObjectInfo{}, fmt.Errorf("put %s: %w", key, ErrExists)
		}
		return ObjectInfo{}, fmt.Errorf("put %s: link: %w", key, err)
	}
	committed = true
	if err := os.Remove(tmp.Name()); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: remove temporary: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	st, err := os.Stat(dst)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// mkdirDurable creates dir and any missing parents, fsyncing the parent of each directory it
// creates: a new directory entry is durable only once its parent is synced.
func mkdirDurable(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}

// writebackWriter starts disk writeback every 16 MiB while a large object is written.
type writebackWriter struct {
	ctx     context.Context
	f       *os.File
	written int64
	flushed int64
}

const writebackEvery = 16 << 20

func (w *writebackWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.flushed >= writebackEvery {
		startWriteback(w.f, w.flushed, w.written-w.flushed)
		w.flushed = w.written
	}
	return n, err
}

func (s *FS) open(key string) (*os.File, os.FileInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	} else if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %s: %w", key, err)
	}
	return f, st, nil
}

// Get implements ObjectStore.
func (s *FS) Get(_ context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	f, st, err := s.open(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	return f, ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

// GetRange implements ObjectStore.
func (s *FS) GetRange(_ context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	f, st, err := s.open(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 || offset+length > st.Size() {
		f.Close()
		return nil, fmt.Errorf("%s [%d,+%d) of %d bytes: %w", key, offset, length, st.Size(), ErrBadRange)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

// Stat implements ObjectStore.
func (s *FS) Stat(_ context.Context, key string) (ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	} else if err != nil {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, err)
	}
	return ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()}, nil
}

// Delete implements ObjectStore.
func (s *FS) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", key, ErrNotFound)
	} else if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// List implements ObjectStore.
func (s *FS) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return s.ListAfter(ctx, prefix, "", fn)
}

// Ping implements ObjectStore.
func (s *FS) Ping(context.Context) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fmt.Errorf("store root: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("store root %s is not a directory", s.root)
	}
	return nil
}

// Dirs implements Walker.
func (s *FS) Dirs(ctx context.Context, prefix string) ([]string, error) {
	if !strings.HasSuffix(prefix, "/") || CheckKey(strings.TrimSuffix(prefix, "/")) != nil {
		return nil, fmt.Errorf("dirs %q: %w", prefix, ErrBadKey)
	}
	es, err := os.ReadDir(filepath.Join(s.root, filepath.FromSlash(prefix)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("dirs %q: %w", prefix, err)
	}
	var out []string
	for _, e := range es {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, prefix+e.Name()+"/")
		}
	}
	return out, nil
}

// ChangedSince implements ChangeTimer: linking an object into a directory sets the
// directory's modification time.
func (s *FS) ChangedSince(ctx context.Context, prefix string, t time.Time) (bool, error) {
	if !strings.HasSuffix(prefix, "/") || CheckKey(strings.TrimSuffix(prefix, "/")) != nil {
		return false, fmt.Errorf("changed since %q: %w", prefix, ErrBadKey)
	}
	fi, err := os.Stat(filepath.Join(s.root, filepath.FromSlash(prefix)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("changed since %q: %w", prefix, err)
	}
	return !fi.ModTime().Before(t), nil
}

// ListAfter implements Walker. It reads the names of the directories the range touches and
// stats only the objects after after.
func (s *FS) ListAfter(ctx context.Context, prefix, after string, fn func(ObjectInfo) error) error {
	start := s.root
	if i := strings.LastIndex(prefix, "/"); i > 0 {
		if CheckKey(prefix[:i]) != nil {
			return fmt.Errorf("list %q: %w", prefix, ErrBadKey)
		}
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	var keys []ObjectInfo
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == start {
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() && strings.HasPrefix(d.Name(), ".tmp-") {
			return filepath.SkipDir // the staging directory
		}
		if d.IsDir() {
			// A directory whose every key sorts before after is passed over whole.
			if p != start && key+"/" < after && !strings.HasPrefix(after, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasPrefix(d.Name(), ".tmp-") || !strings.HasPrefix(key, prefix) || key <= after {
			return nil
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		keys = append(keys, ObjectInfo{Key: key, Size: st.Size(), Modified: st.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %q after %q: %w", prefix, after, err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key < keys[j].Key })
	for _, o := range keys {
		if err := fn(o); err != nil {
			return err
		}
	}
	return nil
}
