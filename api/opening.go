package api

import (
	_ "embed"
	"html/template"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

// Opening to the public (开放鉴定): the archive proposes and approves; anyone reads the
// public copies, over the API and on the /open pages.

func (s *server) proposeOpening(w http.ResponseWriter, r *http.Request) {
	var req archive.OpeningRequest
	if err := decodeJSON(w, r, "packages", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.a.ProposeOpening(r.Context(), principal(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (s *server) listOpenings(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	ds, next, err := s.a.OpeningDecisions(r.Context(), principal(r), q.Get("pending") == "1" || q.Get("pending") == "true", q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []archive.OpeningDecision{}
	}
	writeJSON(w, http.StatusOK, pageOf("decisions", ds, next))
}

func (s *server) approveOpening(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Approve bool   `json:"approve"`
		Note    string `json:"note"`
	}
	if err := decodeJSON(w, r, "approve", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.a.ApproveOpening(r.Context(), principal(r), chi.URLParam(r, "id"), req.Approve, req.Note)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) closeOpening(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Package string `json:"package"`
		Reason  string `json:"reason"`
	}
	if err := decodeJSON(w, r, "package", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.a.CloseOpening(r.Context(), principal(r), req.Package, req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.packageView(p))
}

func (s *server) searchOpen(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	res, err := s.a.SearchOpen(r.Context(), q.Get("q"), q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *server) publicCopy(w http.ResponseWriter, r *http.Request) {
	pc, err := s.a.PublicCopy(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pc)
}

//go:embed web/open.html
var openHTML string

var openTmpl = template.Must(template.New("open").Parse(openHTML))

type openPage struct {
	Archive, Q, Error string
	Result            *archive.OpenResult
	Next              string
	Copy              *archive.PublicCopy
}

// openPages are /open (the public search of opened records) and /open/{id} (one record's
// public copy): server-rendered, without scripts.
func (s *server) openPages(w http.ResponseWriter, r *http.Request) {
	data := openPage{Archive: s.a.Name(), Q: r.URL.Query().Get("q")}
	status := http.StatusOK
	var err error
	if id := chi.URLParam(r, "id"); id != "" {
		data.Copy, err = s.a.PublicCopy(r.Context(), id)
	} else {
		data.Result, err = s.a.SearchOpen(r.Context(), data.Q, r.URL.Query().Get("cursor"), 20)
		if err == nil && data.Result.Next != "" {
			data.Next = "/open?q=" + template.URLQueryEscaper(data.Q) + "&cursor=" + template.URLQueryEscaper(data.Result.Next)
		}
	}
	if err != nil {
		p := problemFor(r.Context(), s.log, err)
		status, data.Error = p.Status, p.Detail
		if p.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		if p.Status == http.StatusNotFound {
			data.Error = "没有这件开放档案。No such open record."
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if err := openTmpl.Execute(w, data); err != nil {
		s.log.Warn("open page", "err", err)
	}
}
