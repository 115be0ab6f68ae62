package archive

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/storage/index"
)

// Read is one read of a record, as auditors query it.
type Read struct {
	At           time.Time `json:"at"`
	Who          string    `json:"who"`
	Package      string    `json:"package"`
	ArchivalCode string    `json:"archival_code"`
	What         string    `json:"what"`
	Purpose      string    `json:"purpose,omitempty"`
	Account      string    `json:"account,omitempty"` // the person's account, for a read in a console session
}

var readSeq atomic.Uint64

// logRead records a read of a record: in the structured log and, durably, in the index
// where auditors query it (ReadLog). A read that cannot be recorded is refused.
func (a *Archive) logRead(who Principal, p *index.Package, what string) error {
	r := Read{At: a.now().UTC(), Who: who.String(), Package: p.ID, ArchivalCode: p.ArchivalCode, What: what, Purpose: who.Purpose}
	if name, ok := strings.CutPrefix(who.TokenID, "@"); ok {
		r.Account = name
	}
	a.log.Info("record read", "who", r.Who, "package", p.ID, "archival_code", p.ArchivalCode, "what", what, "purpose", who.Purpose)
	key := fmt.Sprintf("%020d-%08d", r.At.UnixNano(), readSeq.Add(1)%100000000)
	if err := a.index.BatchRecords(index.Rec{Bucket: index.Reads, Key: key, Value: r},
		index.Rec{Bucket: index.ReadKeys, Key: "p\x00" + r.Package + "\x00" + key},
		index.Rec{Bucket: index.ReadKeys, Key: "w\x00" + r.Who + "\x00" + key}); err != nil {
		return fmt.Errorf("%w: record the read: %v", ErrUnavailable, err)
	}
	if who.Role == RoleDepartment && who.Org != p.Department {
		// A read under sharing is also an event: the owner and auditors see it in the log.
		attrs := map[string]string{"reader": who.Org, "owner": p.Department, "what": what, "purpose": who.Purpose,
			"sharing": SharingClass(p.Sharing)}
		if g := a.granted(who.Org, p.ID); g != nil {
			attrs["request"] = g.Request
		}
		if err := a.logEvent(context.Background(), eventlog.Event{Type: eventlog.TypeSharedRead, Actor: who.Person(), Subject: p.ID,
			Digest: p.PackageSM3, Attrs: attrs}); err != nil {
			return err
		}
	}
	return nil
}

// ReadFilter selects reads.
type ReadFilter struct {
	Package string
	Who     string
	Since   time.Time
	Until   time.Time
	Cursor  string
	Limit   int // default 100, at most 1000
}

// ReadLog lists record reads (auditor, archive, admin), oldest first from Since, a page
// after f.Cursor; the cursor of the next page is returned when one may follow.
func (a *Archive) ReadLog(ctx context.Context, who Principal, f ReadFilter) ([]Read, string, error) {
	if err := a.CanAudit(who); err != nil {
		return nil, "", err
	}
	via := ""
	switch {
	case f.Package != "":
		via = "p\x00" + f.Package + "\x00"
	case f.Who != "":
		via = "w\x00" + f.Who + "\x00"
	}
	return listTimed(a.index, index.Reads, index.ReadKeys, via, f.Since, f.Until, f.Cursor, f.Limit, func(r Read) (time.Time, bool) {
		return r.At, (f.Package == "" || r.Package == f.Package) && (f.Who == "" || r.Who == f.Who)
	})
}

