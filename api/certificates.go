package api

import (
	"io"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

// certStatus is the public status of a certificate (GET /api/v1/certificates/{identifier}).
func (s *server) certStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.a.CertificateStatus(chi.URLParam(r, "identifier"), r.URL.Query().Get("purpose"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.certs.WithLabelValues("status").Inc()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, st)
}

// certRevocations serves the signed revocation list.
func (s *server) certRevocations(w http.ResponseWriter, r *http.Request) {
	list, err := s.a.Revocations()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) issueCert(w http.ResponseWriter, r *http.Request) {
	var req archive.CertificateRequest
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.a.IssueCertificate(r.Context(), principal(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.certs.WithLabelValues("issued").Inc()
	w.Header().Set("Location", "/api/v1/certificates/"+c.Identifier)
	writeJSON(w, http.StatusCreated, c)
}

func (s *server) updateCert(w http.ResponseWriter, r *http.Request) {
	var req archive.CertificateRequest
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.a.UpdateCertificate(r.Context(), principal(r), chi.URLParam(r, "identifier"), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.certs.WithLabelValues("updated").Inc()
	w.Header().Set("Location", "/api/v1/certificates/"+c.Identifier)
	writeJSON(w, http.StatusCreated, c)
}

func (s *server) revokeCert(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code   string `json:"code"`
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.a.RevokeCertificate(r.Context(), principal(r), chi.URLParam(r, "identifier"), req.Code, req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.certs.WithLabelValues("revoked").Inc()
	writeJSON(w, http.StatusOK, c)
}

func (s *server) getCert(w http.ResponseWriter, r *http.Request) {
	c, err := s.a.Certificate(principal(r), chi.URLParam(r, "identifier"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *server) listCerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	cs, err := s.a.Certificates(principal(r), archive.CertificateFilter{Holder: q.Get("holder"), Type: q.Get("type"), Status: q.Get("status"), Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cs == nil {
		cs = []*archive.Certificate{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificates": cs})
}

func (s *server) getCertFile(format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.certFile(w, r, format) }
}

func (s *server) certFile(w http.ResponseWriter, r *http.Request, format string) {
	rc, size, err := s.a.CertificateFile(r.Context(), principal(r), chi.URLParam(r, "identifier"), format)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	ct := map[string]string{"pdf": "application/pdf", "ofd": "application/ofd"}[format]
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="certificate.`+format+`"`)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("certificate download cut short", "err", err)
	}
}
