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
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	from := ""
	if !f.Since.IsZero() {
		from = fmt.Sprintf("%020d", f.Since.UnixNano())
	}
	var out []Read
	err := a.index.ForEachRecord(index.Reads, "", from, func(_ string, data []byte) error {
		var r Read
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		if !f.Until.IsZero() && r.At.After(f.Until) {
			return index.ErrStop
		}
		if (f.Package == "" || r.Package == f.Package) && (f.Who == "" || r.Who == f.Who) {
			out = append(out, r)
		}
		if len(out) >= f.Limit {
			return index.ErrStop
		}
		return nil
	})
	return out, err
}
