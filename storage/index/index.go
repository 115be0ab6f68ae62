// Package index is dangan's bbolt index: packages by id, by (department, case number) and
// by ingest date; item-number series for 档号; API tokens (stored hashed).
//
// The index only ever points at objects that are already durable in the object store: the
// ingest writes the object first and commits here second. It can be rebuilt from the store.
//
//	db, _ := index.Open("/var/lib/dangan/index.db")
//	defer db.Close()
//	n, _ := db.ReserveItemNo("F1/2025/D30") // in memory; durable when a package commits with it
//	_, err := db.CommitPackage(&index.Package{ID: "p1", ...})
package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sentinel errors.
var (
	ErrNotFound   = errors.New("not found")
	ErrCaseExists = errors.New("case already archived")
)

var (
	bPackages  = []byte("packages")
	bCases     = []byte("cases")   // department \x00 case number → id
	bByDate    = []byte("by-date") // RFC 3339 UTC ingest time \x00 id → ""
	bItems     = []byte("items")   // series \x00 item number (uint64) → package id
	bTokens    = []byte("tokens")  // hex SM3 of the token → Token JSON
	bOrphans   = []byte("orphans") // object key → why it was not adopted
	allBuckets = [][]byte{bPackages, bCases, bByDate, bItems, bTokens, bOrphans,
		[]byte(Transfers), []byte(Accessions), []byte(Disposals), []byte(Audits), []byte(Reads), []byte(State),
		[]byte(Certificates), []byte(CertificateKeys)}
)

// DB is the open index.
type DB struct {
	bolt *bolt.DB

	mu     sync.Mutex
	series map[string]*seriesState
}

// seriesState is the in-memory numbering of one series: numbers are handed out here and
// become durable only when a package commits with one. After a crash the numbers that were
// in flight were never committed, so they are simply free again.
type seriesState struct {
	next     int          // lowest number never handed out
	free     []int        // numbers below next, neither committed nor in flight, ascending
	inFlight map[int]bool // reserved, not yet committed or released
}

// Open opens or creates the index file.
func Open(path string) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("create index buckets: %w", err)
	}
	b.MaxBatchDelay = 2 * time.Millisecond
	return &DB{bolt: b, series: map[string]*seriesState{}}, nil
}

// Close closes the index.
func (db *DB) Close() error { return db.bolt.Close() }

// Document is one document of a package as the index remembers it.
type Document struct {
	N        int        `json:"n"`
	Title    string     `json:"title"`
	Kind     string     `json:"kind,omitempty"`
	Main     bool       `json:"main"`
	Part     string     `json:"part"`
	Warnings []string   `json:"warnings,omitempty"`
	Encoded  []Encoding `json:"encodings"` // archival rendition first, then the original when it differs
}

// Encoding is one stored file of a document, with where its base64 lies in the EEP.
type Encoding struct {
	ID         string `json:"id"`
	FileName   string `json:"file_name"`
	Format     string `json:"format"` // PRONOM PUID or "ofd"
	FormatName string `json:"format_name,omitempty"`
	MIME       string `json:"mime"`
	Size       int64  `json:"size"`
	SM3        string `json:"sm3"`
	Original   bool   `json:"original"`
	DataOffset int64  `json:"data_offset"` // byte offset of the base64 text in the EEP
	DataLength int64  `json:"data_length"` // length of the base64 text, line breaks included
}

