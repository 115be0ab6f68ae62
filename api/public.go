package api

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

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

// maxCertFile bounds a PDF or OFD uploaded for verification: it is held in memory.
const maxCertFile = 16 << 20

// certBufs holds the buffers uploaded certificate files are read into; nothing of a file
// outlives its verification.
var certBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// verification is what the public verifier found, for the REST answer and the web page.
type verification struct {
	Kind    string              // eep, pdf, ofd or identifier
	Valid   bool                // the verdict
	Cert    *archive.CertReport // for pdf, ofd and identifier
	Package *archive.Report     // for eep
	Purpose string
}

// runVerify reads a verification request: multipart with a "file" part (a PDF, an OFD or
// an EEP; "evidence" and "purpose" parts before it), or an "identifier" field instead of
// a file; or a JSON body {"identifier": …, "purpose": …}; or a file as the whole body.
// ?identifier= and ?purpose= work too.
func (s *server) runVerify(w http.ResponseWriter, r *http.Request) (*verification, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxVerify+1<<20)
	q := r.URL.Query()
	v := &verification{Purpose: q.Get("purpose")}
	identifier := q.Get("identifier")
	var body io.Reader
	var evidence *archive.Evidence
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "multipart/"):
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, &archive.FieldErr{Field: "file", Err: fmt.Errorf("%w: %v", archive.ErrBadUpload, err)}
		}
		for body == nil {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, &archive.FieldErr{Field: "file", Err: fmt.Errorf("%w: %v", archive.ErrBadUpload, err)}
			}
			switch p.FormName() {
			case "purpose":
				b, _ := io.ReadAll(io.LimitReader(p, 1000))
				v.Purpose = string(b)
			case "identifier":
				b, _ := io.ReadAll(io.LimitReader(p, 200))
				identifier = strings.TrimSpace(string(b))
			case "evidence":
				b, err := io.ReadAll(io.LimitReader(p, 4<<20))
				if err == nil && len(b) > 0 {
					evidence, err = archive.LoadEvidence(b)
				}
				if err != nil {
					return nil, &archive.FieldErr{Field: "evidence", Err: fmt.Errorf("%w: %v", archive.ErrBadUpload, err)}
				}
			case "file":
				body = p // the parts above must come before the file
			}
		}
	case strings.HasPrefix(ct, "application/json"):
		var req struct {
			Identifier string `json:"identifier"`
			Purpose    string `json:"purpose"`
		}
		if err := decodeBody(r, &req); err != nil {
			return nil, err
		}
		identifier, v.Purpose = req.Identifier, req.Purpose
	case identifier == "":
		body = r.Body
	}
	var br *bufio.Reader
	if body != nil {
		br = bufio.NewReaderSize(body, 4096)
		if _, err := br.Peek(1); err == io.EOF && identifier != "" {
			body = nil // a web form sends an empty file part when no file was chosen
		}
	}
	if body == nil {
		if identifier == "" {
			return nil, &archive.FieldErr{Field: "file", Err: fmt.Errorf("%w: send a file (PDF, OFD or EEP) or an identifier", archive.ErrBadUpload)}
		}
		v.Kind, v.Cert = "identifier", s.a.VerifyIdentifier(identifier)
		v.Valid = v.Cert.Valid
		return v, nil
	}
	head, _ := br.Peek(5)
	isPDF, isZip := bytes.HasPrefix(head, []byte("%PDF-")), bytes.HasPrefix(head, []byte("PK\x03\x04"))
	switch {
	case isPDF || isZip:
		select {
		case s.verifySlots <- struct{}{}:
			defer func() { <-s.verifySlots }()
		default:
			return nil, fmt.Errorf("%w: too many verifications at once", archive.ErrUnavailable)
		}
		buf := certBufs.Get().(*bytes.Buffer)
		defer func() {
			if buf.Cap() <= 4<<20 { // keep the pool to small buffers
				buf.Reset()
				certBufs.Put(buf)
			}
		}()
		if r.ContentLength > 0 && r.ContentLength <= maxCertFile {
			buf.Grow(int(r.ContentLength) + bytes.MinRead)
		}
		_, err := buf.ReadFrom(io.LimitReader(br, maxCertFile+1))
		doc := buf.Bytes()
		if err != nil {
			return nil, &archive.FieldErr{Field: "file", Err: fmt.Errorf("%w: reading the file: %v", archive.ErrBadUpload, err)}
		}
		if len(doc) > maxCertFile {
			return nil, &archive.FieldErr{Field: "file", Err: fmt.Errorf("%w: certificate files over %d MiB are not verified here", archive.ErrTooLarge, maxCertFile>>20)}
		}
		if isPDF {
			v.Kind, v.Cert = "pdf", s.a.VerifyCertificatePDF(doc)
		} else {
			v.Kind = "ofd"
			if v.Cert, err = s.a.VerifyCertificateOFD(doc); err != nil {
				return nil, err
			}
		}
		v.Valid = v.Cert.Valid
	default:
		rep, err := s.a.VerifyUpload(r.Context(), br, evidence, s.opts.MaxVerify)
		if err != nil {
			return nil, err
		}
		v.Kind, v.Package, v.Valid = "eep", rep, rep.Valid
	}
	return v, nil
}

// logVerification records a verification with its purpose (用证事由).
func (s *server) logVerification(v *verification, via string) {
	s.metrics.verified.WithLabelValues(v.Kind, strconv.FormatBool(v.Valid)).Inc()
	attrs := []any{"via", via, "kind", v.Kind, "valid", v.Valid, "purpose", v.Purpose}
	if v.Cert != nil {
		attrs = append(attrs, "identifier", v.Cert.Identifier, "sm3", v.Cert.SM3, "failed", v.Cert.Failed())
	}
	if v.Package != nil {
		attrs = append(attrs, "archival_code", v.Package.ArchivalCode, "package_sm3", v.Package.PackageSM3)
	}
	s.log.Info("verification", attrs...)
}

// verify is the public verifier (POST /api/v1/verify). The answer is a report whether or
// not the file is valid: for an EEP the package report, for a certificate file or an
// identifier the certificate report.
func (s *server) verify(w http.ResponseWriter, r *http.Request) {
	v, err := s.runVerify(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.logVerification(v, "api")
	if v.Package != nil {
		writeJSON(w, http.StatusOK, struct {
			Kind string `json:"kind"`
			*archive.Report
		}{"eep", v.Package})
		return
	}
	writeJSON(w, http.StatusOK, v.Cert)
}
