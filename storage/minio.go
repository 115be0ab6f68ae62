package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config configures the MinIO (S3) backend.
type S3Config struct {
	// Endpoint is host:port, or several comma-separated: the nodes of a cluster without a
	// load balancer in front, tried in turn when the one in use does not answer.
	Endpoint  string
	Bucket    string
	AccessKey string
	SecretKey string
	TLS       bool
	// PartSize is the multipart upload part size: the memory one large streaming upload
	// holds. Default 8 MiB (objects up to 80 GB).
	PartSize uint64
}

// S3 is the MinIO ObjectStore. The bucket is created with object lock (WORM), so objects
// are versioned and cannot be overwritten: Put is conditional (If-None-Match: *), and
// Delete removes the object's version, which the server refuses while it is retained.
type S3 struct {
	clients   []*minio.Client // one a node
	endpoints []string
	cur       atomic.Uint32 // the node in use
	bucket    string
	partSize  uint64
}

// statObject is StatObject on the node in use, and on the next ones when it does not
// answer: most reads begin with it, so a read goes on when a node has gone.
func (s *S3) statObject(ctx context.Context, key string, opts minio.StatObjectOptions) (minio.ObjectInfo, error) {
	var info minio.ObjectInfo
	var err error
	for range s.clients {
		n := s.cur.Load()
		if info, err = s.cl().StatObject(ctx, s.bucket, key, opts); !noAnswer(ctx, err) {
			return info, err
		}
		s.failover(n)
	}
	return info, err
}

// noAnswer reports an error that came from the node not answering (no S3 error response),
// while ctx still runs: the next node may.
func noAnswer(ctx context.Context, err error) bool {
	return err != nil && minio.ToErrorResponse(err).Code == "" && ctx.Err() == nil
}

// cl is the client of the node in use.
func (s *S3) cl() *minio.Client { return s.clients[s.cur.Load()%uint32(len(s.clients))] }

// failover moves to the next node after the one in use failed to answer.
func (s *S3) failover(failed uint32) {
	if len(s.clients) > 1 && s.cur.CompareAndSwap(failed, failed+1) {
		slog.Warn("object store: a node does not answer; using the next", "failed", s.endpoints[failed%uint32(len(s.endpoints))],
			"next", s.endpoints[(failed+1)%uint32(len(s.endpoints))])
	}
}

// OpenS3 connects to the server and creates the bucket, with object lock, when missing.
func OpenS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("S3 backend: endpoint and bucket are required")
	}
	s := &S3{bucket: cfg.Bucket, partSize: cfg.PartSize}
	for _, ep := range strings.Split(cfg.Endpoint, ",") {
		if ep = strings.TrimSpace(ep); ep == "" {
			continue
		}
		c, err := minio.New(ep, &minio.Options{
			Creds:           credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
			Secure:          cfg.TLS,
			TrailingHeaders: true,
			// An unreachable or quorum-less server fails an operation within seconds, not
			// minutes: 3 tries, backing off up to a second.
			MaxRetries: 3,
		})
		if err != nil {
			return nil, fmt.Errorf("S3 client for %s: %w", ep, err)
		}
		s.clients, s.endpoints = append(s.clients, c), append(s.endpoints, ep)
	}
	if len(s.clients) == 0 {
		return nil, errors.New("S3 backend: no endpoint")
	}
	if s.partSize == 0 {
		s.partSize = 8 << 20
	}
	// A MinIO that has just started answers "not initialized" for a moment: wait for it,
	// within ctx, rather than fail the start of a service launched beside it.
	var ok bool
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		n := s.cur.Load()
		ok, err = s.cl().BucketExists(ctx, cfg.Bucket)
		if len(s.clients) > 1 && noAnswer(ctx, err) && time.Now().Before(deadline) {
			s.failover(n) // that node does not answer: ask the next
			continue
		}
		if err == nil || minio.ToErrorResponse(err).Code != "XMinioServerNotInitialized" || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("S3 bucket %s at %s: %w: %v", cfg.Bucket, cfg.Endpoint, ErrUnavailable, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("S3 bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		if err := s.cl().MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{ObjectLocking: true}); err != nil {
			return nil, fmt.Errorf("create bucket %s with object lock: %w", cfg.Bucket, err)
		}
	} else if _, _, _, _, err := s.cl().GetObjectLockConfig(ctx, cfg.Bucket); err != nil {
		return nil, fmt.Errorf("bucket %s has no object lock: WORM retention needs a bucket created with it: %w", cfg.Bucket, err)
	}
	return s, nil
}

