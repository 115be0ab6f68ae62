// Package eventlog is dangan's tamper-evident event log: an append-only Merkle tree over SM3
// (RFC 6962 shape) whose leaves are events, with checkpoints signed by the archive's SM2 key
// and timestamped in batches, inclusion and consistency proofs, offline evidence chains that
// survive the expiry of a TSA certificate, and witnessing by another archive.
//
// Events live in the object store as bundles (log/entries/<first index>.jsonl, one canonical
// event per line), written once and never changed; the tree's nodes, the checkpoints and
// the lookups are kept in a bbolt file beside the index and rebuilt from the store when it
// is missing.
//
//	l, _ := eventlog.Open(eventlog.Config{Dir: dir, Store: st, Origin: "dangan/F1", Signer: id, Stamper: tsa, Roots: pool})
//	defer l.Close()
//	i, _ := l.Append(ctx, eventlog.Event{Type: eventlog.TypeIngest, Time: now, Subject: "p1", Digest: sum})
//	proof, _ := l.Prove(ctx, i)                  // offline evidence for event i
//	res, err := eventlog.VerifyProof(proof, roots) // anywhere, later
package eventlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/smx509"
	bolt "go.etcd.io/bbolt"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/merkle"
	"github.com/dangan-archive/dangan/storage"
)

// Sentinel errors.
var (
	ErrNotFound = errors.New("not found")
	ErrEmpty    = errors.New("the log is empty")
	ErrCorrupt  = errors.New("the log in storage is inconsistent")
	ErrClosed   = errors.New("the log is closed")
)

// Object keys.
const (
	entriesPrefix     = "log/entries/"
	checkpointsPrefix = "log/checkpoints/"
	cosigsPrefix      = "log/cosignatures/"
	renewalsPrefix    = "log/renewals/"
	witnessPrefix     = "witness/"
)

func entriesKey(start uint64) string   { return fmt.Sprintf("%s%020d.jsonl", entriesPrefix, start) }
func checkpointKey(size uint64) string { return fmt.Sprintf("%s%020d.json", checkpointsPrefix, size) }

// keyNumber reads the leading number of a key's last segment.
func keyNumber(key, prefix string) (uint64, bool) {
	rest := strings.TrimPrefix(key, prefix)
	if i := strings.IndexAny(rest, ".-"); i >= 0 {
		rest = rest[:i]
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil && len(rest) == 20
}

// maxBundle bounds the events written in one bundle.
const maxBundle = 1024

// maxBundleBytes bounds what is read of one bundle.
const maxBundleBytes = 64 << 20

var (
	bNodes     = []byte("nodes")     // level (1) ‖ index (8) → hash
	bMeta      = []byte("meta")      // "size" → uint64
	bBundles   = []byte("bundles")   // first index (8) → count (8)
	bLeaves    = []byte("leaves")    // leaf hash → index (8), the first occurrence
	bSubjects  = []byte("subjects")  // type \x00 subject → index (8), the first occurrence
	bCheckpts  = []byte("checkpts")  // size (8) → SignedCheckpoint JSON, without cosignatures
	bCosigs    = []byte("cosigs")    // size (8) ‖ witness id → Cosignature JSON
	bRenewals  = []byte("renewals")  // size (8) → ""
	bWitnessed = []byte("witnessed") // origin → SignedCheckpoint JSON: the last one this archive cosigned
	allBuckets = [][]byte{bNodes, bMeta, bBundles, bLeaves, bSubjects, bCheckpts, bCosigs, bRenewals, bWitnessed}
)

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func nodeKey(level uint8, index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{level}, index)
}

// Config configures a log.
type Config struct {
	Dir     string // where log.db lives
	Store   storage.ObjectStore
	Origin  string // the log's name, in every checkpoint
	Signer  *signing.Identity
	Stamper signing.Timestamper
	Roots   func() *smx509.CertPool // to check tokens and witnesses
	// Interval between checkpoints, made only when events were appended (default 1 s);
	// negative: only on demand (tools that open a log briefly).
	Interval time.Duration
	// RetainUntil gives the retention (WORM) of the log's objects; nil: none.
	RetainUntil func() time.Time
	Logger      *slog.Logger
	Now         func() time.Time
}

// Stats are counters for metrics.
type Stats struct {
	Events, Bundles, Checkpoints, Tokens, CheckpointFailures, Cosigned, Forks atomic.Uint64
	// Inconsistencies counts signed checkpoints that a replay from storage contradicted.
	Inconsistencies atomic.Uint64
}

