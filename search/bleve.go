package search

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/numeric"
	"github.com/blevesearch/bleve/v2/search/query"
	index "github.com/blevesearch/bleve_index_api"
)

// Bleve is the embedded search index: a Bleve (scorch) index in a directory.
type Bleve struct {
	ix     bleve.Index
	sample uint64 // facetSample; a test makes it small
}

// The words of a case (title, item name, decision, opinions, steps, its documents' text,
// the department's name) are one field, "words": a word is one conjunction of its bigrams
// over one field, not one per field, which is what a broad search costs per hit. The
// applicant's name is a field of its own, asked only with Query.Personal.
var wordFields = []string{"words"}

func newMapping() mapping.IndexMapping {
	text := func(store bool) *mapping.FieldMapping {
		f := bleve.NewTextFieldMapping()
		f.Analyzer = cjk.AnalyzerName
		f.Store, f.IncludeTermVectors, f.DocValues = store, store, false
		return f
	}
	keyword := func(facet bool) *mapping.FieldMapping {
		f := bleve.NewKeywordFieldMapping()
		f.Store, f.IncludeInAll, f.DocValues, f.IncludeTermVectors = false, false, facet, false
		return f
	}
	dm := bleve.NewDocumentStaticMapping()
	dm.AddFieldMappingsAt("words", text(true))
	dm.AddFieldMappingsAt("applicant_name", text(false)) // personal: never stored
	dm.AddFieldMappingsAt("open_words", text(false))     // an opened case's public text
	for _, name := range []string{FacetDepartment, FacetYear, FacetRetention, FacetItem, FacetFormat, FacetState} {
		dm.AddFieldMappingsAt(name, keyword(true))
	}
	for _, name := range []string{"case_no", "archival_code", "fonds", "applicant_id", "sharing", "open"} {
		dm.AddFieldMappingsAt(name, keyword(false))
	}
	year := bleve.NewNumericFieldMapping()
	year.Store, year.IncludeInAll = false, false
	dm.AddFieldMappingsAt("year_n", year)
	for _, name := range []string{"finished", "ingested"} {
		dt := bleve.NewDateTimeFieldMapping()
		dt.Store, dt.IncludeInAll, dt.DocValues = false, false, name == "ingested" // ingested orders the hits
		dm.AddFieldMappingsAt(name, dt)
	}
	im := bleve.NewIndexMapping()
	im.DefaultMapping = dm
	im.DefaultAnalyzer = cjk.AnalyzerName
	im.StoreDynamic, im.IndexDynamic, im.DocValuesDynamic = false, false, false
	return im
}

// mappingVersion names what the index holds, kept in the index. It changes when the same
// cases would be indexed differently: 2 has the personal data masked in the words field, 3
// the sharing class and whether the case is open to the public.
const (
	mappingKey     = "dangan-mapping"
	mappingVersion = "3"
)

