package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blevesearch/bleve/v2"
	"github.com/dangan-archive/dangan/search"
)

var deptB = Principal{Role: RoleDepartment, Org: "11610830MB1234567W"}

func pdfUpload(t *testing.T, path string) func() (*Upload, error) {
	t.Helper()
	sent := false
	return func() (*Upload, error) {
		if sent {
			return nil, io.EOF
		}
		sent = true
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		return &Upload{Part: "doc", FileName: filepath.Base(path), Body: f}, nil
	}
}

// Ingest comes first: while an ingest is in flight, a case archived meanwhile waits on the
// search queue (the indexer of before took a batch every two seconds) until the patience has
// passed; then it is indexed though the ingest still runs, and the rest once it ends.
func TestSearchIndexerWaitsForIngests(t *testing.T) {
	const patience = 6 * time.Second
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, SearchPatience: patience})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	pdf := "../examples/case-001/decision.pdf"
	if _, err := a.Ingest(ctx, dept, benchCaseFor("SP-0"), pdfUpload(t, pdf)); err != nil {
		t.Fatal(err)
	}
	waitSearchReady(t, a, 1) // no ingest running: indexed at once
	release := make(chan struct{})
	held := make(chan error, 1)
	inner := pdfUpload(t, pdf)
	go func() {
		_, err := a.Ingest(ctx, dept, benchCaseFor("SP-HELD"), func() (*Upload, error) {
			u, err := inner()
			if err == nil {
				<-release // the ingest stays in flight
			}
			return u, err
		})
		held <- err
	}()
	for len(a.slots) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	began := time.Now()
	if _, err := a.Ingest(ctx, dept, benchCaseFor("SP-1"), pdfUpload(t, pdf)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*searchYield + 500*time.Millisecond)
	if _, queued, indexed := a.SearchStatus(); queued != 1 || indexed != 1 {
		t.Fatalf("while an ingest runs: %d queued, %d indexed, want 1 and 1", queued, indexed)
	}
	waitSearchReady(t, a, 2)
	if len(a.slots) == 0 || time.Since(began) < patience-time.Second {
		t.Fatalf("indexed %v after the ingest began, with %d ingests running", time.Since(began), len(a.slots))
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	waitSearchReady(t, a, 3)
}

// waitSearchReady waits until the search index is ready and holds n cases.
func waitSearchReady(t *testing.T, a *Archive, n uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ready, queued, indexed := a.SearchStatus()
		if ready && queued == 0 && indexed == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("search index: ready %v, %d queued, %d indexed, want %d", ready, queued, indexed, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hitIDs(r *SearchResult) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.Package.ID)
	}
	slices.Sort(out)
	return out
}

