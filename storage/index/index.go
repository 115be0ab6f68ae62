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
	bCases     = []byte("cases")     // department \x00 case number → id
	bDocs      = []byte("documents") // package id → its documents and where each lies in the EEP
	bItems     = []byte("items")     // series \x00 item number (uint64) → package id
	bTokens    = []byte("tokens")    // hex HMAC-SM3 of the token → Token JSON
	bOrphans   = []byte("orphans")   // object key → why it was not adopted
	allBuckets = [][]byte{bPackages, bDocs, bIdx, bStats, bSearchQueue, bQueueCount, bCaseText, bCases, bItems, bTokens, bOrphans,
		[]byte(Transfers), []byte(Accessions), []byte(Disposals), []byte(DisposalPending), []byte(Audits), []byte(AuditKeys), []byte(ReadKeys), []byte(Reads), []byte(State),
		[]byte(Certificates), []byte(CertificateKeys), []byte(Accounts), []byte(Sessions),
		[]byte(UseRequests), []byte(Grants), []byte(UseKeys), []byte(Openings), []byte(OpeningPending),
		[]byte(Deferrals), []byte(DeferralRequests), []byte(Inspections), []byte(ReceivedReports), []byte(ReportKeys), []byte(Backups)}
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

// Open opens or creates the index file, migrating an older layout (OpenWith without
// options).
func Open(path string) (*DB, error) { return OpenWith(path, Options{}) }

// OpenWith opens or creates the index file and brings an older layout to Version first.
func OpenWith(path string, opts Options) (*DB, error) {
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
		return countSearchQueue(tx)
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("create index buckets: %w", err)
	}
	b.MaxBatchDelay = 2 * time.Millisecond
	db := &DB{bolt: b, series: map[string]*seriesState{}}
	if err := db.migrate(opts); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the index.
func (db *DB) Close() error { return db.bolt.Close() }

// Document is one document of a package as the index remembers it.
type Document struct {
	N        int      `json:"n"`
	Title    string   `json:"title"`
	Kind     string   `json:"kind,omitempty"`
	Main     bool     `json:"main"`
	Part     string   `json:"part"`
	Warnings []string `json:"warnings,omitempty"`
	// Tool made its archival rendition (as formats.Prepared records it); "" when the file is
	// its own archival copy, or in a record written before tools were kept.
	Tool string `json:"tool,omitempty"`
	// Target is what that rendition is ("PDF/A-2b", "PDF", "XML"); "" as for Tool.
	Target  string     `json:"target,omitempty"`
	Encoded []Encoding `json:"encodings"` // archival rendition first, then the original when it differs
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
	ID  string `json:"id"`
	Key string `json:"key"` // object key of the EEP
	// Version is the store's version id of the object dangan wrote under Key (stores that
	// keep versions): reads, audits and transfers use that one.
	Version        string     `json:"version,omitempty"`
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
	// Sharing is the sharing class (共享范围): 无条件共享, 有条件共享 or 不予共享 (an index
	// written before classes may hold the department's own words; archive.SharingClass
	// reads those as 有条件共享).
	Sharing           string `json:"sharing,omitempty"`
	SharingConditions string `json:"sharing_conditions,omitempty"` // 共享条件, as the department wrote them
	// ArchivedLate is set when the case was archived after its deadline (30 June of the
	// year after it finished).
	ArchivedLate bool `json:"archived_late,omitempty"`
	// Source is where an accessioned package came from: "transfer:<batch id>".
	Source string `json:"source,omitempty"`
	// Transfer is set on the sender once the county archive's receipt accepted the package.
	Transfer *TransferMark `json:"transfer,omitempty"`
	// Audit is the latest periodic check.
	Audit *AuditMark `json:"audit,omitempty"`
	// Deferral is set once the county archive's signed approval of a later transfer is held:
	// the transfer is due counting from CountFrom instead of Year.
	Deferral *DeferralMark `json:"deferral,omitempty"`
	// Opened is set while the package is open to the public (开放鉴定), through its public copy.
	Opened *OpenMark `json:"opened,omitempty"`
	// Tombstone is set when the package was destroyed; the record itself is never deleted.
	Tombstone *Tombstone `json:"tombstone,omitempty"`
	// Layer is the amendment the current form is (修改<Layer>, DA/T 48's 修改型 package):
	// 0 while the package is the one archived. Key, Size, PackageSM3, SignatureB64,
	// Signer, LogIndex and Documents are those of the current form.
	Layer int `json:"layer,omitempty"`
	// Prior are the forms the package had before, oldest first, each kept intact beside
	// the current one (which holds their signed content too).
	Prior []PriorForm `json:"prior,omitempty"`
	// CaseText, when set, is stored apart for the full-text search (CaseText reads it).
	CaseText *CaseText `json:"-"`
}