// mapErr turns S3 errors into the store's sentinels.
func (s *S3) mapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		s.failover(s.cur.Load()) // the next operation asks the next node
		return fmt.Errorf("%s %s: %w: %v", op, key, ErrUnavailable, err)
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.Code == "NoSuchVersion" || resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
		return fmt.Errorf("%s %s: %w", op, key, ErrExists)
	// MinIO's SlowDownWrite/SlowDownRead are a lost write or read quorum: storage that is
	// unavailable for now, not throttling.
	case resp.StatusCode == http.StatusServiceUnavailable || strings.HasPrefix(resp.Code, "SlowDown") || resp.Code == "XMinioServerNotInitialized" ||
		strings.Contains(resp.Code, "Quorum"):
		return fmt.Errorf("%s %s: %w: %v", op, key, ErrUnavailable, err)
	// An upload whose checksum the server computed otherwise was damaged on its way, as when
	// a node fails during it and the client sends it again: nothing was stored, a retry may
	// succeed.
	case resp.Code == "BadDigest" || strings.Contains(resp.Code, "ChecksumMismatch") || strings.Contains(resp.Message, "x-amz-checksum"):
		return fmt.Errorf("%s %s: %w: the upload was damaged on its way (%s); nothing was stored", op, key, ErrUnavailable, resp.Message)
	case resp.Code == "InvalidRange" || resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return fmt.Errorf("%s %s: %w", op, key, ErrBadRange)
	// MinIO answers a delete of a locked version with InvalidRequest "Object is WORM
	// protected"; S3 with AccessDenied or ObjectLocked.
	case strings.Contains(strings.ToLower(resp.Message), "worm"), resp.Code == "ObjectLocked",
		resp.Code == "AccessDenied" && strings.Contains(strings.ToLower(resp.Message), "retention"):
		return fmt.Errorf("%s %s: %w: %s", op, key, ErrRetained, resp.Message)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// Put implements ObjectStore: a streaming (multipart) upload that succeeds only when key is
// free.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64, po PutOptions) (ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return ObjectInfo{}, err
	}
	opts := minio.PutObjectOptions{PartSize: s.partSize, Checksum: minio.ChecksumCRC32C, ContentType: "application/octet-stream"}
	// A retention already over (an old record archived late) locks nothing: S3 refuses a
	// retain-until date in the past.
	if po.RetainUntil.After(time.Now()) {
		opts.Mode, opts.RetainUntilDate = minio.Compliance, po.RetainUntil.UTC()
	}
	opts.SetMatchETagExcept("*")
	cr := &countReader{r: r, size: size}
	var body io.Reader = cr
	if size < 0 {
		// With an unknown size minio-go holds a whole part in memory for every upload, even a
		// small one: read up to smallObject first and, when the object ends there, send it
		// with its size in one request.
		buf := smallBufs.Get().(*[]byte)
		defer smallBufs.Put(buf)
		n, err := io.ReadFull(cr, *buf)
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			body, size = bytes.NewReader((*buf)[:n]), int64(n)
		case err != nil:
			return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
		default:
			body = io.MultiReader(bytes.NewReader(*buf), cr)
			// A large object: upload two parts at a time, so producing the next part
			// overlaps the server's work on the last (two part buffers in memory).
			opts.ConcurrentStreamParts, opts.NumThreads = true, 2
		}
	}
	info, err := s.cl().PutObject(ctx, s.bucket, key, body, size, opts)
	if err != nil {
		if cr.err != nil { // the source failed, not the server
			return ObjectInfo{}, fmt.Errorf("put %s: %w", key, cr.err)
		}
		return ObjectInfo{}, s.mapErr("put", key, err)
	}
	if size >= 0 && info.Size != size {
		return ObjectInfo{}, fmt.Errorf("put %s: %w: declared %d, stored %d", key, ErrSizeChange, size, info.Size)
	}
	return ObjectInfo{Key: key, Size: info.Size, Modified: info.LastModified, Version: info.VersionID}, nil
}

// smallObject is the largest object sent in one request when its size is not known.
const smallObject = 1 << 20

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallObject); return &b }}