// OpenBleve opens the index in dir, creating it when dir does not exist. An index made
// with an earlier mapping is closed and reported as ErrOldMapping.
func OpenBleve(dir string) (*Bleve, error) {
	ix, err := bleve.Open(dir)
	if err == bleve.ErrorIndexPathDoesNotExist {
		if ix, err = bleve.New(dir, newMapping()); err == nil {
			if err = ix.SetInternal([]byte(mappingKey), []byte(mappingVersion)); err != nil {
				ix.Close()
			}
		}
	} else if err == nil {
		var v []byte
		if v, err = ix.GetInternal([]byte(mappingKey)); err == nil && string(v) != mappingVersion {
			err = fmt.Errorf("%w (version %q, this dangan makes %s)", ErrOldMapping, v, mappingVersion)
		}
		if err != nil {
			ix.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("search index %s: %w", dir, err)
	}
	return &Bleve{ix: ix, sample: facetSample}, nil
}

func fields(d Doc) map[string]any {
	m := map[string]any{
		"department": d.Department, "fonds": d.Fonds, "words": words(d),
		"archival_code": d.ArchivalCode, "case_no": d.CaseNo,
		"item_code": d.ItemCode, "year": strconv.Itoa(d.Year), "year_n": float64(d.Year),
		"retention": d.Retention, "state": d.State, "format": d.Formats, "sharing": d.Sharing,
		"open_words":     d.OpenText,
		"applicant_name": d.ApplicantName, "applicant_id": d.ApplicantID,
	}
	if d.Open {
		m["open"] = "1"
	}
	if !d.FinishedAt.IsZero() {
		m["finished"] = d.FinishedAt.UTC()
	}
	if !d.IngestedAt.IsZero() {
		m["ingested"] = d.IngestedAt.UTC()
	}
	return m
}

// idNumberRE matches what looks like a resident ID number (GB 11643, or the older 15
// digits) standing alone.
var idNumberRE = regexp.MustCompile(`\b(?:[0-9]{17}[0-9Xx]|[0-9]{15})\b`)

// personalMask replaces personal data in the words field.
const personalMask = "＊＊＊"

// words is the text a case's words are found in: one paragraph per part. It holds no
// personal data: the applicant's name and ID number, and anything shaped like an ID number,
// are masked before indexing, so that a caller not allowed to see them cannot find a case
// by them, and no hit's fragments show them (a document's text can hold them: an
// application form does). The applicant's name is found through its own field instead.
func words(d Doc) string {
	parts := []string{d.Title, d.ItemName, d.Decision}
	parts = append(parts, d.Opinions...)
	parts = append(parts, d.Steps...)
	parts = append(parts, d.DepartmentName, d.Text)
	var b strings.Builder
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			if b.Len() > 0 {
				b.WriteString("\n")
			}
			b.WriteString(p)
		}
	}
	w := idNumberRE.ReplaceAllString(b.String(), personalMask)
	for _, n := range []string{d.ApplicantName, d.ApplicantID} {
		if utf8.RuneCountInString(n) >= 2 {
			w = strings.ReplaceAll(w, n, personalMask)
		}
	}
	return w
}

// Put indexes docs in one batch.
func (b *Bleve) Put(ctx context.Context, docs []Doc) error {
	batch := b.ix.NewBatch()
	for _, d := range docs {
		if err := batch.Index(d.ID, fields(d)); err != nil {
			return fmt.Errorf("search: index %s: %w", d.ID, err)
		}
	}
	if err := b.ix.Batch(batch); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}

// Delete removes ids.
func (b *Bleve) Delete(ctx context.Context, ids []string) error {
	batch := b.ix.NewBatch()
	for _, id := range ids {
		batch.Delete(id)
	}
	if err := b.ix.Batch(batch); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return nil
}

// Count is the number of cases indexed.
func (b *Bleve) Count() (uint64, error) { return b.ix.DocCount() }

// Close closes the index.
func (b *Bleve) Close() error { return b.ix.Close() }

// Merging reports whether the index is folding its segments together in the background (a
// merge started and not ended, or planned and not done).
func (b *Bleve) Merging() bool {
	st, _ := b.ix.StatsMap()["index"].(map[string]any)
	n := func(name string) uint64 { v, _ := st[name].(uint64); return v }
	return n("TotFileMergeZapBeg") != n("TotFileMergeZapEnd") || n("TotFileMergePlanTasks") != n("TotFileMergePlanTasksDone")
}

// terms splits words into "quoted phrases" and single words.
func terms(words string) (phrases, singles []string, err error) {
	for {
		words = strings.TrimSpace(words)
		if words == "" {
			return phrases, singles, nil
		}
		if words[0] == '"' {
			end := strings.IndexByte(words[1:], '"')
			if end < 0 {
				return nil, nil, fmt.Errorf("%w: a phrase is not closed with \"", ErrBadQuery)
			}
			if p := strings.TrimSpace(words[1 : 1+end]); p != "" {
				phrases = append(phrases, p)
			}
			words = words[2+end:]
			continue
		}
		end := strings.IndexAny(words, " \t\u3000\"")
		if end < 0 {
			end = len(words)
		}
		singles = append(singles, words[:end])
		words = words[end:]
	}
}

