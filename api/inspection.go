package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

// Inspection (检查评估): the department's archive makes and sends compliance reports; the
// county archive receives and verifies them. Backups are listed for the reports' figure.

func (s *server) makeInspection(w http.ResponseWriter, r *http.Request) {
	var in archive.InspectionInput
	if err := decodeJSON(w, r, "from", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	ins, err := s.a.MakeInspection(r.Context(), principal(r), in)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, ins)
}

func (s *server) listInspections(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	is, next, err := s.a.Inspections(r.Context(), principal(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if is == nil {
		is = []archive.Inspection{}
	}
	writeJSON(w, http.StatusOK, pageOf("inspections", is, next))
}

func (s *server) receiveInspection(w http.ResponseWriter, r *http.Request) {
	var signed archive.Signed
	if err := decodeJSON(w, r, "report", &signed); err != nil {
		s.fail(w, r, err)
		return
	}
	rr, err := s.a.ReceiveInspection(r.Context(), principal(r), &signed)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, rr)
}

func (s *server) listReceivedReports(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	rs, next, err := s.a.ReceivedReports(r.Context(), principal(r), q.Get("department"), q.Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rs == nil {
		rs = []archive.ReceivedReport{}
	}
	writeJSON(w, http.StatusOK, pageOf("reports", rs, next))
}

func (s *server) getReceivedReport(w http.ResponseWriter, r *http.Request) {
	rr, err := s.a.ReceivedReport(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rr)
}

func (s *server) listBackups(w http.ResponseWriter, r *http.Request) {
	since, err := queryTime(r, "since")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	until, err := queryTime(r, "until")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	bs, next, err := s.a.Backups(r.Context(), principal(r), since, until, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if bs == nil {
		bs = []archive.Backup{}
	}
	writeJSON(w, http.StatusOK, pageOf("backups", bs, next))
}
