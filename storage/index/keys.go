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
// where scope is the department's USCC, so that a department's list is one contiguous
// range. The whole archive's list (AllDepartments) is the departments' ranges merged by
// their sort fields and id: a page reads one key per department more than it returns, and a
// package writes each key once, not once for its department and once for the archive (at a
// million packages the second copy was a third of an ingest's index writes). The keys of a
// package are derived from its record alone (secondaryKeys) and rewritten in the
// transaction that writes the record, so they can never disagree with it.
var bIdx = []byte("idx")

// AllDepartments is the scope of the whole archive's lists: every department's range, merged.
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
	ByTransferDue Family = 'X' // permanent holdings formed here and not transferred, by the year their transfer counts from
	ByCopyKeep    Family = 'K' // transferred holdings, by the end of the department's copy
	ByAuditDue    Family = 'A' // holdings, by their last check (or ingest)
	ByLate        Family = 'L' // holdings archived after their deadline, by finishing time
)

// families are every family, for work over all of them (migrations).
var families = []Family{ByIngest, ByYear, ByItem, ByState, ByRetainEnd, ByTransferDue, ByCopyKeep, ByAuditDue, ByLate}

// ErrBadCursor is returned for a cursor that is not one this index handed out for the list.
var ErrBadCursor = errors.New("invalid cursor")

func sortTime(t time.Time) string { return t.UTC().Format("20060102T150405.000000000") }

func sortYear(y int) string { return fmt.Sprintf("%04d", y) }

// secondaryKeys are the index keys of a package record.
func secondaryKeys(p *Package) [][]byte {
	var out [][]byte
	add := func(f Family, sort string) {
		out = append(out, []byte(string(f)+p.Department+"\x00"+sort+"\x00"+p.ID))
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
		from := p.Year
		if p.Deferral != nil {
			from = p.Deferral.CountFrom // a later transfer the county archive approved
		}
		add(ByTransferDue, sortYear(from)+"\x00"+in)
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
	b := appendBucket(tx, bIdx)
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
// reads only the keys and records it returns, plus one key (for AllDepartments, one key of
// each department) to know whether more follow. The records are compact: without their
// documents (Package loads those).
func (db *DB) List(s Span, cursor string, limit int) (*Page, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("%w: limit must be positive", ErrBadCursor)
	}
	base, _, _ := s.bounds()
	var after []byte // the sort fields and id of the last key returned
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || !bytes.HasPrefix(raw, base) || len(raw) == len(base) {
			return nil, ErrBadCursor
		}
		after = raw[len(base):]
	}
	page := &Page{}
	err := db.bolt.View(func(tx *bolt.Tx) error {
		pk := tx.Bucket(bPackages)
		m := openSpan(tx, s, after)
		for k := m.key(); k != nil; k = m.next() {
			if len(page.Packages) == limit {
				page.Next = base64.RawURLEncoding.EncodeToString(append(append([]byte{}, base...), after...))
				return nil
			}
			id := k[bytes.LastIndexByte(k, 0)+1:]
			p, err := decodePackage(id, pk.Get(id))
			if err != nil {
				return err
			}
			page.Packages = append(page.Packages, p)
			after = append(after[:0], m.sortAndID()...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return page, nil
}

// First reports whether the span holds any package (one key read; for AllDepartments, one
// a department).
func (db *DB) First(s Span) (bool, error) {
	found := false
	err := db.bolt.View(func(tx *bolt.Tx) error {
		found = openSpan(tx, s, nil).key() != nil
		return nil
	})
	return found, err
}

// spanCursor walks a span in order: one department's range, or (AllDepartments) every
// department's range of the family merged by sort fields and id.
type spanCursor struct {
	ranges []*rangeCursor
	cur    *rangeCursor // the range whose key is next
}

type rangeCursor struct {
	c         *bolt.Cursor
	base, end []byte
	k         []byte
}

// openSpan positions a walk of s after the sort fields and id after (nil: at its start).
func openSpan(tx *bolt.Tx, s Span, after []byte) *spanCursor {
	m := &spanCursor{}
	scopes := []string{s.Scope}
	if s.Scope == AllDepartments {
		scopes = familyScopes(tx, s.Family)
	}
	for _, scope := range scopes {
		one := s
		one.Scope = scope
		base, start, end := one.bounds()
		r := &rangeCursor{c: tx.Bucket(bIdx).Cursor(), base: base, end: end}
		if after != nil {
			start = append(append([]byte{}, base...), after...)
		}
		r.k, _ = r.c.Seek(start)
		if after != nil && bytes.Equal(r.k, start) {
			r.k, _ = r.c.Next() // the cursor's own key was on the previous page
		}
		if in(r.k, base, end) {
			m.ranges = append(m.ranges, r)
		}
	}
	m.pick()
	return m
}

// pick makes the range with the least sort fields and id the current one.
func (m *spanCursor) pick() {
	m.cur = nil
	for _, r := range m.ranges {
		if m.cur == nil || bytes.Compare(r.k[len(r.base):], m.cur.k[len(m.cur.base):]) < 0 {
			m.cur = r
		}
	}
}

// key is the next key of the walk, nil at its end.
func (m *spanCursor) key() []byte {
	if m.cur == nil {
		return nil
	}
	return m.cur.k
}

// sortAndID is the current key without its family, scope and prefix: what orders it.
func (m *spanCursor) sortAndID() []byte { return m.cur.k[len(m.cur.base):] }

// next steps past the current key and returns the next one.
func (m *spanCursor) next() []byte {
	r := m.cur
	if r.k, _ = r.c.Next(); !in(r.k, r.base, r.end) {
		for i, x := range m.ranges {
			if x == r {
				m.ranges = append(m.ranges[:i], m.ranges[i+1:]...)
				break
			}
		}
	}
	m.pick()
	return m.key()
}

// familyScopes are the departments with keys in a family: one seek each.
func familyScopes(tx *bolt.Tx, f Family) []string {
	var out []string
	for _, scope := range scopesUnder(tx.Bucket(bIdx).Cursor(), []byte{byte(f)}) {
		if scope != AllDepartments { // a layout 2 copy not yet migrated away
			out = append(out, scope)
		}
	}
	return out
}

// scopesUnder lists the distinct scopes of the keys prefix ‖ scope ‖ 0 ‖ …, in order, with
// one seek each: past a scope's keys to the next scope's.
func scopesUnder(c *bolt.Cursor, prefix []byte) []string {
	var out []string
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); {
		i := bytes.IndexByte(k[len(prefix):], 0)
		if i < 0 {
			break
		}
		scope := string(k[len(prefix) : len(prefix)+i])
		out = append(out, scope)
		k, _ = c.Seek(append(append(append([]byte{}, prefix...), scope...), 1))
	}
	return out
}
