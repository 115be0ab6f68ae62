package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/signing/tlsconf"
	"github.com/dangan-archive/dangan/storage/index"
)

// maxCaseJSON bounds the case metadata part.
const maxCaseJSON = 1 << 20

// ingest handles POST /api/v1/cases: multipart/form-data, the "case" JSON part first, then
// one part per document. Parts are streamed to disk, never held in memory.
func (s *server) ingest(w http.ResponseWriter, r *http.Request) {
	who := principal(r)
	if who.Role != archive.RoleDepartment {
		s.fail(w, r, fmt.Errorf("%w: only a department token can ingest cases", archive.ErrForbidden))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
	mr, err := multipartReader(r)
	if err != nil {
		writeProblem(w, Problem{Type: ProblemBase + "bad-upload", Title: "Bad upload", Status: http.StatusBadRequest,
			Detail: "the body must be multipart/form-data with a \"case\" part first: " + err.Error()})
		return
	}
	first, err := mr.NextPart()
	if err != nil {
		s.fail(w, r, fmt.Errorf("%w: reading the first part: %w", archive.ErrBadUpload, err))
		return
	}
	if first.FormName() != "case" {
		s.fail(w, r, &archive.FieldErr{Field: "case", Err: fmt.Errorf("%w: the first part must be \"case\" (the case metadata as JSON), got %q", archive.ErrBadUpload, first.FormName())})
		return
	}
	var c archive.Case
	dec := json.NewDecoder(io.LimitReader(first, maxCaseJSON+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		s.fail(w, r, caseJSONError(err))
		return
	}
	if dec.More() {
		s.fail(w, r, &archive.FieldErr{Field: "case", Err: fmt.Errorf("%w: data after the case JSON object", archive.ErrBadUpload)})
		return
	}
	var part *multipart.Part
	next := func() (*archive.Upload, error) {
		if part != nil {
			part.Close()
		}
		p, err := mr.NextPart()
		if err != nil {
			return nil, err
		}
		part = p
		return &archive.Upload{Part: p.FormName(), FileName: rawFileName(p), Body: p}, nil
	}
	res, err := s.a.Ingest(r.Context(), who, &c, next)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		s.metrics.ingested.Inc()
		s.metrics.ingestedB.Add(float64(res.Package.Size))
	}
	w.Header().Set("Location", "/api/v1/packages/"+res.Package.ID)
	writeJSON(w, status, s.packageView(res.Package))
}

// multipartReader reads a multipart/form-data body through a 256 KiB buffer: the standard
// reader alone reads the connection 4 KiB at a time, a syscall per 4 KiB of a large upload.
func multipartReader(r *http.Request) (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, errors.New("Content-Type is not multipart/form-data with a boundary")
	}
	return multipart.NewReader(bufio.NewReaderSize(r.Body, 256<<10), params["boundary"]), nil
}

// rawFileName is the part's filename parameter as sent: Part.FileName would strip a path,
// and a path in a file name is something to refuse, not to repair.
func rawFileName(p *multipart.Part) string {
	_, params, err := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}

