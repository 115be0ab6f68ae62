// Package search is dangan's full-text index of archived cases, behind Index, a small
// interface of dangan's own. The embedded default is Bleve (OpenBleve) with its CJK
// analyzer: Chinese text is indexed as overlapping character pairs, so a two-character word
// or a phrase is found anywhere in a title, an opinion or a document's text. A larger
// installation can put another engine behind Index; the mapping is in MAPPING.md.
//
// The search index is derived: the package index is the truth, and a lost search index is
// rebuilt from it. Personal data (the applicant's name and ID number) is indexed but never
// stored, so no hit can return it, and it is matched only when a query says it may be.
//
//	ix, _ := search.OpenBleve("/var/lib/dangan/search")
//	ix.Put(ctx, []search.Doc{{ID: "p1", Title: "食品经营许可", Text: "准予许可"}})
//	res, _ := ix.Search(ctx, search.Query{Words: "许可", Facets: true, Limit: 20})
package search

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors callers decide on.
var (
	ErrBadQuery = errors.New("invalid search")
	ErrNotReady = errors.New("the search index is being rebuilt")
	// ErrOldMapping is returned by OpenBleve for an index made with an earlier mapping: it
	// is derived, so the caller builds it again.
	ErrOldMapping = errors.New("the search index was made with an earlier mapping")
	// ErrBadCursor is an ErrBadQuery: a cursor this index did not hand out.
	ErrBadCursor = fmt.Errorf("%w: the cursor is not one this search handed out", ErrBadQuery)
)

// Doc is one case as the search index sees it.
type Doc struct {
	ID             string
	Department     string // USCC
	DepartmentName string
	Fonds          string
	ArchivalCode   string // 档号
	CaseNo         string
	Title          string
	ItemCode       string
	ItemName       string
	Year           int
	Retention      string
	State          string
	Formats        []string // PUIDs of its files
	Sharing        string   // its sharing class (共享范围)
	Open           bool     // open to the public (开放鉴定)
	OpenText       string   // for an opened case: its public words, personal data removed
	FinishedAt     time.Time
	IngestedAt     time.Time
	Decision       string
	Opinions       []string
	Steps          []string // step names and actors
	Text           string   // the text of its archival renditions, bounded
	// Personal data: indexed, never stored, matched only with Query.Personal.
	ApplicantName string
	ApplicantID   string // matched whole only
}

// Facet names, the fields a search counts its hits by and filters on.
const (
	FacetDepartment = "department"
	FacetYear       = "year"
	FacetRetention  = "retention"
	FacetItem       = "item_code"
	FacetFormat     = "format"
	FacetState      = "state"
)

// Facets are every facet name.
var Facets = []string{FacetDepartment, FacetYear, FacetRetention, FacetItem, FacetFormat, FacetState}

// Query is one search. Every part given must match.
type Query struct {
	// Words are words and "quoted phrases", each to be found in a title, an item name, a
	// decision, an opinion, a step, a document's text, or (with Personal) the applicant's name.
	Words string
	// Within are the words of earlier searches this one refines (结果中检索).
	Within []string
	// Exact is a case number or an archival code (档号), matched whole.
	Exact string
	// Departments limits the hits to these departments (who may read what); nil: all.
	Departments []string
	// Shared widens Departments to the records other departments share with the caller.
	Shared *Shared
	// OpenOnly keeps the records open to the public, and matches Words in their public
	// text only (personal data removed).
	OpenOnly bool
	// Filters are facet values to keep: facet → any of these values.
	Filters map[string][]string
	// YearFrom and YearTo bound the year (inclusive; 0: open).
	YearFrom, YearTo int
	// FinishedFrom and FinishedTo bound when the case finished ([from, to); zero: open).
	FinishedFrom, FinishedTo time.Time
	// Personal lets Words match the applicant's name and ApplicantID be asked.
	Personal bool
	// ApplicantID is an applicant's ID number, matched whole (needs Personal).
	ApplicantID string
	// Facets asks for the hits' counts by facet. Above a few thousand hits they count the
	// newest of them (Result.FacetsOf), unless ExactFacets asks for every hit counted.
	Facets, ExactFacets bool
	// Cursor continues a search from the previous page's Next; Limit is the page size.
	Cursor string
	Limit  int
}

// Shared is what a search of shared records finds besides its departments' own: packages
// of a sharing class in Classes (无条件共享: any department may read them), and the packages
// in IDs (those the caller holds grants for).
type Shared struct {
	Classes []string
	IDs     []string
}

// Result is one page of hits.
type Result struct {
	Total  uint64                  `json:"total"`
	Hits   []Hit                   `json:"hits"`
	Facets map[string][]FacetCount `json:"facets,omitempty"`
	// FacetsOf, when not zero, is how many of the Total hits (the newest) the facets count.
	FacetsOf uint64 `json:"facets_of,omitempty"`
	Next     string `json:"next,omitempty"`
}

// Hit is one matching case, with fragments of the text that matched.
type Hit struct {
	ID         string              `json:"id"`
	Score      float64             `json:"score"`
	Highlights map[string][]string `json:"highlights,omitempty"` // field → fragments, matches in <mark>
}

// FacetCount is how many hits have one value of a facet.
type FacetCount struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Index is a full-text index of cases.
type Index interface {
	// Put indexes docs, replacing earlier versions of the same ids.
	Put(ctx context.Context, docs []Doc) error
	// Delete removes ids (destroyed cases).
	Delete(ctx context.Context, ids []string) error
	// Search answers a query.
	Search(ctx context.Context, q Query) (*Result, error)
	// Count is the number of cases indexed.
	Count() (uint64, error)
	// Close releases the index.
	Close() error
}
