package index

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// The search queue's length is kept beside it: queuing a package again does not count it
// twice, taking it off counts down, a package queued again while it was indexed stays, and
// an index made before the length was kept counts its queue once when opened.
func TestSearchQueueLength(t *testing.T) {
	db, path := openTest(t)
	length := func(want int) {
		t.Helper()
		if n, err := db.SearchQueueLen(); err != nil || n != want {
			t.Fatalf("queue length %d (%v), want %d", n, err, want)
		}
	}
	var ps []*Package
	for i := range 3 {
		ps = append(ps, pkg(fmt.Sprintf("p%d", i), "D", fmt.Sprintf("C%d", i), "S", i+1))
	}
	if _, err := db.CommitPackages(ps); err != nil {
		t.Fatal(err)
	}
	length(3)
	q, err := db.SearchQueue(10)
	if err != nil || len(q) != 3 {
		t.Fatalf("%v %v", q, err)
	}
	if _, err := db.UpdatePackage("p0", func(p *Package) error { p.Title = "改"; return nil }); err != nil {
		t.Fatal(err)
	}
	length(3) // p0 again: still one entry
	if err := db.SearchIndexed(q); err != nil {
		t.Fatal(err)
	}
	length(1) // p0 was queued again after SearchQueue: it stays
	if q, _ = db.SearchQueue(10); len(q) != 1 || q[0].ID != "p0" {
		t.Fatalf("left on the queue: %v", q)
	}
	if n, err := db.QueueAllForSearch(); err != nil || n != 3 {
		t.Fatal(n, err)
	}
	length(3)
	// An index without the kept length.
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bQueueCount).Delete(queueCountKey) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	length(3)
}
