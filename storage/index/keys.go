package index

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The secondary indexes live in one bucket of empty values. A key is
//
//	family ‖ scope ‖ 0 ‖ sort fields ‖ 0 ‖ package id
//
// where scope is the department's USCC or AllDepartments, so that a department's list and
// the whole archive's are each one contiguous range. The keys of a package are derived from
// its record alone (secondaryKeys) and rewritten in the transaction that writes the record,
// so they can never disagree with it.
var bIdx = []byte("idx")

// AllDepartments is the scope of the whole archive's lists.
const AllDepartments = "*"

// Family names one ordering of packages.
type Family byte

// The families. Each says which packages it holds and in which order.
const (
	ByIngest      Family = 'T' // every package, by ingest time
	ByYear        Family = 'Y' // every package, by year, retention, ingest time
	ByItem        Family = 'I' // every package, by item code, ingest time
	ByState       Family = 'S' // every package, by state, ingest time
	ByRetainEnd   Family = 'R' // D10/D30 holdings not transferred, by retention end
	ByTransferDue Family = 'X' // permanent holdings formed here and not transferred, by year
	ByCopyKeep    Family = 'K' // transferred holdings, by the end of the department's copy
	ByAuditDue    Family = 'A' // holdings, by their last check (or ingest)
	ByLate        Family = 'L' // holdings archived after their deadline, by finishing time
)

// ErrBadCursor is returned for a cursor that is not one this index handed out for the list.
var ErrBadCursor = errors.New("invalid cursor")

func sortTime(t time.Time) string { return t.UTC().Format("20060102T150405.000000000") }

func sortYear(y int) string { return fmt.Sprintf("%04d", y) }

// secondaryKeys are the index keys of a package record.
func secondaryKeys(p *Package) [][]byte {
	var out [][]byte
	add := func(f Family, sort string) {
		for _, scope := range []string{p.Department, AllDepartments} {
			out = append(out, []byte(string(f)+scope+"\x00"+sort+"\x00"+p.ID))
		}
	}
	in := sortTime(p.IngestedAt)
	add(ByIngest, in)
	add(ByYear, sortYear(p.Year)+"\x00"+p.Retention+"\x00"+in)
	add(ByItem, p.ItemCode+"\x00"+in)
	add(ByState, p.State+"\x00"+in)
	if p.Tombstone != nil {
		return out
	}
	switch {
	case p.Transfer != nil:
		add(ByCopyKeep, sortTime(p.Transfer.KeepUntil))
	case p.Retention == "Y" && p.Source == "":
		add(ByTransferDue, sortYear(p.Year)+"\x00"+in)
	case p.Retention == "D10" || p.Retention == "D30":
		add(ByRetainEnd, sortTime(p.RetainUntil))
	}
	last := p.IngestedAt
	if p.Audit != nil {
		last = p.Audit.At
	}
	add(ByAuditDue, sortTime(last))
	if p.ArchivedLate {
		add(ByLate, sortTime(p.FinishedAt))
	}
	return out
}

// putKeys replaces the secondary keys a package had (none: a new package) by those of p.
func putKeys(tx *bolt.Tx, had [][]byte, p *Package) error {
	b := tx.Bucket(bIdx)
	have := map[string]bool{}
	for _, k := range had {
		have[string(k)] = true
	}
	for _, k := range secondaryKeys(p) {
		if have[string(k)] {
			delete(have, string(k))
			continue
		}
		if err := b.Put(k, nil); err != nil {
			return err
		}
	}
	for k := range have {
		if err := b.Delete([]byte(k)); err != nil {
			return err
		}
	}
	return nil
}

// Span is a contiguous range of one family within one scope: the keys whose sort fields
// start with Prefix and lie in [From, To) (empty: unbounded).
type Span struct {
	Family   Family
	Scope    string // a department's USCC or AllDepartments
	Prefix   string
	From, To string
}

func (s Span) base() []byte { return []byte(string(s.Family) + s.Scope + "\x00" + s.Prefix) }