// Package is an archived case as the index remembers it.
type Package struct {
	ID             string     `json:"id"`
	Key            string     `json:"key"` // object key of the EEP
	Fonds          string     `json:"fonds"`
	Department     string     `json:"department"` // USCC
	DepartmentName string     `json:"department_name"`
	CaseNo         string     `json:"case_no"`
	ArchivalCode   string     `json:"archival_code"`
	Series         string     `json:"series"`
	ItemNo         int        `json:"item_no"`
	Year           int        `json:"year"`
	Retention      string     `json:"retention"`
	ItemCode       string     `json:"item_code"`
	ItemName       string     `json:"item_name"`
	Title          string     `json:"title"`
	FinishedAt     time.Time  `json:"finished_at"`
	IngestedAt     time.Time  `json:"ingested_at"`
	Size           int64      `json:"size"`
	PackageSM3     string     `json:"package_sm3"` // SM3 of the whole EEP file
	ContentDigest  string     `json:"content_digest"`
	SignatureB64   string     `json:"signature"`
	Signer         string     `json:"signer"`
	LogIndex       uint64     `json:"log_index"` // its ingest event in the event log
	Documents      []Document `json:"documents"`
	State          string     `json:"state"`
	RetainUntil    time.Time  `json:"retain_until"` // WORM: no deletion before this
	LegalHold      bool       `json:"legal_hold,omitempty"`
	HoldReason     string     `json:"legal_hold_reason,omitempty"`
	Sharing        string     `json:"sharing,omitempty"` // 共享范围; 不予共享 limits reads to the department and the archive
	// Source is where an accessioned package came from: "transfer:<batch id>".
	Source string `json:"source,omitempty"`
	// Transfer is set on the sender once the county archive's receipt accepted the package.
	Transfer *TransferMark `json:"transfer,omitempty"`
	// Audit is the latest periodic check.
	Audit *AuditMark `json:"audit,omitempty"`
	// Tombstone is set when the package was destroyed; the record itself is never deleted.
	Tombstone *Tombstone `json:"tombstone,omitempty"`
}

// TransferMark records a package's transfer to the county archive.
type TransferMark struct {
	Batch      string    `json:"batch"`
	At         time.Time `json:"at"`
	KeepUntil  time.Time `json:"keep_until"` // the department's copy may be deleted after this
	Receiver   string    `json:"receiver"`
	ReceiptSM3 string    `json:"receipt_sm3"`
}

// AuditMark is the outcome of the latest audit of a package.
type AuditMark struct {
	At     time.Time `json:"at"`
	OK     bool      `json:"ok"`
	Failed []string  `json:"failed,omitempty"` // the failing checks, with codes
}

// Tombstone is what remains of a destroyed package.
type Tombstone struct {
	DestroyedAt time.Time         `json:"destroyed_at"`
	Decision    string            `json:"decision"` // the disposal decision's id
	DecidedBy   string            `json:"decided_by"`
	ApprovedBy  string            `json:"approved_by"`
	Rule        string            `json:"rule"`   // the retention rule that ended
	Reason      string            `json:"reason"` // the appraisal's reason
	Digests     map[string]string `json:"digests"`
	LogIndex    uint64            `json:"log_index"` // the destruction event
}

// Names of the record buckets (PutRecord, Record, ForEachRecord).
const (
	Transfers  = "transfers"  // sender: batch id → transfer batch
	Accessions = "accessions" // receiver: batch id → accession
	Disposals  = "disposals"  // decision id → disposal decision
	Audits     = "audits"     // time ‖ package id → audit result
	Reads      = "reads"      // time ‖ sequence → record read
	State      = "state"      // name → small state (the auditor's cursor, …)
	// Certificates: e-certificate identifier → registry entry.
	Certificates = "certificates"
	// CertificateKeys: lookups into Certificates, "holder/<code>/<id>", "issuer/<USCC>/<id>",
	// "type/<code>/<id>", "revoked/<id>" → "".
	CertificateKeys = "certificate-keys"
)

// Rec is one record for PutRecords.
type Rec struct {
	Bucket, Key string
	Value       any // JSON-encoded; nil deletes the key
}

// PutRecords writes records, in any buckets, in one transaction: all or none.
func (db *DB) PutRecords(recs ...Rec) error {
	enc := make([][]byte, len(recs))
	for i, r := range recs {
		if r.Value == nil {
			continue
		}
		b, err := json.Marshal(r.Value)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", r.Bucket, r.Key, err)
		}
		enc[i] = b
	}
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for i, r := range recs {
			b := tx.Bucket([]byte(r.Bucket))
			var err error
			if enc[i] == nil {
				err = b.Delete([]byte(r.Key))
			} else {
				err = b.Put([]byte(r.Key), enc[i])
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", r.Bucket, r.Key, err)
			}
		}
		return nil
	})
}

func caseKey(dept, caseNo string) []byte { return []byte(dept + "\x00" + caseNo) }

// dateKey orders packages by ingest time: RFC 3339 UTC time, NUL, id.
func dateKey(p *Package) []byte {
	return []byte(p.IngestedAt.UTC().Format(time.RFC3339Nano) + "\x00" + p.ID)
}

