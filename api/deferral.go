package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

// Later transfer (延期移交): the department's archive asks (/deferrals), the county archive
// receives and decides (/deferral-requests), and the department takes the signed decision.

func (s *server) requestDeferral(w http.ResponseWriter, r *http.Request) {
	var in archive.DeferralInput
	if err := decodeJSON(w, r, "packages", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.a.RequestDeferral(r.Context(), principal(r), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, d)
}

func (s *server) listDeferrals(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ds, next, err := s.a.Deferrals(r.Context(), principal(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ds == nil {
		ds = []archive.Deferral{}
	}
	writeJSON(w, http.StatusOK, pageOf("deferrals", ds, next))
}

func (s *server) getDeferral(w http.ResponseWriter, r *http.Request) {
	d, err := s.a.Deferral(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) checkDeferral(w http.ResponseWriter, r *http.Request) {
	d, err := s.a.CheckDeferral(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) applyDeferral(w http.ResponseWriter, r *http.Request) {
	var signed archive.Signed
	if err := decodeJSON(w, r, "decision", &signed); err != nil {
		s.fail(w, r, err)
		return
	}
	d, err := s.a.ApplyDeferral(r.Context(), principal(r), chi.URLParam(r, "id"), &signed)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *server) receiveDeferral(w http.ResponseWriter, r *http.Request) {
	var signed archive.Signed
	if err := decodeJSON(w, r, "request", &signed); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.a.ReceiveDeferral(r.Context(), principal(r), &signed)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func (s *server) listDeferralRequests(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cs, next, err := s.a.DeferralRequests(r.Context(), principal(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cs == nil {
		cs = []archive.DeferralCase{}
	}
	writeJSON(w, http.StatusOK, pageOf("requests", cs, next))
}

func (s *server) getDeferralRequest(w http.ResponseWriter, r *http.Request) {
	c, err := s.a.DeferralRequestFor(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *server) decideDeferral(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Approve bool   `json:"approve"`
		Until   int    `json:"until,omitempty"`
		Reason  string `json:"reason"`
	}
	if err := decodeJSON(w, r, "approve", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.a.DecideDeferral(r.Context(), principal(r), chi.URLParam(r, "id"), in.Approve, in.Until, in.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}
