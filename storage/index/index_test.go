package index

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func pkg(id, dept, caseNo, series string, n int) *Package {
	return &Package{ID: id, Department: dept, CaseNo: caseNo, Series: series, ItemNo: n, Year: 2025,
		Title: "食品经营许可 " + caseNo, IngestedAt: time.Now()}
}

func TestItemNumbersStayContinuous(t *testing.T) {
	db, path := openTest(t)
	const s = "F1/2025/D30"
	a, _ := db.ReserveItemNo(s)
	b, _ := db.ReserveItemNo(s)
	c, _ := db.ReserveItemNo(s)
	if a != 1 || b != 2 || c != 3 {
		t.Fatalf("numbers %d %d %d", a, b, c)
	}
	// b fails: its number is reused before a new one is taken.
	if err := db.ReleaseItemNo(s, b); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.ReserveItemNo(s); n != 2 {
		t.Fatalf("released number not reused: got %d", n)
	}
	if _, err := db.CommitPackage(pkg("p1", "D", "c1", s, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CommitPackage(pkg("p3", "D", "c3", s, 3)); err != nil {
		t.Fatal(err)
	}
	// A crash with 2 in flight and 1, 3 committed: after a restart 2 is free and is handed
	// out first, then 4.
	db.Close()
	db2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	got := []int{}
	for i := 0; i < 3; i++ {
		n, _ := db2.ReserveItemNo(s)
		got = append(got, n)
	}
	if fmt.Sprint(got) != "[2 4 5]" {
		t.Fatalf("after restart: %v", got)
	}
	// Series are independent.
	if n, _ := db2.ReserveItemNo("F1/2025/Y"); n != 1 {
		t.Fatalf("other series started at %d", n)
	}
}

func TestCommitRefusesSecondPackageForACase(t *testing.T) {
	db, _ := openTest(t)
	if _, err := db.CommitPackage(pkg("p1", "D", "c1", "s", 1)); err != nil {
		t.Fatal(err)
	}
	existing, err := db.CommitPackage(pkg("p2", "D", "c1", "s", 2))
	if !errors.Is(err, ErrCaseExists) || existing == nil || existing.ID != "p1" {
		t.Fatalf("second commit: %v %+v", err, existing)
	}
	if _, err := db.Package("p2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("losing package was written: %v", err)
	}
	// Same case number in another department is another case.
	if _, err := db.CommitPackage(pkg("p3", "E", "c1", "s", 3)); err != nil {
		t.Fatal(err)
	}
	p, err := db.PackageByCase("E", "c1")
	if err != nil || p.ID != "p3" {
		t.Fatalf("by case: %v %v", p, err)
	}
}

func TestConcurrentCommitsOneWinner(t *testing.T) {
	db, _ := openTest(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := db.CommitPackage(pkg(fmt.Sprintf("p%d", i), "D", "same", "s", i+1))
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, ErrCaseExists) {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if n, _ := db.Count(); wins != 1 || n != 1 {
		t.Fatalf("wins %d, packages %d", wins, n)
	}
}

func ids(ps []*Package) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestTokensByHash(t *testing.T) {
	db, _ := openTest(t)
	if err := db.PutToken("h1", Token{Role: "department", Org: "X"}); err != nil {
		t.Fatal(err)
	}
	tok, err := db.Token("h1")
	if err != nil || tok.Role != "department" || tok.Org != "X" {
		t.Fatalf("%v %v", tok, err)
	}
	if _, err := db.Token("h2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
}

func TestCommitPackagesInOneTransaction(t *testing.T) {
	db, _ := openTest(t)
	if _, err := db.CommitPackage(pkg("p0", "D", "old", "s", 1)); err != nil {
		t.Fatal(err)
	}
	res, err := db.CommitPackages([]*Package{
		pkg("p1", "D", "new", "s", 2),
		pkg("p2", "D", "old", "s", 3), // indexed before
		pkg("p3", "D", "new", "s", 4), // earlier in the same batch
		pkg("p4", "E", "new", "s", 5),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"", "p0", "p1", ""}
	for i, r := range res {
		got := ""
		if r.Existing != nil {
			got = r.Existing.ID
		}
		if got != want[i] || (want[i] != "") != errors.Is(r.Err, ErrCaseExists) {
			t.Fatalf("result %d: existing %q err %v, want existing %q", i, got, r.Err, want[i])
		}
	}
	if n, _ := db.Count(); n != 3 {
		t.Fatalf("%d packages indexed, want 3", n)
	}
}
