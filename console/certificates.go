package console

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/formats/certdoc"
)

// certsData is 电子证照: the issuer's certificates with their status and files, the form that
// issues one (or a new version of one), and revocation.
type certsData struct {
	Certs  []*archive.Certificate
	Form   certForm
	Field  string
	Done   string
	Reason string // why the last action was refused
}

type certForm struct {
	Supersedes, TypeCode, Title, Number, HolderName, HolderCode, HolderCodeType, ValidFrom, ValidUntil, IssuerName, Fields string
}

func (c *console) certsPage(w http.ResponseWriter, r *http.Request, status int, d certsData, msg string) {
	s, _ := current(r)
	list, err := c.a.Certificates(s.Who, archive.CertificateFilter{Limit: 200})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for i, j := 0, len(list)-1; i < j; i, j = i+1, j-1 { // newest first
		list[i], list[j] = list[j], list[i]
	}
	d.Certs = list
	if d.Form.HolderCodeType == "" {
		d.Form.HolderCodeType = "111"
	}
	c.render(w, r, status, "certificates", page{Title: "certificates", Error: msg, Data: d})
}

func (c *console) certificates(w http.ResponseWriter, r *http.Request) {
	c.certsPage(w, r, http.StatusOK, certsData{Done: r.URL.Query().Get("done")}, "")
}

// issueCertificate issues a certificate from the form, or a new version of the one named in
// supersedes. Extra printed fields are lines of "name=value".
func (c *console) issueCertificate(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	f := certForm{Supersedes: r.PostFormValue("supersedes"), TypeCode: r.PostFormValue("type_code"), Title: r.PostFormValue("title"),
		Number: r.PostFormValue("number"), HolderName: r.PostFormValue("holder_name"), HolderCode: r.PostFormValue("holder_code"),
		HolderCodeType: r.PostFormValue("holder_code_type"), ValidFrom: r.PostFormValue("valid_from"), ValidUntil: r.PostFormValue("valid_until"),
		IssuerName: r.PostFormValue("issuer_name"), Fields: r.PostFormValue("fields")}
	req := archive.CertificateRequest{TypeCode: strings.TrimSpace(f.TypeCode), Title: strings.TrimSpace(f.Title), Number: strings.TrimSpace(f.Number),
		Holder:    archive.CertHolder{Name: strings.TrimSpace(f.HolderName), Code: strings.TrimSpace(f.HolderCode), CodeType: f.HolderCodeType},
		ValidFrom: f.ValidFrom, ValidUntil: f.ValidUntil, IssuerName: strings.TrimSpace(f.IssuerName)}
	for _, line := range strings.Split(f.Fields, "\n") {
		if name, value, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.TrimSpace(name) != "" {
			req.Fields = append(req.Fields, certdoc.Field{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
		}
	}
	var cert *archive.Certificate
	var err error
	if f.Supersedes != "" {
		cert, err = c.a.UpdateCertificate(r.Context(), s.Who, strings.TrimSpace(f.Supersedes), req)
	} else {
		cert, err = c.a.IssueCertificate(r.Context(), s.Who, req)
	}
	if err != nil {
		if errors.Is(err, archive.ErrInvalidCase) || errors.Is(err, archive.ErrState) || errors.Is(err, archive.ErrNotFound) {
			f.HolderCode = "" // personal data is typed again, not echoed back
			c.certsPage(w, r, http.StatusUnprocessableEntity, certsData{Form: f, Field: fieldOf(err), Reason: err.Error()}, "certRefused")
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"certificates?done="+url.QueryEscape(cert.Identifier), http.StatusSeeOther)
}

func (c *console) revokeCertificate(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	cert, err := c.a.RevokeCertificate(r.Context(), s.Who, r.PathValue("id"), r.PostFormValue("code"), strings.TrimSpace(r.PostFormValue("reason")))
	if err != nil {
		if errors.Is(err, archive.ErrInvalidCase) || errors.Is(err, archive.ErrState) {
			c.certsPage(w, r, http.StatusUnprocessableEntity, certsData{Reason: err.Error()}, "certRefused")
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"certificates?done="+url.QueryEscape(cert.Identifier+" "+cert.Status), http.StatusSeeOther)
}

// certificateFile serves a certificate's PDF or OFD.
func (c *console) certificateFile(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	format := r.PathValue("format")
	rc, size, err := c.a.CertificateFile(r.Context(), s.Who, r.PathValue("id"), format)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer rc.Close()
	ctype := "application/pdf"
	if format == "ofd" {
		ctype = "application/ofd"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", `attachment; filename="`+r.PathValue("id")+"."+format+`"`)
	io.Copy(w, rc)
}

// fieldOf is the request field an archive error names, if it names one.
func fieldOf(err error) string {
	var fe *archive.FieldErr
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}
