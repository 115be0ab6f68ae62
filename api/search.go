package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/search"
)

// SearchRequest is a full-text search. GET takes the same names as query parameters (the
// facet filters repeated for several values); an applicant's ID number is personal data
// and is taken only in a POST body, never in a URL.
type SearchRequest struct {
	Q            string              `json:"q,omitempty"`
	Within       []string            `json:"within,omitempty"`
	Exact        string              `json:"exact,omitempty"`
	Department   string              `json:"department,omitempty"`
	Filters      map[string][]string `json:"filters,omitempty"`
	YearFrom     int                 `json:"year_from,omitempty"`
	YearTo       int                 `json:"year_to,omitempty"`
	FinishedFrom time.Time           `json:"finished_from,omitempty"`
	FinishedTo   time.Time           `json:"finished_to,omitempty"`
	ApplicantID  string              `json:"applicant_id,omitempty"`
	Facets       bool                `json:"facets,omitempty"`
	ExactFacets  bool                `json:"exact_facets,omitempty"` // count every hit, at a cost that grows with them
	Shared       bool                `json:"shared,omitempty"`       // a department: also the records shared with it
	Cursor       string              `json:"cursor,omitempty"`
	Limit        int                 `json:"limit,omitempty"`
}

// SearchHitView is one hit: the package as lists show it and the fragments that matched.
type SearchHitView struct {
	Package    PackageView         `json:"package"`
	Highlights map[string][]string `json:"highlights,omitempty"`
}

func (s *server) searchGET(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("applicant_id") {
		s.fail(w, r, fieldErr("applicant_id", fmt.Errorf("%w: an ID number is personal data: send it in a POST body, not in a URL", archive.ErrInvalidCase)))
		return
	}
	req := SearchRequest{Q: q.Get("q"), Within: q["within"], Exact: q.Get("exact"), Department: q.Get("department"),
		Cursor: q.Get("cursor"), Facets: q.Get("facets") == "true" || q.Get("facets") == "1" || q.Get("facets") == "exact",
		ExactFacets: q.Get("facets") == "exact", Shared: q.Get("shared") == "true" || q.Get("shared") == "1", Filters: map[string][]string{}}
	for _, f := range search.Facets {
		if vs := q[f]; len(vs) > 0 && f != search.FacetDepartment {
			req.Filters[f] = vs
		}
	}
	var err error
	for name, dst := range map[string]*int{"year_from": &req.YearFrom, "year_to": &req.YearTo, "limit": &req.Limit} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.Atoi(v); err != nil || *dst < 0 {
				s.fail(w, r, fieldErr(name, fmt.Errorf("%w: %s must be a non-negative integer", archive.ErrInvalidCase, name)))
				return
			}
		}
	}
	if req.FinishedFrom, err = queryTime(r, "finished_from"); err == nil {
		req.FinishedTo, err = queryTime(r, "finished_to")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.runSearch(w, r, req)
}

func (s *server) searchPOST(w http.ResponseWriter, r *http.Request) {
	var req SearchRequest
	if err := decodeJSON(w, r, "search", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	s.runSearch(w, r, req)
}

func (s *server) runSearch(w http.ResponseWriter, r *http.Request, req SearchRequest) {
	res, err := s.a.Search(r.Context(), principal(r), archive.SearchQuery{Department: req.Department, Shared: req.Shared, Query: search.Query{
		Words: req.Q, Within: req.Within, Exact: req.Exact, Filters: req.Filters, YearFrom: req.YearFrom, YearTo: req.YearTo,
		FinishedFrom: req.FinishedFrom, FinishedTo: req.FinishedTo, ApplicantID: req.ApplicantID, Facets: req.Facets || req.ExactFacets,
		ExactFacets: req.ExactFacets, Cursor: req.Cursor, Limit: req.Limit}})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Total    uint64                         `json:"total"`
		Hits     []SearchHitView                `json:"hits"`
		Facets   map[string][]search.FacetCount `json:"facets,omitempty"`
		FacetsOf uint64                         `json:"facets_of,omitempty"`
		Next     string                         `json:"next,omitempty"`
	}{Total: res.Total, Hits: []SearchHitView{}, Facets: res.Facets, FacetsOf: res.FacetsOf, Next: res.Next}
	for _, h := range res.Hits {
		out.Hits = append(out.Hits, SearchHitView{Package: s.packageView(h.Package), Highlights: h.Highlights})
	}
	writeJSON(w, http.StatusOK, out)
}
