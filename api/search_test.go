package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

type searchPage struct {
	Total uint64
	Hits  []struct {
		Package    PackageView
		Highlights map[string][]string
	}
	Facets map[string][]struct {
		Value string
		Count int
	}
	Next string
}

// The search over HTTP: words from the application form's XML rendition and from a step's
// opinion, a department's own hits only, an ID number only in a POST body and only whole.
func TestSearchEndpoint(t *testing.T) {
	e := newEnv(t, Options{})
	c, parts := exampleCase(t)
	_, body := e.ingest(e.tokA, c, parts)
	id := decode[PackageView](t, body).ID
	archivist, _ := e.a.CreateToken(archive.RoleArchive, "", "")
	auditor, _ := e.a.CreateToken(archive.RoleAuditor, "", "")
	get := func(tok, query string) (int, searchPage, []byte) {
		resp, body := e.do(http.MethodGet, "/api/v1/search?"+query, tok, nil, "")
		var p searchPage
		if resp.StatusCode == 200 {
			p = decode[searchPage](t, body)
		}
		return resp.StatusCode, p, body
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if ready, queued, n := e.a.SearchStatus(); ready && queued == 0 && n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the case was not indexed for search")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, q := range []string{"q=" + url.QueryEscape(`"现场核查符合要求"`), "q=许可&facets=true", "exact=QJSCJ-2025-000123", "q=许可&retention=D30&year_from=2025&year_to=2025"} {
		status, page, body := get(e.tokA, q)
		if status != 200 || page.Total != 1 || page.Hits[0].Package.ID != id {
			t.Errorf("department A, ?%s: %d %s", q, status, body)
		}
		if strings.Contains(string(body), "11010519491231002X") || strings.Contains(string(body), "张三") {
			t.Errorf("?%s returned the applicant's personal data: %s", q, body)
		}
	}
	for _, facets := range []string{"true", "exact"} {
		if _, page, body := get(e.tokA, "q=许可&facets="+facets); len(page.Facets["format"]) == 0 || page.Facets["department"][0].Count != 1 ||
			strings.Contains(string(body), "facets_of") {
			t.Errorf("facets=%s: %s", facets, body)
		}
	}
	if status, page, _ := get(e.tokB, "q=许可"); status != 200 || page.Total != 0 {
		t.Errorf("department B sees A's case: %d %+v", status, page)
	}
	if status, page, _ := get(archivist, "q=许可"); status != 200 || page.Total != 1 {
		t.Errorf("the archive: %d %+v", status, page)
	}
	for query, want := range map[string]struct {
		status int
		field  string
	}{
		"applicant_id=11010519491231002X": {422, "applicant_id"},
		"q=许可&cursor=notacursor":          {422, "cursor"},
		"q=" + url.QueryEscape(`"open`):   {422, "q"},
		"limit=5000":                      {422, "limit"},
		"year_from=x":                     {422, "year_from"},
	} {
		resp, body := e.do(http.MethodGet, "/api/v1/search?"+query, e.tokA, nil, "")
		if resp.StatusCode != want.status || decode[Problem](t, body).Field != want.field {
			t.Errorf("?%s: %d %s, want %d naming %s", query, resp.StatusCode, body, want.status, want.field)
		}
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/search?q=许可", auditor, nil, ""); resp.StatusCode != 403 {
		t.Errorf("an auditor searched: %d", resp.StatusCode)
	}
	post := func(tok, body string) (int, searchPage) {
		resp, b := e.do(http.MethodPost, "/api/v1/search", tok, strings.NewReader(body), "application/json")
		var p searchPage
		if resp.StatusCode == 200 {
			p = decode[searchPage](t, b)
		}
		return resp.StatusCode, p
	}
	if status, page := post(e.tokA, `{"applicant_id":"11010519491231002X"}`); status != 200 || page.Total != 1 {
		t.Errorf("an ID number in a POST body: %d %+v", status, page)
	}
	if status, page := post(e.tokA, `{"applicant_id":"110105194912"}`); status != 200 || page.Total != 0 {
		t.Errorf("part of an ID number found %d", page.Total)
	}
	if status, page := post(e.tokB, `{"applicant_id":"11010519491231002X"}`); status != 200 || page.Total != 0 {
		t.Errorf("department B found A's applicant by ID number: %d %+v", status, page)
	}
}
