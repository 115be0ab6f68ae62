// Package storage keeps dangan's objects (packages, evidence) in an object store, and its
// index in bbolt (package storage/index).
//
// ObjectStore is the one interface every backend implements: the local filesystem (the
// embedded default) and MinIO. Writes are streamed and durable when Put returns; reads are
// streamed and may be ranged.
//
//	st, _ := storage.OpenFS("/var/lib/dangan/objects")
//	info, _ := st.Put(ctx, "packages/F1/2025/p1.eep", body, -1, storage.PutOptions{})
//	rc, _ := st.GetRange(ctx, "packages/F1/2025/p1.eep", 100, 50)
//	defer rc.Close()
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Sentinel errors; backends wrap them so callers decide with errors.Is.
var (
	ErrNotFound   = errors.New("object not found")
	ErrExists     = errors.New("object already exists")
	ErrBadKey     = errors.New("invalid object key")
	ErrRetained   = errors.New("object is under retention")
	ErrBadRange   = errors.New("invalid byte range")
	ErrSizeChange = errors.New("object size differs from the declared size")
	// ErrUnavailable: the store could not be reached; the operation may succeed later.
	ErrUnavailable = errors.New("object store unavailable")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
	// Version is the store's version id of the object ("" where the store keeps no versions).
	Version string
}

// PutOptions are optional settings of a Put.
type PutOptions struct {
	// RetainUntil, when set, is the object's retention end: a store that is also a Retainer
	// locks the object (WORM, compliance mode) until then, atomically with the write.
	// Others ignore it; dangan records retention in its index for every store.
	RetainUntil time.Time
}

// ObjectStore is a flat namespace of immutable objects addressed by slash-separated keys.
type ObjectStore interface {
	// Put stores r under key, failing with ErrExists when key is taken: objects are never
	// overwritten. size is the exact length, or -1 when unknown. When Put returns nil the
	// object is durable; on error nothing is left under key.
	Put(ctx context.Context, key string, r io.Reader, size int64, opts PutOptions) (ObjectInfo, error)
	// Get opens the whole object.
	Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error)
	// GetRange opens length bytes from offset.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Ping reports whether the store is reachable (for readiness).
	Ping(ctx context.Context) error
}

// Versioned is implemented by stores that keep every version of a key (S3 with
// versioning, as object lock requires): the archive pins the version it wrote, reads that
// one, and notices a newer version or a delete marker planted behind its back.
type Versioned interface {
	// GetVersion opens one version of key.
	GetVersion(ctx context.Context, key, version string) (io.ReadCloser, ObjectInfo, error)
	// GetRangeVersion opens length bytes from offset of one version of key.
	GetRangeVersion(ctx context.Context, key, version string, offset, length int64) (io.ReadCloser, error)
	// Versions lists every version and delete marker of key, newest first.
	Versions(ctx context.Context, key string) ([]VersionInfo, error)
}

// VersionInfo is one version of a key, or a delete marker.
type VersionInfo struct {
	Version      string
	DeleteMarker bool
	Size         int64
	Modified     time.Time
}

// Walker is implemented by stores that can list one level of a prefix and the keys after
// a given one: what start-up reconciliation needs to look only at the objects written
// since it last ran, not at all of them.
type Walker interface {
	// Dirs lists the "directories" directly under prefix (which ends in "/"), each ending
	// in "/", in key order.
	Dirs(ctx context.Context, prefix string) ([]string, error)
	// ListAfter calls fn for every object whose key starts with prefix and sorts after
	// after, in key order.
	ListAfter(ctx context.Context, prefix, after string, fn func(ObjectInfo) error) error
}

// ChangeTimer is implemented by stores that know when a "directory" last had an object
// added (the local disk: a directory's modification time). A reconciliation passes over a
// directory unchanged since its mark without reading its names.
type ChangeTimer interface {
	// ChangedSince reports whether an object may have been added under prefix (which ends
	// in "/") at t or later.
	ChangedSince(ctx context.Context, prefix string, t time.Time) (bool, error)
}

// Retainer is implemented by stores that enforce retention themselves (MinIO's object
// lock in compliance mode): a retained or held object cannot be deleted or overwritten, by
// anyone, until the date.
type Retainer interface {
	// Retain extends an object's retention to until. It never shortens: an earlier date
	// than the current one fails with ErrRetentionShortened.
	Retain(ctx context.Context, key string, until time.Time) error
	// Retention reports an object's retention end (zero when none) and legal hold.
	Retention(ctx context.Context, key string) (until time.Time, hold bool, err error)
	// SetLegalHold places or releases a legal hold, which blocks deletion regardless of
	// the retention date.
	SetLegalHold(ctx context.Context, key string, on bool) error
}

// ErrRetentionShortened is returned when a retention would end earlier than it does.
var ErrRetentionShortened = errors.New("retention can be extended, never shortened")

// CheckKey rejects keys that could escape the store or are ambiguous: empty, absolute,
// with empty, "." or ".." segments, backslashes or control characters.
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	if strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("%w: %q", ErrBadKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".tmp-") {
			return fmt.Errorf("%w: %q", ErrBadKey, key)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return fmt.Errorf("%w: %q", ErrBadKey, key)
			}
		}
	}
	return nil
}
