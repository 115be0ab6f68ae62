package console

import (
	"errors"
	"html"
	"net/http"
	"net/url"
	"strings"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/search"
)

// searchData is 检索: the query as asked, its hits with their matching fragments, the
// facets as links that narrow the query, and the next page's link.
type searchData struct {
	Q       string
	Within  []string
	Filters [][2]string // facet, value
	Asked   bool
	Total   uint64
	Hits    []searchHit
	Facets  []facetView
	FacetOf uint64
	Next    string // the link of the next page
	Clear   string // the link of the query without its filters
	Shared  bool   // a department's search of the records shared with it too
}

type searchHit struct {
	ID, ArchivalCode, Title, ItemName, Retention, State string
	Finished, Ingested                                  string
	Fragments                                           [][]fragment
}

// fragment is a piece of a matching text; Mark is a matched word. The fragments of the
// search index are taken apart and escaped again here, so no markup of a document's text
// reaches the page.
type fragment struct {
	Text string
	Mark bool
}

type facetView struct {
	Name   string
	Values []facetLink
}

type facetLink struct {
	Value string
	Count int
	Link  string
	On    bool
}

func fragments(h string) []fragment {
	var out []fragment
	for h != "" {
		i := strings.Index(h, "<mark>")
		if i < 0 {
			out = append(out, fragment{Text: html.UnescapeString(h)})
			break
		}
		if i > 0 {
			out = append(out, fragment{Text: html.UnescapeString(h[:i])})
		}
		h = h[i+len("<mark>"):]
		j := strings.Index(h, "</mark>")
		if j < 0 {
			j = len(h)
		}
		out = append(out, fragment{Text: html.UnescapeString(h[:j]), Mark: true})
		h = strings.TrimPrefix(h[j:], "</mark>")
	}
	return out
}

// queryOf is the query string of a search: words, earlier words, filters, cursor.
func queryOf(q string, within []string, filters [][2]string, cursor string) string {
	v := url.Values{}
	if q != "" {
		v.Set("q", q)
	}
	for _, w := range within {
		v.Add("within", w)
	}
	for _, f := range filters {
		v.Add(f[0], f[1])
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return Prefix + "search?" + v.Encode()
}

// shared keeps a search of shared records one in the links it makes.
func (d *searchData) shared(link string) string {
	if d.Shared {
		link += "&shared=1"
	}
	return link
}

func (c *console) search(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	v := r.URL.Query()
	d := searchData{Q: strings.TrimSpace(v.Get("q")), Within: v["within"], Shared: v.Get("shared") == "1"}
	if v.Get("refine") != "" && strings.TrimSpace(v.Get("prev")) != "" {
		d.Within = append(d.Within, strings.TrimSpace(v.Get("prev"))) // 在结果中检索
	}
	filters := map[string][]string{}
	for _, f := range search.Facets {
		for _, val := range v[f] {
			filters[f] = append(filters[f], val)
			d.Filters = append(d.Filters, [2]string{f, val})
		}
	}
	d.Asked = d.Q != "" || len(d.Within) > 0 || len(d.Filters) > 0
	if !d.Asked {
		c.render(w, r, http.StatusOK, "search", page{Title: "search", Data: d})
		return
	}
	res, err := c.a.Search(r.Context(), s.Who, archive.SearchQuery{Query: search.Query{Words: d.Q, Within: d.Within, Filters: filters,
		Facets: true, Cursor: v.Get("cursor"), Limit: 20}, Shared: d.Shared})
	if err != nil {
		status, msg := http.StatusInternalServerError, "unavailable"
		switch {
		case errors.Is(err, archive.ErrInvalidCase), errors.Is(err, search.ErrBadQuery):
			status, msg = http.StatusUnprocessableEntity, "badSearch"
		case errors.Is(err, archive.ErrUnavailable), errors.Is(err, archive.ErrSearchNotReady):
			status = http.StatusServiceUnavailable
		case errors.Is(err, archive.ErrForbidden):
			status, msg = http.StatusForbidden, "forbidden"
		default:
			c.log.Error("console search", "err", err)
		}
		c.render(w, r, status, "search", page{Title: "search", Error: msg, Data: d})
		return
	}
	d.Total, d.FacetOf = res.Total, res.FacetsOf
	for _, h := range res.Hits {
		p := h.Package
		hit := searchHit{ID: p.ID, ArchivalCode: p.ArchivalCode, Title: p.Title, ItemName: p.ItemName, Retention: p.Retention, State: p.State,
			Finished: p.FinishedAt.Format("2006-01-02"), Ingested: p.IngestedAt.Format("2006-01-02 15:04")}
		for _, frags := range h.Highlights {
			for _, f := range frags {
				hit.Fragments = append(hit.Fragments, fragments(f))
			}
		}
		d.Hits = append(d.Hits, hit)
	}
	for _, name := range search.Facets {
		fv := facetView{Name: name}
		for _, fc := range res.Facets[name] {
			on := false
			for _, f := range d.Filters {
				on = on || f == [2]string{name, fc.Value}
			}
			link := d.shared(queryOf(d.Q, d.Within, append(append([][2]string{}, d.Filters...), [2]string{name, fc.Value}), ""))
			fv.Values = append(fv.Values, facetLink{Value: fc.Value, Count: fc.Count, Link: link, On: on})
		}
		if len(fv.Values) > 0 {
			d.Facets = append(d.Facets, fv)
		}
	}
	if res.Next != "" {
		d.Next = d.shared(queryOf(d.Q, d.Within, d.Filters, res.Next))
	}
	if len(d.Filters) > 0 {
		d.Clear = d.shared(queryOf(d.Q, d.Within, nil, ""))
	}
	c.render(w, r, http.StatusOK, "search", page{Title: "search", Data: d})
}