func seriesKey(series string, n int) []byte {
	k := make([]byte, len(series)+1+8)
	copy(k, series)
	k[len(series)] = 0
	binary.BigEndian.PutUint64(k[len(series)+1:], uint64(n))
	return k
}

// loadSeries reads the committed numbers of a series: the gaps among them are free.
func (db *DB) loadSeries(series string) (*seriesState, error) {
	if st, ok := db.series[series]; ok {
		return st, nil
	}
	st := &seriesState{next: 1, inFlight: map[int]bool{}}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bItems).Cursor()
		prefix := append([]byte(series), 0)
		expect := 1
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n := int(binary.BigEndian.Uint64(k[len(prefix):]))
			for ; expect < n; expect++ {
				st.free = append(st.free, expect)
			}
			expect = n + 1
		}
		st.next = expect
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load item numbers of %s: %w", series, err)
	}
	db.series[series] = st
	return st, nil
}

// ReserveItemNo takes the next item number of a series (fonds/year/retention): the lowest
// free one, or a new one. A number is used only when CommitPackage records a package with
// it; ReleaseItemNo gives an unused one back. Numbering stays continuous (DA/T 70 GD-2-6).
func (db *DB) ReserveItemNo(series string) (int, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	st, err := db.loadSeries(series)
	if err != nil {
		return 0, err
	}
	var n int
	if len(st.free) > 0 {
		n, st.free = st.free[0], st.free[1:]
	} else {
		n = st.next
		st.next++
	}
	st.inFlight[n] = true
	return n, nil
}

// ReleaseItemNo returns a reserved number that was not used.
func (db *DB) ReleaseItemNo(series string, n int) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	st, ok := db.series[series]
	if !ok || !st.inFlight[n] {
		return nil
	}
	delete(st.inFlight, n)
	i := sort.SearchInts(st.free, n)
	st.free = append(st.free[:i], append([]int{n}, st.free[i:]...)...)
	return nil
}

// CommitResult is the outcome for one package of CommitPackages.
type CommitResult struct {
	Existing *Package // the case's package already indexed, with ErrCaseExists
	Err      error
}

// CommitPackages records packages in one transaction, each with its reserved item number.
// A package whose case its department already has (indexed before, or earlier in ps) is not
// written: its result holds the existing package and ErrCaseExists. The error is for the
// transaction as a whole: when it is set, nothing was written.
func (db *DB) CommitPackages(ps []*Package) ([]CommitResult, error) {
	vals := make([][]byte, len(ps))
	for i, p := range ps {
		v, err := json.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("encode package %s: %w", p.ID, err)
		}
		vals[i] = v
	}
	results := make([]CommitResult, len(ps))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for i, p := range ps {
			results[i] = CommitResult{}
			ck := caseKey(p.Department, p.CaseNo)
			if id := tx.Bucket(bCases).Get(ck); id != nil {
				existing := new(Package)
				if err := json.Unmarshal(tx.Bucket(bPackages).Get(id), existing); err != nil {
					return fmt.Errorf("decode package %s: %w", id, err)
				}
				results[i] = CommitResult{Existing: existing, Err: ErrCaseExists}
				continue
			}
			if err := tx.Bucket(bItems).Put(seriesKey(p.Series, p.ItemNo), []byte(p.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bPackages).Put([]byte(p.ID), vals[i]); err != nil {
				return err
			}
			if err := tx.Bucket(bCases).Put(ck, []byte(p.ID)); err != nil {
				return err
			}
			if err := tx.Bucket(bByDate).Put(dateKey(p), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit %d packages: %w", len(ps), err)
	}
	db.mu.Lock()
	for i, p := range ps {
		if results[i].Err == nil {
			if st, ok := db.series[p.Series]; ok {
				delete(st.inFlight, p.ItemNo)
			}
		}
	}
	db.mu.Unlock()
	return results, nil
}

// CommitPackage records one package: CommitPackages for one.
func (db *DB) CommitPackage(p *Package) (*Package, error) {
	res, err := db.CommitPackages([]*Package{p})
	if err != nil {
		return nil, err
	}
	return res[0].Existing, res[0].Err
}

// UpdatePackage changes a package record in one transaction. fn must not change the
// fields other indexes are keyed on (id, department, case number, ingest time, series, item).
func (db *DB) UpdatePackage(id string, fn func(*Package) error) (*Package, error) {
	var p *Package
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		var err error
		p, err = updateIn(tx, id, fn)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// UpdatePackages changes several package records in one transaction (see UpdatePackage
// for what fn may change).
func (db *DB) UpdatePackages(ids []string, fn func(*Package) error) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		for _, id := range ids {
			if _, err := updateIn(tx, id, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

func updateIn(tx *bolt.Tx, id string, fn func(*Package) error) (*Package, error) {
	b := tx.Bucket(bPackages)
	v := b.Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	}
	p := new(Package)
	if err := json.Unmarshal(v, p); err != nil {
		return nil, fmt.Errorf("decode package %s: %w", id, err)
	}
	if err := fn(p); err != nil {
		return nil, err
	}
	nv, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return p, b.Put([]byte(id), nv)
}

// PutRecord stores v as JSON under key in a record bucket.
func (db *DB) PutRecord(bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", bucket, key, err)
	}
	return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), b) })
}