// countReader remembers the source's own error, so a failing source is not taken for a
// server error, and turns a body shorter or longer than declared into ErrSizeChange.
type countReader struct {
	r    io.Reader
	size int64
	n    int64
	err  error
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	switch {
	case c.size >= 0 && c.n > c.size:
		c.err = fmt.Errorf("%w: declared %d, got more", ErrSizeChange, c.size)
	case c.size >= 0 && err == io.EOF && c.n < c.size:
		c.err = fmt.Errorf("%w: declared %d, got %d", ErrSizeChange, c.size, c.n)
	case err != nil && err != io.EOF:
		c.err = err
	}
	if c.err != nil {
		return n, c.err
	}
	return n, err
}

// Get implements ObjectStore.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	st, err := s.Stat(ctx, key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	obj, err := s.cl().GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, ObjectInfo{}, s.mapErr("get", key, err)
	}
	return obj, st, nil
}

// GetRange implements ObjectStore.
func (s *S3) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	st, err := s.Stat(ctx, key)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 || offset+length > st.Size {
		return nil, fmt.Errorf("%s [%d,+%d) of %d bytes: %w", key, offset, length, st.Size, ErrBadRange)
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, fmt.Errorf("range %s: %w", key, err)
	}
	obj, err := s.cl().GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, s.mapErr("get", key, err)
	}
	return obj, nil
}

// Stat implements ObjectStore.
func (s *S3) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := CheckKey(key); err != nil {
		return ObjectInfo{}, err
	}
	info, err := s.statObject(ctx, key, minio.StatObjectOptions{})
	if err != nil {
		return ObjectInfo{}, s.mapErr("stat", key, err)
	}
	if info.IsDeleteMarker {
		return ObjectInfo{}, fmt.Errorf("stat %s: %w", key, ErrNotFound)
	}
	return ObjectInfo{Key: key, Size: info.Size, Modified: info.LastModified, Version: info.VersionID}, nil
}

// GetVersion implements Versioned.
func (s *S3) GetVersion(ctx context.Context, key, version string) (io.ReadCloser, ObjectInfo, error) {
	if version == "" {
		return s.Get(ctx, key)
	}
	if err := CheckKey(key); err != nil {
		return nil, ObjectInfo{}, err
	}
	info, err := s.statObject(ctx, key, minio.StatObjectOptions{VersionID: version})
	if err != nil {
		return nil, ObjectInfo{}, s.mapErr("stat", key+" version "+version, err)
	}
	obj, err := s.cl().GetObject(ctx, s.bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		return nil, ObjectInfo{}, s.mapErr("get", key+" version "+version, err)
	}
	return obj, ObjectInfo{Key: key, Size: info.Size, Modified: info.LastModified, Version: info.VersionID}, nil
}

// GetRangeVersion implements Versioned.
func (s *S3) GetRangeVersion(ctx context.Context, key, version string, offset, length int64) (io.ReadCloser, error) {
	if version == "" {
		return s.GetRange(ctx, key, offset, length)
	}
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	info, err := s.statObject(ctx, key, minio.StatObjectOptions{VersionID: version})
	if err != nil {
		return nil, s.mapErr("stat", key+" version "+version, err)
	}
	if offset < 0 || length < 0 || offset+length > info.Size {
		return nil, fmt.Errorf("%s [%d,+%d) of %d bytes: %w", key, offset, length, info.Size, ErrBadRange)
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	opts := minio.GetObjectOptions{VersionID: version}
	if err := opts.SetRange(offset, offset+length-1); err != nil {
		return nil, fmt.Errorf("range %s: %w", key, err)
	}
	obj, err := s.cl().GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, s.mapErr("get", key+" version "+version, err)
	}
	return obj, nil
}

// Versions implements Versioned.
func (s *S3) Versions(ctx context.Context, key string) ([]VersionInfo, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	var out []VersionInfo
	for o := range s.cl().ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if o.Err != nil {
			return nil, s.mapErr("list versions", key, o.Err)
		}
		if o.Key != key {
			continue
		}
		out = append(out, VersionInfo{Version: o.VersionID, DeleteMarker: o.IsDeleteMarker, Size: o.Size, Modified: o.LastModified})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Modified.After(out[j].Modified) })
	return out, nil
}

// Delete implements ObjectStore: it removes the current version itself (not a delete
// marker), which the server refuses while the version is retained or on legal hold.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	info, err := s.statObject(ctx, key, minio.StatObjectOptions{})
	if err != nil {
		return s.mapErr("delete", key, err)
	}
	if err := s.cl().RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID}); err != nil {
		return s.mapErr("delete", key, err)
	}
	return nil
}

