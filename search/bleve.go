package search

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/lang/cjk"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
)

// Bleve is the embedded search index: a Bleve (scorch) index in a directory.
type Bleve struct {
	ix bleve.Index
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
	for _, name := range []string{FacetDepartment, FacetYear, FacetRetention, FacetItem, FacetFormat, FacetState} {
		dm.AddFieldMappingsAt(name, keyword(true))
	}
	for _, name := range []string{"case_no", "archival_code", "fonds", "applicant_id"} {
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

// OpenBleve opens the index in dir, creating it when dir does not exist.
func OpenBleve(dir string) (*Bleve, error) {
	ix, err := bleve.Open(dir)
	if err == bleve.ErrorIndexPathDoesNotExist {
		ix, err = bleve.New(dir, newMapping())
	}
	if err != nil {
		return nil, fmt.Errorf("search index %s: %w", dir, err)
	}
	return &Bleve{ix: ix}, nil
}

func fields(d Doc) map[string]any {
	m := map[string]any{
		"department": d.Department, "fonds": d.Fonds, "words": words(d),
		"archival_code": d.ArchivalCode, "case_no": d.CaseNo,
		"item_code": d.ItemCode, "year": strconv.Itoa(d.Year), "year_n": float64(d.Year),
		"retention": d.Retention, "state": d.State, "format": d.Formats,
		"applicant_name": d.ApplicantName, "applicant_id": d.ApplicantID,
	}
	if !d.FinishedAt.IsZero() {
		m["finished"] = d.FinishedAt.UTC()
	}
	if !d.IngestedAt.IsZero() {
		m["ingested"] = d.IngestedAt.UTC()
	}
	return m
}

// words is the text a case's words are found in: one paragraph per part.
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
	return b.String()
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

func (q Query) build() (query.Query, error) {
	var must []query.Query
	fieldsFor := wordFields
	if q.Personal {
		fieldsFor = append(append([]string{}, wordFields...), "applicant_name")
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
		must = append(must, anyTerm(FacetDepartment, q.Departments))
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

// Search answers a query, newest ingest first (ties by id), a page after q.Cursor. The
// order is a stable one so that a cursor continues exactly where the page ended (Bleve
// cannot continue after a score).
func (b *Bleve) Search(ctx context.Context, q Query) (*Result, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		return nil, fmt.Errorf("%w: limit is 1 to 1000", ErrBadQuery)
	}
	bq, err := q.build()
	if err != nil {
		return nil, err
	}
	req := bleve.NewSearchRequestOptions(bq, q.Limit+1, 0, false)
	req.SortBy([]string{"-ingested", "_id"})
	req.Score = "none" // the order is by field: no relevance to compute
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		var after []string
		if err == nil {
			err = json.Unmarshal(raw, &after)
		}
		if err != nil || len(after) != 2 {
			return nil, ErrBadCursor
		}
		req.SetSearchAfter(after)
	}
	req.Highlight = bleve.NewHighlightWithStyle("html")
	req.Highlight.Fields = wordFields
	if q.Facets {
		for _, f := range Facets {
			req.AddFacet(f, bleve.NewFacetRequest(f, 50))
		}
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
	if q.Facets {
		out.Facets = map[string][]FacetCount{}
		for name, fr := range res.Facets {
			counts := []FacetCount{}
			if fr.Terms != nil {
				for _, t := range fr.Terms.Terms() {
					counts = append(counts, FacetCount{Value: t.Term, Count: t.Count})
				}
			}
			out.Facets[name] = counts
		}
	}
	return out, nil
}
