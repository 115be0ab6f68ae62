package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
)

// decodeJSON reads a small JSON request body strictly.
func decodeJSON(w http.ResponseWriter, r *http.Request, field string, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fieldErr(field, fmt.Errorf("%w: %v", archive.ErrBadUpload, err))
	}
	return nil
}

// Sending side.

func (s *server) createTransfer(w http.ResponseWriter, r *http.Request) {
	var req archive.TransferRequest
	if err := decodeJSON(w, r, "packages", &req); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.a.CreateTransfer(r.Context(), principal(r), req)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/transfers/"+t.Batch)
	writeJSON(w, http.StatusAccepted, t)
}

func (s *server) listTransfers(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ts, next, err := s.a.Transfers(r.Context(), principal(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf("transfers", ts, next))
}

func (s *server) getTransfer(w http.ResponseWriter, r *http.Request) {
	t, err := s.a.TransferStatus(r.Context(), principal(r), chi.URLParam(r, "batch"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *server) retryTransfer(w http.ResponseWriter, r *http.Request) {
	t, err := s.a.RetryTransfer(r.Context(), principal(r), chi.URLParam(r, "batch"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, t)
}

// Receiving side.

func (s *server) openAccession(w http.ResponseWriter, r *http.Request) {
	var sm archive.Signed
	if err := decodeJSON(w, r, "manifest", &sm); err != nil {
		s.fail(w, r, err)
		return
	}
	acc, created, err := s.a.OpenAccession(r.Context(), principal(r), &sm)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, acc)
}

func (s *server) listAccessions(w http.ResponseWriter, r *http.Request) {
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	as, next, err := s.a.Accessions(r.Context(), principal(r), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf("accessions", as, next))
}

func (s *server) getAccession(w http.ResponseWriter, r *http.Request) {
	acc, err := s.a.Accession(r.Context(), principal(r), chi.URLParam(r, "batch"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, acc)
}

// receivePackage takes multipart: an "evidence" part, then the "file" part (the EEP),
// streamed into the checks.
func (s *server) receivePackage(w http.ResponseWriter, r *http.Request) {
	if p := principal(r); p.Role != archive.RoleArchive && p.Role != archive.RoleDepartment {
		s.fail(w, r, fmt.Errorf("%w: packages of an accession are sent by their department", archive.ErrForbidden)) // before the upload is read
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		s.fail(w, r, fieldErr("file", fmt.Errorf("%w: send multipart/form-data with an \"evidence\" part and a \"file\" part: %v", archive.ErrBadUpload, err)))
		return
	}
	var ev *archive.Evidence
	var body io.Reader
	for body == nil {
		p, err := mr.NextPart()
		if err != nil {
			s.fail(w, r, fieldErr("file", fmt.Errorf("%w: no \"file\" part: %v", archive.ErrBadUpload, err)))
			return
		}
		switch p.FormName() {
		case "evidence":
			b, err := io.ReadAll(io.LimitReader(p, 4<<20))
			if err == nil {
				ev, err = archive.LoadEvidence(b)
			}
			if err != nil {
				s.fail(w, r, fieldErr("evidence", fmt.Errorf("%w: %v", archive.ErrBadUpload, err)))
				return
			}
		case "file":
			body = p
		}
	}
	rep, err := s.a.ReceivePackage(r.Context(), principal(r), chi.URLParam(r, "batch"), chi.URLParam(r, "id"), ev, body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *server) issueReceipt(w http.ResponseWriter, r *http.Request) {
	rc, err := s.a.IssueReceipt(r.Context(), principal(r), chi.URLParam(r, "batch"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rc)
}