// PriorForm is a form a package had before a migration made a new current form.
type PriorForm struct {
	Layer      int    `json:"layer"`
	Key        string `json:"key"`
	Size       int64  `json:"size"`
	PackageSM3 string `json:"package_sm3"`
	SignedSM3  string `json:"signed_sm3"` // of its 被签名对象: what its signatures cover
	Signature  string `json:"signature"`  // its first 电子签名's value, base64
	LogIndex   uint64 `json:"log_index"`  // the event that made it current
	Version    string `json:"version,omitempty"`
}

// Keys are the objects of every form of the package, the current one first.
func (p *Package) Keys() []string {
	keys := []string{p.Key}
	for _, f := range p.Prior {
		keys = append(keys, f.Key)
	}
	return keys
}

// StoredBytes is the size of every form of the package together.
func (p *Package) StoredBytes() int64 {
	n := p.Size
	for _, f := range p.Prior {
		n += f.Size
	}
	return n
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
	// Opened is when the package's documents were last opened and all opened: by which
	// reading software, and the package's SM3 then.
	Opened *OpenedMark `json:"opened,omitempty"`
}

// OpenedMark records a successful opening of a package's documents.
type OpenedMark struct {
	At       time.Time `json:"at"`
	SM3      string    `json:"sm3"`
	Software string    `json:"software"`
}

// DeferralMark is an approved later transfer (延期移交).
type DeferralMark struct {
	Until       int    `json:"until"`      // the year by whose end the record goes
	CountFrom   int    `json:"count_from"` // the year its transfer is counted from instead of its own
	Request     string `json:"request"`
	DecisionSM3 string `json:"decision_sm3"`
	By          string `json:"by"`
}