func caseJSONError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var terr *time.ParseError
	switch {
	case errors.As(err, &syn):
		return &archive.FieldErr{Field: "case", Err: fmt.Errorf("%w: malformed JSON at byte %d: %v", archive.ErrBadUpload, syn.Offset, syn)}
	case errors.As(err, &typ):
		return &archive.FieldErr{Field: typ.Field, Err: fmt.Errorf("%w: %s must be a JSON %s", archive.ErrInvalidCase, typ.Field, typ.Type)}
	case errors.As(err, &terr):
		return &archive.FieldErr{Field: "case", Err: fmt.Errorf("%w: a date-time is not RFC 3339: %v", archive.ErrInvalidCase, err)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &archive.FieldErr{Field: f, Err: fmt.Errorf("%w: unknown field %q", archive.ErrInvalidCase, f)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &archive.FieldErr{Field: "case", Err: fmt.Errorf("%w: the case JSON is truncated or longer than %d bytes", archive.ErrBadUpload, maxCaseJSON)}
	}
	return &archive.FieldErr{Field: "case", Err: fmt.Errorf("%w: %v", archive.ErrBadUpload, err)}
}

// PackageView is the package description the API returns.
type PackageView struct {
	ID                string              `json:"id"`
	ArchivalCode      string              `json:"archival_code"`
	Department        string              `json:"department"`
	DeptName          string              `json:"department_name"`
	CaseNo            string              `json:"case_no"`
	Title             string              `json:"title"`
	ItemCode          string              `json:"item_code"`
	Year              int                 `json:"year"`
	Retention         string              `json:"retention"`
	FinishedAt        time.Time           `json:"finished_at"`
	IngestedAt        time.Time           `json:"ingested_at"`
	Size              int64               `json:"size"`
	PackageSM3        string              `json:"package_sm3"`
	Signature         string              `json:"signature"`
	Signer            string              `json:"signer"`
	LogIndex          uint64              `json:"log_index"`                 // its ingest event in the event log
	Checkpointed      *time.Time          `json:"checkpointed_at,omitempty"` // when a checkpoint first covered it
	State             string              `json:"state"`
	Documents         []DocumentView      `json:"documents"`
	RetainUntil       string              `json:"retain_until"`
	LegalHold         bool                `json:"legal_hold,omitempty"`
	HoldReason        string              `json:"legal_hold_reason,omitempty"`
	Links             map[string]string   `json:"links"`
	Sharing           string              `json:"sharing"`
	SharingConditions string              `json:"sharing_conditions,omitempty"`
	Opened            *index.OpenMark     `json:"opened,omitempty"`   // while open to the public
	Deferral          *index.DeferralMark `json:"deferral,omitempty"` // an approved later transfer
	// Layer is the amendment the current form is (修改<n>), after a migration; Prior are the
	// forms kept from before it, each with its own EEP and evidence.
	Layer int             `json:"layer,omitempty"`
	Prior []PriorFormView `json:"prior,omitempty"`
}

// PriorFormView is a form a migrated package had before, kept as it was.
type PriorFormView struct {
	Layer      int               `json:"layer"`
	Size       int64             `json:"size"`
	PackageSM3 string            `json:"package_sm3"`
	SignedSM3  string            `json:"signed_sm3"`
	Links      map[string]string `json:"links"`
}

// DocumentView describes one document.
type DocumentView struct {
	N         int              `json:"n"`
	Title     string           `json:"title"`
	Kind      string           `json:"kind,omitempty"`
	Main      bool             `json:"main"`
	Warnings  []string         `json:"warnings,omitempty"`
	Encodings []index.Encoding `json:"encodings"`
}

func (s *server) packageView(p *index.Package) PackageView {
	v := PackageView{ID: p.ID, ArchivalCode: p.ArchivalCode, Department: p.Department, DeptName: p.DepartmentName,
		CaseNo: p.CaseNo, Title: p.Title, ItemCode: p.ItemCode, Year: p.Year, Retention: p.Retention, FinishedAt: p.FinishedAt,
		IngestedAt: p.IngestedAt, Size: p.Size, PackageSM3: p.PackageSM3, Signature: p.SignatureB64,
		Signer: p.Signer, LogIndex: p.LogIndex, State: p.State, LegalHold: p.LegalHold, HoldReason: p.HoldReason,
		Sharing: archive.SharingClass(p.Sharing), SharingConditions: p.SharingConditions, Opened: p.Opened, Deferral: p.Deferral}
	if t := s.a.CheckpointedAt(p); !t.IsZero() {
		v.Checkpointed = &t
	}
	if !p.RetainUntil.IsZero() {
		v.RetainUntil = p.RetainUntil.Format(time.DateOnly)
	}
	base := "/api/v1/packages/" + p.ID
	v.Links = map[string]string{"self": base, "eep": base + "/eep", "evidence": base + "/evidence"}
	v.Layer = p.Layer
	for _, f := range p.Prior {
		q := "?layer=" + strconv.Itoa(f.Layer)
		v.Prior = append(v.Prior, PriorFormView{Layer: f.Layer, Size: f.Size, PackageSM3: f.PackageSM3, SignedSM3: f.SignedSM3,
			Links: map[string]string{"eep": base + "/eep" + q, "evidence": base + "/evidence" + q}})
	}
	for _, d := range p.Documents {
		v.Documents = append(v.Documents, DocumentView{N: d.N, Title: d.Title, Kind: d.Kind, Main: d.Main, Warnings: d.Warnings, Encodings: d.Encoded})
	}
	return v
}

// intParam reads a non-negative integer query parameter (0 when absent).
func intParam(r *http.Request, name string) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, &archive.FieldErr{Field: name, Err: fmt.Errorf("%w: %s must be a non-negative integer", archive.ErrInvalidCase, name)}
	}
	return n, nil
}