func anyTerm(field string, values []string) query.Query {
	qs := make([]query.Query, len(values))
	for i, v := range values {
		t := bleve.NewTermQuery(v)
		t.SetField(field)
		qs[i] = t
	}
	return bleve.NewDisjunctionQuery(qs...)
}

// wordFieldsFor are the fields a query's words are looked for in: with personal data
// allowed, the applicant's name too.
func wordFieldsFor(personal bool) []string {
	if personal {
		return append(append([]string{}, wordFields...), "applicant_name")
	}
	return wordFields
}

func (q Query) build() (query.Query, error) {
	var must []query.Query
	fieldsFor := wordFieldsFor(q.Personal)
	if q.OpenOnly {
		fieldsFor = []string{"open_words"}
	}
	for _, words := range append([]string{q.Words}, q.Within...) {
		phrases, singles, err := terms(words)
		if err != nil {
			return nil, err
		}
		for _, p := range phrases {
			var any []query.Query
			for _, f := range fieldsFor {
				m := bleve.NewMatchPhraseQuery(p)
				m.SetField(f)
				any = append(any, m)
			}
			must = append(must, bleve.NewDisjunctionQuery(any...))
		}
		for _, w := range singles {
			var any []query.Query
			for _, f := range fieldsFor {
				m := bleve.NewMatchQuery(w)
				m.SetField(f)
				m.SetOperator(query.MatchQueryOperatorAnd)
				any = append(any, m)
			}
			must = append(must, bleve.NewDisjunctionQuery(any...))
		}
	}
	if q.Exact != "" {
		must = append(must, bleve.NewDisjunctionQuery(anyTerm("case_no", []string{q.Exact}), anyTerm("archival_code", []string{q.Exact})))
	}
	if q.Departments != nil {
		if len(q.Departments) == 0 {
			return nil, fmt.Errorf("%w: no department may be searched", ErrBadQuery)
		}
		mine := anyTerm(FacetDepartment, q.Departments)
		if q.Shared != nil {
			either := []query.Query{mine}
			if len(q.Shared.Classes) > 0 {
				either = append(either, anyTerm("sharing", q.Shared.Classes))
			}
			if len(q.Shared.IDs) > 0 {
				either = append(either, bleve.NewDocIDQuery(q.Shared.IDs))
			}
			mine = bleve.NewDisjunctionQuery(either...)
		}
		must = append(must, mine)
	}
	if q.OpenOnly {
		must = append(must, anyTerm("open", []string{"1"}))
	}
	for facet, values := range q.Filters {
		known := false
		for _, f := range Facets {
			known = known || f == facet
		}
		if !known {
			return nil, fmt.Errorf("%w: no facet %q (facets: %s)", ErrBadQuery, facet, strings.Join(Facets, ", "))
		}
		if len(values) > 0 {
			must = append(must, anyTerm(facet, values))
		}
	}
	if q.YearFrom != 0 || q.YearTo != 0 {
		var lo, hi *float64
		if q.YearFrom != 0 {
			v := float64(q.YearFrom)
			lo = &v
		}
		if q.YearTo != 0 {
			v := float64(q.YearTo)
			hi = &v
		}
		t := true
		r := bleve.NewNumericRangeInclusiveQuery(lo, hi, &t, &t)
		r.SetField("year_n")
		must = append(must, r)
	}
	if !q.FinishedFrom.IsZero() || !q.FinishedTo.IsZero() {
		r := bleve.NewDateRangeQuery(q.FinishedFrom.UTC(), q.FinishedTo.UTC())
		r.SetField("finished")
		must = append(must, r)
	}
	if q.ApplicantID != "" {
		if !q.Personal {
			return nil, fmt.Errorf("%w: an applicant's ID number is searched only by a role allowed to see it", ErrBadQuery)
		}
		must = append(must, anyTerm("applicant_id", []string{q.ApplicantID}))
	}
	if len(must) == 0 {
		return bleve.NewMatchAllQuery(), nil
	}
	return bleve.NewConjunctionQuery(must...), nil
}