// List implements ObjectStore.
func (s *S3) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return s.ListAfter(ctx, prefix, "", fn)
}

// Ping implements ObjectStore.
func (s *S3) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var last error
	for range s.clients { // the node in use, then the others
		n := s.cur.Load()
		_, err := s.cl().BucketExists(ctx, s.bucket)
		if err == nil {
			return s.writeQuorum(ctx)
		}
		last = err
		if !noAnswer(ctx, err) {
			break // the node answered (with an error): the others would answer the same
		}
		s.failover(n)
	}
	return fmt.Errorf("S3 bucket %s at %s: %w: %v", s.bucket, strings.Join(s.endpoints, ","), ErrUnavailable, last)
}

// writeQuorum asks the node in use whether the cluster can take writes: MinIO's
// /minio/health/cluster answers 503 when the write quorum is lost (reads may still be
// served). Other S3 servers do not have it and are taken as able.
func (s *S3) writeQuorum(ctx context.Context) error {
	u := *s.cl().EndpointURL()
	u.Path = "/minio/health/cluster"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil
	}
	resp, err := healthClient.Do(req)
	if err != nil {
		return nil // the bucket answered a moment ago: the next ping looks again
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return fmt.Errorf("S3 cluster at %s: %w: the write quorum is lost (fewer drives online than writes need; reads go on where the read quorum holds)", u.Host, ErrUnavailable)
	}
	return nil
}

var healthClient = &http.Client{Timeout: 3 * time.Second}

// Retain implements Retainer.
func (s *S3) Retain(ctx context.Context, key string, until time.Time) error {
	current, _, err := s.Retention(ctx, key)
	if err != nil {
		return err
	}
	if until.Before(current) {
		return fmt.Errorf("retain %s until %s: %w (it runs until %s)", key, until.Format(time.DateOnly), ErrRetentionShortened, current.Format(time.DateOnly))
	}
	mode := minio.Compliance
	u := until.UTC()
	if err := s.cl().PutObjectRetention(ctx, s.bucket, key, minio.PutObjectRetentionOptions{Mode: &mode, RetainUntilDate: &u}); err != nil {
		return s.mapErr("retain", key, err)
	}
	return nil
}

// Retention implements Retainer.
func (s *S3) Retention(ctx context.Context, key string) (time.Time, bool, error) {
	if err := CheckKey(key); err != nil {
		return time.Time{}, false, err
	}
	var until time.Time
	_, u, err := s.cl().GetObjectRetention(ctx, s.bucket, key, "")
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchObjectLockConfiguration" {
		return time.Time{}, false, s.mapErr("retention", key, err)
	}
	if u != nil {
		until = *u
	}
	st, err := s.cl().GetObjectLegalHold(ctx, s.bucket, key, minio.GetObjectLegalHoldOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != "NoSuchObjectLockConfiguration" {
		return time.Time{}, false, s.mapErr("legal hold", key, err)
	}
	return until, st != nil && *st == minio.LegalHoldEnabled, nil
}

// SetLegalHold implements Retainer.
func (s *S3) SetLegalHold(ctx context.Context, key string, on bool) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	st := minio.LegalHoldDisabled
	if on {
		st = minio.LegalHoldEnabled
	}
	if err := s.cl().PutObjectLegalHold(ctx, s.bucket, key, minio.PutObjectLegalHoldOptions{Status: &st}); err != nil {
		return s.mapErr("legal hold", key, err)
	}
	return nil
}

// Dirs implements Walker (a listing with a delimiter).
func (s *S3) Dirs(ctx context.Context, prefix string) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []string
	for o := range s.cl().ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if o.Err != nil {
			return nil, s.mapErr("list", prefix, o.Err)
		}
		if strings.HasSuffix(o.Key, "/") {
			out = append(out, o.Key)
		}
	}
	return out, nil
}

// ListAfter implements Walker (StartAfter).
func (s *S3) ListAfter(ctx context.Context, prefix, after string, fn func(ObjectInfo) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for o := range s.cl().ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, StartAfter: after, Recursive: true}) {
		if o.Err != nil {
			return s.mapErr("list", prefix, o.Err)
		}
		if err := fn(ObjectInfo{Key: o.Key, Size: o.Size, Modified: o.LastModified}); err != nil {
			return err
		}
	}
	return nil
}
