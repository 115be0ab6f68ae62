package search

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func openTest(t *testing.T) *Bleve {
	t.Helper()
	ix, err := OpenBleve(filepath.Join(t.TempDir(), "search"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

var docs = []Doc{
	{ID: "p1", Department: "A", ArchivalCode: "F1-2025-D30-0001", CaseNo: "SP-001", Title: "食品经营许可证核发", ItemCode: "X1", Year: 2025, Retention: "D30", State: "archived",
		Formats: []string{"fmt/95"}, Text: "经审查，申请人符合食品经营许可条件，准予许可。", Opinions: []string{"材料齐全，同意受理"}, Steps: []string{"受理 张三"},
		ApplicantName: "李四", ApplicantID: "610102199001011234", FinishedAt: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)},
	{ID: "p2", Department: "A", ArchivalCode: "F1-2024-Y-0001", CaseNo: "SP-002", Title: "建设工程规划许可", ItemCode: "X2", Year: 2024, Retention: "Y", State: "transferred",
		Formats: []string{"fmt/95", "ofd"}, Text: "规划许可决定书：同意建设。", Opinions: []string{"现场核查通过"},
		ApplicantName: "王五", ApplicantID: "610102198502023456", FinishedAt: time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)},
	{ID: "p3", Department: "B", ArchivalCode: "F2-2025-D10-0001", CaseNo: "SP-003", Title: "户外广告设置许可", ItemCode: "X3", Year: 2025, Retention: "D10", State: "archived",
		Formats: []string{"ofd"}, Text: "不予许可：设置地点不符合规划。", Opinions: []string{"材料齐全，同意受理"},
		ApplicantName: "赵六", ApplicantID: "610102197703034567", FinishedAt: time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)},
}

func ids(r *Result) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.ID)
	}
	slices.Sort(out)
	return out
}

func TestChineseWordsPhrasesAndFilters(t *testing.T) {
	ix := openTest(t)
	ctx := context.Background()
	if err := ix.Put(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    Query
		want string
	}{
		{"a two-character word from a document's text", Query{Words: "审查"}, "[p1]"},
		{"a word in every title", Query{Words: "许可"}, "[p1 p2 p3]"},
		{"a phrase from an opinion", Query{Words: `"现场核查"`}, "[p2]"},
		{"a phrase in two opinions", Query{Words: `"同意受理"`}, "[p1 p3]"},
		{"characters not adjacent are not the phrase", Query{Words: `"受理同意"`}, "[]"},
		{"two words, both needed", Query{Words: "许可 规划"}, "[p2 p3]"},
		{"refined within an earlier search", Query{Words: "规划", Within: []string{"不予"}}, "[p3]"},
		{"a department's own only", Query{Words: "许可", Departments: []string{"B"}}, "[p3]"},
		{"a case number, exactly", Query{Exact: "SP-002"}, "[p2]"},
		{"an archival code, exactly", Query{Exact: "F2-2025-D10-0001"}, "[p3]"},
		{"part of a case number is not it", Query{Exact: "SP-00"}, "[]"},
		{"a facet filter", Query{Words: "许可", Filters: map[string][]string{FacetFormat: {"ofd"}}}, "[p2 p3]"},
		{"a year range", Query{YearFrom: 2025, YearTo: 2025}, "[p1 p3]"},
		{"a finishing date range", Query{FinishedFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), FinishedTo: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}, "[p1]"},
		{"the applicant's name is not searched without the right", Query{Words: "李四"}, "[]"},
		{"the applicant's name with it", Query{Words: "李四", Personal: true}, "[p1]"},
		{"an ID number, whole, with the right", Query{ApplicantID: "610102198502023456", Personal: true}, "[p2]"},
		{"part of an ID number finds nothing", Query{ApplicantID: "6101021985", Personal: true}, "[]"},
		{"an ID number as words finds nothing", Query{Words: "610102198502023456", Personal: true}, "[]"},
	} {
		c.q.Limit = 10
		res, err := ix.Search(ctx, c.q)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := fmt.Sprint(ids(res)); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if _, err := ix.Search(ctx, Query{ApplicantID: "610102198502023456", Limit: 10}); err == nil {
		t.Error("an ID number searched without the right")
	}
	// Highlights mark the match and never carry personal data.
	res, _ := ix.Search(ctx, Query{Words: "审查", Personal: true, Limit: 10})
	if len(res.Hits) != 1 || !strings.Contains(strings.Join(res.Hits[0].Highlights["words"], ""), "<mark>审查</mark>") {
		t.Errorf("highlights %v", res.Hits)
	}
	res, _ = ix.Search(ctx, Query{Words: "李四", Personal: true, Limit: 10})
	if len(res.Hits) != 1 || len(res.Hits[0].Highlights) != 0 {
		t.Errorf("a match on the applicant's name returned fragments: %v", res.Hits[0].Highlights)
	}
}

