package console

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage/index"
)

// recordData is 档案详情: the package's description, its documents with links that open
// each stored file, and its read log for the roles that may see reads.
type recordData struct {
	P         *index.Package
	Size      string
	Docs      []docView
	Purpose   string // the purpose the links carry, when reading needs one
	NeedsWhy  bool   // reading this package's content needs a stated purpose
	Shared    bool   // another department's package, read under sharing
	Reads     []archive.Read
	ShowReads bool
	Report    *archive.Report // "verify now": the package checked as it is stored
	Steps     *archive.CaseSteps
}

type docView struct {
	index.Document
	Files []fileView
}

type fileView struct {
	index.Encoding
	Size string
	Link string
	View string // the PDF viewer's page, for a PDF
}

// readers are the roles that see a record's read log.
func seesReads(role string) bool {
	return role == archive.RoleArchive || role == archive.RoleAuditor || role == archive.RoleAdmin
}

func (c *console) record(w http.ResponseWriter, r *http.Request) { c.recordPage(w, r, nil) }

// verifyNow checks the stored package with its evidence, as an outside verifier would
// (signatures, timestamps, digests, the log proof), and shows the report on the record's
// page. Reading the package for it is logged like any read.
func (c *console) verifyNow(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	who := s.Who
	who.Purpose = strings.TrimSpace(r.PostFormValue("purpose"))
	id := r.PathValue("id")
	ev, err := c.a.Evidence(r.Context(), who, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rc, p, err := c.a.OpenEEP(r.Context(), who, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer rc.Close()
	rep, err := c.a.VerifyUpload(r.Context(), rc, ev, p.Size)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.recordPage(w, r, rep)
}

func (c *console) recordPage(w http.ResponseWriter, r *http.Request, rep *archive.Report) {
	s, _ := current(r)
	id := r.PathValue("id")
	p, err := c.a.Package(r.Context(), s.Who, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	purpose := strings.TrimSpace(r.URL.Query().Get("purpose"))
	if purpose == "" {
		purpose = strings.TrimSpace(r.PostFormValue("purpose"))
	}
	d := recordData{P: p, Size: humanBytes(p.Size), Purpose: purpose, Report: rep,
		NeedsWhy: p.Sharing == archive.SharingNone && s.Who.Role != archive.RoleDepartment,
		Shared:   s.Who.Role == archive.RoleDepartment && p.Department != s.Who.Org}
	d.NeedsWhy = d.NeedsWhy || d.Shared
	for _, doc := range p.Documents {
		dv := docView{Document: doc}
		for k, e := range doc.Encoded {
			link := fmt.Sprintf("%spackages/%s/documents/%d/%d", Prefix, p.ID, doc.N, k+1)
			view := fmt.Sprintf("%spackages/%s/view/%d/%d", Prefix, p.ID, doc.N, k+1)
			if d.Purpose != "" {
				link += "?purpose=" + url.QueryEscape(d.Purpose)
				view += "?purpose=" + url.QueryEscape(d.Purpose)
			}
			f := fileView{Encoding: e, Size: humanBytes(e.Size), Link: link}
			if e.MIME == "application/pdf" {
				f.View = view
			}
			dv.Files = append(dv.Files, f)
		}
		d.Docs = append(d.Docs, dv)
	}
	if steps, err := c.a.Steps(r.Context(), s.Who, p.ID); err == nil {
		d.Steps = steps
	}
	if seesReads(s.Who.Role) {
		d.ShowReads = true
		if reads, _, err := c.a.ReadLog(r.Context(), s.Who, archive.ReadFilter{Package: p.ID, Limit: 50}); err == nil {
			d.Reads = reads
		}
	}
	c.render(w, r, http.StatusOK, "record", page{Title: "record", Data: d})
}

// document serves one stored file of a package to the browser, logged as a read with the
// account and the purpose. Files that a browser shows (PDF, images, XML, text) open in
// place; others download. The file runs in a sandbox: no script of it runs with the
// console's origin.
func (c *console) document(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	n, err1 := strconv.Atoi(r.PathValue("n"))
	k, err2 := strconv.Atoi(r.PathValue("k"))
	if err1 != nil || err2 != nil {
		c.fail(w, r, archive.ErrNotFound)
		return
	}
	who := s.Who
	who.Purpose = strings.TrimSpace(r.URL.Query().Get("purpose"))
	rc, enc, err := c.a.OpenEncoding(r.Context(), who, r.PathValue("id"), n, k)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer rc.Close()
	disposition := "attachment"
	switch {
	case enc.MIME == "application/pdf", strings.HasPrefix(enc.MIME, "image/"), strings.HasSuffix(enc.MIME, "/xml"), strings.HasPrefix(enc.MIME, "text/"):
		disposition = "inline"
	}
	h := w.Header()
	h.Set("Content-Type", enc.MIME)
	if strings.HasSuffix(enc.MIME, "/xml") || strings.HasPrefix(enc.MIME, "text/") {
		h.Set("Content-Type", "text/plain; charset=utf-8") // shown as text, never run
	}
	h.Set("Content-Length", strconv.FormatInt(enc.Size, 10))
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": enc.FileName}))
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; plugin-types application/pdf")
	h.Set("X-Content-SM3", enc.SM3)
	if _, err := io.Copy(w, rc); err != nil {
		c.log.Warn("console document interrupted", "package", r.PathValue("id"), "err", err)
	}
}

// eep serves the whole package file, logged as a read.
func (c *console) eep(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	who := s.Who
	who.Purpose = strings.TrimSpace(r.URL.Query().Get("purpose"))
	if l := r.URL.Query().Get("layer"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			c.fail(w, r, &archive.FieldErr{Field: "layer", Err: fmt.Errorf("%w: layer is the number of an earlier form", archive.ErrInvalidCase)})
			return
		}
		rc, f, err := c.a.OpenPriorEEP(r.Context(), who, r.PathValue("id"), n)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		w.Header().Set("Content-Length", strconv.FormatInt(f.Size, 10))
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.m%d.eep"`, r.PathValue("id"), f.Layer))
		if _, err := io.Copy(w, rc); err != nil {
			c.log.Warn("console EEP download interrupted", "package", r.PathValue("id"), "err", err)
		}
		return
	}
	rc, p, err := c.a.OpenEEP(r.Context(), who, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.FormatInt(p.Size, 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s.eep"`, p.ID))
	if _, err := io.Copy(w, rc); err != nil {
		c.log.Warn("console EEP download interrupted", "package", p.ID, "err", err)
	}
}

// viewerData is the PDF viewer's page: the document it draws.
type viewerData struct {
	Title, FileName, Src string
}

// viewer is the page that draws a PDF document with the pdf.js served under static/pdfjs.
// Its policy adds what pdf.js needs: its worker, and WebAssembly for its image decoders.
func (c *console) viewer(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	id := r.PathValue("id")
	n, err1 := strconv.Atoi(r.PathValue("n"))
	k, err2 := strconv.Atoi(r.PathValue("k"))
	p, err := c.a.Package(r.Context(), s.Who, id)
	if err == nil && (err1 != nil || err2 != nil || n < 1 || n > len(p.Documents) || k < 1 || k > len(p.Documents[n-1].Encoded)) {
		err = archive.ErrNotFound
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	e := p.Documents[n-1].Encoded[k-1]
	src := fmt.Sprintf("%spackages/%s/documents/%d/%d", Prefix, id, n, k)
	if why := strings.TrimSpace(r.URL.Query().Get("purpose")); why != "" {
		src += "?purpose=" + url.QueryEscape(why)
	}
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; "+
		"style-src 'self'; img-src 'self' data: blob:; font-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	c.render(w, r, http.StatusOK, "viewer", page{Title: "viewer", Data: viewerData{Title: p.Documents[n-1].Title, FileName: e.FileName, Src: src}})
}

// metadataData is the package's metadata as its EEP holds it (档案详情 · 元数据).
type metadataData struct {
	P          *index.Package
	Purpose    string
	Fields     []metadataField
	Agents     []eep.Agent
	Businesses []businessView
	Documents  []eep.ScannedDocument
	Notes      []string
}

type metadataField struct{ Path, Value string }

// businessView is a business action with the name of the agent who took it.
type businessView struct {
	eep.Business
	Agent string
}

// metadata shows every element of the package's EEP under 被签名对象 with its text, its
// agents and businesses, and its documents as the package describes them; read like the
// package's content (with a purpose where it needs one) and logged.
func (c *console) metadata(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	who := s.Who
	who.Purpose = strings.TrimSpace(r.URL.Query().Get("purpose"))
	p, md, err := c.a.Metadata(r.Context(), who, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := metadataData{P: p, Purpose: who.Purpose, Agents: md.Agents, Documents: md.Documents, Notes: md.Notes}
	names := map[string]string{}
	for _, ag := range md.Agents {
		names[ag.ID] = ag.Name
	}
	for _, b := range md.Businesses {
		d.Businesses = append(d.Businesses, businessView{Business: b, Agent: names[b.AgentID]})
	}
	for path, v := range md.Fields {
		d.Fields = append(d.Fields, metadataField{Path: strings.ReplaceAll(path, "/", " › "), Value: v})
	}
	slices.SortFunc(d.Fields, func(x, y metadataField) int { return strings.Compare(x.Path, y.Path) })
	c.render(w, r, http.StatusOK, "metadata", page{Title: "metadata", Data: d})
}
