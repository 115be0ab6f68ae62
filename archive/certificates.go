package archive

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/certdoc"
	"github.com/dangan-archive/dangan/formats/certid"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/formats/ofd"
	"github.com/dangan-archive/dangan/formats/pdfsig"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/ses"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// The certificate library (电子证照库): an issuer (a department's issuer token) issues
// e-certificates, which dangan renders, signs as PDF (SM2 CMS) and OFD (GB/T 38540 seal),
// stores under certificates/<identifier>/, indexes and logs; updates make a new version
// and supersede the old; revocations carry a reason code and time. Status lookups and
// the signed revocation list are public.

// Certificate statuses, and their codes in the ministry's data specification.
const (
	CertValid      = "valid"      // 01 有效
	CertRevoked    = "revoked"    // 03 撤销, 04 注销, 07 吊销
	CertExpired    = "expired"    // 05 失效, by the end of its validity
	CertSuperseded = "superseded" // 05 失效, by a newer version
	CertUnknown    = "unknown"    // not in this library
)

// RevocationCodes are the codes a revocation may carry.
var RevocationCodes = map[string]string{"03": "撤销", "04": "注销", "07": "吊销"}

// CertificateRequest is what an issuer sends to issue (or update) a certificate.
type CertificateRequest struct {
	TypeCode   string          `json:"type_code"` // 证照类型代码, 21 characters
	Title      string          `json:"title"`     // 证照名称
	Number     string          `json:"number"`    // 证照编号
	Holder     CertHolder      `json:"holder"`
	Fields     []certdoc.Field `json:"fields,omitempty"`
	ValidFrom  string          `json:"valid_from"`            // YYYY-MM-DD
	ValidUntil string          `json:"valid_until,omitempty"` // YYYY-MM-DD; empty: no end (长期)
	IssuerName string          `json:"issuer_name,omitempty"` // 颁发机构; default: the department's certificate name
}

// CertHolder is the holder (持证主体).
type CertHolder struct {
	Name     string `json:"name"`
	Code     string `json:"code"`
	CodeType string `json:"code_type"` // 111 citizen identity number, 001 USCC
}

// Certificate is a library entry.
type Certificate struct {
	Identifier string             `json:"identifier"`
	Version    int                `json:"version"`
	Request    CertificateRequest `json:"request"`
	IssuerCode string             `json:"issuer_code"`
	IssuerName string             `json:"issuer_name"`
	IssuedAt   time.Time          `json:"issued_at"`
	IssuedBy   string             `json:"issued_by"`
	Status     string             `json:"status"` // valid, revoked or superseded; expired is computed
	RevokedAt  *time.Time         `json:"revoked_at,omitempty"`
	RevokeCode string             `json:"revocation_code,omitempty"`
	Reason     string             `json:"revocation_reason,omitempty"`
	Supersedes string             `json:"supersedes,omitempty"`
	Successor  string             `json:"superseded_by,omitempty"`
	Superseded *time.Time         `json:"superseded_at,omitempty"`
	PDFSM3     string             `json:"pdf_sm3"`
	// PDFSignedSM3 is the SM3 of the bytes the PDF's signature covers (its message digest).
	PDFSignedSM3 string `json:"pdf_signed_sm3"`
	OFDSM3       string `json:"ofd_sm3"`
	LogIndex     uint64 `json:"log_index"`
}