// Search answers a query, newest ingest first (ties by id, descending: a package id begins
// with its ingest time in milliseconds, and ingest times are kept in whole seconds), a page
// after q.Cursor. The order is a stable one so that a cursor continues exactly where the
// page ended (Bleve cannot continue after a score).
//
// A broad search does not order or facet every hit: Bleve spends a few microseconds a hit
// on each, which at a million cases is seconds for a common word. The total is counted
// exactly (a bare count costs a tenth of that); when it is above facetSample, the page is
// taken from the newest slice of the archive by ingest time that holds it (a window on the
// ingested field, widened until the page is full, so the page is exactly the one a full
// ordering gives) and the facets count the newest facetSample or so hits (Result.FacetsOf
// says how many), unless q.ExactFacets asks for all of them.
func (b *Bleve) Search(ctx context.Context, q Query) (*Result, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		return nil, fmt.Errorf("%w: limit is 1 to 1000", ErrBadQuery)
	}
	bq, err := q.build()
	if err != nil {
		return nil, err
	}
	var after []string
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err == nil {
			err = json.Unmarshal(raw, &after)
		}
		if err != nil || len(after) != 2 {
			return nil, ErrBadCursor
		}
		if _, err := numeric.PrefixCoded(after[0]).Int64(); err != nil {
			return nil, ErrBadCursor
		}
	}
	// A search whose words are rare is ordered in full at once: the dictionary bounds its
	// hits without a search of its own, and the page's search counts them.
	bound, ok := b.upperBound(ctx, q)
	if ok && bound == 0 {
		// A word with a character pair no case holds: nothing to search.
		out := &Result{Hits: []Hit{}}
		if q.Facets {
			out.Facets = map[string][]FacetCount{}
			for _, f := range Facets {
				out.Facets[f] = []FacetCount{}
			}
		}
		return out, nil
	}
	if (ok && bound <= b.sample) || q.ExactFacets {
		return b.page(ctx, q, bq, after, q.Facets)
	}
	count := bleve.NewSearchRequestOptions(bq, 0, 0, false)
	count.Score = "none"
	cres, err := b.ix.SearchInContext(ctx, count)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	total := cres.Total
	if total <= b.sample {
		return b.page(ctx, q, bq, after, q.Facets)
	}
	all, err := b.ix.DocCount()
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	// The newest cases that hold about `want` hits, if the hits are spread evenly in time;
	// where they are not, the window widens.
	window := func(want uint64, before string, grow uint64) (time.Time, bool, error) {
		docs := want * grow * max(all, 1) / max(total, 1)
		return b.windowStart(docs, before)
	}
	// The facets: the newest hits, about b.sample of them. A first page comes from the same
	// window when it holds one, in the same search.
	var facets map[string][]FacetCount
	var facetsOf uint64
	if q.Facets {
		for grow := uint64(1); ; grow *= 4 {
			since, whole, err := window(b.sample, "", grow)
			if err != nil {
				return nil, err
			}
			fq := bq
			if !whole {
				fq = bleve.NewConjunctionQuery(bq, ingestedSince(since))
			}
			var out *Result
			var matched uint64
			if after == nil {
				if out, err = b.page(ctx, q, fq, nil, true); err == nil {
					matched, out.Total = out.Total, total
				}
			} else {
				req := bleve.NewSearchRequestOptions(fq, 0, 0, false)
				req.Score = "none"
				addFacets(req)
				var res *bleve.SearchResult
				if res, err = b.ix.SearchInContext(ctx, req); err == nil {
					facets, matched = facetCounts(res), res.Total
				}
			}
			if err != nil {
				return nil, fmt.Errorf("search: %w", err)
			}
			if !whole && matched < b.sample/4 {
				continue
			}
			if matched < total {
				facetsOf = matched
			}
			if out != nil {
				facets = out.Facets
				if whole || (len(out.Hits) == q.Limit && out.Next != "") {
					out.FacetsOf = facetsOf
					return out, nil // the window held the first page too
				}
			}
			break
		}
	}
	need := uint64(q.Limit + 1)
	var out *Result
	for grow := uint64(1); ; grow *= 8 {
		since, whole, err := window(max(4*need, 100), cursorTime(after), grow)
		if err != nil {
			return nil, err
		}
		wq := bq
		if !whole {
			wq = bleve.NewConjunctionQuery(bq, ingestedSince(since))
		}
		if out, err = b.page(ctx, q, wq, after, false); err != nil {
			return nil, err
		}
		if whole || (len(out.Hits) == q.Limit && out.Next != "") {
			break // the whole archive, or a full page and one more: the window held it
		}
	}
	out.Total, out.Facets, out.FacetsOf = total, facets, facetsOf
	return out, nil
}