// OpenMark records a package's opening to the public.
type OpenMark struct {
	At       time.Time      `json:"at"`
	Decision string         `json:"decision"` // the opening decision's id
	Copy     string         `json:"copy"`     // object key of the public copy
	Policy   string         `json:"policy"`   // the redaction policy's version
	Title    string         `json:"title"`    // the public copy's title (redacted), for public lists
	Removed  map[string]int `json:"removed,omitempty"`
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
	// DisposalPending: package id → the id of its decision waiting for approval.
	DisposalPending = "disposal-pending"
	Audits          = "audits" // time ‖ package id → audit result
	Reads           = "reads"  // time ‖ sequence → record read
	// ReadKeys: lookups into Reads, "p\x00<package>\x00<key>" and "w\x00<who>\x00<key>" → "".
	ReadKeys = "read-keys"
	// AuditKeys: lookups into Audits, "p\x00<package>\x00<key>" and, for failures, "f\x00<key>" → "".
	AuditKeys = "audit-keys"
	State     = "state" // name → small state (the auditor's cursor, …)
	// Certificates: e-certificate identifier → registry entry.
	Certificates = "certificates"
	// CertificateKeys: lookups into Certificates, "holder/<code>/<id>", "issuer/<USCC>/<id>",
	// "type/<code>/<id>", "revoked/<id>" → "".
	CertificateKeys = "certificate-keys"
	// Accounts: a person's user name → account (role, department, password hash, lockout).
	Accounts = "accounts"
	// Sessions: hex HMAC-SM3 of a session id → session (the id itself is never stored).
	Sessions = "sessions"
	// UseRequests: use request id → 利用申请 (another department's request to read packages).
	UseRequests = "use-requests"
	// Grants: "<requesting department>\x00<package id>" → the grant an approved request made.
	Grants = "grants"
	// UseKeys: lookups into UseRequests, "r\x00<requester>\x00<id>", "o\x00<owner>\x00<id>"
	// and, while a grant runs, "e\x00<end, RFC 3339>\x00<id>" → "".
	UseKeys = "use-keys"
	// Openings: opening decision id → 开放鉴定 decision; OpeningPending: its id → "" while it
	// waits for a second archivist.
	Openings       = "openings"
	OpeningPending = "opening-pending"
	// Deferrals: a department archive's requests for a later transfer (id → request and
	// the decision it holds); DeferralRequests: those the county archive received.
	Deferrals        = "deferrals"
	DeferralRequests = "deferral-requests"
	// Inspections: the compliance reports a department's archive made (id → report);
	// ReceivedReports: those the county archive received, with ReportKeys
	// "i\x00<department>\x00<id>" → "" to list one department's.
	Inspections     = "inspections"
	ReceivedReports = "received-reports"
	ReportKeys      = "report-keys"
	// Backups: time → a backup made (what it copied, its index snapshot).
	Backups = "backups"
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
	results := make([]CommitResult, len(ps))
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		for i, p := range ps {
			results[i] = CommitResult{}
			ck := caseKey(p.Department, p.CaseNo)
			if id := tx.Bucket(bCases).Get(ck); id != nil {
				existing, err := loadPackage(tx, id)
				if err != nil {
					return err
				}
				results[i] = CommitResult{Existing: existing, Err: ErrCaseExists}
				continue
			}
			if err := appendBucket(tx, bItems).Put(seriesKey(p.Series, p.ItemNo), []byte(p.ID)); err != nil {
				return err
			}
			if err := putPackage(tx, nil, p); err != nil {
				return err
			}
			if err := appendBucket(tx, bCases).Put(ck, []byte(p.ID)); err != nil {
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
	p, err := loadPackage(tx, []byte(id))
	if err != nil {
		return nil, err
	}
	// What the record is indexed under now, taken before fn changes it (fn may change what
	// p's pointers point to).
	was := &stored{keys: secondaryKeys(p), stats: contributions(p), docs: tx.Bucket(bDocs).Get([]byte(id))}
	if err := fn(p); err != nil {
		return nil, err
	}
	return p, putPackage(tx, was, p)
}

// stored is what a package's record is indexed under before a change: its secondary keys,
// its share of the statistics and its documents as written.
type stored struct {
	keys  [][]byte
	stats []contribution
	docs  []byte
}

// appendFill is how full a page of the buckets written in key order is left when it
// splits. Package ids begin with their ingest time, and every secondary key ends with it
// within its range, so new keys land at the right of their page and the page left behind is
// not written again. With bbolt's default (one half) the index of a million packages was
// 5,063 bytes a package; with this, 4,526 (bench scale).
const appendFill = 0.9

// appendBucket is tx's bucket name, its pages split appendFill full.
func appendBucket(tx *bolt.Tx, name []byte) *bolt.Bucket {
	b := tx.Bucket(name)
	b.FillPercent = appendFill
	return b
}

// putPackage writes a package's compact record and its documents (when they changed), and
// moves its secondary keys and its share of the statistics from was (nil: a new package)
// to p.
func putPackage(tx *bolt.Tx, was *stored, p *Package) error {
	rec := *p
	rec.Documents = nil
	v, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("encode package %s: %w", p.ID, err)
	}
	if err := appendBucket(tx, bPackages).Put([]byte(p.ID), v); err != nil {
		return err
	}
	d, err := json.Marshal(p.Documents)
	if err != nil {
		return fmt.Errorf("encode documents of %s: %w", p.ID, err)
	}
	if was == nil {
		was = &stored{}
	} else if bytes.Equal(was.docs, d) {
		d = nil // unchanged: not written again
	}
	if d != nil {
		if err := appendBucket(tx, bDocs).Put([]byte(p.ID), d); err != nil {
			return err
		}
	}
	if err := putKeys(tx, was.keys, p); err != nil {
		return err
	}
	if err := enqueueSearch(tx, p); err != nil {
		return err
	}
	return moveStats(tx, was.stats, p)
}

// decodePackage decodes a compact record (without documents).
func decodePackage(id, v []byte) (*Package, error) {
	if v == nil {
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	}
	p := new(Package)
	if err := json.Unmarshal(v, p); err != nil {
		return nil, fmt.Errorf("decode package %s: %w", id, err)
	}
	return p, nil
}

// loadPackage reads a package with its documents.
func loadPackage(tx *bolt.Tx, id []byte) (*Package, error) {
	p, err := decodePackage(id, tx.Bucket(bPackages).Get(id))
	if err != nil {
		return nil, err
	}
	if d := tx.Bucket(bDocs).Get(id); d != nil {
		if err := json.Unmarshal(d, &p.Documents); err != nil {
			return nil, fmt.Errorf("decode documents of %s: %w", id, err)
		}
	}
	return p, nil
}

// PutRecord stores v as JSON under key in a record bucket.
func (db *DB) PutRecord(bucket, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", bucket, key, err)
	}
	return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte(bucket)).Put([]byte(key), b) })
}

// BatchRecords is PutRecords grouped with concurrent callers into one transaction (bbolt's
// Batch): for frequent small records such as record reads. A nil Value stores an empty
// value (a lookup key).
func (db *DB) BatchRecords(recs ...Rec) error {
	enc := make([][]byte, len(recs))
	for i, r := range recs {
		if r.Value == nil {
			enc[i] = []byte{}
			continue
		}
		b, err := json.Marshal(r.Value)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", r.Bucket, r.Key, err)
		}
		enc[i] = b
	}
	return db.bolt.Batch(func(tx *bolt.Tx) error {
		for i, r := range recs {
			if err := tx.Bucket([]byte(r.Bucket)).Put([]byte(r.Key), enc[i]); err != nil {
				return err
			}
		}
		return nil
	})
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