// listTimed lists the records of a bucket keyed by time (UnixNano, 20 digits, first) from
// since to until (zero: open), at most limit (default 100, at most 1000) that match. With
// via, it walks the lookup keys under that prefix of keysBucket (via ‖ record key) instead
// of the whole bucket: a package's or a person's records cost their own number.
func listTimed[T any](db *index.DB, bucket, keysBucket, via string, since, until time.Time, cursor string, limit int, match func(T) (at time.Time, ok bool)) ([]T, string, error) {
	if limit < 0 || limit > maxPage {
		return nil, "", fieldErr("limit", fmt.Errorf("%w: limit is 1 to %d", ErrInvalidCase, maxPage))
	}
	if limit == 0 {
		limit = defaultPage
	}
	from := ""
	if !since.IsZero() {
		from = fmt.Sprintf("%020d", since.UnixNano())
	}
	after := ""
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) < 20 {
			return nil, "", fieldErr("cursor", fmt.Errorf("%w: %w", ErrInvalidCase, index.ErrBadCursor))
		}
		after = string(raw)
		from = max(from, after)
	}
	var out []T
	var next, lastKey string
	take := func(key string, data []byte) error {
		if key == after {
			return nil // the previous page's last
		}
		if len(out) == limit {
			next = base64.RawURLEncoding.EncodeToString([]byte(key))
			return index.ErrStop
		}
		var r T
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		at, ok := match(r)
		if !until.IsZero() && at.After(until) {
			return index.ErrStop
		}
		if ok {
			out = append(out, r)
			lastKey = key
		}
		return nil
	}
	var err error
	if via == "" {
		err = db.ForEachRecord(bucket, "", from, take)
	} else {
		err = db.ForEachVia(keysBucket, via, via+from, bucket, take)
	}
	if next != "" {
		next = base64.RawURLEncoding.EncodeToString([]byte(lastKey)) // continue after the last one returned
	}
	return out, next, err
}

// indexRecordKeys builds the lookups of reads and audit results once for an index written
// before they existed.
func (a *Archive) indexRecordKeys() error {
	mark := func(k string) index.Rec { return index.Rec{Key: k, Value: json.RawMessage("1")} }
	return a.buildLookupsOnce("record-keys-indexed", []lookupSource{
		{index.Reads, func(k string, data []byte) ([]index.Rec, error) {
			var r Read
			if err := json.Unmarshal(data, &r); err != nil {
				return nil, err
			}
			return []index.Rec{mark("p\x00" + r.Package + "\x00" + k), mark("w\x00" + r.Who + "\x00" + k)}, nil
		}, index.ReadKeys},
		{index.Audits, func(k string, data []byte) ([]index.Rec, error) {
			var r AuditResult
			if err := json.Unmarshal(data, &r); err != nil {
				return nil, err
			}
			out := []index.Rec{mark("p\x00" + r.Package + "\x00" + k)}
			if !r.OK {
				out = append(out, mark("f\x00"+k))
			}
			return out, nil
		}, index.AuditKeys},
	})
}

// lookupSource is a record bucket whose records give lookup keys into another bucket.
type lookupSource struct {
	bucket string
	keys   func(key string, data []byte) ([]index.Rec, error)
	into   string
}

// buildLookupsOnce writes the lookups every record of the sources gives, unless the State
// flag says it was done: it reads 10,000 records, writes their lookups, and reads on, so that
// no write runs inside a read.
func (a *Archive) buildLookupsOnce(flag string, sources []lookupSource) error {
	var done bool
	if a.index.Record(index.State, flag, &done) == nil && done {
		return nil
	}
	for _, src := range sources {
		for from := ""; ; {
			var recs []index.Rec
			n, last := 0, ""
			err := a.index.ForEachRecord(src.bucket, "", from, func(k string, data []byte) error {
				if k == from {
					return nil
				}
				if n == 10000 {
					return index.ErrStop
				}
				rs, err := src.keys(k, data)
				for _, r := range rs {
					r.Bucket = src.into
					recs = append(recs, r)
				}
				n, last = n+1, k
				return err
			})
			if err != nil {
				return err
			}
			if err := a.index.PutRecords(recs...); err != nil {
				return err
			}
			if n < 10000 {
				break
			}
			from = last
		}
	}
	return a.index.PutRecord(index.State, flag, true)
}