// Log is an open event log.
type Log struct {
	cfg Config
	db  *bolt.DB
	h   merkle.Hasher
	log *slog.Logger

	mu      sync.Mutex // guards the fields below
	size    uint64
	compact *merkle.Compact
	latest  *SignedCheckpoint
	pending *pendingEvent // the latest checkpoint's timestamp event, not yet appended
	dirty   bool          // a bundle may be in storage that the database does not reflect

	cpMu      sync.Mutex // one checkpoint at a time
	witnessMu sync.Mutex // one cosignature at a time

	reqs    chan *appendReq
	stop    chan struct{}
	workers sync.WaitGroup
	closed  atomic.Bool

	Stats Stats
}

type pendingEvent struct{ line []byte }

// Open opens the log, replaying from the store whatever the database lacks, and starts the
// committer and the checkpointer.
func Open(cfg Config) (*Log, error) {
	if cfg.Store == nil || cfg.Signer == nil || cfg.Stamper == nil || cfg.Origin == "" {
		return nil, errors.New("eventlog: Store, Signer, Stamper and Origin are required")
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Roots == nil {
		cfg.Roots = func() *smx509.CertPool { return nil }
	}
	db, err := bolt.Open(filepath.Join(cfg.Dir, "log.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open log database: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("create log buckets: %w", err)
	}
	l := &Log{cfg: cfg, db: db, h: merkle.SM3, log: cfg.Logger, reqs: make(chan *appendReq), stop: make(chan struct{})}
	if err := l.load(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	l.workers.Add(1)
	go l.committer()
	if cfg.Interval > 0 {
		l.workers.Add(1)
		go l.checkpointer()
	}
	return l, nil
}

// Close stops the workers and closes the database; appends in flight finish first.
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	close(l.stop)
	l.workers.Wait()
	return l.db.Close()
}

// Origin is the log's name.
func (l *Log) Origin() string { return l.cfg.Origin }

// Size is the number of events durably appended.
func (l *Log) Size() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.size
}

// load reads the state from the database and replays bundles the database lacks.
func (l *Log) load(ctx context.Context) error {
	err := l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bMeta).Get([]byte("size")); v != nil {
			l.size = binary.BigEndian.Uint64(v)
		}
		var err error
		l.compact, err = l.h.CompactAt(l.size, l.txNode(tx))
		if err != nil {
			return err
		}
		if k, v := tx.Bucket(bCheckpts).Cursor().Last(); k != nil {
			var sc SignedCheckpoint
			if err := json.Unmarshal(v, &sc); err != nil {
				return err
			}
			l.latest = &sc
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read log state: %w", err)
	}
	fresh := l.size == 0
	if err := l.replay(ctx); err != nil {
		return err
	}
	if fresh && l.size > 0 {
		if err := l.importFromStore(ctx); err != nil {
			return err
		}
	}
	l.restorePending()
	return nil
}

// replay applies the bundles in storage from the current size on. A bundle is found by its
// first index, so the probe is one read per bundle and stops at the first absent one.
func (l *Log) replay(ctx context.Context) error {
	start := l.size
	for {
		lines, err := l.readBundle(ctx, l.size)
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		leaves := make([]leaf, len(lines))
		for i, line := range lines {
			ev, err := ParseEvent(line)
			if err != nil {
				return fmt.Errorf("%w: event %d: %v (run dangan log verify)", ErrCorrupt, l.size+uint64(i), err)
			}
			leaves[i] = leaf{line: line, typ: ev.Type, subject: ev.Subject}
		}
		if err := l.apply(l.size, leaves, nil); err != nil {
			return err
		}
	}
	if l.size > start {
		l.log.Info("event log replayed from storage", "from", start, "to", l.size)
	}
	l.dirty = false
	return nil
}

// readBundle reads the events of the bundle that starts at start.
func (l *Log) readBundle(ctx context.Context, start uint64) ([][]byte, error) {
	return readBundleFrom(ctx, l.cfg.Store, start)
}

