package archive

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

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
}

var readSeq atomic.Uint64

// logRead records a read of a record: in the structured log and, durably, in the index
// where auditors query it (ReadLog). A read that cannot be recorded is refused.
func (a *Archive) logRead(who Principal, p *index.Package, what string) error {
	r := Read{At: a.now().UTC(), Who: who.String(), Package: p.ID, ArchivalCode: p.ArchivalCode, What: what, Purpose: who.Purpose}
	a.log.Info("record read", "who", r.Who, "package", p.ID, "archival_code", p.ArchivalCode, "what", what, "purpose", who.Purpose)
	key := fmt.Sprintf("%020d-%08d", r.At.UnixNano(), readSeq.Add(1)%100000000)
	if err := a.index.BatchRecord(index.Reads, key, r); err != nil {
		return fmt.Errorf("%w: record the read: %v", ErrUnavailable, err)
	}
	return nil
}

// ReadFilter selects reads.
type ReadFilter struct {
	Package string
	Who     string
	Since   time.Time
	Until   time.Time
	Limit   int // default 100, at most 1000
}

// ReadLog lists record reads (auditor, archive, admin), oldest first from Since.
func (a *Archive) ReadLog(ctx context.Context, who Principal, f ReadFilter) ([]Read, error) {
	if err := a.CanAudit(who); err != nil {
		return nil, err
	}
	return listTimed(a.index, index.Reads, f.Since, f.Until, f.Limit, func(r Read) (time.Time, bool) {
		return r.At, (f.Package == "" || r.Package == f.Package) && (f.Who == "" || r.Who == f.Who)
	})
}

// listTimed lists the records of a bucket keyed by time (UnixNano, 20 digits, first) from
// since to until (zero: open), at most limit (default 100, at most 1000) that match.
func listTimed[T any](db *index.DB, bucket string, since, until time.Time, limit int, match func(T) (at time.Time, ok bool)) ([]T, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	from := ""
	if !since.IsZero() {
		from = fmt.Sprintf("%020d", since.UnixNano())
	}
	var out []T
	err := db.ForEachRecord(bucket, "", from, func(_ string, data []byte) error {
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
		}
		if len(out) >= limit {
			return index.ErrStop
		}
		return nil
	})
	return out, err
}