// bounds are the span's first key (inclusive) and its end (exclusive; nil: the end of base).
func (s Span) bounds() (base, start, end []byte) {
	base = s.base()
	start = append(append([]byte{}, base...), s.From...)
	if s.To != "" {
		end = append(append([]byte{}, base...), s.To...)
	}
	return base, start, end
}

// in reports whether k lies within the span.
func in(k, base, end []byte) bool {
	return k != nil && bytes.HasPrefix(k, base) && (end == nil || bytes.Compare(k, end) < 0)
}

// Ingested is a scope's packages by ingest time.
func Ingested(scope string) Span { return Span{Family: ByIngest, Scope: scope} }

// InYear is a scope's packages of a year, of one retention when retention is not empty.
func InYear(scope string, year int, retention string) Span {
	p := sortYear(year) + "\x00"
	if retention != "" {
		p += retention + "\x00"
	}
	return Span{Family: ByYear, Scope: scope, Prefix: p}
}

// WithItem is a scope's packages of one item code (事项编码).
func WithItem(scope, code string) Span {
	return Span{Family: ByItem, Scope: scope, Prefix: code + "\x00"}
}

// InState is a scope's packages in one state (archived, transferred, destroyed).
func InState(scope, state string) Span {
	return Span{Family: ByState, Scope: scope, Prefix: state + "\x00"}
}

// RetentionEndsBy is a scope's D10/D30 holdings whose retention ends by t (inclusive).
func RetentionEndsBy(scope string, t time.Time) Span {
	return Span{Family: ByRetainEnd, Scope: scope, To: sortTime(t) + "\x01"}
}

// TransferDueBy is a scope's permanent holdings not yet transferred, formed in lastYear or
// before.
func TransferDueBy(scope string, lastYear int) Span {
	return Span{Family: ByTransferDue, Scope: scope, To: sortYear(lastYear + 1)}
}

// CopyDeletableBy is a scope's transferred holdings whose copy may go by t (inclusive).
func CopyDeletableBy(scope string, t time.Time) Span {
	return Span{Family: ByCopyKeep, Scope: scope, To: sortTime(t) + "\x01"}
}

// CheckedBy is a scope's holdings last checked (or ingested, if never) at t or before.
func CheckedBy(scope string, t time.Time) Span {
	return Span{Family: ByAuditDue, Scope: scope, To: sortTime(t) + "\x01"}
}

// ArchivedLate is a scope's holdings archived after their deadline, by finishing time.
func ArchivedLate(scope string) Span { return Span{Family: ByLate, Scope: scope} }

// Page is one page of a list.
type Page struct {
	Packages []*Package
	Next     string // the cursor of the next page; empty on the last
}

// List reads up to limit packages of the span after cursor ("" for the first page). It
// reads only the keys and records it returns, plus one key to know whether more follow.
// The records are compact: without their documents (Package loads those).
func (db *DB) List(s Span, cursor string, limit int) (*Page, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", ErrBadCursor)
	}
	base, start, end := s.bounds()
	if cursor != "" {
		after, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !bytes.HasPrefix(after, base) {
			return nil, ErrBadCursor
		}
		start = after
	}
	page := &Page{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bIdx).Cursor()
		pk := tx.Bucket(bPackages)
		var last []byte
		k, _ := c.Seek(start)
		if cursor != "" && bytes.Equal(k, start) {
			k, _ = c.Next() // the cursor's own key was on the previous page
		}
		for ; in(k, base, end); k, _ = c.Next() {
			if len(page.Packages) == limit {
				page.Next = base64.RawURLEncoding.EncodeToString(last)
				return nil
			}
			id := k[bytes.LastIndexByte(k, 0)+1:]
			p, err := decodePackage(id, pk.Get(id))
			if err != nil {
				return err
			}
			page.Packages = append(page.Packages, p)
			last = append(last[:0], k...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// First reports whether the span holds any package (one key read).
func (db *DB) First(s Span) (bool, error) {
	found := false
	base, start, end := s.bounds()
	err := db.bolt.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bIdx).Cursor().Seek(start)
		found = in(k, base, end)
		return nil
	})
	return found, err
}