// importFromStore rebuilds the checkpoints, cosignatures and renewals from storage after
// the database was lost.
func (l *Log) importFromStore(ctx context.Context) error {
	var latest *SignedCheckpoint
	err := l.cfg.Store.List(ctx, checkpointsPrefix, func(o storage.ObjectInfo) error {
		size, ok := keyNumber(o.Key, checkpointsPrefix)
		if !ok {
			return nil
		}
		var sc SignedCheckpoint
		if err := l.getJSON(ctx, o.Key, &sc); err != nil {
			return err
		}
		if size > l.size {
			return fmt.Errorf("%w: checkpoint %d is beyond the %d events in storage: events were deleted; restore log/ from a backup (dangan log verify shows what is missing)", ErrCorrupt, size, l.size)
		}
		latest = &sc
		if c, err := ParseCheckpoint(sc.Body); err == nil {
			if root, err := l.Root(size); err == nil && !bytes.Equal(root, c.Root) {
				l.Stats.Inconsistencies.Add(1)
				l.log.Error("THE EVENT LOG IN STORAGE CONTRADICTS ITS OWN SIGNED CHECKPOINT: events were changed, added or removed (run dangan log verify)",
					"checkpoint", size, "signed_root", hex.EncodeToString(c.Root), "replayed_root", hex.EncodeToString(root))
			}
		}
		return l.putDB(bCheckpts, u64(size), &sc)
	})
	if err != nil {
		return fmt.Errorf("import checkpoints: %w", err)
	}
	l.latest = latest
	err = l.cfg.Store.List(ctx, cosigsPrefix, func(o storage.ObjectInfo) error {
		size, ok := keyNumber(o.Key, cosigsPrefix)
		if !ok {
			return nil
		}
		var cs Cosignature
		if err := l.getJSON(ctx, o.Key, &cs); err != nil {
			return err
		}
		return l.putDB(bCosigs, append(u64(size), witnessID(cs.Witness)...), &cs)
	})
	if err != nil {
		return fmt.Errorf("import cosignatures: %w", err)
	}
	return l.cfg.Store.List(ctx, renewalsPrefix, func(o storage.ObjectInfo) error {
		if size, ok := keyNumber(o.Key, renewalsPrefix); ok {
			return l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bRenewals).Put(u64(size), nil) })
		}
		return nil
	})
}

func (l *Log) getJSON(ctx context.Context, key string, v any) error {
	return getJSON(ctx, l.cfg.Store, key, v)
}

func (l *Log) putDB(bucket, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, b) })
}

func (l *Log) putObject(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var opts storage.PutOptions
	if l.cfg.RetainUntil != nil {
		opts.RetainUntil = l.cfg.RetainUntil()
	}
	_, err = l.cfg.Store.Put(context.WithoutCancel(ctx), key, bytes.NewReader(b), int64(len(b)), opts)
	return err
}

// restorePending re-arms the latest checkpoint's timestamp event when the log lacks it.
func (l *Log) restorePending() {
	if l.latest == nil {
		return
	}
	c, err := ParseCheckpoint(l.latest.Body)
	if err != nil {
		return
	}
	if _, ok := l.subjectIndex(TypeTimestamp, timestampSubject(c.Size)); !ok {
		l.pending = l.timestampEvent(c.Size, l.latest)
	}
}

func (l *Log) txNode(tx *bolt.Tx) merkle.NodeFunc {
	b := tx.Bucket(bNodes)
	return func(level uint8, index uint64) ([]byte, error) {
		v := b.Get(nodeKey(level, index))
		if v == nil {
			return nil, fmt.Errorf("%w: tree node %d/%d missing", ErrCorrupt, level, index)
		}
		return append([]byte(nil), v...), nil
	}
}

// leaf is an encoded event with what the lookups need.
type leaf struct {
	line         []byte
	typ, subject string
}

// apply records appended leaves in the database and then in memory. pending, when not nil,
// is the pending event this bundle carried.
func (l *Log) apply(start uint64, leaves []leaf, pending *pendingEvent) error {
	compact := l.compact.Clone()
	if compact.Size() != start {
		return fmt.Errorf("%w: appending at %d to a tree of %d", ErrCorrupt, start, compact.Size())
	}
	err := l.db.Update(func(tx *bolt.Tx) error {
		nodes, leavesB, subjects := tx.Bucket(bNodes), tx.Bucket(bLeaves), tx.Bucket(bSubjects)
		var perr error
		for i, lf := range leaves {
			idx := u64(start + uint64(i))
			lh := l.h.LeafHash(lf.line)
			compact.Append(lh, func(level uint8, index uint64, hash []byte) {
				if err := nodes.Put(nodeKey(level, index), hash); err != nil && perr == nil {
					perr = err
				}
			})
			if leavesB.Get(lh) == nil {
				if err := leavesB.Put(lh, idx); err != nil {
					return err
				}
			}
			sk := []byte(lf.typ + "\x00" + lf.subject)
			if subjects.Get(sk) == nil {
				if err := subjects.Put(sk, idx); err != nil {
					return err
				}
			}
		}
		if perr != nil {
			return perr
		}
		if err := tx.Bucket(bBundles).Put(u64(start), u64(uint64(len(leaves)))); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put([]byte("size"), u64(start+uint64(len(leaves))))
	})
	if err != nil {
		return fmt.Errorf("record events %d..%d: %w", start, start+uint64(len(leaves))-1, err)
	}
	l.mu.Lock()
	l.size, l.compact = compact.Size(), compact
	if pending != nil && l.pending == pending {
		l.pending = nil
	}
	l.mu.Unlock()
	l.Stats.Events.Add(uint64(len(leaves)))
	l.Stats.Bundles.Add(1)
	return nil
}

