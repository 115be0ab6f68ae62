package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// A backup is a second object store holding the same keys as the primary (every prefix in
// backupPrefixes: packages, the event log, witnessed checkpoints, transfer and accession
// documents, tombstones, objects set aside), index snapshots under index/, and the PKI under
// pki/. Objects never change, so a backup run copies only the keys the backup does not have.
//
// Order makes a backup consistent while ingests go on: the index snapshot is taken first,
// every object is copied next, and the snapshot is stored last, so no snapshot in a backup
// refers to an object the backup lacks.

// BackupProgress is called as objects are copied.
type BackupProgress func(done, total int, bytes int64)

// BackupReport says what a backup run did.
type BackupReport struct {
	Copied   int
	Skipped  int // already in the backup
	Bytes    int64
	Snapshot string // key of the index snapshot
	Packages int    // packages in the snapshot
}

var backupPrefixes = []string{"packages/", "log/", "witness/", "transfers/", "accessions/", "tombstones/", "orphans/", "certificates/", "open/", "deferrals/", "deferral-requests/", "use/", "inspection-reports/"}

// Backup copies what is new to the backup store, with a consistent index snapshot.
func (a *Archive) Backup(ctx context.Context, to storage.ObjectStore, progress BackupProgress) (*BackupReport, error) {
	rep := &BackupReport{}
	snap, err := os.CreateTemp(a.tmp, "snapshot-*.db")
	if err != nil {
		return nil, fmt.Errorf("index snapshot: %w", err)
	}
	defer os.Remove(snap.Name())
	defer snap.Close()
	if _, err := a.index.Snapshot(snap); err != nil {
		return nil, err
	}
	retain := map[string]time.Time{}
	if err := a.index.ForEachPackage(func(p *index.Package) error {
		rep.Packages++
		for _, k := range p.Keys() {
			retain[k] = p.RetainUntil
		}
		return nil
	}); err != nil {
		return nil, err
	}
	have := map[string]int64{}
	for _, prefix := range backupPrefixes {
		if err := to.List(ctx, prefix, func(o storage.ObjectInfo) error { have[o.Key] = o.Size; return nil }); err != nil {
			return nil, fmt.Errorf("list the backup: %w", err)
		}
	}
	var todo []storage.ObjectInfo
	for _, prefix := range backupPrefixes {
		if err := a.store.List(ctx, prefix, func(o storage.ObjectInfo) error {
			if size, ok := have[o.Key]; ok && size == o.Size {
				rep.Skipped++
			} else {
				todo = append(todo, o)
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("list the archive: %w", err)
		}
	}
	for i, o := range todo {
		if err := copyObject(ctx, a.store, to, o.Key, storage.PutOptions{RetainUntil: retain[o.Key]}); err != nil {
			return nil, err
		}
		rep.Copied++
		rep.Bytes += o.Size
		if progress != nil {
			progress(i+1, len(todo), rep.Bytes)
		}
	}
	for _, name := range pkiFiles(a.cfg.DataDir) {
		f, err := os.Open(filepath.Join(a.cfg.DataDir, "pki", name))
		if err != nil {
			return nil, err
		}
		st, _ := f.Stat()
		_, err = to.Put(ctx, "pki/"+name, f, st.Size(), storage.PutOptions{})
		f.Close()
		if err != nil && !errors.Is(err, storage.ErrExists) {
			return nil, fmt.Errorf("back up pki/%s: %w", name, err)
		}
	}
	st, err := snap.Stat()
	if err != nil {
		return nil, err
	}
	if _, err := snap.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	rep.Snapshot = fmt.Sprintf("index/%s.db", a.now().UTC().Format("20060102T150405.000000000Z"))
	if _, err := to.Put(ctx, rep.Snapshot, snap, st.Size(), storage.PutOptions{}); err != nil {
		return nil, fmt.Errorf("store the index snapshot: %w", err)
	}
	if err := a.recordBackup(rep); err != nil {
		return nil, fmt.Errorf("record the backup: %w", err)
	}
	a.log.Info("backup", "copied", rep.Copied, "skipped", rep.Skipped, "bytes", rep.Bytes, "snapshot", rep.Snapshot, "packages", rep.Packages)
	return rep, nil
}

func copyObject(ctx context.Context, from, to storage.ObjectStore, key string, opts storage.PutOptions) error {
	rc, info, err := from.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("copy %s: %w", key, err)
	}
	defer rc.Close()
	if _, err := to.Put(ctx, key, rc, info.Size, opts); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("copy %s: %w", key, err)
	}
	return nil
}

// pkiFiles lists the files of the PKI: certificates and keys (keys are encrypted when
// DANGAN_KEY_PASSWORD is set), the wrapped data key (wrapped with the key password when it is
// set: a restore then needs it), and the token secret.
func pkiFiles(dataDir string) []string {
	entries, _ := os.ReadDir(filepath.Join(dataDir, "pki"))
	var out []string
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && (strings.HasSuffix(n, ".pem") || strings.HasSuffix(n, ".key") || n == "data-key.json" || n == "data-kek" || n == "token-secret") {
			out = append(out, e.Name())
		}
	}
	return out
}

// RestoreReport says what a restore did.
type RestoreReport struct {
	Copied   int
	Bytes    int64
	Snapshot string
}

// Restore brings a new instance back from a backup: it copies the objects to primary (the
// new instance's store), and the newest index snapshot and the PKI into dataDir, which must
// not hold an archive yet. Open the archive afterwards: it reconciles anything newer.
func Restore(ctx context.Context, from, primary storage.ObjectStore, dataDir string, progress BackupProgress) (*RestoreReport, error) {
	if _, err := os.Stat(filepath.Join(dataDir, "index.db")); err == nil {
		return nil, fmt.Errorf("%s already holds an archive: restore into an empty data directory", dataDir)
	}
	rep := &RestoreReport{}
	var todo []storage.ObjectInfo
	for _, prefix := range backupPrefixes {
		if err := from.List(ctx, prefix, func(o storage.ObjectInfo) error { todo = append(todo, o); return nil }); err != nil {
			return nil, fmt.Errorf("list the backup: %w", err)
		}
	}
	for i, o := range todo {
		if err := copyObject(ctx, from, primary, o.Key, storage.PutOptions{}); err != nil {
			return nil, err
		}
		rep.Copied++
		rep.Bytes += o.Size
		if progress != nil {
			progress(i+1, len(todo), rep.Bytes)
		}
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "pki"), 0o700); err != nil {
		return nil, err
	}
	var snapshots []string
	if err := from.List(ctx, "", func(o storage.ObjectInfo) error {
		switch {
		case strings.HasPrefix(o.Key, "index/"):
			snapshots = append(snapshots, o.Key)
		case strings.HasPrefix(o.Key, "pki/"):
			if err := download(ctx, from, o.Key, filepath.Join(dataDir, o.Key), 0o600); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(snapshots) > 0 {
		sort.Strings(snapshots) // named by time
		rep.Snapshot = snapshots[len(snapshots)-1]
		if err := download(ctx, from, rep.Snapshot, filepath.Join(dataDir, "index.db"), 0o600); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func download(ctx context.Context, from storage.ObjectStore, key, path string, mode os.FileMode) error {
	rc, _, err := from.Get(ctx, key)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("restore %s: %w", key, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