// BatchRecord is PutRecord grouped with concurrent callers into one transaction (bbolt's
// Batch): for frequent small records such as record reads.
func (db *DB) BatchRecord(bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", bucket, key, err)
	}
	return db.bolt.Batch(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), b) })
}

// Record reads the JSON record under key into v.
func (db *DB) Record(bucket, key string, v any) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket)).Get([]byte(key))
		if b == nil {
			return fmt.Errorf("%s %s: %w", bucket, key, ErrNotFound)
		}
		return json.Unmarshal(b, v)
	})
}

// UpdateRecord reads, changes and writes a record in one transaction; fn gets nil data
// when the record does not exist and returns the new value (nil: leave it).
func (db *DB) UpdateRecord(bucket, key string, fn func(data []byte) (any, error)) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		nv, err := fn(b.Get([]byte(key)))
		if err != nil || nv == nil {
			return err
		}
		enc, err := json.Marshal(nv)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), enc)
	})
}

// ForEachRecord calls fn for each record whose key starts with prefix, from the key from
// (inclusive; "" for the first), in key order, until fn returns ErrStop or an error.
func (db *DB) ForEachRecord(bucket, prefix, from string, fn func(key string, data []byte) error) error {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucket)).Cursor()
		start := prefix
		if from > start {
			start = from
		}
		for k, v := c.Seek([]byte(start)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			if err := fn(string(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// ErrStop ends a ForEachRecord early without an error.
var ErrStop = errors.New("stop")

// Package returns the package with the given id.
func (db *DB) Package(id string) (*Package, error) {
	var p *Package
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bPackages).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("package %s: %w", id, ErrNotFound)
		}
		p = new(Package)
		return json.Unmarshal(v, p)
	})
	return p, err
}

// PackageByCase returns the department's package for a case number.
func (db *DB) PackageByCase(dept, caseNo string) (*Package, error) {
	var id []byte
	err := db.bolt.View(func(tx *bolt.Tx) error {
		id = append([]byte{}, tx.Bucket(bCases).Get(caseKey(dept, caseNo))...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(id) == 0 {
		return nil, fmt.Errorf("case %s/%s: %w", dept, caseNo, ErrNotFound)
	}
	return db.Package(string(id))
}

// Filter selects packages in Search; zero fields match everything.
type Filter struct {
	Department string
	Year       int
	ItemCode   string
	Query      string // substring of title, case number, archival code or item name
	Limit      int
	After      string // resume after this package id (in ingest order)
}

func (f Filter) match(p *Package) bool {
	if f.Department != "" && p.Department != f.Department {
		return false
	}
	if f.Year != 0 && p.Year != f.Year {
		return false
	}
	if f.ItemCode != "" && p.ItemCode != f.ItemCode {
		return false
	}
	if f.Query != "" {
		hay := p.Title + "\x00" + p.CaseNo + "\x00" + p.ArchivalCode + "\x00" + p.ItemName
		if !strings.Contains(hay, f.Query) {
			return false
		}
	}
	return true
}

// Search returns matching packages in ingest order, at most f.Limit (default 100).
func (db *DB) Search(f Filter) ([]*Package, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	var out []*Package
	err := db.bolt.View(func(tx *bolt.Tx) error {
		pk := tx.Bucket(bPackages)
		c := tx.Bucket(bByDate).Cursor()
		k, _ := c.First()
		if f.After != "" { // resume just past the last package of the previous page
			v := pk.Get([]byte(f.After))
			if v == nil {
				return nil
			}
			var last Package
			if err := json.Unmarshal(v, &last); err != nil {
				return fmt.Errorf("decode package %s: %w", f.After, err)
			}
			if k, _ = c.Seek(dateKey(&last)); k != nil && bytes.Equal(k, dateKey(&last)) {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(out) < f.Limit; k, _ = c.Next() {
			id := k[bytes.IndexByte(k, 0)+1:]
			p := new(Package)
			if err := json.Unmarshal(pk.Get(id), p); err != nil {
				return fmt.Errorf("decode package %s: %w", id, err)
			}
			if f.match(p) {
				out = append(out, p)
			}
		}
		return nil
	})
	return out, err
}

// ForEachPackage calls fn for every package in ingest order.
func (db *DB) ForEachPackage(fn func(*Package) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		pk := tx.Bucket(bPackages)
		return tx.Bucket(bByDate).ForEach(func(k, _ []byte) error {
			p := new(Package)
			if err := json.Unmarshal(pk.Get(k[bytes.IndexByte(k, 0)+1:]), p); err != nil {
				return err
			}
			return fn(p)
		})
	})
}

// Count returns the number of packages.
func (db *DB) Count() (int, error) {
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bPackages).Stats().KeyN
		return nil
	})
	return n, err
}

