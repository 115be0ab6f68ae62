package search

import (
	"fmt"
	"math"
	"time"

	"github.com/blevesearch/bleve/v2/numeric"
)

// precisionStep is how many bits apart Bleve indexes the prefixes of a date (shifts 0, 4,
// …, 60): each prefix term is a bucket of ingest times with its count of cases.
const precisionStep = 4

// windowStart is the ingest time t such that about docs cases were ingested at or after t
// (and before the cursor term before, when there is one), found by walking the ingested
// field's prefix terms from the coarsest down, a few hundred terms at most whatever the
// size of the archive. whole says the window would be the whole archive.
// Counts include updated cases' older copies not yet merged away, so the window is at
// worst somewhat smaller than asked; callers widen it when it does not hold their hits.
func (b *Bleve) windowStart(docs uint64, before string) (t time.Time, whole bool, err error) {
	r, err := b.reader()
	if err != nil {
		return time.Time{}, false, err
	}
	defer r.Close()
	ub := uint64(math.MaxUint64) // in sortable form: the value with its sign bit flipped
	if before != "" {
		v, err := numeric.PrefixCoded(before).Int64()
		if err != nil {
			return time.Time{}, false, ErrBadCursor
		}
		ub = sortable(v)
	}
	lo, hi := uint64(0), uint64(math.MaxUint64)
	var above uint64 // cases in newer buckets already passed
	type bucket struct {
		lo    uint64
		count uint64
	}
	var level []bucket
	// Two prefix levels a step (up to 256 terms), and no deeper than a bucket of an eighth
	// of docs: the window is then at most an eighth larger than asked.
	for shift := 64 - precisionStep; ; shift = max(shift-2*precisionStep, 0) {
		from, _ := numeric.NewPrefixCodedInt64(unsortable(lo), uint(shift))
		to, _ := numeric.NewPrefixCodedInt64(unsortable(hi), uint(shift))
		dict, err := r.FieldDictRange("ingested", from, to)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("search: ingest times: %w", err)
		}
		level = level[:0]
		for {
			e, err := dict.Next()
			if err != nil {
				dict.Close()
				return time.Time{}, false, fmt.Errorf("search: ingest times: %w", err)
			}
			if e == nil {
				break
			}
			v, err := numeric.PrefixCoded(e.Term).Int64()
			if err != nil {
				continue
			}
			level = append(level, bucket{sortable(v), e.Count})
		}
		dict.Close()
		var in *bucket
		for i := len(level) - 1; i >= 0; i-- {
			if level[i].lo > ub {
				continue
			}
			if above+level[i].count >= docs {
				in = &level[i]
				break
			}
			above += level[i].count
		}
		if in == nil {
			if shift == 64-precisionStep {
				return time.Time{}, true, nil // fewer cases than asked
			}
			break // the buckets before the cursor hold fewer than their parent said
		}
		lo, hi = in.lo, in.lo|(1<<uint(shift)-1)
		if shift == 0 || in.count*8 <= docs {
			break
		}
	}
	return time.Unix(0, unsortable(lo)).UTC(), false, nil
}

func sortable(v int64) uint64   { return uint64(v) ^ 1<<63 }
func unsortable(u uint64) int64 { return int64(u ^ 1<<63) }