type appendReq struct {
	leaves []leaf
	flush  bool // append the pending timestamp event even with no events
	done   chan appendRes
}

type appendRes struct {
	first uint64
	err   error
}

// Append adds events to the log. When it returns nil the events are durable in the store
// and recorded; first is the index of the first one. Concurrent appends are grouped into one
// bundle.
func (l *Log) Append(ctx context.Context, events ...Event) (first uint64, err error) {
	req := &appendReq{done: make(chan appendRes, 1)}
	for _, e := range events {
		line, err := e.Encode()
		if err != nil {
			return 0, err
		}
		if bytes.IndexByte(line, '\n') >= 0 {
			return 0, fmt.Errorf("%w: a newline in the encoding", ErrBadEvent)
		}
		req.leaves = append(req.leaves, leaf{line: line, typ: e.Type, subject: e.Subject})
	}
	if len(req.leaves) == 0 {
		return 0, fmt.Errorf("%w: no events", ErrBadEvent)
	}
	return l.send(ctx, req)
}

func (l *Log) send(ctx context.Context, req *appendReq) (uint64, error) {
	if l.closed.Load() {
		return 0, ErrClosed
	}
	select {
	case l.reqs <- req:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-l.stop:
		return 0, ErrClosed
	}
	res := <-req.done // once handed over, the outcome is awaited: it may be durable
	return res.first, res.err
}

func (l *Log) committer() {
	defer l.workers.Done()
	for {
		var first *appendReq
		select {
		case first = <-l.reqs:
		case <-l.stop:
			return
		}
		batch, n := []*appendReq{first}, len(first.leaves)
	gather:
		for n < maxBundle {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				n += len(r.leaves)
			default:
				break gather
			}
		}
		l.commit(batch)
	}
}

func (l *Log) commit(batch []*appendReq) {
	fail := func(err error) {
		for _, r := range batch {
			r.done <- appendRes{err: err}
		}
	}
	ctx := context.Background()
	l.mu.Lock()
	dirty, pending := l.dirty, l.pending
	l.mu.Unlock()
	if dirty {
		if err := l.replay(ctx); err != nil {
			fail(fmt.Errorf("recover the log: %w", err))
			return
		}
	}
	var leaves []leaf
	if pending != nil {
		ev, err := ParseEvent(pending.line)
		if err != nil {
			fail(err)
			return
		}
		leaves = append(leaves, leaf{line: pending.line, typ: ev.Type, subject: ev.Subject})
	}
	for _, r := range batch {
		leaves = append(leaves, r.leaves...)
	}
	if len(leaves) == 0 {
		for _, r := range batch {
			r.done <- appendRes{first: l.Size()}
		}
		return
	}
	var buf bytes.Buffer
	for _, lf := range leaves {
		buf.Write(lf.line)
		buf.WriteByte('\n')
	}
	var opts storage.PutOptions
	if l.cfg.RetainUntil != nil {
		opts.RetainUntil = l.cfg.RetainUntil()
	}
	start := l.Size()
	_, err := l.cfg.Store.Put(ctx, entriesKey(start), bytes.NewReader(buf.Bytes()), int64(buf.Len()), opts)
	if errors.Is(err, storage.ErrExists) {
		// Storage is ahead of the database (a bundle stored before a failure kept it from
		// the database): replay it, then write after it.
		if err = l.replay(ctx); err == nil {
			start = l.Size()
			_, err = l.cfg.Store.Put(ctx, entriesKey(start), bytes.NewReader(buf.Bytes()), int64(buf.Len()), opts)
		}
	}
	if err != nil {
		fail(fmt.Errorf("store events from %d: %w", start, err))
		return
	}
	if err := l.apply(start, leaves, pending); err != nil {
		l.setDirty()
		fail(err)
		return
	}
	next := start
	if pending != nil {
		next++
	}
	for _, r := range batch {
		r.done <- appendRes{first: next}
		next += uint64(len(r.leaves))
	}
}

func (l *Log) setDirty() {
	l.mu.Lock()
	l.dirty = true
	l.mu.Unlock()
}

