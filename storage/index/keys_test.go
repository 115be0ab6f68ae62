package index

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func listed(t *testing.T, db *DB, s Span, limit int) [][]string {
	t.Helper()
	var pages [][]string
	cursor := ""
	for {
		page, err := db.List(s, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, ids(page.Packages))
		if page.Next == "" {
			return pages
		}
		cursor = page.Next
	}
}

// Each list is its own range: a department's, a year's, an item's, a state's, in ingest
// order, paged by cursor without gaps or repeats, and a package moves between lists when
// its record changes.
func TestListsAreRangesOfTheirOwn(t *testing.T) {
	db, _ := openTest(t)
	for i := 0; i < 7; i++ {
		p := pkg(fmt.Sprintf("p%d", i), []string{"A", "B"}[i%2], fmt.Sprintf("c%d", i), "s", i+1)
		p.ItemCode = []string{"X", "Y", "Z"}[i%3]
		p.Year = 2020 + i%2
		p.Retention = []string{"Y", "D30", "D10"}[i%3]
		p.State = "archived"
		p.IngestedAt = t0.Add(time.Duration(i) * time.Second)
		p.RetainUntil = t0.AddDate(10+i, 0, 0)
		if _, err := db.CommitPackage(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		span  Span
		limit int
		want  string
	}{
		{Ingested("A"), 2, "[[p0 p2] [p4 p6]]"},
		{Ingested(AllDepartments), 3, "[[p0 p1 p2] [p3 p4 p5] [p6]]"},
		{InYear("B", 2021, ""), 10, "[[p5 p1 p3]]"}, // by retention (D10, D30, Y), then time
		{InYear(AllDepartments, 2020, "D10"), 10, "[[p2]]"},
		{WithItem(AllDepartments, "X"), 1, "[[p0] [p3] [p6]]"},
		{InState("A", "archived"), 10, "[[p0 p2 p4 p6]]"},
		{InState("A", "transferred"), 10, "[[]]"},
		{RetentionEndsBy(AllDepartments, t0.AddDate(14, 0, 0)), 10, "[[p1 p2 p4]]"},
		{TransferDueBy(AllDepartments, 2020), 10, "[[p0 p6]]"},
		{CheckedBy("B", t0.Add(3*time.Second)), 10, "[[p1 p3]]"},
	} {
		if got := fmt.Sprint(listed(t, db, c.span, c.limit)); got != c.want {
			t.Errorf("%c %s %q..%q: %s, want %s", c.span.Family, c.span.Scope, c.span.Prefix, c.span.To, got, c.want)
		}
	}
	// A transfer takes p0 off the transfer list and the state list, onto the copy list.
	if _, err := db.UpdatePackage("p0", func(p *Package) error {
		p.State = "transferred"
		p.Transfer = &TransferMark{Batch: "b1", KeepUntil: t0.AddDate(5, 0, 0)}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for span, want := range map[Span]string{
		TransferDueBy(AllDepartments, 2020):               "[[p6]]",
		InState("A", "archived"):                          "[[p2 p4 p6]]",
		InState("A", "transferred"):                       "[[p0]]",
		CopyDeletableBy("A", t0.AddDate(5, 0, 0)):         "[[p0]]",
		CopyDeletableBy("A", t0.AddDate(5, 0, 0).Add(-1)): "[[]]",
	} {
		if got := fmt.Sprint(listed(t, db, span, 10)); got != want {
			t.Errorf("after the transfer, %c %q: %s, want %s", span.Family, span.Prefix, got, want)
		}
	}
	// An audit mark moves p1 past the due range.
	if err := db.RecordAudits([]AuditEntry{{Key: "k", Record: []byte("{}"), Package: "p1", Mark: AuditMark{At: t0.AddDate(1, 0, 0), OK: true}}}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(listed(t, db, CheckedBy("B", t0.Add(time.Hour)), 10)); got != "[[p3 p5]]" {
		t.Errorf("due audits after p1's check: %s", got)
	}
	// Lists are compact; Package brings the documents.
	if _, err := db.List(Ingested("A"), "not a cursor", 5); !errors.Is(err, ErrBadCursor) {
		t.Errorf("a made-up cursor: %v", err)
	}
	pageA, _ := db.List(Ingested("A"), "", 1)
	if _, err := db.List(Ingested("B"), pageA.Next, 5); !errors.Is(err, ErrBadCursor) {
		t.Errorf("department A's cursor on B's list: %v", err)
	}
}

// Ids that are prefixes of one another (p1, p10) with the same sort fields page correctly.
func TestCursorBetweenPrefixIDs(t *testing.T) {
	db, _ := openTest(t)
	for _, id := range []string{"p1", "p10", "p100", "p2"} {
		p := pkg(id, "A", "c"+id, "s", len(id))
		p.IngestedAt = t0
		if _, err := db.CommitPackage(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(listed(t, db, Ingested("A"), 1)); got != "[[p1] [p10] [p100] [p2]]" {
		t.Fatalf("pages %s", got)
	}
}

// recount is the statistics computed here, from the records, by the rule stats.go states.
func recount(t *testing.T, db *DB, scope string) Statistics {
	out := Statistics{}
	add := func(dim, v string, n int64) {
		if out[dim] == nil {
			out[dim] = map[string]Counter{}
		}
		c := out[dim][v]
		c.Count++
		c.Bytes += n
		out[dim][v] = c
	}
	db.ForEachPackage(func(c *Package) error {
		if scope != AllDepartments && c.Department != scope {
			return nil
		}
		p, err := db.Package(c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Tombstone != nil {
			add("state", "destroyed", 0)
			return nil
		}
		add("total", "", p.Size)
		if scope == AllDepartments {
			add("department", p.Department, p.Size)
		}
		add("year", fmt.Sprint(p.Year), p.Size)
		add("retention", p.Retention, p.Size)
		add("state", p.State, p.Size)
		for _, d := range p.Documents {
			for _, e := range d.Encoded {
				add("format", e.Format, e.Size)
			}
		}
		return nil
	})
	return out
}

func TestStatisticsEqualARecount(t *testing.T) {
	db, _ := openTest(t)
	for i := 0; i < 9; i++ {
		p := pkg(fmt.Sprintf("p%d", i), []string{"A", "B", "C"}[i%3], fmt.Sprintf("c%d", i), "s", i+1)
		p.Year, p.Retention, p.State, p.Size = 2019+i%4, []string{"Y", "D30"}[i%2], "archived", int64(1000+i)
		p.Documents = []Document{{N: 1, Encoded: []Encoding{{Format: "fmt/95", Size: 300}, {Format: "fmt/412", Size: int64(50 * i)}}}}
		if _, err := db.CommitPackage(p); err != nil {
			t.Fatal(err)
		}
	}
	db.UpdatePackage("p3", func(p *Package) error { p.State = "transferred"; return nil })
	db.UpdatePackage("p4", func(p *Package) error { p.Tombstone, p.State = &Tombstone{Decision: "d"}, "destroyed"; return nil })
	db.UpdatePackage("p5", func(p *Package) error {
		p.Documents = p.Documents[:1]
		p.Documents[0].Encoded = p.Documents[0].Encoded[:1]
		return nil
	})
	for _, scope := range []string{"A", "B", "C", AllDepartments} {
		got, err := db.Statistics(scope)
		if err != nil {
			t.Fatal(err)
		}
		if want := recount(t, db, scope); !reflect.DeepEqual(got, want) {
			t.Errorf("scope %s:\n got %v\nwant %v", scope, got, want)
		}
	}
	if got, _ := db.Statistics(AllDepartments); got["state"]["destroyed"].Count != 1 || got["total"][""].Count != 8 {
		t.Errorf("holdings %v", got)
	}
	records := 0
	db.ForEachPackage(func(*Package) error { records++; return nil })
	if n, err := db.Count(); n != 9 || records != 9 || err != nil {
		t.Errorf("Count says %d (%v), the records are %d, want 9 with the destroyed one", n, err, records)
	}
}

// An index written by the layout before secondary indexes (records with their documents,
// a by-date bucket) is migrated on open, in batches that resume after a crash, and then
// answers lists and statistics like one built new.
func TestMigrationFromLayout1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "index.db")
	b, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4500 // more than two batches
	b.Update(func(tx *bolt.Tx) error {
		pk, _ := tx.CreateBucket([]byte("packages"))
		bd, _ := tx.CreateBucket([]byte("by-date"))
		tx.CreateBucket([]byte("state"))
		for i := 0; i < n; i++ {
			p := pkg(fmt.Sprintf("p%05d", i), []string{"A", "B"}[i%2], fmt.Sprint(i), "s", i+1)
			p.IngestedAt, p.Retention, p.State, p.Size = t0.Add(time.Duration(i)*time.Minute), "D10", "archived", 10
			p.FinishedAt = t0.AddDate(-3, 0, 0)
			p.Documents = []Document{{N: 1, Encoded: []Encoding{{Format: "fmt/95", Size: 7, DataOffset: 99}}}}
			v, _ := json.Marshal(p)
			pk.Put([]byte(p.ID), v)
			bd.Put([]byte(p.IngestedAt.Format(time.RFC3339Nano)+"\x00"+p.ID), nil)
		}
		// A migration that stopped after its first batch.
		return tx.Bucket([]byte("state")).Put([]byte(migrationKey), []byte("p01999"))
	})
	// What the first batch had written.
	b.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			tx.CreateBucketIfNotExists(name)
		}
		var done []*Package
		c := tx.Bucket(bPackages).Cursor()
		for k, v := c.First(); k != nil && string(k) <= "p01999"; k, v = c.Next() {
			p := new(Package)
			json.Unmarshal(v, p)
			p.ArchivedLate = p.Department == "A"
			done = append(done, p)
		}
		for _, p := range done { // written after the walk, as migrate does
			if err := putPackage(tx, nil, p); err != nil {
				return err
			}
		}
		return nil
	})
	b.Close()
	var progress []int
	db, err := OpenWith(path, Options{
		Derive:   func(p *Package) { p.ArchivedLate = p.Department == "A" },
		Progress: func(done, total int) { progress = append(progress, done) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if fmt.Sprint(progress) != "[4000 4500]" {
		t.Errorf("progress %v: the migration did not resume after p01999", progress)
	}
	if got := fmt.Sprint(listed(t, db, Ingested("B"), 2)[:2]); got != "[[p00001 p00003] [p00005 p00007]]" {
		t.Errorf("department B: %s", got)
	}
	late, _ := db.List(ArchivedLate(AllDepartments), "", n)
	if len(late.Packages) != n/2 {
		t.Errorf("%d late, want %d", len(late.Packages), n/2)
	}
	st, _ := db.Statistics(AllDepartments)
	if c := st["total"][""]; c.Count != n || c.Bytes != 10*n {
		t.Errorf("total %+v", c)
	}
	if c := st["format"]["fmt/95"]; c.Count != n || c.Bytes != 7*n {
		t.Errorf("formats %+v (a batch counted twice or missed)", c)
	}
	p, _ := db.Package("p04499")
	if len(p.Documents) != 1 || p.Documents[0].Encoded[0].DataOffset != 99 {
		t.Errorf("documents lost in the migration: %+v", p.Documents)
	}
	page, _ := db.List(Ingested(AllDepartments), "", 1)
	if page.Packages[0].Documents != nil {
		t.Error("a list returned documents: records are not compact")
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bByDateV1) != nil {
			t.Error("the by-date bucket survived the migration")
		}
		if v := tx.Bucket([]byte(State)).Get([]byte(versionKey)); string(v) != fmt.Sprint(Version) {
			t.Errorf("version %q", v)
		}
		return nil
	})
}

// The archive's lists merge the departments' ranges: in sort order across departments, ties
// in ingest time by id (also ids that are prefixes of one another), paged at any limit
// without gaps or repeats, and a department's cursor is refused on the archive's list.
func TestArchiveListsMergeDepartments(t *testing.T) {
	db, _ := openTest(t)
	var all []*Package
	for i := 0; i < 120; i++ {
		id := fmt.Sprintf("p%d", (i*37)%120) // ids out of ingest order, some prefixes of others
		p := pkg(id, []string{"A", "B", "C", "D", "E"}[(i*7)%5], "c"+id, "s"+id, 1)
		p.IngestedAt = t0.Add(time.Duration(i/3) * time.Second) // three packages share each second
		p.State = "archived"
		if _, err := db.CommitPackage(p); err != nil {
			t.Fatal(err)
		}
		all = append(all, p)
	}
	slices.SortFunc(all, func(a, b *Package) int {
		if c := strings.Compare(sortTime(a.IngestedAt), sortTime(b.IngestedAt)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var want []string
	for _, p := range all {
		want = append(want, p.ID)
	}
	for _, limit := range []int{1, 7, 50, 1000} {
		var got []string
		for _, page := range listed(t, db, Ingested(AllDepartments), limit) {
			got = append(got, page...)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: %v\nwant %v", limit, got, want)
		}
	}
	if got := listed(t, db, InState(AllDepartments, "archived"), 1000); len(got[0]) != 120 {
		t.Fatalf("archived across departments: %d", len(got[0]))
	}
	pageA, _ := db.List(Ingested("A"), "", 1)
	if _, err := db.List(Ingested(AllDepartments), pageA.Next, 5); !errors.Is(err, ErrBadCursor) {
		t.Errorf("department A's cursor on the archive's list: %v", err)
	}
	if ok, _ := db.First(InState(AllDepartments, "transferred")); ok {
		t.Error("First found a transferred package")
	}
	if ok, _ := db.First(WithItem(AllDepartments, "")); !ok {
		t.Error("First found no package with the empty item code")
	}
}

// A layout 2 index (with the archive-wide copy of every key) migrates to layout 3: the
// copies go (in transactions of 20,000 keys, each whole, so a stopped migration deletes
// the rest when it runs again) and the lists stay.
func TestMigrationFromLayout2(t *testing.T) {
	db, path := openTest(t)
	for i := 0; i < 50; i++ {
		p := pkg(fmt.Sprintf("p%02d", i), []string{"A", "B"}[i%2], fmt.Sprintf("c%d", i), "s", i+1)
		p.IngestedAt = t0.Add(time.Duration(i) * time.Second)
		p.State, p.Retention, p.RetainUntil = "archived", "D10", t0.AddDate(10, 0, i)
		if _, err := db.CommitPackage(p); err != nil {
			t.Fatal(err)
		}
	}
	want := fmt.Sprint(listed(t, db, RetentionEndsBy(AllDepartments, t0.AddDate(11, 0, 0)), 7))
	// Make it layout 2: every key again under the archive-wide scope.
	star := func() (n int) {
		db.bolt.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bIdx).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if strings.HasPrefix(string(k[1:]), AllDepartments+"\x00") {
					n++
				}
			}
			return nil
		})
		return n
	}
	if err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIdx)
		var copies [][]byte
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			i := strings.IndexByte(string(k), 0)
			copies = append(copies, []byte(string(k[:1])+AllDepartments+string(k[i:])))
		}
		for _, k := range copies {
			if err := b.Put(k, nil); err != nil {
				return err
			}
		}
		return tx.Bucket([]byte(State)).Put([]byte(versionKey), []byte("2"))
	}); err != nil {
		t.Fatal(err)
	}
	if n := star(); n < 250 {
		t.Fatalf("%d archive-wide keys made", n)
	}
	db.Close()
	db, err := OpenWith(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n := star(); n != 0 {
		t.Fatalf("%d archive-wide keys left after the migration", n)
	}
	if got := fmt.Sprint(listed(t, db, RetentionEndsBy(AllDepartments, t0.AddDate(11, 0, 0)), 7)); got != want {
		t.Fatalf("after the migration %s, want %s", got, want)
	}
	db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket([]byte(State)).Get([]byte(versionKey)); string(v) != fmt.Sprint(Version) {
			t.Errorf("version %q", v)
		}
		return nil
	})
}
