package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

func (s *server) disposalCandidates(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	page, err := s.a.Candidates(r.Context(), principal(r), q.Get("department"), q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *server) listDisposals(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ds, next, err := s.a.Decisions(r.Context(), principal(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf("decisions", ds, next))
}

func (s *server) decide(w http.ResponseWriter, r *http.Request) {
	var req archive.DecisionRequest
	if err := decodeJSON(w, r, "package", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.a.Decide(r.Context(), principal(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (s *server) approveDisposal(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Approve bool   `json:"approve"`
		Note    string `json:"note"`
	}
	if err := decodeJSON(w, r, "approve", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.a.Approve(r.Context(), principal(r), chi.URLParam(r, "id"), req.Approve, req.Note)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// register serves the destruction register: signed XML (default) or PDF (?format=pdf).
func (s *server) register(w http.ResponseWriter, r *http.Request) {
	var b []byte
	var err error
	ctype, name := "application/xml", "destruction-register.xml"
	switch r.URL.Query().Get("format") {
	case "", "xml":
		b, err = s.a.Register(r.Context(), principal(r))
	case "pdf":
		b, err = s.a.RegisterPDF(r.Context(), principal(r))
		ctype, name = "application/pdf", "destruction-register.pdf"
	default:
		err = fieldErr("format", archive.ErrInvalidCase)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b)
}