// A Chinese full-text search finds a case by a two-character word of its PDF rendition's
// text (a PDF LibreOffice made) and by a phrase from a step's opinion; a department never
// sees another's hit; an applicant's ID number is found only whole, and never returned.
func TestFullTextSearchInChinese(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ingest := func(who Principal, no, pdf, opinion, idNumber string) string {
		c := benchCaseFor(no)
		c.Department.USCC = who.Org
		c.Applicant = Applicant{Name: "李晓明", Kind: "个人", IDType: "111", IDNumber: idNumber}
		c.Steps = []Step{{Name: "受理", Actor: "王芳", At: c.AcceptedAt, Opinion: "材料齐全，予以受理"},
			{Name: "审核", Actor: "赵强", At: c.AcceptedAt.Add(time.Minute), Opinion: opinion}}
		res, err := a.Ingest(ctx, who, c, pdfUpload(t, pdf))
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		return res.Package.ID
	}
	const zh, en = "testdata/decision-zh-libreoffice.pdf", "../examples/case-001/decision.pdf"
	a1 := ingest(dept, "FT-A1", zh, "经营场所符合食品安全要求", "610102199001011231")
	a2 := ingest(dept, "FT-A2", en, "同意延续", "610102198812125676")
	b1 := ingest(deptB, "FT-B1", zh, "经营场所不符合要求", "610102197007079991")
	waitSearchReady(t, a, 3)
	archivist := Principal{Role: RoleArchive, Name: "档案员"}
	for _, c := range []struct {
		name string
		who  Principal
		q    SearchQuery
		want []string
	}{
		{"a word from the Chinese PDF's text, by its department", dept, SearchQuery{Query: search.Query{Words: "审查"}}, []string{a1}},
		{"the same word, by the archive", archivist, SearchQuery{Query: search.Query{Words: "审查"}}, []string{a1, b1}},
		{"the other department's own", deptB, SearchQuery{Query: search.Query{Words: "审查"}}, []string{b1}},
		{"a phrase from a step's opinion", archivist, SearchQuery{Query: search.Query{Words: `"符合食品安全要求"`}}, []string{a1}},
		{"an English word from a rendition", dept, SearchQuery{Query: search.Query{Words: "licence"}}, []string{a2}},
		{"refined within the results", archivist, SearchQuery{Query: search.Query{Words: "经营场所", Within: []string{"不符合"}}}, []string{b1}},
		{"an exact case number", dept, SearchQuery{Query: search.Query{Exact: "FT-A2"}}, []string{a2}},
		{"an ID number, whole", dept, SearchQuery{Query: search.Query{ApplicantID: "610102199001011231"}}, []string{a1}},
		{"part of an ID number", dept, SearchQuery{Query: search.Query{ApplicantID: "6101021990"}}, nil},
		{"another department's applicant's ID number", dept, SearchQuery{Query: search.Query{ApplicantID: "610102197007079991"}}, nil},
	} {
		res, err := a.Search(ctx, c.who, c.q)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		slices.Sort(c.want)
		if got := hitIDs(res); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if b, _ := json.Marshal(res); strings.Contains(string(b), "6101021") || strings.Contains(string(b), "李晓明") {
			t.Errorf("%s: a result carries the applicant's personal data: %s", c.name, b)
		}
	}
	res, _ := a.Search(ctx, dept, SearchQuery{Query: search.Query{Words: "审查", Facets: true}})
	if len(res.Hits) != 1 || !strings.Contains(strings.Join(res.Hits[0].Highlights["words"], ""), "<mark>审查</mark>") {
		t.Errorf("highlights %+v", res.Hits)
	}
	if f := res.Facets[search.FacetDepartment]; len(f) != 1 || f[0].Value != dept.Org {
		t.Errorf("a department's facets show others: %v", f)
	}
	for _, who := range []Principal{{Role: RoleAuditor}, {Role: RoleAdmin}} {
		if _, err := a.Search(ctx, who, SearchQuery{Query: search.Query{Words: "审查"}}); !errors.Is(err, ErrForbidden) {
			t.Errorf("%s searched: %v", who.Role, err)
		}
	}
	if _, err := a.Search(ctx, dept, SearchQuery{Department: deptB.Org}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a department searched another's: %v", err)
	}
	if _, err := a.Search(ctx, dept, SearchQuery{Query: search.Query{Words: `"open`}}); !errors.Is(err, ErrInvalidCase) {
		t.Errorf("an unclosed phrase: %v", err)
	}

	// While the search index is rebuilt, searches answer ErrSearchNotReady (503).
	a.stopSearchIndexer()
	if _, err := a.RebuildSearch(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Search(ctx, dept, SearchQuery{Query: search.Query{Words: "审查"}}); !errors.Is(err, ErrSearchNotReady) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a search during the rebuild: %v", err)
	}
	a.startSearchIndexer()
	waitSearchReady(t, a, 3)
	// A lost search index is rebuilt at start, in the background.
	a.Close()
	if err := os.RemoveAll(filepath.Join(dir, "search")); err != nil {
		t.Fatal(err)
	}
	a, err = Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }() // the archive a is at the end
	waitSearchReady(t, a, 3)
	want := []string{a1, b1}
	slices.Sort(want)
	if res, err := a.Search(ctx, archivist, SearchQuery{Query: search.Query{Words: "审查"}}); err != nil || fmt.Sprint(hitIDs(res)) != fmt.Sprint(want) {
		t.Fatalf("after the search index was lost: %v %v", err, res)
	}
	// A search index made by an earlier dangan (its words held personal data) is rebuilt.
	a.Close()
	old, err := bleve.Open(filepath.Join(dir, "search"))
	if err != nil {
		t.Fatal(err)
	}
	old.DeleteInternal([]byte("dangan-mapping"))
	old.Close()
	if a, err = Open(Config{DataDir: dir, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	if ready, queued, _ := a.SearchStatus(); ready || queued != 3 {
		t.Errorf("an earlier search index: ready %v, %d queued, want a rebuild of 3", ready, queued)
	}
	waitSearchReady(t, a, 3)
	if res, err := a.Search(ctx, archivist, SearchQuery{Query: search.Query{Words: "审查"}}); err != nil || fmt.Sprint(hitIDs(res)) != fmt.Sprint(want) {
		t.Fatalf("after the earlier search index was rebuilt: %v %v", err, res)
	}
	// The index and the search index both lost: rebuilt from the packages alone, a case is
	// found by its steps' opinions, its steps' actors and its applicant's ID number again.
	before, _ := a.caseText(a1)
	a.Close()
	os.RemoveAll(filepath.Join(dir, "search"))
	os.Remove(filepath.Join(dir, "index.db"))
	if a, err = Open(Config{DataDir: dir, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	waitSearchReady(t, a, 3)
	if after, _ := a.caseText(a1); !reflect.DeepEqual(before, after) {
		t.Errorf("case text at ingest %+v, from the package %+v", before, after)
	}
	all := []string{a1, a2, b1}
	slices.Sort(all)
	for _, c := range []struct {
		q    search.Query
		want []string
	}{{search.Query{Words: `"符合食品安全要求"`}, []string{a1}}, {search.Query{Words: "赵强"}, all}, {search.Query{ApplicantID: "610102199001011231"}, []string{a1}}} {
		if res, err := a.Search(ctx, archivist, SearchQuery{Query: c.q}); err != nil || fmt.Sprint(hitIDs(res)) != fmt.Sprint(c.want) {
			t.Errorf("after the index was rebuilt, %+v: %v %v", c.q, err, res)
		}
	}
}
