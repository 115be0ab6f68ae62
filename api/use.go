package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

// Use requests (利用申请): a department asks, the owner or the archive decides.

func (s *server) requestUse(w http.ResponseWriter, r *http.Request) {
	var in archive.UseRequestInput
	if err := decodeJSON(w, r, "owner", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.a.RequestUse(r.Context(), principal(r), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, u)
}

func (s *server) listUseRequests(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	us, next, err := s.a.UseRequests(r.Context(), principal(r), archive.UseFilter{As: q.Get("as"), Department: q.Get("department"),
		Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if us == nil {
		us = []archive.UseRequest{}
	}
	writeJSON(w, http.StatusOK, pageOf("requests", us, next))
}

func (s *server) getUseRequest(w http.ResponseWriter, r *http.Request) {
	u, err := s.a.UseRequest(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *server) decideUse(w http.ResponseWriter, r *http.Request) {
	var in archive.UseDecisionInput
	if err := decodeJSON(w, r, "action", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.a.DecideUse(r.Context(), principal(r), chi.URLParam(r, "id"), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *server) revokeUse(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(w, r, "reason", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.a.RevokeUse(r.Context(), principal(r), chi.URLParam(r, "id"), in.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}
