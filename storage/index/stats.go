package index

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Statistics (统计) are kept per scope (a department, and AllDepartments) as counters
//
//	scope ‖ 0 ‖ dimension ‖ 0 ‖ value → count, bytes (two big-endian int64)
//
// moved in the transaction that writes a package record, so they always equal a recount.
// Holdings (packages not destroyed) count under every dimension with their EEP's bytes, and
// each of their files under its format with the file's bytes; a destroyed package counts
// only under state "destroyed", with no bytes (its EEP is gone).
var bStats = []byte("stats")

// Dimensions of the statistics.
const (
	DimTotal      = "total"      // one value, ""
	DimDepartment = "department" // the USCC; only in the AllDepartments scope
	DimYear       = "year"
	DimRetention  = "retention"
	DimState      = "state"
	DimFormat     = "format" // files by PUID (the archival rendition and any original)
)

// Counter is a count and its bytes.
type Counter struct {
	Count int64 `json:"count"`
	Bytes int64 `json:"bytes"`
}

// Statistics are one scope's counters: dimension → value → counter.
type Statistics map[string]map[string]Counter

type contribution struct {
	key          string
	count, bytes int64
}

func contributions(p *Package) []contribution {
	var out []contribution
	for _, scope := range []string{p.Department, AllDepartments} {
		add := func(dim, value string, count, n int64) {
			out = append(out, contribution{scope + "\x00" + dim + "\x00" + value, count, n})
		}
		if p.Tombstone != nil {
			add(DimState, "destroyed", 1, 0)
			continue
		}
		add(DimTotal, "", 1, p.StoredBytes())
		if scope == AllDepartments {
			add(DimDepartment, p.Department, 1, p.StoredBytes())
		}
		add(DimYear, sortYear(p.Year), 1, p.StoredBytes())
		add(DimRetention, p.Retention, 1, p.StoredBytes())
		add(DimState, p.State, 1, p.StoredBytes())
		for _, d := range p.Documents {
			for _, e := range d.Encoded {
				add(DimFormat, e.Format, 1, e.Size)
			}
		}
	}
	return out
}

// moveStats takes the contributions a package had (none: a new package) off the counters
// and adds p's.
func moveStats(tx *bolt.Tx, had []contribution, p *Package) error {
	delta := map[string]Counter{}
	for _, c := range had {
		d := delta[c.key]
		d.Count -= c.count
		d.Bytes -= c.bytes
		delta[c.key] = d
	}
	for _, c := range contributions(p) {
		d := delta[c.key]
		d.Count += c.count
		d.Bytes += c.bytes
		delta[c.key] = d
	}
	b := tx.Bucket(bStats)
	for k, d := range delta {
		if d == (Counter{}) {
			continue
		}
		cur := decodeCounter(b.Get([]byte(k)))
		cur.Count += d.Count
		cur.Bytes += d.Bytes
		var err error
		if cur == (Counter{}) {
			err = b.Delete([]byte(k))
		} else {
			err = b.Put([]byte(k), encodeCounter(cur))
		}
		if err != nil {
			return fmt.Errorf("statistics %q: %w", k, err)
		}
	}
	return nil
}

func decodeCounter(v []byte) Counter {
	if len(v) != 16 {
		return Counter{}
	}
	return Counter{Count: int64(binary.BigEndian.Uint64(v)), Bytes: int64(binary.BigEndian.Uint64(v[8:]))}
}

func encodeCounter(c Counter) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(c.Count))
	binary.BigEndian.PutUint64(v[8:], uint64(c.Bytes))
	return v
}

// Statistics reads a scope's counters: as many keys as the scope has distinct values, not
// as many as it has packages.
func (db *DB) Statistics(scope string) (Statistics, error) {
	out := Statistics{}
	prefix := []byte(scope + "\x00")
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bStats).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rest := k[len(prefix):]
			i := bytes.IndexByte(rest, 0)
			if i < 0 {
				continue
			}
			dim, value := string(rest[:i]), string(rest[i+1:])
			if out[dim] == nil {
				out[dim] = map[string]Counter{}
			}
			out[dim][value] = decodeCounter(v)
		}
		return nil
	})
	return out, err
}

// Scopes lists the departments that have statistics (for the metrics), and AllDepartments.
func (db *DB) Scopes() ([]string, error) {
	var out []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		out = scopesUnder(tx.Bucket(bStats).Cursor(), nil)
		return nil
	})
	return out, err
}