// ForEachVia walks the lookup keys of keysBucket that start with prefix, from the key from
// (inclusive), and calls fn with the record of bucket that each key's rest (after prefix)
// names, read in the same transaction. A lookup whose record is gone is passed over. Reading
// the records here, not with Record from inside a ForEachRecord, keeps to one read
// transaction: bbolt can deadlock a goroutine that opens a second one while a writer waits
// to grow the file.
func (db *DB) ForEachVia(keysBucket, prefix, from, bucket string, fn func(key string, data []byte) error) error {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(keysBucket)).Cursor()
		b := tx.Bucket([]byte(bucket))
		start := max(prefix, from)
		for k, _ := c.Seek([]byte(start)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, _ = c.Next() {
			key := k[len(prefix):]
			v := b.Get(key)
			if v == nil {
				continue
			}
			if err := fn(string(key), v); err != nil {
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

// Package returns the package with the given id, with its documents.
func (db *DB) Package(id string) (*Package, error) {
	var p *Package
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		p, err = loadPackage(tx, []byte(id))
		return err
	})
	return p, err
}

// PackageRecord returns the compact record of a package (without its documents).
func (db *DB) PackageRecord(id string) (*Package, error) {
	var p *Package
	err := db.bolt.View(func(tx *bolt.Tx) error {
		var err error
		p, err = decodePackage([]byte(id), tx.Bucket(bPackages).Get([]byte(id)))
		return err
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

// ForEachPackage calls fn for every package in ingest order, with compact records (no
// documents). It is for whole-archive work (backup, rebuild checks), never a request.
func (db *DB) ForEachPackage(fn func(*Package) error) error { return db.forEachPackage(false, fn) }

// ForEachPackageWithDocuments is ForEachPackage with each package's documents, read in the
// same transaction.
func (db *DB) ForEachPackageWithDocuments(fn func(*Package) error) error {
	return db.forEachPackage(true, fn)
}

func (db *DB) forEachPackage(docs bool, fn func(*Package) error) error {
	return db.bolt.View(func(tx *bolt.Tx) error {
		pk, dk := tx.Bucket(bPackages), tx.Bucket(bDocs)
		m := openSpan(tx, Ingested(AllDepartments), nil)
		for k := m.key(); k != nil; k = m.next() {
			id := k[bytes.LastIndexByte(k, 0)+1:]
			p, err := decodePackage(id, pk.Get(id))
			if err != nil {
				return err
			}
			if d := dk.Get(id); docs && d != nil {
				if err := json.Unmarshal(d, &p.Documents); err != nil {
					return fmt.Errorf("decode documents of %s: %w", id, err)
				}
			}
			if err := fn(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// Count returns the number of packages, destroyed ones included, from the archive's
// statistics counters: each package counts once, in the total or as destroyed. Two keys
// read, at any size.
func (db *DB) Count() (int, error) {
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bStats)
		for _, k := range []string{AllDepartments + "\x00" + DimTotal + "\x00", AllDepartments + "\x00" + DimState + "\x00destroyed"} {
			n += int(decodeCounter(b.Get([]byte(k))).Count)
		}
		return nil
	})
	return n, err
}

// Token is an API token's grant, stored under the token's keyed hash.
type Token struct {
	ID       string    `json:"id,omitempty"` // what lists, logs and decisions name it by
	Role     string    `json:"role"`
	Org      string    `json:"org,omitempty"`
	Created  time.Time `json:"created"`
	Note     string    `json:"note,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
	// Pin binds the token to a client certificate: the SHA-256 of its public key.
	Pin string `json:"pin,omitempty"`
}

// DeleteToken removes a grant.
func (db *DB) DeleteToken(hash string) error {
	return db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bTokens).Delete([]byte(hash)) })
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
		ab, kb, pb := tx.Bucket([]byte(Audits)), tx.Bucket([]byte(AuditKeys)), tx.Bucket(bPackages)
		for _, e := range entries {
			if err := ab.Put([]byte(e.Key), e.Record); err != nil {
				return err
			}
			if err := kb.Put([]byte("p\x00"+e.Package+"\x00"+e.Key), nil); err != nil {
				return err
			}
			if !e.Mark.OK {
				if err := kb.Put([]byte("f\x00"+e.Key), nil); err != nil {
					return err
				}
			}
			if pb.Get([]byte(e.Package)) == nil {
				continue // gone meanwhile: the result stands alone
			}
			mark := e.Mark
			if _, err := updateIn(tx, e.Package, func(p *Package) error { p.Audit = &mark; return nil }); err != nil {
				return err
			}
		}
		return nil
	})
}