// subjectIndex finds the first event of a type about a subject.
func (l *Log) subjectIndex(typ, subject string) (uint64, bool) {
	var idx uint64
	var ok bool
	_ = l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bSubjects).Get([]byte(typ + "\x00" + subject)); v != nil {
			idx, ok = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	return idx, ok
}

// Find returns the index of the first event of a type about a subject.
func (l *Log) Find(typ, subject string) (uint64, error) {
	if i, ok := l.subjectIndex(typ, subject); ok {
		return i, nil
	}
	return 0, fmt.Errorf("%s event for %s: %w", typ, subject, ErrNotFound)
}

// IndexOfLeaf returns the index of the event with a leaf hash.
func (l *Log) IndexOfLeaf(leafHash []byte) (uint64, error) {
	var idx uint64
	found := false
	err := l.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bLeaves).Get(leafHash); v != nil {
			idx, found = binary.BigEndian.Uint64(v), true
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("leaf %x: %w", leafHash, ErrNotFound)
	}
	return idx, err
}

// Entry is one event as stored. Event is the exact canonical text, a string so that no
// JSON re-encoding changes the bytes the leaf hash covers.
type Entry struct {
	Index uint64 `json:"index"`
	Event string `json:"event"`
}

// Entries returns up to count events from start, read from the store.
func (l *Log) Entries(ctx context.Context, start, count uint64) ([]Entry, error) {
	size := l.Size()
	if start >= size {
		return nil, nil
	}
	if count > size-start {
		count = size - start
	}
	var out []Entry
	for uint64(len(out)) < count {
		idx := start + uint64(len(out))
		bStart, err := l.bundleOf(idx)
		if err != nil {
			return nil, err
		}
		lines, err := l.readBundle(ctx, bStart)
		if err != nil {
			return nil, fmt.Errorf("events from %d: %w", bStart, err)
		}
		for i := idx - bStart; i < uint64(len(lines)) && uint64(len(out)) < count; i++ {
			out = append(out, Entry{Index: bStart + i, Event: string(lines[i])})
		}
	}
	return out, nil
}

// bundleOf is the first index of the bundle holding event idx.
func (l *Log) bundleOf(idx uint64) (uint64, error) {
	var start uint64
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bBundles).Cursor()
		k, _ := c.Seek(u64(idx))
		if k == nil || binary.BigEndian.Uint64(k) > idx {
			k, _ = c.Prev()
		}
		if k == nil {
			return fmt.Errorf("%w: no bundle holds event %d", ErrCorrupt, idx)
		}
		start = binary.BigEndian.Uint64(k)
		return nil
	})
	return start, err
}

// event returns the stored encoding of event idx.
func (l *Log) event(ctx context.Context, idx uint64) ([]byte, error) {
	es, err := l.Entries(ctx, idx, 1)
	if err != nil {
		return nil, err
	}
	if len(es) != 1 {
		return nil, fmt.Errorf("event %d: %w", idx, ErrNotFound)
	}
	return []byte(es[0].Event), nil
}

// inTree runs fn over the stored nodes of the tree of size, in one read transaction.
func (l *Log) inTree(size uint64, fn func(merkle.NodeFunc) error) error {
	if n := l.Size(); size > n {
		return fmt.Errorf("%w: the log has %d events, not %d", merkle.ErrBadSize, n, size)
	}
	return l.db.View(func(tx *bolt.Tx) error { return fn(l.txNode(tx)) })
}

// InclusionProof proves event index is in the tree of size.
func (l *Log) InclusionProof(index, size uint64) (p [][]byte, err error) {
	err = l.inTree(size, func(node merkle.NodeFunc) error {
		p, err = l.h.InclusionProof(index, size, node)
		return err
	})
	return p, err
}

// ConsistencyProof proves the tree of size from is a prefix of the tree of size to.
func (l *Log) ConsistencyProof(from, to uint64) (p [][]byte, err error) {
	err = l.inTree(to, func(node merkle.NodeFunc) error {
		p, err = l.h.ConsistencyProof(from, to, node)
		return err
	})
	return p, err
}

// Root is the root of the tree of size.
func (l *Log) Root(size uint64) (r []byte, err error) {
	err = l.inTree(size, func(node merkle.NodeFunc) error {
		r, err = l.h.Root(size, node)
		return err
	})
	return r, err
}

// Bundle returns the events of the bundle holding event idx and the index of its first:
// for readers that walk the log in order (the auditor) and keep what they read.
func (l *Log) Bundle(ctx context.Context, idx uint64) (start uint64, events [][]byte, err error) {
	if start, err = l.bundleOf(idx); err != nil {
		return 0, nil, err
	}
	events, err = l.readBundle(ctx, start)
	return start, events, err
}
