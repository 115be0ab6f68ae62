package index

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The search index is derived from this one. Every write of a package puts its id on the
// search queue in the same transaction, with a sequence number; the search indexer takes
// ids off the queue once it has indexed them, unless they were queued again meanwhile. A
// crash between the two leaves the id queued: it is indexed again, never lost.
var (
	bSearchQueue = []byte("search-queue") // package id → sequence (uint64)
	// bQueueCount holds the search queue's length under queueCountKey, moved with it, so
	// that the length costs one read and not a walk of the queue.
	bQueueCount   = []byte("search-queue-count")
	queueCountKey = []byte("n")
	bCaseText     = []byte(CaseTexts) // package id → CaseText JSON
)

// CaseTexts is the bucket of the case texts, for ForEachRecord and PutRecords.
const CaseTexts = "case-text"

// CaseText is what the full-text search indexes of a case besides its record and its
// documents' text. Applicant and ApplicantID are personal data, stored only Sealed.
type CaseText struct {
	Decision    string   `json:"decision,omitempty"`
	Opinions    []string `json:"opinions,omitempty"`
	Steps       []string `json:"steps,omitempty"` // step names and actors
	Applicant   string   `json:"applicant,omitempty"`
	ApplicantID string   `json:"applicant_id,omitempty"`
	// Sealed holds Applicant and ApplicantID encrypted (the archive seals them before they
	// are stored, and the two fields are then empty).
	Sealed []byte `json:"sealed,omitempty"`
}

// Queued is one package id on the search queue.
type Queued struct {
	ID  string
	seq []byte
}

func enqueueSearch(tx *bolt.Tx, p *Package) error {
	b := appendBucket(tx, bSearchQueue)
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	if b.Get([]byte(p.ID)) == nil {
		if err := moveQueueCount(tx, 1); err != nil {
			return err
		}
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, n)
	if err := b.Put([]byte(p.ID), v); err != nil {
		return err
	}
	if p.CaseText != nil {
		ct, err := json.Marshal(p.CaseText)
		if err != nil {
			return fmt.Errorf("encode case text of %s: %w", p.ID, err)
		}
		return appendBucket(tx, bCaseText).Put([]byte(p.ID), ct)
	}
	return nil
}

// moveQueueCount adds d to the search queue's length.
func moveQueueCount(tx *bolt.Tx, d int64) error {
	b := tx.Bucket(bQueueCount)
	n := int64(0)
	if v := b.Get(queueCountKey); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(max(n+d, 0)))
	return b.Put(queueCountKey, v)
}

// countSearchQueue sets the queue's length from the queue itself, for an index made before
// the length was kept: once, when it is opened.
func countSearchQueue(tx *bolt.Tx) error {
	if tx.Bucket(bQueueCount).Get(queueCountKey) != nil {
		return nil
	}
	return moveQueueCount(tx, int64(tx.Bucket(bSearchQueue).Stats().KeyN))
}

// SearchQueue returns up to limit queued package ids.
func (db *DB) SearchQueue(limit int) ([]Queued, error) {
	var out []Queued
	err := db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bSearchQueue).Cursor()
		for k, v := c.First(); k != nil && len(out) < limit; k, v = c.Next() {
			out = append(out, Queued{ID: string(k), seq: append([]byte{}, v...)})
		}
		return nil
	})
	return out, err
}

// SearchIndexed takes ids off the queue, except those queued again since SearchQueue.
func (db *DB) SearchIndexed(done []Queued) error {
	return db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bSearchQueue)
		for _, q := range done {
			if bytes.Equal(b.Get([]byte(q.ID)), q.seq) {
				if err := b.Delete([]byte(q.ID)); err != nil {
					return err
				}
				if err := moveQueueCount(tx, -1); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// SearchQueueLen is the number of packages waiting for the search indexer.
func (db *DB) SearchQueueLen() (int, error) {
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bQueueCount).Get(queueCountKey); len(v) == 8 {
			n = int(binary.BigEndian.Uint64(v))
		}
		return nil
	})
	return n, err
}

// QueueAllForSearch puts every package on the search queue (a search index rebuilt from
// nothing), in transactions of a few thousand.
func (db *DB) QueueAllForSearch() (int, error) {
	n, from := 0, []byte(nil)
	for {
		var ids [][]byte
		if err := db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bPackages).Cursor()
			k, _ := c.First()
			if from != nil {
				if k, _ = c.Seek(from); bytes.Equal(k, from) {
					k, _ = c.Next()
				}
			}
			for ; k != nil && len(ids) < 5000; k, _ = c.Next() {
				ids = append(ids, append([]byte{}, k...))
			}
			return nil
		}); err != nil {
			return n, err
		}
		if len(ids) == 0 {
			return n, nil
		}
		if err := db.bolt.Update(func(tx *bolt.Tx) error {
			for _, id := range ids {
				if err := enqueueSearch(tx, &Package{ID: string(id)}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return n, err
		}
		n += len(ids)
		from = ids[len(ids)-1]
	}
}

// CaseText reads what the search indexes of a case besides its record (nil when none was
// kept: a package indexed before case texts were).
func (db *DB) CaseText(id string) (*CaseText, error) {
	var ct *CaseText
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bCaseText).Get([]byte(id))
		if v == nil {
			return nil
		}
		ct = new(CaseText)
		return json.Unmarshal(v, ct)
	})
	return ct, err
}
