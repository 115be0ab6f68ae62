package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// On a store that keeps versions (S3 with object lock), every package object is pinned to
// the version dangan wrote: the index records its version id, and reads, audits and
// transfers ask for that version. Someone with the bucket's credentials can still put a
// newer version or a delete marker on the key; that never hides the archived version, and
// it is noticed: a read logs it as tampering (both versions named) and counts it, and the
// audit fails the package on it.

// tamperings counts reads that found an object changed behind dangan's back.
var tamperings atomic.Uint64

// Tamperings is how many reads found a newer version or a delete marker over an archived
// version (for the metrics).
func Tamperings() uint64 { return tamperings.Load() }

// pinVersion is the version id of key as it is now (right after dangan wrote it).
func (a *Archive) pinVersion(ctx context.Context, key string) string {
	if _, ok := a.store.(storage.Versioned); !ok {
		return ""
	}
	st, err := a.store.Stat(ctx, key)
	if err != nil {
		return ""
	}
	return st.Version
}

// getPinned opens the archived version of key (the latest where none is pinned).
func (a *Archive) getPinned(ctx context.Context, key, version string) (io.ReadCloser, storage.ObjectInfo, error) {
	v, ok := a.store.(storage.Versioned)
	if !ok || version == "" {
		return a.store.Get(ctx, key)
	}
	a.noticeTampering(ctx, key, version)
	return v.GetVersion(ctx, key, version)
}

// getPinnedRange opens length bytes from offset of the archived version of key.
func (a *Archive) getPinnedRange(ctx context.Context, key, version string, offset, length int64) (io.ReadCloser, error) {
	v, ok := a.store.(storage.Versioned)
	if !ok || version == "" {
		return a.store.GetRange(ctx, key, offset, length)
	}
	a.noticeTampering(ctx, key, version)
	return v.GetRangeVersion(ctx, key, version, offset, length)
}

// noticeTampering logs and counts a key whose latest version is not the archived one.
func (a *Archive) noticeTampering(ctx context.Context, key, version string) {
	st, err := a.store.Stat(ctx, key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		tamperings.Add(1)
		a.log.Error("tampering: a delete marker hides the archived version; the archived version is served", "key", key, "archived_version", version)
	case err == nil && st.Version != version:
		tamperings.Add(1)
		a.log.Error("tampering: a newer version was written over the archived one; the archived version is served", "key", key,
			"archived_version", version, "newer_version", st.Version)
	}
}

// versionFindings says what stands over the archived version of key: newer versions and
// delete markers that dangan did not write ("" when nothing does, or the store keeps none).
func (a *Archive) versionFindings(ctx context.Context, key, version string) (string, error) {
	v, ok := a.store.(storage.Versioned)
	if !ok || version == "" {
		return "", nil
	}
	vs, err := v.Versions(ctx, key)
	if err != nil {
		return "", err
	}
	var found []string
	archived := false
	for _, x := range vs {
		switch {
		case x.Version == version:
			archived = true
		case x.DeleteMarker:
			found = append(found, "delete marker "+x.Version)
		default:
			found = append(found, fmt.Sprintf("version %s (%d bytes)", x.Version, x.Size))
		}
	}
	if !archived {
		found = append(found, "the archived version "+version+" is gone")
	}
	if len(found) == 0 {
		return "", nil
	}
	return strings.Join(found, ", "), nil
}

// backfillVersion pins a package stored before versions were recorded: its oldest version,
// the one dangan wrote (dangan never writes a key twice). The audit calls it.
func (a *Archive) backfillVersion(ctx context.Context, p *index.Package) {
	v, ok := a.store.(storage.Versioned)
	if !ok || p.Version != "" {
		return
	}
	vs, err := v.Versions(ctx, p.Key)
	if err != nil {
		return
	}
	for i := len(vs) - 1; i >= 0; i-- {
		if !vs[i].DeleteMarker {
			version := vs[i].Version
			if _, err := a.index.UpdatePackage(p.ID, func(q *index.Package) error {
				if q.Key == p.Key && q.Version == "" {
					q.Version = version
				}
				return nil
			}); err != nil {
				a.log.Warn("the stored version of a package was not pinned; the next audit tries again", "package", p.ID, "err", err)
				return
			}
			p.Version = version
			a.log.Info("pinned the stored version of a package archived before versions were recorded", "package", p.ID, "version", version)
			return
		}
	}
}

// whileStoreUp is ctx, cancelled when the store stops being able to take writes while an
// upload runs (a cluster that lost its write quorum can hold a request for minutes): the
// ingest then answers 503 within seconds, and nothing is acknowledged. stop ends the watch
// and says why the upload was cancelled (nil if it was not).
func (a *Archive) whileStoreUp(ctx context.Context) (context.Context, func() error) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var why atomic.Pointer[error]
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if err := a.storeHealthy(ctx); err != nil && ctx.Err() == nil {
					why.Store(&err)
					cancel()
					return
				}
			}
		}
	}()
	return ctx, func() error {
		close(done)
		cancel()
		if p := why.Load(); p != nil {
			return *p
		}
		return nil
	}
}