// A word one of whose character pairs no case holds is answered from the term dictionary,
// as the full search answers it: no hits, a total of 0, every facet empty.
func TestAWordNoCaseHolds(t *testing.T) {
	ix := openTest(t)
	ctx := context.Background()
	if err := ix.Put(ctx, docs); err != nil {
		t.Fatal(err)
	}
	for _, words := range []string{"龘龘", "许可 龘龘", "\"许可龘\""} {
		q := Query{Words: words, Facets: true, Limit: 10}
		got, err := ix.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		bq, _ := q.build()
		full, err := ix.page(ctx, q, bq, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if full.Total != 0 || !reflect.DeepEqual(got, full) {
			t.Errorf("%s: %+v, the full search %+v", words, got, full)
		}
	}
}

// A document's text can hold the applicant's name and ID number (an application form does).
// The words field is indexed with them masked: nobody finds the case by them there, and no
// fragment shows them; the name is still found through its own field by a caller allowed to.
func TestPersonalDataIsMaskedInWords(t *testing.T) {
	ix := openTest(t)
	ctx := context.Background()
	form := Doc{ID: "f1", Department: "A", Title: "食品经营许可申请", ApplicantName: "李晓明", ApplicantID: "61010219900101123X",
		Text: "申请人李晓明，身份证号码61010219900101123X，许可证编号JY16108300012345，旧证号610102900101123，联系人张三身份证610102198001011111。"}
	if err := ix.Put(ctx, []Doc{form}); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, Query{Words: "许可证编号", Personal: true, Limit: 10})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("%v %v", err, res)
	}
	frag := strings.Join(res.Hits[0].Highlights["words"], " ")
	for _, personal := range []string{"李晓明", "61010219900101123X", "610102900101123", "610102198001011111"} {
		if strings.Contains(frag, personal) {
			t.Errorf("the fragment shows %s: %s", personal, frag)
		}
	}
	if !strings.Contains(frag, "JY16108300012345") || !strings.Contains(frag, "申请人＊＊＊") {
		t.Errorf("the fragment lost more than the personal data: %s", frag)
	}
	for _, c := range []struct {
		q    Query
		want int
	}{
		{Query{Words: "李晓明"}, 0},
		{Query{Words: "李晓明", Personal: true}, 1},
		{Query{Words: "610102198001011111", Personal: true}, 0},
		{Query{Words: "JY16108300012345"}, 1},
	} {
		c.q.Limit = 10
		if res, err := ix.Search(ctx, c.q); err != nil || len(res.Hits) != c.want {
			t.Errorf("%+v: %v %d hits, want %d", c.q, err, len(res.Hits), c.want)
		}
	}
}

// An index made with an earlier mapping (before version 2, with personal data in its words)
// is not used: OpenBleve says so, and the caller builds it again.
func TestEarlierMappingIsReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "search")
	ix, err := OpenBleve(dir)
	if err != nil {
		t.Fatal(err)
	}
	ix.ix.DeleteInternal([]byte(mappingKey)) // as version 1 left it: no version
	ix.Close()
	if _, err := OpenBleve(dir); !errors.Is(err, ErrOldMapping) {
		t.Fatalf("an index of the earlier mapping opened: %v", err)
	}
	os.RemoveAll(dir)
	ix, err = OpenBleve(dir)
	if err != nil {
		t.Fatal(err)
	}
	ix.Close()
	if ix, err = OpenBleve(dir); err != nil {
		t.Fatalf("an index of this mapping does not open again: %v", err)
	}
	ix.Close()
}