// facetSample is how many hits a search orders and facets in full; above it, the facets
// count the newest ones (about this many) and the page comes from a window.
const facetSample = 500

// ingestedSince is the window: cases ingested at or after t.
func ingestedSince(t time.Time) query.Query {
	yes := true
	r := bleve.NewDateRangeInclusiveQuery(t, time.Time{}, &yes, nil)
	r.SetField("ingested")
	return r
}

// cursorTime is the ingested term of a cursor's last hit ("" without one).
func cursorTime(after []string) string {
	if len(after) == 0 {
		return ""
	}
	return after[0]
}

// page runs the ordered search for one page of bq after the cursor values; its Total is
// how many hits bq has.
func (b *Bleve) page(ctx context.Context, q Query, bq query.Query, after []string, facets bool) (*Result, error) {
	req := bleve.NewSearchRequestOptions(bq, q.Limit+1, 0, false)
	req.SortBy([]string{"-ingested", "-_id"})
	req.Score = "none" // the order is by field: no relevance to compute
	if after != nil {
		req.SetSearchAfter(after)
	}
	req.Highlight = bleve.NewHighlightWithStyle("html")
	req.Highlight.Fields = wordFields
	if facets {
		addFacets(req)
	}
	res, err := b.ix.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	out := &Result{Total: res.Total, Hits: []Hit{}}
	for i, h := range res.Hits {
		if i == q.Limit {
			raw, _ := json.Marshal(res.Hits[i-1].Sort)
			out.Next = base64.RawURLEncoding.EncodeToString(raw)
			break
		}
		hit := Hit{ID: h.ID, Score: h.Score}
		for field, frags := range h.Fragments {
			for _, f := range frags {
				if strings.Contains(f, "<mark>") {
					if hit.Highlights == nil {
						hit.Highlights = map[string][]string{}
					}
					hit.Highlights[field] = append(hit.Highlights[field], f)
				}
			}
		}
		out.Hits = append(out.Hits, hit)
	}
	if facets {
		out.Facets = facetCounts(res)
	}
	return out, nil
}

// reader is a read snapshot of the index, for what Bleve's searches do not offer (the
// term dictionary); the caller closes it.
func (b *Bleve) reader() (index.IndexReader, error) {
	adv, err := b.ix.Advanced()
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	r, err := adv.Reader()
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return r, nil
}

func addFacets(req *bleve.SearchRequest) {
	for _, f := range Facets {
		req.AddFacet(f, bleve.NewFacetRequest(f, 50))
	}
}

func facetCounts(res *bleve.SearchResult) map[string][]FacetCount {
	out := map[string][]FacetCount{}
	for name, fr := range res.Facets {
		counts := []FacetCount{}
		if fr.Terms != nil {
			for _, t := range fr.Terms.Terms() {
				counts = append(counts, FacetCount{Value: t.Term, Count: t.Count})
			}
		}
		out[name] = counts
	}
	return out
}