// Token is an API token's grant.
type Token struct {
	Role    string    `json:"role"`
	Org     string    `json:"org,omitempty"`
	Created time.Time `json:"created"`
	Note    string    `json:"note,omitempty"`
}

// PutToken stores a grant under the token's hash (the token itself is never stored).
func (db *DB) PutToken(hash string, t Token) error {
	val, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bTokens).Put([]byte(hash), val) })
}

// Token looks up a grant by the token's hash.
func (db *DB) Token(hash string) (*Token, error) {
	var t *Token
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bTokens).Get([]byte(hash))
		if v == nil {
			return fmt.Errorf("token: %w", ErrNotFound)
		}
		t = new(Token)
		return json.Unmarshal(v, t)
	})
	return t, err
}

// ForEachToken calls fn for every stored grant (by token hash).
func (db *DB) ForEachToken(fn func(hash string, t Token) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bTokens).ForEach(func(k, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return fmt.Errorf("decode token grant: %w", err)
			}
			return fn(string(k), t)
		})
	})
}

// RecordOrphan remembers an object that reconciliation could not adopt, so later start-ups
// do not report it again (a retained object cannot be removed).
func (db *DB) RecordOrphan(key, why string) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bOrphans).Put([]byte(key), []byte(why)) })
}

// Orphan reports whether an object was recorded as not adoptable.
func (db *DB) Orphan(key string) bool {
	found := false
	db.bolt.View(func(tx *bolt.Tx) error { found = tx.Bucket(bOrphans).Get([]byte(key)) != nil; return nil })
	return found
}

// Snapshot writes a consistent copy of the whole index (bbolt Tx.WriteTo) to w.
func (db *DB) Snapshot(w io.Writer) (int64, error) {
	var n int64
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("index snapshot: %w", err)
	}
	return n, nil
}

// AuditEntry is one audit result to record: its record and the mark on its package.
type AuditEntry struct {
	Key     string
	Record  []byte // JSON
	Package string
	Mark    AuditMark
}

// RecordAudits stores audit results and marks their packages in one transaction.
func (db *DB) RecordAudits(entries []AuditEntry) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		ab, pb := tx.Bucket([]byte(Audits)), tx.Bucket(bPackages)
		for _, e := range entries {
			if err := ab.Put([]byte(e.Key), e.Record); err != nil {
				return err
			}
			v := pb.Get([]byte(e.Package))
			if v == nil {
				continue // destroyed and gone meanwhile: the result stands alone
			}
			var p Package
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode package %s: %w", e.Package, err)
			}
			mark := e.Mark
			p.Audit = &mark
			nv, err := json.Marshal(&p)
			if err != nil {
				return err
			}
			if err := pb.Put([]byte(e.Package), nv); err != nil {
				return err
			}
		}
		return nil
	})
}