func TestFacetsAndCursor(t *testing.T) {
	ix := openTest(t)
	ctx := context.Background()
	var many []Doc
	for i := 0; i < 45; i++ {
		many = append(many, Doc{ID: fmt.Sprintf("p%02d", i), Department: []string{"A", "B", "C"}[i%3], Title: "营业执照变更登记",
			IngestedAt: time.Date(2025, 1, 1, 0, 0, i/2, 0, time.UTC), // pairs at the same time: ties by id, descending
			Year:       2020 + i%5, Retention: "D30", State: "archived", Formats: []string{"fmt/95"}})
	}
	if err := ix.Put(ctx, many); err != nil {
		t.Fatal(err)
	}
	res, err := ix.Search(ctx, Query{Words: "登记", Facets: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 45 {
		t.Errorf("total %d", res.Total)
	}
	counts := map[string]int{}
	for _, f := range res.Facets[FacetDepartment] {
		counts[f.Value] = f.Count
	}
	if counts["A"] != 15 || counts["B"] != 15 || counts["C"] != 15 || len(res.Facets[FacetYear]) != 5 {
		t.Errorf("facets %v", res.Facets)
	}
	seen := map[string]bool{}
	var order []string
	pages := 0
	for q := (Query{Words: "登记", Limit: 10}); ; pages++ {
		res, err := ix.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if res.Total != 45 {
			t.Fatalf("page %d says %d hits in all, want 45", pages+1, res.Total)
		}
		for _, h := range res.Hits {
			if seen[h.ID] {
				t.Fatalf("%s on two pages", h.ID)
			}
			seen[h.ID] = true
			order = append(order, h.ID)
		}
		if res.Next == "" {
			break
		}
		q.Cursor = res.Next
	}
	if len(seen) != 45 || pages != 4 {
		t.Errorf("%d hits over %d pages", len(seen), pages+1)
	}
	if order[0] != "p44" || order[1] != "p43" || order[2] != "p42" {
		t.Errorf("not newest first, ties by id descending: %v", order[:3])
	}
	if _, err := ix.Search(ctx, Query{Words: "登记", Cursor: "bm90IGEgY3Vyc29y", Limit: 10}); err == nil {
		t.Error("a made-up cursor was accepted")
	}
	if _, err := ix.Search(ctx, Query{Words: `"不闭合`, Limit: 10}); err == nil {
		t.Error("an unclosed phrase was accepted")
	}
	// Replacing and deleting.
	ix.Put(ctx, []Doc{{ID: "p00", Department: "A", Title: "已注销"}})
	ix.Delete(ctx, []string{"p01"})
	if res, _ := ix.Search(ctx, Query{Words: "登记", Limit: 100}); res.Total != 43 {
		t.Errorf("after a replace and a delete: %d", res.Total)
	}
}

// A broad search takes its page from a window of the newest cases and its facets from the
// newest hits: the pages must be exactly those of a search that orders every hit, also
// across ties in ingest time, when the word is only in old cases (the window widens), and
// after a cursor.
func TestBroadSearchPagesAsAFullOrdering(t *testing.T) {
	ix := openTest(t)
	ix.sample = 40
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []Doc
	for i := 0; i < 3000; i++ {
		title := "个体工商户变更登记"
		switch {
		case i%5 == 0:
			title = "食品经营许可证核发"
		case i < 1000:
			title = "林木采伐许可" // only in the oldest third: the window widens
		}
		// Three cases share each second: ties are ordered by id, descending.
		batch = append(batch, Doc{ID: fmt.Sprintf("c%05d", i), Department: fmt.Sprintf("D%d", i%4), Title: title, Year: 2020 + i%5,
			Retention: "D30", State: "archived", IngestedAt: base.Add(time.Duration(i/3) * time.Second)})
	}
	if err := ix.Put(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, words := range []string{"食品经营许可", "采伐", "许可"} {
		t.Run(words, func(t *testing.T) {
			walk := func(exact bool) (ids []string, total uint64) {
				cursor := ""
				for {
					res, err := ix.Search(ctx, Query{Words: words, Limit: 37, Cursor: cursor, Facets: true, ExactFacets: exact})
					if err != nil {
						t.Fatal(err)
					}
					total = res.Total
					for _, h := range res.Hits {
						ids = append(ids, h.ID)
					}
					if cursor = res.Next; cursor == "" {
						return ids, total
					}
				}
			}
			got, total := walk(false)
			want, wantTotal := walk(true)
			if total != wantTotal || uint64(len(want)) != wantTotal {
				t.Fatalf("total %d, want %d (%d hits walked)", total, wantTotal, len(want))
			}
			if !slices.Equal(got, want) {
				t.Fatalf("windowed pages differ from the full ordering: %d hits, first %v, want %v", len(got), got[:5], want[:5])
			}
		})
	}
	// The dictionary's bound is never below the hits, and small for a word of few cases.
	for _, c := range []struct {
		q       Query
		atLeast uint64
		below   uint64
	}{
		{Query{Words: "食品经营许可"}, 600, 601},
		{Query{Words: `"林木采伐"`}, 800, 801},
		{Query{Words: "许可", Within: []string{"采伐"}}, 800, 801},
		{Query{Words: "无此词"}, 0, 1},
	} {
		if b, ok := ix.upperBound(ctx, c.q); !ok || b < c.atLeast || b >= c.below {
			t.Errorf("bound of %+v: %d %v", c.q, b, ok)
		}
	}
	if _, ok := ix.upperBound(ctx, Query{Exact: "X-1"}); ok {
		t.Error("a query without words has a bound")
	}
	res, err := ix.Search(ctx, Query{Words: "食品经营许可", Limit: 10, Facets: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != 600 || res.FacetsOf == 0 || res.FacetsOf >= res.Total || res.FacetsOf < 10 {
		t.Fatalf("total %d, facets of %d: want 600 hits with facets of a sample", res.Total, res.FacetsOf)
	}
	sum := 0
	for _, c := range res.Facets[FacetDepartment] {
		sum += c.Count
	}
	if uint64(sum) != res.FacetsOf {
		t.Fatalf("department facet counts %d hits, facets_of says %d", sum, res.FacetsOf)
	}
	if res.Hits[0].ID != "c02995" {
		t.Fatalf("first hit %s, want the newest, c02995", res.Hits[0].ID)
	}
	exact, err := ix.Search(ctx, Query{Words: "食品经营许可", Limit: 10, Facets: true, ExactFacets: true})
	if err != nil {
		t.Fatal(err)
	}
	if exact.FacetsOf != 0 || exact.Facets[FacetDepartment][0].Count != 150 {
		t.Fatalf("exact facets: of %d, %v", exact.FacetsOf, exact.Facets[FacetDepartment])
	}
}
