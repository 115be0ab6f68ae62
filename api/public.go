package api

import (
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/dangan-archive/dangan/archive"
)

//go:embed openapi.json
var openapiDoc []byte

func (s *server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiDoc)
}

func (s *server) trust(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(s.a.TrustPEM())
}

// tsa answers RFC 3161 requests (application/timestamp-query).
func (s *server) tsa(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "application/timestamp-query" {
		writeProblem(w, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"send a DER TimeStampReq as application/timestamp-query"))
		return
	}
	req, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := s.a.TSA().Respond(req)
	w.Header().Set("Content-Type", "application/timestamp-reply")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.Write(resp)
}

// verify is the public verifier: multipart with a "file" part (an EEP) and optionally an
// "evidence" part and a "purpose" field, or an EEP as the whole body. The answer is a
// report whether or not the package is valid.
func (s *server) verify(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxVerify+1<<20)
	var body io.Reader = r.Body
	var evidence *archive.Evidence
	purpose := r.URL.Query().Get("purpose")
	if mr, err := r.MultipartReader(); err == nil {
		body = nil
		for body == nil {
			p, err := mr.NextPart()
			if err != nil {
				s.fail(w, r, &archive.FieldErr{Field: "file", Err: fmt.Errorf("%w: no \"file\" part: %v", archive.ErrBadUpload, err)})
				return
			}
			switch p.FormName() {
			case "purpose":
				b, _ := io.ReadAll(io.LimitReader(p, 1000))
				purpose = string(b)
			case "evidence":
				b, err := io.ReadAll(io.LimitReader(p, 4<<20))
				if err == nil {
					evidence, err = archive.LoadEvidence(b)
				}
				if err != nil {
					s.fail(w, r, &archive.FieldErr{Field: "evidence", Err: fmt.Errorf("%w: %v", archive.ErrBadUpload, err)})
					return
				}
			case "file":
				body = p // evidence and purpose must come before the file
			}
		}
	}
	rep, err := s.a.VerifyUpload(r.Context(), body, evidence, s.opts.MaxVerify)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.metrics.verified.WithLabelValues(strconv.FormatBool(rep.Valid)).Inc()
	s.log.Info("verification", "valid", rep.Valid, "archival_code", rep.ArchivalCode, "package_sm3", rep.PackageSM3, "purpose", purpose)
	writeJSON(w, http.StatusOK, rep)
}