// CertStatus is the public view of a certificate: what is printed on it, less the holder's
// identity number, and its status now.
type CertStatus struct {
	Identifier string     `json:"identifier"`
	Title      string     `json:"title"`
	TypeCode   string     `json:"type_code"`
	Number     string     `json:"number"`
	Holder     string     `json:"holder"`
	HolderCode string     `json:"holder_code,omitempty"` // a USCC only: identity numbers are never shown
	Issuer     string     `json:"issuer"`
	IssuerCode string     `json:"issuer_code"`
	IssuedAt   time.Time  `json:"issued_at"`
	ValidFrom  string     `json:"valid_from"`
	ValidUntil string     `json:"valid_until,omitempty"`
	Version    int        `json:"version"`
	Status     string     `json:"status"`
	StatusCode string     `json:"status_code"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Reason     string     `json:"revocation_reason,omitempty"`
	RevokeCode string     `json:"revocation_code,omitempty"`
	Successor  string     `json:"superseded_by,omitempty"`
}

// status is the certificate's status at t.
func (c *Certificate) status(t time.Time) (string, string) {
	switch c.Status {
	case CertRevoked:
		return CertRevoked, c.RevokeCode
	case CertSuperseded:
		return CertSuperseded, "05"
	}
	if c.Request.ValidUntil != "" {
		end, err := time.ParseInLocation("2006-01-02", c.Request.ValidUntil, eep.CST())
		if err == nil && !t.Before(end.AddDate(0, 0, 1)) {
			return CertExpired, "05"
		}
	}
	return CertValid, "01"
}

// Public is the public view at t.
func (c *Certificate) Public(t time.Time) *CertStatus {
	st, code := c.status(t)
	s := &CertStatus{Identifier: c.Identifier, Title: c.Request.Title, TypeCode: c.Request.TypeCode, Number: c.Request.Number,
		Holder: c.Request.Holder.Name, Issuer: c.IssuerName, IssuerCode: c.IssuerCode, IssuedAt: c.IssuedAt,
		ValidFrom: c.Request.ValidFrom, ValidUntil: c.Request.ValidUntil, Version: c.Version, Status: st, StatusCode: code,
		RevokedAt: c.RevokedAt, Reason: c.Reason, RevokeCode: c.RevokeCode, Successor: c.Successor}
	if c.Request.Holder.CodeType == "001" {
		s.HolderCode = c.Request.Holder.Code
	}
	return s
}

var typeCodeShape = regexp.MustCompile(`^[0-9A-Z]{21}$`)

// check validates a request, naming every bad field.
func (r *CertificateRequest) check() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(field, fmt.Errorf("%w: "+format, append([]any{ErrInvalidCase}, args...)...)))
	}
	if !typeCodeShape.MatchString(r.TypeCode) {
		bad("type_code", "%q is not a 21-character 证照类型代码 (digits and capital letters)", r.TypeCode)
	}
	if strings.TrimSpace(r.Title) == "" || len([]rune(r.Title)) > 40 {
		bad("title", "the certificate's name (证照名称) must be 1 to 40 characters")
	}
	if strings.TrimSpace(r.Number) == "" || len(r.Number) > 64 {
		bad("number", "the certificate number (证照编号) must be 1 to 64 characters")
	}
	if strings.TrimSpace(r.Holder.Name) == "" || len([]rune(r.Holder.Name)) > 100 {
		bad("holder.name", "the holder's name must be 1 to 100 characters")
	}
	switch r.Holder.CodeType {
	case "001":
		if err := CheckUSCC(r.Holder.Code); err != nil {
			bad("holder.code", "%v", err)
		}
	case "111":
		if err := CheckResidentID(r.Holder.Code); err != nil {
			bad("holder.code", "%v", err)
		}
	default:
		bad("holder.code_type", "%q: use 111 (citizen identity number) or 001 (unified social credit code)", r.Holder.CodeType)
	}
	from, err := time.ParseInLocation("2006-01-02", r.ValidFrom, eep.CST())
	if err != nil {
		bad("valid_from", "%q is not a date YYYY-MM-DD", r.ValidFrom)
	}
	if r.ValidUntil != "" {
		until, err := time.ParseInLocation("2006-01-02", r.ValidUntil, eep.CST())
		switch {
		case err != nil:
			bad("valid_until", "%q is not a date YYYY-MM-DD", r.ValidUntil)
		case until.Before(from):
			bad("valid_until", "%s is before valid_from %s", r.ValidUntil, r.ValidFrom)
		}
	}
	if len(r.Fields) > 12 {
		bad("fields", "at most 12 further fields fit on the certificate, got %d", len(r.Fields))
	}
	for i, f := range r.Fields {
		if strings.TrimSpace(f.Name) == "" || len([]rune(f.Name)) > 8 || len([]rune(f.Value)) > 200 {
			bad(fmt.Sprintf("fields[%d]", i), "a field needs a name of 1 to 8 characters and a value of at most 200")
		}
	}
	if len([]rune(r.IssuerName)) > 40 {
		bad("issuer_name", "at most 40 characters")
	}
	return errors.Join(errs...)
}

// printable refuses, before anything is numbered or stored, data the certificate font
// cannot print or that does not fit the page.
func printable(req CertificateRequest) error {
	probe := &certdoc.Certificate{Identifier: certid.Prefix + strings.Repeat("0", 60), Title: req.Title, Number: req.Number,
		Holder: req.Holder.Name, HolderCode: req.Holder.Code, HolderCodeType: req.Holder.CodeType, Issuer: req.IssuerName,
		Fields: req.Fields, IssuedAt: time.Now(), ValidFrom: time.Now()}
	if _, err := certdoc.Layout(probe); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidCase, err)
	}
	return nil
}

func (a *Archive) mayIssue(who Principal) error {
	if who.Role != RoleIssuer || CheckUSCC(who.Org) != nil {
		return fmt.Errorf("%w: certificates are issued with a department's issuer token", ErrForbidden)
	}
	return nil
}

// IssueCertificate issues a new certificate (version 001) for the issuer's department.
func (a *Archive) IssueCertificate(ctx context.Context, who Principal, req CertificateRequest) (*Certificate, error) {
	if err := a.mayIssue(who); err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	if err := printable(req); err != nil {
		return nil, err
	}
	serial, err := a.nextCertSerial(req.TypeCode, who.Org)
	if err != nil {
		return nil, err
	}
	id, err := certid.New(req.TypeCode, who.Org, serial, 1)
	if err != nil {
		return nil, fieldErr("type_code", fmt.Errorf("%w: %v", ErrInvalidCase, err))
	}
	c, err := a.makeCertificate(ctx, who, id, req, "")
	if err != nil {
		return nil, err
	}
	if err := a.index.PutRecords(certRecords(c)...); err != nil {
		return nil, fmt.Errorf("index certificate %s: %w", c.Identifier, err)
	}
	a.log.Info("certificate issued", "identifier", c.Identifier, "issuer", who.Org, "by", who.String())
	return c, nil
}

// UpdateCertificate issues the next version of a valid certificate with new data; the old
// version becomes superseded. The type cannot change.
func (a *Archive) UpdateCertificate(ctx context.Context, who Principal, identifier string, req CertificateRequest) (*Certificate, error) {
	if err := a.mayIssue(who); err != nil {
		return nil, err
	}
	a.certMu.Lock()
	defer a.certMu.Unlock()
	old, err := a.ownCertificate(who, identifier)
	if err != nil {
		return nil, err
	}
	if req.TypeCode == "" {
		req.TypeCode = old.Request.TypeCode
	}
	if req.TypeCode != old.Request.TypeCode {
		return nil, fieldErr("type_code", fmt.Errorf("%w: an update keeps the type %s; issue a new certificate for another type", ErrInvalidCase, old.Request.TypeCode))
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	if err := printable(req); err != nil {
		return nil, err
	}
	if st, _ := old.status(a.now()); st != CertValid {
		return nil, fmt.Errorf("%w: %s is %s; only a valid certificate is updated", ErrState, identifier, st)
	}
	pid, err := certid.Parse(identifier)
	if err != nil {
		return nil, err
	}
	next, err := pid.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	c, err := a.makeCertificate(ctx, who, next, req, identifier)
	if err != nil {
		return nil, err
	}
	old.Status, old.Successor, old.Superseded = CertSuperseded, c.Identifier, &c.IssuedAt
	if err := a.index.PutRecords(append(certRecords(c), certRecords(old)...)...); err != nil {
		return nil, fmt.Errorf("index certificate %s: %w", c.Identifier, err)
	}
	a.refreshRevocations()
	a.log.Info("certificate updated", "identifier", c.Identifier, "supersedes", identifier, "by", who.String())
	return c, nil
}

// RevokeCertificate revokes a valid certificate with a reason code (03, 04, 07) and text.
func (a *Archive) RevokeCertificate(ctx context.Context, who Principal, identifier, code, reason string) (*Certificate, error) {
	if err := a.mayIssue(who); err != nil {
		return nil, err
	}
	if _, ok := RevocationCodes[code]; !ok {
		return nil, fieldErr("code", fmt.Errorf("%w: %q: use 03 (撤销), 04 (注销) or 07 (吊销)", ErrInvalidCase, code))
	}
	if strings.TrimSpace(reason) == "" || len([]rune(reason)) > 200 {
		return nil, fieldErr("reason", fmt.Errorf("%w: a reason of 1 to 200 characters is required", ErrInvalidCase))
	}
	a.certMu.Lock()
	defer a.certMu.Unlock()
	c, err := a.ownCertificate(who, identifier)
	if err != nil {
		return nil, err
	}
	if c.Status != CertValid {
		return nil, fmt.Errorf("%w: %s is already %s", ErrState, identifier, c.Status)
	}
	now := a.now().UTC()
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeCertRevoked, Time: now, Actor: who.String(), Subject: "certificate/" + identifier,
		Attrs: map[string]string{"code": code, "reason": reason}}); err != nil {
		return nil, err
	}
	c.Status, c.RevokedAt, c.RevokeCode, c.Reason = CertRevoked, &now, code, reason
	if err := a.index.PutRecords(certRecords(c)...); err != nil {
		return nil, fmt.Errorf("index revocation of %s: %w", identifier, err)
	}
	a.refreshRevocations()
	a.log.Info("certificate revoked", "identifier", identifier, "code", code, "by", who.String())
	return c, nil
}

func certRecords(c *Certificate) []index.Rec {
	recs := []index.Rec{
		{Bucket: index.Certificates, Key: c.Identifier, Value: c},
		{Bucket: index.CertificateKeys, Key: "holder/" + c.Request.Holder.Code + "/" + c.Identifier, Value: ""},
		{Bucket: index.CertificateKeys, Key: "issuer/" + c.IssuerCode + "/" + c.Identifier, Value: ""},
		{Bucket: index.CertificateKeys, Key: "type/" + c.Request.TypeCode + "/" + c.Identifier, Value: ""},
	}
	if c.Status != CertValid {
		recs = append(recs, index.Rec{Bucket: index.CertificateKeys, Key: "revoked/" + c.Identifier, Value: ""})
	}
	return recs
}

// nextCertSerial hands out the next 流水号 for a type and issuer: the year and a
// seven-digit counter, durable before it is used.
func (a *Archive) nextCertSerial(typeCode, issuer string) (string, error) {
	year := a.now().In(eep.CST()).Year()
	key := fmt.Sprintf("cert-serial/%s/%s/%d", typeCode, issuer, year)
	var n int
	err := a.index.UpdateRecord(index.State, key, func(data []byte) (any, error) {
		if data != nil {
			if err := json.Unmarshal(data, &n); err != nil {
				return nil, err
			}
		}
		n++
		return n, nil
	})
	if err != nil {
		return "", fmt.Errorf("certificate serial: %w", err)
	}
	if n > 9999999 {
		return "", fmt.Errorf("%w: the serials of %d for this type are used up", ErrState, year)
	}
	return fmt.Sprintf("%d%07d", year, n), nil
}

// Certificate returns a library entry (the issuer's own, or any for the archive role).
func (a *Archive) Certificate(who Principal, identifier string) (*Certificate, error) {
	switch who.Role {
	case RoleIssuer:
		return a.ownCertificate(who, identifier)
	case RoleArchive:
		return a.certificate(identifier)
	}
	return nil, fmt.Errorf("%w: certificate entries are for their issuer and the archive", ErrForbidden)
}

func (a *Archive) certificate(identifier string) (*Certificate, error) {
	var c Certificate
	if err := a.index.Record(index.Certificates, identifier, &c); err != nil {
		if errors.Is(err, index.ErrNotFound) {
			return nil, fmt.Errorf("%w: certificate %s", ErrNotFound, identifier)
		}
		return nil, err
	}
	return &c, nil
}

// ownCertificate is the issuer's certificate; another issuer's is not found.
func (a *Archive) ownCertificate(who Principal, identifier string) (*Certificate, error) {
	c, err := a.certificate(identifier)
	if err != nil {
		return nil, err
	}
	if c.IssuerCode != who.Org {
		return nil, fmt.Errorf("%w: certificate %s", ErrNotFound, identifier)
	}
	return c, nil
}

// CertificateStatus is the public status of a certificate; ErrNotFound when the library
// does not have it. purpose (用证事由) is logged.
func (a *Archive) CertificateStatus(identifier, purpose string) (*CertStatus, error) {
	if _, err := certid.Parse(identifier); err != nil {
		return nil, fieldErr("identifier", fmt.Errorf("%w: %v", ErrInvalidCase, err))
	}
	c, err := a.certificate(identifier)
	if err != nil {
		return nil, err
	}
	a.log.Info("certificate status", "identifier", identifier, "purpose", purpose)
	return c.Public(a.now()), nil
}

// CertificateFilter selects certificates for Certificates.
type CertificateFilter struct {
	Holder string // holder code
	Type   string
	Status string
	Limit  int
}

// Certificates lists the issuer's certificates (or all, for the archive role), newest
// identifiers last.
func (a *Archive) Certificates(who Principal, f CertificateFilter) ([]*Certificate, error) {
	prefix := ""
	switch {
	case who.Role == RoleIssuer:
		prefix = "issuer/" + who.Org + "/"
	case who.Role != RoleArchive:
		return nil, fmt.Errorf("%w: certificate lists are for issuers and the archive", ErrForbidden)
	case f.Holder != "":
		prefix = "holder/" + f.Holder + "/"
	case f.Type != "":
		prefix = "type/" + f.Type + "/"
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	var out []*Certificate
	add := func(_ string, data []byte) error {
		c := new(Certificate)
		if err := json.Unmarshal(data, c); err != nil {
			return err
		}
		if (f.Holder == "" || c.Request.Holder.Code == f.Holder) && (f.Type == "" || c.Request.TypeCode == f.Type) {
			if st, _ := c.status(a.now()); f.Status == "" || st == f.Status {
				out = append(out, c)
			}
		}
		if len(out) >= f.Limit {
			return index.ErrStop
		}
		return nil
	}
	var err error
	if prefix == "" {
		err = a.index.ForEachRecord(index.Certificates, "", "", add)
	} else {
		err = a.index.ForEachVia(index.CertificateKeys, prefix, "", index.Certificates, add)
	}
	return out, err
}

// CertificateFile opens the stored PDF or OFD of a certificate (format "pdf" or "ofd") for
// its issuer or the archive; the read is logged.
func (a *Archive) CertificateFile(ctx context.Context, who Principal, identifier, format string) (io.ReadCloser, int64, error) {
	c, err := a.Certificate(who, identifier)
	if err != nil {
		return nil, 0, err
	}
	if format != "pdf" && format != "ofd" {
		return nil, 0, fieldErr("format", fmt.Errorf("%w: format is pdf or ofd", ErrInvalidCase))
	}
	rc, info, err := a.store.Get(ctx, certKey(c.Identifier, format))
	if err != nil {
		return nil, 0, fmt.Errorf("certificate %s %s: %w", identifier, format, err)
	}
	a.log.Info("certificate read", "who", who.String(), "identifier", identifier, "format", format, "purpose", who.Purpose)
	return rc, info.Size, nil
}

func certKey(identifier, format string) string {
	if format == "json" {
		return "certificates/" + identifier + "/entry.json"
	}
	return "certificates/" + identifier + "/certificate." + format
}

// restoreCertificates indexes certificates whose files are stored but whose entry is not in
// the index (an index rebuild, or a crash between the objects and the index): the entry as
// issued, its event log index, and the revocations and supersessions the log records.
func (a *Archive) restoreCertificates(ctx context.Context) (int, error) {
	var missing []string
	err := a.store.List(ctx, "certificates/", func(o storage.ObjectInfo) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, "certificates/"), "/entry.json")
		if !ok {
			return nil
		}
		if _, err := a.certificate(id); errors.Is(err, ErrNotFound) {
			missing = append(missing, id)
		} else if err != nil {
			return err
		}
		return nil
	})
	if err != nil || len(missing) == 0 {
		return 0, err
	}
	a.certMu.Lock()
	defer a.certMu.Unlock()
	restored := map[string]*Certificate{}
	for _, id := range missing {
		rc, _, err := a.store.Get(ctx, certKey(id, "json"))
		if err != nil {
			return 0, err
		}
		var c Certificate
		err = json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&c)
		rc.Close()
		if err != nil || c.Identifier != id {
			a.log.Error("a stored certificate entry does not read back; left unindexed", "identifier", id, "err", err)
			continue
		}
		if _, err := a.elog.Find(eventlog.TypeCertIssued, "certificate/"+id); err != nil {
			// Files stored but the issue never logged: the issuer was told it failed.
			a.log.Warn("certificate files without an issue event; left unindexed", "identifier", id)
			continue
		}
		if i, err := a.elog.Find(eventlog.TypeCertRevoked, "certificate/"+id); err == nil {
			es, err := a.elog.Entries(ctx, i, 1)
			if err != nil || len(es) != 1 {
				return 0, fmt.Errorf("revocation of %s: %v", id, err)
			}
			ev, err := eventlog.ParseEvent([]byte(es[0].Event))
			if err != nil {
				return 0, err
			}
			t := ev.Time
			c.Status, c.RevokedAt, c.RevokeCode, c.Reason = CertRevoked, &t, ev.Attrs["code"], ev.Attrs["reason"]
		}
		restored[id] = &c
	}
	// A later version supersedes the one it names.
	for _, c := range restored {
		if c.Supersedes == "" {
			continue
		}
		old := restored[c.Supersedes]
		if old == nil {
			if old, err = a.certificate(c.Supersedes); err != nil {
				continue
			}
			restored[old.Identifier] = old
		}
		if old.Status == CertValid {
			old.Status = CertSuperseded
		}
		old.Successor, old.Superseded = c.Identifier, &c.IssuedAt
	}
	var recs []index.Rec
	for _, c := range restored {
		recs = append(recs, certRecords(c)...)
	}
	if err := a.index.PutRecords(recs...); err != nil {
		return 0, err
	}
	// The serial counters live in the index too: continue after the highest restored.
	for _, c := range restored {
		id, err := certid.Parse(c.Identifier)
		if err != nil || len(id.Serial) != 11 {
			continue
		}
		n, err := strconv.Atoi(id.Serial[4:])
		if err != nil {
			continue
		}
		key := fmt.Sprintf("cert-serial/%s/%s/%s", id.TypeCode, id.IssuerCode, id.Serial[:4])
		err = a.index.UpdateRecord(index.State, key, func(data []byte) (any, error) {
			var cur int
			if data != nil {
				if err := json.Unmarshal(data, &cur); err != nil {
					return nil, err
				}
			}
			if n > cur {
				return n, nil
			}
			return nil, nil
		})
		if err != nil {
			return 0, fmt.Errorf("restore the serial counter of %s: %w", c.Identifier, err)
		}
	}
	a.refreshRevocations()
	return len(missing), nil
}

// makeCertificate renders, signs, seals and stores a certificate and logs its issue. The
// objects are durable and the event logged before the entry is returned for indexing.
func (a *Archive) makeCertificate(ctx context.Context, who Principal, id certid.ID, req CertificateRequest, supersedes string) (*Certificate, error) {
	dept, err := a.pki.Department(who.Org, req.IssuerName)
	if err != nil {
		return nil, fmt.Errorf("%w: the issuer's signing identity: %v", ErrUnavailable, err)
	}
	if req.IssuerName == "" {
		req.IssuerName = dept.Cert.Subject.CommonName
	}
	now := a.now().UTC()
	from, _ := time.ParseInLocation("2006-01-02", req.ValidFrom, eep.CST())
	doc := &certdoc.Certificate{Identifier: id.String(), Title: req.Title, Number: req.Number, Holder: req.Holder.Name,
		HolderCode: req.Holder.Code, HolderCodeType: req.Holder.CodeType, Issuer: req.IssuerName, IssuerCode: who.Org,
		IssuedAt: now.In(eep.CST()), ValidFrom: from, Fields: req.Fields, VerifyURL: a.cfg.VerifyURL}
	if req.ValidUntil != "" {
		doc.ValidUntil, _ = time.ParseInLocation("2006-01-02", req.ValidUntil, eep.CST())
	}
	pdf, signedSM3, err := a.signedCertificatePDF(ctx, dept, doc, now)
	if err != nil {
		return nil, err
	}
	ofdFile, err := a.sealedCertificateOFD(ctx, dept, doc, now)
	if err != nil {
		return nil, err
	}
	c := &Certificate{Identifier: id.String(), Version: id.Version, Request: req, IssuerCode: who.Org, IssuerName: req.IssuerName,
		IssuedAt: now, IssuedBy: who.String(), Status: CertValid, Supersedes: supersedes,
		PDFSM3: sm3Hex(pdf), PDFSignedSM3: hex.EncodeToString(signedSM3), OFDSM3: sm3Hex(ofdFile)}
	entry, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	// The entry as issued goes beside the files, so an index rebuild can restore it; later
	// changes (supersession, revocation) are in the event log.
	for format, data := range map[string][]byte{"pdf": pdf, "ofd": ofdFile, "json": entry} {
		// Kept as long as the event log that records them (WORM on MinIO).
		_, err := a.store.Put(ctx, certKey(c.Identifier, format), bytes.NewReader(data), int64(len(data)),
			storage.PutOptions{RetainUntil: now.AddDate(logRetainYears, 0, 0)})
		if err != nil && !errors.Is(err, storage.ErrExists) {
			return nil, fmt.Errorf("%w: store certificate %s: %v", ErrUnavailable, c.Identifier, err)
		}
		if errors.Is(err, storage.ErrExists) {
			// A run that stopped before indexing left this identifier's objects; the
			// identifier is never reused, so this is a conflict to investigate.
			return nil, fmt.Errorf("%w: certificate %s already has stored files", ErrState, c.Identifier)
		}
	}
	attrs := map[string]string{"pdf_sm3": c.PDFSM3, "ofd_sm3": c.OFDSM3, "issuer": who.Org, "type": req.TypeCode}
	if supersedes != "" {
		attrs["supersedes"] = supersedes
	}
	idx, err := a.elog.Append(ctx, eventlog.Event{Type: eventlog.TypeCertIssued, Time: now, Actor: who.String(),
		Subject: "certificate/" + c.Identifier, Digest: c.PDFSM3, Attrs: attrs})
	if err != nil {
		return nil, fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
	}
	c.LogIndex = idx
	return c, nil
}

func sm3Hex(b []byte) string {
	s := sm3.Sum(b)
	return hex.EncodeToString(s[:])
}

// signedCertificatePDF renders the PDF and signs it as the issuing department, with a
// timestamp over the signature.
func (a *Archive) signedCertificatePDF(ctx context.Context, dept *signing.Identity, doc *certdoc.Certificate, now time.Time) (pdf, signedSM3 []byte, err error) {
	unsigned, base, err := certdoc.PDF(doc)
	if err != nil {
		return nil, nil, certRenderErr(err)
	}
	box := certdoc.SealBox
	const pt = 72 / 25.4
	p, err := pdfsig.Prepare(unsigned, base, pdfsig.Field{Name: "issuer", Reason: "颁发电子证照 " + doc.Identifier, Location: doc.Issuer, Time: now,
		Rect: [4]float64{box[0] * pt, (certdoc.PageH - box[1] - box[3]) * pt, (box[0] + box[2]) * pt, (certdoc.PageH - box[1]) * pt}})
	if err != nil {
		return nil, nil, err
	}
	h := sm3.New()
	if err := p.WriteSigned(h); err != nil {
		return nil, nil, err
	}
	signedSM3 = h.Sum(nil)
	cms, err := signing.SignDetached(ctx, dept, signedSM3, now, a.stamper)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: sign the certificate PDF: %v", ErrUnavailable, err)
	}
	pdf, err = p.Fill(cms)
	return pdf, signedSM3, err
}

// sealedCertificateOFD renders the OFD and seals it with the department's electronic seal.
func (a *Archive) sealedCertificateOFD(ctx context.Context, dept *signing.Identity, doc *certdoc.Certificate, now time.Time) ([]byte, error) {
	parts, err := certdoc.OFD(doc)
	if err != nil {
		return nil, certRenderErr(err)
	}
	seal, err := a.departmentSeal(dept, doc.Issuer)
	if err != nil {
		return nil, err
	}
	box := certdoc.SealBox
	sealed, err := ofd.Seal(parts, ofd.SealOptions{Provider: "dangan", Version: "1", Time: now, PageID: certdoc.OFDPageID,
		Boundary: box, SealEntry: seal, Sign: func(dataHash []byte, property string) ([]byte, error) {
			return ses.Sign(ctx, dept, seal, dataHash, property, now, a.stamper)
		}})
	if err != nil {
		return nil, fmt.Errorf("%w: seal the certificate OFD: %v", ErrUnavailable, err)
	}
	var buf bytes.Buffer
	if err := ofd.Write(&buf, sealed); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func certRenderErr(err error) error {
	if errors.Is(err, certdoc.ErrUnprintable) {
		return fmt.Errorf("%w: %v", ErrInvalidCase, err)
	}
	return err
}

// departmentSeal returns the department's electronic seal, made by the seal maker on first
// use and kept beside its keys (seal-<USCC>.esl).
func (a *Archive) departmentSeal(dept *signing.Identity, name string) ([]byte, error) {
	a.sealMu.Lock()
	defer a.sealMu.Unlock()
	uscc := dept.Cert.Subject.SerialNumber
	path := filepath.Join(a.pki.Dir(), "seal-"+uscc+".esl")
	if b, err := os.ReadFile(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the department's seal: %w", err)
	} else if err == nil {
		if s, err := ses.ParseSeal(b); err == nil && len(s.HolderCerts) > 0 && s.HolderCerts[0].Equal(dept.Cert) && s.ValidAt(a.now()) {
			return b, nil
		}
	}
	maker, err := a.pki.SealMaker()
	if err != nil {
		return nil, fmt.Errorf("%w: seal maker: %v", ErrUnavailable, err)
	}
	pic, err := certdoc.SealPicture(name, "电子证照专用章", 400)
	if err != nil {
		return nil, err
	}
	now := a.now()
	end := dept.Cert.NotAfter
	seal, err := ses.MakeSeal(maker, ses.SealInfo{ID: "dangan-" + uscc + "-" + strconv.FormatInt(now.Unix(), 10), Name: name + "电子证照专用章",
		Holder: dept.Cert, Created: now, ValidFrom: now.Add(-time.Minute), ValidTo: end, PictureType: "PNG", Picture: pic,
		WidthMM: int(certdoc.SealBox[2]), HeightMM: int(certdoc.SealBox[3])})
	if err != nil {
		return nil, err
	}
	if err := signing.WriteFileAtomic(path, seal, 0o600); err != nil {
		return nil, fmt.Errorf("keep the department's seal: %w", err)
	}
	return seal, nil
}

// The signed revocation list (撤销列表) for offline verifiers.

// RevocationListFormat is the list's format name.
const RevocationListFormat = "dangan-certificate-revocations/1"

// RevocationList is every certificate of the library that is no longer valid by decision:
// revoked or superseded. Expiry is printed on the certificate and not listed.
type RevocationList struct {
	Format  string            `json:"format"`
	Issuer  string            `json:"issuer"`
	Updated time.Time         `json:"updated"`
	Entries []RevocationEntry `json:"entries"`
}

// RevocationEntry is one listed certificate.
type RevocationEntry struct {
	Identifier string     `json:"identifier"`
	Status     string     `json:"status"`
	StatusCode string     `json:"status_code"`
	Time       *time.Time `json:"time,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	Successor  string     `json:"superseded_by,omitempty"`
}