func (s *server) listPackages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("q") != "" || q.Get("after") != "" {
		name := "q"
		if q.Get("q") == "" {
			name = "after"
		}
		s.fail(w, r, &archive.FieldErr{Field: name, Err: fmt.Errorf("%w: %s is gone from the list: words are searched at /api/v1/search, pages follow next as cursor", archive.ErrInvalidCase, name)})
		return
	}
	f := archive.ListQuery{Department: q.Get("department"), Retention: q.Get("retention"), ItemCode: q.Get("item_code"), State: q.Get("state"), Cursor: q.Get("cursor")}
	var err error
	if f.Year, err = intParam(r, "year"); err == nil {
		f.Limit, err = intParam(r, "limit")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.a.List(r.Context(), principal(r), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := struct {
		Packages []PackageView `json:"packages"`
		Next     string        `json:"next,omitempty"`
	}{Packages: []PackageView{}, Next: page.Next}
	for _, p := range page.Packages {
		out.Packages = append(out.Packages, s.packageView(p))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getPackage(w http.ResponseWriter, r *http.Request) {
	p, err := s.a.Package(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.packageView(p))
}

func (s *server) getEEP(w http.ResponseWriter, r *http.Request) {
	if l := r.URL.Query().Get("layer"); l != "" {
		s.getPriorEEP(w, r, l)
		return
	}
	rc, p, err := s.a.OpenEEP(r.Context(), principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(p.Size, 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.eep"`, p.ID))
	w.Header().Set("X-Package-SM3", p.PackageSM3)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("EEP download interrupted", "package", p.ID, "err", err)
	}
}

// getPriorEEP serves a form a migrated package had before (?layer=0: as archived).
func (s *server) getPriorEEP(w http.ResponseWriter, r *http.Request, layer string) {
	n, err := strconv.Atoi(layer)
	if err != nil || n < 0 {
		s.fail(w, r, &archive.FieldErr{Field: "layer", Err: fmt.Errorf("%w: layer is the number of an earlier form, 0 for the package as archived", archive.ErrInvalidCase)})
		return
	}
	id := chi.URLParam(r, "id")
	rc, f, err := s.a.OpenPriorEEP(r.Context(), principal(r), id, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Size, 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.m%d.eep"`, id, f.Layer))
	w.Header().Set("X-Package-SM3", f.PackageSM3)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("EEP download interrupted", "package", id, "err", err)
	}
}

func (s *server) getDocument(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(chi.URLParam(r, "n"))
	if err != nil {
		s.fail(w, r, &archive.FieldErr{Field: "n", Err: fmt.Errorf("%w: the document number must be an integer", archive.ErrNotFound)})
		return
	}
	original := r.URL.Query().Get("original") == "1" || r.URL.Query().Get("original") == "true"
	var rc io.ReadCloser
	var enc *index.Encoding
	if k := r.URL.Query().Get("encoding"); k != "" {
		ki, kerr := strconv.Atoi(k)
		if kerr != nil {
			s.fail(w, r, &archive.FieldErr{Field: "encoding", Err: fmt.Errorf("%w: the encoding number must be an integer", archive.ErrNotFound)})
			return
		}
		rc, enc, err = s.a.OpenEncoding(r.Context(), principal(r), chi.URLParam(r, "id"), n, ki)
	} else {
		rc, enc, err = s.a.OpenDocument(r.Context(), principal(r), chi.URLParam(r, "id"), n, original)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", enc.MIME)
	w.Header().Set("Content-Length", strconv.FormatInt(enc.Size, 10))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": enc.FileName}))
	w.Header().Set("X-Content-SM3", enc.SM3)
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Warn("document download interrupted", "package", chi.URLParam(r, "id"), "n", n, "err", err)
	}
}

func (s *server) getEvidence(w http.ResponseWriter, r *http.Request) {
	layer := -1
	if l := r.URL.Query().Get("layer"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			s.fail(w, r, &archive.FieldErr{Field: "layer", Err: fmt.Errorf("%w: layer is the number of an earlier form, 0 for the package as archived", archive.ErrInvalidCase)})
			return
		}
		layer = n
	}
	ev, err := s.a.EvidenceOfForm(r.Context(), principal(r), chi.URLParam(r, "id"), layer)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (s *server) createToken(w http.ResponseWriter, r *http.Request) {
	if principal(r).Role != archive.RoleAdmin {
		s.fail(w, r, fmt.Errorf("%w: only an admin token creates tokens", archive.ErrForbidden))
		return
	}
	var req struct {
		Role       string `json:"role"`
		Org        string `json:"org"`
		Note       string `json:"note"`
		TTL        string `json:"ttl"`         // a duration such as "720h"; empty: a year
		ClientCert string `json:"client_cert"` // PEM: the token is then accepted only over mutual TLS with it
	}
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	spec := archive.TokenSpec{Role: req.Role, Org: req.Org, Note: req.Note}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			s.fail(w, r, &archive.FieldErr{Field: "ttl", Err: fmt.Errorf("%w: %v", archive.ErrInvalidCase, err)})
			return
		}
		spec.TTL = d
	}
	if req.ClientCert != "" {
		pin, err := tlsconf.PinOfPEM([]byte(req.ClientCert))
		if err != nil {
			s.fail(w, r, &archive.FieldErr{Field: "client_cert", Err: fmt.Errorf("%w: %v", archive.ErrInvalidCase, err)})
			return
		}
		spec.Pin = pin
	}
	tok, info, err := s.a.IssueToken(spec)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("token created", "by", principal(r).String(), "token", info.ID, "role", req.Role, "org", req.Org, "expires", info.Expires)
	writeJSON(w, http.StatusCreated, struct {
		Token string `json:"token"`
		archive.TokenInfo
	}{tok, info})
}

func (s *server) listTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.a.Tokens(principal(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": list})
}

func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) {
	info, err := s.a.RevokeToken(principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// decodeBody reads a small JSON request body strictly.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return caseJSONError(err)
	}
	return nil
}

func (s *server) putRetention(w http.ResponseWriter, r *http.Request) {
	if p := principal(r); p.Role != archive.RoleArchive {
		s.fail(w, r, fmt.Errorf("%w: retention is extended by the archive", archive.ErrForbidden)) // before the body is looked at
		return
	}
	var req struct {
		Until  string `json:"until"` // YYYY-MM-DD
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	until, err := time.ParseInLocation(time.DateOnly, req.Until, time.FixedZone("CST", 8*3600))
	if err != nil {
		s.fail(w, r, &archive.FieldErr{Field: "until", Err: fmt.Errorf("%w: until must be a date YYYY-MM-DD", archive.ErrInvalidCase)})
		return
	}
	p, err := s.a.ExtendRetention(r.Context(), principal(r), chi.URLParam(r, "id"), until, req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.packageView(p))
}

func (s *server) putLegalHold(w http.ResponseWriter, r *http.Request) {
	var req struct {
		On     bool   `json:"on"`
		Reason string `json:"reason"`
	}
	if err := decodeBody(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.a.SetLegalHold(r.Context(), principal(r), chi.URLParam(r, "id"), req.On, req.Reason)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.packageView(p))
}

// deletePackage is always refused in this version: with 409 retained while retention or a
// legal hold applies, and after that because destruction goes through appraisal and
// disposal, which this version does not have.
func (s *server) deletePackage(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, s.a.RefuseDelete(r.Context(), principal(r), chi.URLParam(r, "id")))
}