// Revocations is the current signed revocation list.
func (a *Archive) Revocations() (*Signed, error) {
	if s := a.revocations.Load(); s != nil {
		return s, nil
	}
	a.refreshRevocations()
	if s := a.revocations.Load(); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("%w: the revocation list could not be made", ErrUnavailable)
}

// refreshRevocations rebuilds and re-signs the list; called after every change.
func (a *Archive) refreshRevocations() {
	list := RevocationList{Format: RevocationListFormat, Issuer: a.cfg.ArchiveName, Updated: a.now().UTC(), Entries: []RevocationEntry{}}
	err := a.index.ForEachRecord(index.CertificateKeys, "revoked/", "", func(k string, _ []byte) error {
		c, err := a.certificate(strings.TrimPrefix(k, "revoked/"))
		if err != nil {
			return err
		}
		st, code := c.status(list.Updated)
		e := RevocationEntry{Identifier: c.Identifier, Status: st, StatusCode: code, Reason: c.Reason, Successor: c.Successor, Time: c.RevokedAt}
		if e.Time == nil {
			e.Time = c.Superseded
		}
		list.Entries = append(list.Entries, e)
		return nil
	})
	if err == nil {
		var s *Signed
		if s, err = sign(a.pki.Archive, list); err == nil {
			a.revocations.Store(s)
			return
		}
	}
	a.log.Error("revocation list not refreshed", "err", err)
}

// Name is the archive's name.
func (a *Archive) Name() string { return a.cfg.ArchiveName }
