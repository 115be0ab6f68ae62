package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/console"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/miniotest"
)

const (
	deptA = "11610830MB1234567W" // the example case's department
	deptB = "91610830MA6Y00001G"
)

type env struct {
	t     *testing.T
	a     *archive.Archive
	srv   *httptest.Server
	admin string
	tokA  string
	tokB  string
	dir   string
}

func newEnv(t *testing.T, opts Options) *env { return newEnvOn(t, opts, nil) }

// newEnvOn is newEnv with the archive's objects in st (nil: the local filesystem).
func newEnvOn(t *testing.T, opts Options, st storage.ObjectStore) *env {
	t.Helper()
	dir := t.TempDir()
	a, err := archive.Open(archive.Config{DataDir: dir, Store: st, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	opts.Logger = testenv.Logger()
	srv := httptest.NewServer(New(a, opts))
	t.Cleanup(func() { srv.Close(); a.Close() })
	e := &env{t: t, a: a, srv: srv, dir: dir}
	e.admin, _ = a.CreateToken(archive.RoleAdmin, "", "")
	e.tokA, _ = a.CreateToken(archive.RoleDepartment, deptA, "")
	e.tokB, _ = a.CreateToken(archive.RoleDepartment, deptB, "")
	return e
}

func (e *env) do(method, path, token string, body io.Reader, ctype string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// postJSON posts a JSON body.
func (e *env) postJSON(path, token, body string) (*http.Response, []byte) {
	e.t.Helper()
	return e.do(http.MethodPost, path, token, strings.NewReader(body), "application/json")
}

// part is one multipart part; a nil name means the case part.
type part struct {
	name, filename string
	data           []byte
}

func multipartBody(caseJSON []byte, parts []part) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if caseJSON != nil {
		w, _ := mw.CreateFormField("case")
		w.Write(caseJSON)
	}
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, p.name, p.filename))
		h.Set("Content-Type", "application/octet-stream")
		w, _ := mw.CreatePart(h)
		w.Write(p.data)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func exampleCase(t *testing.T) (map[string]any, []part) {
	t.Helper()
	dir := "../examples/case-001"
	raw, err := os.ReadFile(filepath.Join(dir, "case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(raw, &c)
	var parts []part
	for _, d := range c["documents"].([]any) {
		f := d.(map[string]any)["file"].(string)
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, part{f, f, data})
	}
	return c, parts
}

func (e *env) ingest(token string, c map[string]any, parts []part) (*http.Response, []byte) {
	e.t.Helper()
	cj, _ := json.Marshal(c)
	body, ct := multipartBody(cj, parts)
	return e.do(http.MethodPost, "/api/v1/cases", token, body, ct)
}

// counts returns the number of packages in the index and of objects in the store.
func (e *env) counts() (int, int) {
	e.t.Helper()
	n, err := e.a.Index().Count()
	if err != nil {
		e.t.Fatal(err)
	}
	// Every object but the checkpoints, which the checkpointer writes on its own clock for
	// events logged before.
	objects := 0
	e.a.Store().List(context.Background(), "", func(o storage.ObjectInfo) error {
		if !strings.HasPrefix(o.Key, "log/checkpoints/") {
			objects++
		}
		return nil
	})
	return n, objects
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, b)
	}
	return v
}

func TestWalkThroughIngestFetchVerify(t *testing.T) {
	e := newEnv(t, Options{})
	c, parts := exampleCase(t)
	resp, body := e.ingest(e.tokA, c, parts)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	pkg := decode[PackageView](t, body)
	if !regexp.MustCompile(`^` + deptA + `-2025-D30-0001$`).MatchString(pkg.ArchivalCode) {
		t.Fatalf("archival code %q", pkg.ArchivalCode)
	}
	if strings.Contains(string(body), "11010519491231002X") {
		t.Fatal("the applicant's ID number is in the API answer")
	}
	// The same case again: the same package, 200.
	resp, body = e.ingest(e.tokA, c, parts)
	if resp.StatusCode != http.StatusOK || decode[PackageView](t, body).ID != pkg.ID {
		t.Fatalf("identical re-send: %d %s", resp.StatusCode, body)
	}
	// Different content under the same case number: 409, nothing written.
	n0, o0 := e.counts()
	parts2 := append([]part{}, parts...)
	parts2[2] = part{parts[2].name, parts[2].filename, bytes.Replace(parts[2].data, []byte("granted"), []byte("GRANTED"), 1)}
	resp, body = e.ingest(e.tokA, c, parts2)
	if resp.StatusCode != http.StatusConflict || decode[Problem](t, body).Type != ProblemBase+"case-conflict" {
		t.Fatalf("changed re-send: %d %s", resp.StatusCode, body)
	}
	if n1, o1 := e.counts(); n1 != n0 || o1 != o0 {
		t.Fatalf("conflict changed the store: packages %d→%d objects %d→%d", n0, n1, o0, o1)
	}

	// Documents come back byte for byte: the original with ?original=1.
	for i, p := range parts {
		resp, got := e.do(http.MethodGet, fmt.Sprintf("/api/v1/packages/%s/documents/%d?original=1", pkg.ID, i+1), e.tokA, nil, "")
		if resp.StatusCode != 200 || !bytes.Equal(got, p.data) {
			t.Fatalf("document %d original: %d, %d bytes (want %d)", i+1, resp.StatusCode, len(got), len(p.data))
		}
	}
	resp, rendition := e.do(http.MethodGet, "/api/v1/packages/"+pkg.ID+"/documents/2", e.tokA, nil, "")
	if resp.StatusCode != 200 || !bytes.HasPrefix(rendition, []byte("%PDF-")) || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("scan rendition: %d %q", resp.StatusCode, rendition[:min(10, len(rendition))])
	}

	_, eepFile := e.do(http.MethodGet, "/api/v1/packages/"+pkg.ID+"/eep", e.tokA, nil, "")
	_, evJSON := e.do(http.MethodGet, "/api/v1/packages/"+pkg.ID+"/evidence", e.tokA, nil, "")
	ev, err := archive.LoadEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}
	_, trustPEM := e.do(http.MethodGet, "/api/v1/trust", "", nil, "")
	dir := t.TempDir()
	eepPath := filepath.Join(dir, "p.eep")
	os.WriteFile(eepPath, eepFile, 0o644)
	os.WriteFile(filepath.Join(dir, "trust.pem"), trustPEM, 0o644)
	rep := verifyBytes(t, e, eepFile, ev)
	if !rep.Valid {
		t.Fatalf("fresh package does not verify: %+v", rep.Findings)
	}

	// OpenSSL alone: signed bytes are those between the tags, the value is 签名结果, the
	// certificate chains to the root from GET /api/v1/trust.
	opensslVerifiesPackage(t, eepFile, filepath.Join(dir, "trust.pem"))

	// Flipping one byte of a document's base64 or of signed metadata fails, naming GD-1-1.
	enc := pkg.Documents[2].Encodings[0]
	b := append([]byte{}, eepFile...)
	at := enc.DataOffset + 10
	b[at] = map[bool]byte{true: 'B', false: 'A'}[b[at] == 'A']
	if r := verifyBytes(t, e, b, ev); r.Valid || !failed(r, eep.CodeFixity, "电子签名 部门签名1") {
		t.Fatalf("base64 flip not caught by GD-1-1: %+v", r.Findings)
	}
	b = bytes.Replace(eepFile, []byte("<摘要>准予许可"), []byte("<摘要>不予许可"), 1)
	if r := verifyBytes(t, e, b, ev); r.Valid || !failed(r, eep.CodeFixity, "电子签名 部门签名1") || !failed(r, eep.CodePackage, "") {
		t.Fatalf("metadata change not caught: %+v", r.Findings)
	}
	// A foreign root does not make the package trusted.
	other, _ := archive.Open(archive.Config{DataDir: t.TempDir(), Logger: testenv.Logger()})
	defer other.Close()
	r, _ := archive.Verify(bytes.NewReader(eepFile), int64(len(eepFile)), archive.VerifyOptions{Roots: other.Trust()})
	if r.Valid {
		t.Fatal("package trusted under another archive's root")
	}

	// The public verifier answers the same over HTTP.
	body2, ct := multipartBody(nil, []part{{"evidence", "p.evidence", evJSON}, {"file", "p.eep", eepFile}})
	resp, out := e.do(http.MethodPost, "/api/v1/verify?purpose=test", "", body2, ct)
	if resp.StatusCode != 200 || !decode[archive.Report](t, out).Valid {
		t.Fatalf("POST /verify: %d %s", resp.StatusCode, out)
	}
	resp, out = e.do(http.MethodPost, "/api/v1/verify", "", bytes.NewReader(b), "application/xml")
	if resp.StatusCode != 200 || decode[archive.Report](t, out).Valid {
		t.Fatalf("POST /verify of a tampered package: %d %s", resp.StatusCode, out)
	}
}

func verifyBytes(t *testing.T, e *env, b []byte, ev *archive.Evidence) *archive.Report {
	t.Helper()
	rep, err := archive.Verify(bytes.NewReader(b), int64(len(b)), archive.VerifyOptions{Roots: e.a.Trust(), Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func failed(r *archive.Report, code, where string) bool {
	for _, f := range r.Findings {
		if f.Code == code && f.Status == eep.Fail && (where == "" || f.Where == where) {
			return true
		}
	}
	return false
}

func opensslVerifiesPackage(t *testing.T, file []byte, trust string) {
	t.Helper()
	dir := t.TempDir()
	s := bytes.Index(file, []byte("<被签名对象"))
	end := bytes.Index(file, []byte("</被签名对象>")) + len("</被签名对象>")
	block := file[bytes.Index(file, []byte("<电子签名块")):bytes.Index(file, []byte("</电子签名块>"))]
	sig := regexp.MustCompile(`<签名结果>([^<]*)</签名结果>`).FindSubmatch(block)[1]
	cert := regexp.MustCompile(`<证书>([^<]*)</证书>`).FindSubmatch(block)[1]
	der, _ := base64.StdEncoding.DecodeString(string(sig))
	os.WriteFile(filepath.Join(dir, "signed"), file[s:end], 0o644)
	os.WriteFile(filepath.Join(dir, "sig"), der, 0o644)
	os.WriteFile(filepath.Join(dir, "leaf.pem"), []byte("-----BEGIN CERTIFICATE-----\n"+wrap(string(cert))+"-----END CERTIFICATE-----\n"), 0o644)
	run := func(args ...string) string {
		out, err := exec.Command(testenv.Tool(t, "openssl"), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	pub := run("x509", "-in", filepath.Join(dir, "leaf.pem"), "-pubkey", "-noout")
	os.WriteFile(filepath.Join(dir, "pub.pem"), []byte(pub), 0o644)
	if out := run("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", "-pubin",
		"-inkey", filepath.Join(dir, "pub.pem"), "-in", filepath.Join(dir, "signed"), "-sigfile", filepath.Join(dir, "sig")); !strings.Contains(out, "Verified Successfully") {
		t.Fatalf("OpenSSL does not verify the package signature: %s", out)
	}
	if out := run("verify", "-vfyopt", "distid:1234567812345678", "-CAfile", trust, filepath.Join(dir, "leaf.pem")); !strings.Contains(out, ": OK") {
		t.Fatalf("OpenSSL does not chain the signer to the trust root: %s", out)
	}
}

func wrap(s string) string {
	var b strings.Builder
	for len(s) > 64 {
		b.WriteString(s[:64] + "\n")
		s = s[64:]
	}
	return b.String() + s + "\n"
}

// TestBadInputChangesNothing sends each kind of bad request and checks the precise 4xx and
// that no package or object appeared.
func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, Options{MaxBody: 4 << 20})
	c, parts := exampleCase(t)
	// One good ingest first, so the counts are not trivially zero.
	if resp, body := e.ingest(e.tokA, c, parts); resp.StatusCode != 201 {
		t.Fatalf("setup ingest: %d %s", resp.StatusCode, body)
	}
	fresh := func(mut func(m map[string]any)) map[string]any {
		var m map[string]any
		b, _ := json.Marshal(c)
		json.Unmarshal(b, &m)
		m["case_no"] = "QJSCJ-2025-BAD"
		if mut != nil {
			mut(m)
		}
		return m
	}
	jsonOf := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	encPDF := encryptedPDF(t)
	one := func(name, file string, data []byte) (map[string]any, []part) {
		m := fresh(func(m map[string]any) {
			m["documents"] = []any{map[string]any{"file": name, "title": "材料"}}
		})
		return m, []part{{name, file, data}}
	}
	type req struct {
		body  *bytes.Buffer
		ctype string
		token string
	}
	mk := func(cj []byte, ps []part) req { b, ct := multipartBody(cj, ps); return req{b, ct, e.tokA} }
	as := func(tok string, r req) req { r.token = tok; return r }
	txtCase, txtParts := one("notes", "tool.exe", []byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff a program, not a record"))
	jpgAsPDF, jpgParts := one("scan", "scan.pdf", parts[1].data)
	encCase, encParts := one("enc", "enc.pdf", encPDF)
	emptyCase, emptyParts := one("empty", "empty.pdf", nil)
	dotCase, dotParts := one("d", "../../etc/passwd.pdf", parts[2].data)
	absCase, absParts := one("d", "/etc/passwd.pdf", parts[2].data)
	truncated := mk(jsonOf(fresh(nil)), parts)
	truncated.body.Truncate(truncated.body.Len() - 300)
	big := bytes.Repeat([]byte("%PDF-1.7\n"), 600000)
	bigCase, bigParts := one("big", "big.pdf", big)

	cases := []struct {
		name   string
		req    req
		status int
		typ    string
		field  string
	}{
		{"malformed JSON", mk([]byte(`{"case_no": "x",`), parts), 400, "bad-upload", "case"},
		{"missing fields", mk([]byte(`{"case_no":"QJSCJ-1","documents":[{"file":"a","title":"t"}]}`), nil), 422, "invalid-case", "item.code"},
		{"unknown retention", mk(jsonOf(fresh(func(m map[string]any) { m["retention"] = "D99" })), parts), 422, "invalid-case", "retention"},
		{"bad USCC check character", mk(jsonOf(fresh(func(m map[string]any) {
			m["department"] = map[string]any{"name": "x", "uscc": "11610830MB1234567X"}
		})), parts), 422, "invalid-case", "department.uscc"},
		{"bad resident ID", mk(jsonOf(fresh(func(m map[string]any) {
			m["applicant"].(map[string]any)["id_number"] = "110105194912310021"
		})), parts), 422, "invalid-case", "applicant.id_number"},
		{"finished before accepted", mk(jsonOf(fresh(func(m map[string]any) { m["finished_at"] = "2025-02-01T00:00:00+08:00" })), parts), 422, "invalid-case", "finished_at"},
		{"finished in the future", mk(jsonOf(fresh(func(m map[string]any) { m["finished_at"] = "2099-01-01T00:00:00+08:00" })), parts), 422, "invalid-case", "finished_at"},
		{"unknown field", mk(jsonOf(fresh(func(m map[string]any) { m["retension"] = "D30" })), parts), 422, "invalid-request", "retension"},
		{"department token for another department", as(e.tokB, mk(jsonOf(fresh(nil)), parts)), 403, "forbidden", "department.uscc"},
		{"no token", as("", mk(jsonOf(fresh(nil)), parts)), 401, "unauthorized", ""},
		{"archive token cannot ingest", as(e.admin, mk(jsonOf(fresh(nil)), parts)), 403, "forbidden", ""},
		{"unsupported format", mk(jsonOf(txtCase), txtParts), 415, "unsupported-format", "documents[0].file"},
		{"mislabelled format", mk(jsonOf(jpgAsPDF), jpgParts), 415, "mislabelled-format", "documents[0].file"},
		{"encrypted PDF", mk(jsonOf(encCase), encParts), 422, "encrypted-document", "documents[0].file"},
		{"0-byte file", mk(jsonOf(emptyCase), emptyParts), 400, "bad-upload", "documents[0].file"},
		{"truncated multipart body", truncated, 400, "bad-upload", ""},
		{"part not listed", mk(jsonOf(fresh(nil)), append(append([]part{}, parts...), part{"extra", "x.pdf", parts[2].data})), 400, "bad-upload", "documents"},
		{"part sent twice", mk(jsonOf(fresh(nil)), append(append([]part{}, parts...), parts[0])), 400, "bad-upload", "documents[0].file"},
		{"part listed twice", mk(jsonOf(fresh(func(m map[string]any) {
			d := m["documents"].([]any)
			m["documents"] = append(d, d[0])
		})), parts), 422, "invalid-case", "documents[3].file"},
		{"listed part missing", mk(jsonOf(fresh(nil)), parts[:2]), 400, "bad-upload", "documents[2].file"},
		{"file name with ../", mk(jsonOf(dotCase), dotParts), 400, "bad-upload", "documents[0].file"},
		{"absolute file name", mk(jsonOf(absCase), absParts), 400, "bad-upload", "documents[0].file"},
		{"body over the limit", mk(jsonOf(bigCase), bigParts), 413, "too-large", ""},
		{"case part not first", mk(nil, parts), 400, "bad-upload", "case"},
		{"not multipart", req{bytes.NewBufferString(`{"case_no":"x"}`), "application/json", e.tokA}, 400, "bad-upload", ""},
	}
	n0, o0 := e.counts()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(http.MethodPost, "/api/v1/cases", tc.req.token, tc.req.body, tc.req.ctype)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q", ct)
			}
			p := decode[Problem](t, body)
			if p.Type != ProblemBase+tc.typ || (tc.field != "" && p.Field != tc.field) || p.Detail == "" {
				t.Fatalf("problem type %q field %q, want %q %q: %s", p.Type, p.Field, tc.typ, tc.field, body)
			}
			if n1, o1 := e.counts(); n1 != n0 || o1 != o0 {
				t.Fatalf("bad input changed the store: packages %d→%d, objects %d→%d", n0, n1, o0, o1)
			}
		})
	}
	// Missing fields are each named.
	missing := mk([]byte(`{"case_no":"QJSCJ-1","documents":[{"file":"a","title":"t"}]}`), nil)
	_, body := e.do(http.MethodPost, "/api/v1/cases", e.tokA, missing.body, missing.ctype)
	p := decode[Problem](t, body)
	var fields []string
	for _, f := range p.Errors {
		fields = append(fields, f.Field)
	}
	for _, want := range []string{"item.code", "item.name", "department.uscc", "applicant.name", "accepted_at", "finished_at", "result.status", "retention", "sharing.scope"} {
		if !contains(fields, want) {
			t.Errorf("missing field %s not named; named: %v", want, fields)
		}
	}
	// Item numbers stayed continuous: the next good case is item 2.
	resp, body := e.ingest(e.tokA, fresh(func(m map[string]any) { m["case_no"] = "QJSCJ-2025-NEXT" }), parts)
	if resp.StatusCode != 201 || !strings.HasSuffix(decode[PackageView](t, body).ArchivalCode, "-0002") {
		t.Fatalf("next ingest after failures: %d %s", resp.StatusCode, body)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func encryptedPDF(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "in.pdf")
	os.WriteFile(src, mustRead(t, "../examples/case-001/decision.pdf"), 0o644)
	out := filepath.Join(dir, "enc.pdf")
	if err := api.EncryptFile(src, out, model.NewAESConfiguration("", "owner", 256)); err != nil {
		t.Fatal(err)
	}
	return mustRead(t, out)
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// refusedCorpus are the corpus files an archive must refuse, with what the refusal names:
// encryption (DA/T 70 GD-3-8) and a signature whose signed value is not in the package.
var refusedCorpus = map[string]string{
	"veraPDF_test_suite_6-1-3-t02-fail-a.pdf":    "encrypted",
	"pdf-rsa-encrypted-certified.pdf":            "encrypted",
	"ofd-koal-four-sigs-missing-signedvalue.ofd": "SignedValue",
}

// TestCorpusIngestsOrIsRefusedClearly ingests every corpus file as a one-document case:
// each is archived, except the few an archive must refuse, which get a 4xx naming why.
func TestCorpusIngestsOrIsRefusedClearly(t *testing.T) {
	e := newEnv(t, Options{})
	files, _ := filepath.Glob("../../shared/corpus/*/*.*")
	var docs []string
	for _, f := range files {
		if ext := filepath.Ext(f); ext == ".ofd" || ext == ".pdf" {
			docs = append(docs, f)
		}
	}
	if len(docs) < 30 {
		t.Fatalf("corpus missing: found %d files under ../../shared/corpus", len(docs))
	}
	created := 0
	for i, f := range docs {
		name := filepath.Base(f)
		c, _ := exampleCase(t)
		c["case_no"] = fmt.Sprintf("CORPUS-%03d", i)
		c["documents"] = []any{map[string]any{"file": "doc", "title": name, "main": true}}
		resp, body := e.ingest(e.tokA, c, []part{{"doc", name, mustRead(t, f)}})
		why, refuse := refusedCorpus[name]
		switch {
		case resp.StatusCode == 201 && !refuse:
			created++
		case resp.StatusCode == 201:
			t.Errorf("%s was archived; it must be refused (%s)", name, why)
		case resp.StatusCode >= 400 && resp.StatusCode < 500 && refuse:
			if p := decode[Problem](t, body); !strings.Contains(p.Detail, why) || p.Field == "" {
				t.Errorf("%s: %d does not name %q and the field: %s", name, resp.StatusCode, why, body)
			}
		default:
			t.Errorf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	if created != len(docs)-len(refusedCorpus) {
		t.Fatalf("%d of %d corpus files were archived, want all but the %d refused", created, len(docs), len(refusedCorpus))
	}
}

func TestDepartmentsSeeOnlyTheirOwnRecords(t *testing.T) {
	e := newEnv(t, Options{})
	c, parts := exampleCase(t)
	_, body := e.ingest(e.tokA, c, parts)
	id := decode[PackageView](t, body).ID
	auditor, _ := e.a.CreateToken(archive.RoleAuditor, "", "")
	archivist, _ := e.a.CreateToken(archive.RoleArchive, "", "")
	for _, path := range []string{"", "/eep", "/documents/1", "/evidence"} {
		if resp, _ := e.do(http.MethodGet, "/api/v1/packages/"+id+path, e.tokB, nil, ""); resp.StatusCode != 404 {
			t.Errorf("department B reads A's package%s: %d", path, resp.StatusCode)
		}
		if resp, _ := e.do(http.MethodGet, "/api/v1/packages/"+id+path, archivist, nil, ""); resp.StatusCode != 200 {
			t.Errorf("archive role cannot read package%s: %d", path, resp.StatusCode)
		}
		want := 404
		if path == "/evidence" {
			want = 200
		} else if path == "" {
			want = 403
		}
		if resp, _ := e.do(http.MethodGet, "/api/v1/packages/"+id+path, auditor, nil, ""); resp.StatusCode != want {
			t.Errorf("auditor package%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	_, list := e.do(http.MethodGet, "/api/v1/packages", e.tokB, nil, "")
	if len(decode[struct{ Packages []PackageView }](t, list).Packages) != 0 {
		t.Fatal("department B's search lists A's package")
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/packages?department="+deptA, e.tokB, nil, ""); resp.StatusCode != 403 {
		t.Fatalf("department B searching A: %d", resp.StatusCode)
	}
	_, list = e.do(http.MethodGet, "/api/v1/packages?year=2025&department="+deptA, archivist, nil, "")
	if len(decode[struct{ Packages []PackageView }](t, list).Packages) != 1 {
		t.Fatal("the archive's list of A's 2025 does not hold the package")
	}
	for query, field := range map[string]string{"q=食品": "q", "year=2025&item_code=X": "year", "cursor=zzz": "cursor", "limit=5000": "limit", "retention=D30": "retention"} {
		resp, body := e.do(http.MethodGet, "/api/v1/packages?"+query, archivist, nil, "")
		if resp.StatusCode != 422 || decode[Problem](t, body).Field != field {
			t.Errorf("list ?%s: %d %s, want 422 naming %s", query, resp.StatusCode, body, field)
		}
	}
	// Statistics: each department its own, the archive all, and the gauges.
	type stats struct {
		Total struct{ Count, Bytes int64 }
		By    map[string]map[string]struct{ Count, Bytes int64 }
	}
	_, body = e.do(http.MethodGet, "/api/v1/statistics", e.tokB, nil, "")
	if st := decode[stats](t, body); st.Total.Count != 0 {
		t.Errorf("department B's statistics count A's package: %s", body)
	}
	_, body = e.do(http.MethodGet, "/api/v1/statistics", e.tokA, nil, "")
	stA := decode[stats](t, body)
	if stA.Total.Count != 1 || stA.Total.Bytes == 0 || stA.By["year"]["2025"].Count != 1 || stA.By["department"] != nil {
		t.Errorf("department A's statistics: %s", body)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/statistics?department="+deptA, e.tokB, nil, ""); resp.StatusCode != 403 {
		t.Errorf("department B read A's statistics: %d", resp.StatusCode)
	}
	_, body = e.do(http.MethodGet, "/api/v1/statistics", archivist, nil, "")
	if st := decode[stats](t, body); st.By["department"][deptA].Count != 1 {
		t.Errorf("the archive's statistics by department: %s", body)
	}
	_, m := e.do(http.MethodGet, "/metrics", "", nil, "")
	if want := fmt.Sprintf(`dangan_holdings_bytes{department="%s",dimension="total",value=""} %d`, deptA, stA.Total.Bytes); !strings.Contains(string(m), want) {
		t.Errorf("metrics lack %s", want)
	}
	if !strings.Contains(string(m), "dangan_search_ready ") || !strings.Contains(string(m), "dangan_search_queued ") {
		t.Error("metrics lack the search indexer's gauges")
	}
	// Tokens: admin only.
	if resp, _ := e.do(http.MethodPost, "/api/v1/tokens", e.tokA, strings.NewReader(`{"role":"admin"}`), "application/json"); resp.StatusCode != 403 {
		t.Fatalf("department creates a token: %d", resp.StatusCode)
	}
	resp, body := e.do(http.MethodPost, "/api/v1/tokens", e.admin, strings.NewReader(`{"role":"department","org":"bad"}`), "application/json")
	if resp.StatusCode != 422 || decode[Problem](t, body).Field != "org" {
		t.Fatalf("token with a bad USCC: %d %s", resp.StatusCode, body)
	}
}

// TestOpenAPIDescribesEveryRoute compares the router with the OpenAPI document. The
// console's pages (under /console) are for people, not part of the API.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var inDoc, inRouter []string
	for p, ops := range doc.Paths {
		for m := range ops {
			inDoc = append(inDoc, strings.ToUpper(m)+" "+p)
		}
	}
	s := &server{metrics: newMetrics()}
	chi.Walk(s.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if route == "/console" || strings.HasPrefix(route, console.Prefix) {
			return nil
		}
		inRouter = append(inRouter, method+" "+strings.TrimSuffix(route, "/"))
		return nil
	})
	sort.Strings(inDoc)
	sort.Strings(inRouter)
	if strings.Join(inDoc, "\n") != strings.Join(inRouter, "\n") {
		t.Fatalf("router and OpenAPI differ\nrouter:\n%s\n\nopenapi:\n%s", strings.Join(inRouter, "\n"), strings.Join(inDoc, "\n"))
	}
}

func TestTSAAnswersOpenSSL(t *testing.T) {
	e := newEnv(t, Options{})
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.WriteFile(data, []byte("档案"), 0o644)
	q := filepath.Join(dir, "q.tsq")
	if out, err := exec.Command(testenv.Tool(t, "openssl"), "ts", "-query", "-data", data, "-sm3", "-cert", "-out", q).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	resp, body := e.do(http.MethodPost, "/tsa", "", bytes.NewReader(mustRead(t, q)), "application/timestamp-query")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
		t.Fatalf("TSA: %d", resp.StatusCode)
	}
	r := filepath.Join(dir, "r.tsr")
	os.WriteFile(r, body, 0o644)
	out, err := exec.Command(testenv.Tool(t, "openssl"), "ts", "-reply", "-in", r, "-text").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Status: Granted") || !strings.Contains(string(out), "sm3") {
		t.Fatalf("openssl ts -reply: %v\n%s", err, out)
	}
	if resp, _ := e.do(http.MethodPost, "/tsa", "", strings.NewReader("x"), "text/plain"); resp.StatusCode != 415 {
		t.Fatalf("TSA with a wrong content type: %d", resp.StatusCode)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	e := newEnv(t, Options{})
	c, parts := exampleCase(t)
	e.ingest(e.tokA, c, parts)
	for _, p := range []string{"/healthz", "/readyz"} {
		if resp, _ := e.do(http.MethodGet, p, "", nil, ""); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", p, resp.StatusCode)
		}
	}
	_, m := e.do(http.MethodGet, "/metrics", "", nil, "")
	if !strings.Contains(string(m), "dangan_packages_ingested_total 1") || !strings.Contains(string(m), `dangan_http_requests_total{method="POST",route="/api/v1/cases",status="201"} 1`) {
		t.Fatalf("metrics lack the ingest:\n%s", m)
	}
	// Readiness fails while the store is unreachable. A file where the store's directory
	// was: the checkpointer's next write cannot quietly make it again.
	os.RemoveAll(filepath.Join(e.dir, "objects"))
	os.WriteFile(filepath.Join(e.dir, "objects"), nil, 0o600)
	resp, body := e.do(http.MethodGet, "/readyz", "", nil, "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || decode[Problem](t, body).Type != ProblemBase+"unavailable" {
		t.Fatalf("readyz without a store: %d %s", resp.StatusCode, body)
	}
}

// TestWalkThroughOnMinIO runs ingest, re-send, ranged document reads, evidence and
// verification with the objects in a real MinIO bucket.
func TestWalkThroughOnMinIO(t *testing.T) {
	srv := miniotest.Start(t)
	st, err := storage.OpenS3(context.Background(), storage.S3Config{Endpoint: srv.Endpoint, Bucket: "dangan", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, Options{}, st)
	c, parts := exampleCase(t)
	resp, body := e.ingest(e.tokA, c, parts)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("ingest on MinIO: %d %s", resp.StatusCode, body)
	}
	pkg := decode[PackageView](t, body)
	if resp, _ := e.ingest(e.tokA, c, parts); resp.StatusCode != http.StatusOK {
		t.Fatalf("identical re-send on MinIO: %d", resp.StatusCode)
	}
	for i, p := range parts {
		resp, got := e.do(http.MethodGet, fmt.Sprintf("/api/v1/packages/%s/documents/%d?original=1", pkg.ID, i+1), e.tokA, nil, "")
		if resp.StatusCode != 200 || !bytes.Equal(got, p.data) {
			t.Fatalf("document %d from MinIO: %d, %d bytes", i+1, resp.StatusCode, len(got))
		}
	}
	_, eepFile := e.do(http.MethodGet, "/api/v1/packages/"+pkg.ID+"/eep", e.tokA, nil, "")
	_, evJSON := e.do(http.MethodGet, "/api/v1/packages/"+pkg.ID+"/evidence", e.tokA, nil, "")
	ev, err := archive.LoadEvidence(evJSON)
	if err != nil {
		t.Fatal(err)
	}
	if rep := verifyBytes(t, e, eepFile, ev); !rep.Valid {
		t.Fatalf("package from MinIO does not verify: %+v", rep.Findings)
	}
	// Nothing went to the local object directory.
	if entries, _ := os.ReadDir(filepath.Join(e.dir, "objects")); len(entries) != 0 {
		t.Fatalf("objects written locally while on MinIO: %v", entries)
	}
}

// TestRetentionOnBothBackends: a package cannot be deleted or overwritten before its
// retention ends, on the filesystem (dangan refuses) and on MinIO (the server refuses too);
// retention only grows; a legal hold is recorded and, on MinIO, set on the object.
func TestRetentionOnBothBackends(t *testing.T) {
	srv := miniotest.Start(t)
	s3, err := storage.OpenS3(context.Background(), storage.S3Config{Endpoint: srv.Endpoint, Bucket: "dangan-worm", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]storage.ObjectStore{"filesystem": nil, "minio": s3} {
		t.Run(name, func(t *testing.T) {
			e := newEnvOn(t, Options{}, st)
			archivist, _ := e.a.CreateToken(archive.RoleArchive, "", "")
			c, parts := exampleCase(t)
			_, body := e.ingest(e.tokA, c, parts)
			pkg := decode[PackageView](t, body)
			if pkg.RetainUntil != "2056-01-01" { // D30, finished in 2025: through 2055
				t.Fatalf("retain_until %q", pkg.RetainUntil)
			}
			store := e.a.Store()
			p, _ := e.a.Index().Package(pkg.ID)

			resp, out := e.do(http.MethodDelete, "/api/v1/packages/"+pkg.ID, archivist, nil, "")
			prob := decode[Problem](t, out)
			if resp.StatusCode != 409 || prob.Type != ProblemBase+"retained" || prob.RetainedUntil != "2056-01-01" {
				t.Fatalf("DELETE of a retained package: %d %s", resp.StatusCode, out)
			}
			if resp, _ := e.do(http.MethodDelete, "/api/v1/packages/"+pkg.ID, e.tokA, nil, ""); resp.StatusCode != 403 {
				t.Fatalf("department DELETE: %d", resp.StatusCode)
			}
			if _, err := store.Stat(context.Background(), p.Key); err != nil {
				t.Fatalf("the package object went away: %v", err)
			}
			// Never overwritten, whatever the store.
			if _, err := store.Put(context.Background(), p.Key, strings.NewReader("forged"), 6, storage.PutOptions{}); !errors.Is(err, storage.ErrExists) {
				t.Fatalf("overwrite of a package object: %v", err)
			}

			// Retention only grows.
			resp, out = e.do(http.MethodPut, "/api/v1/packages/"+pkg.ID+"/retention", archivist, strings.NewReader(`{"until":"2040-01-01","reason":"test"}`), "application/json")
			if resp.StatusCode != 409 || decode[Problem](t, out).Type != ProblemBase+"retention-shortened" {
				t.Fatalf("shorter retention: %d %s", resp.StatusCode, out)
			}
			resp, out = e.do(http.MethodPut, "/api/v1/packages/"+pkg.ID+"/retention", archivist, strings.NewReader(`{"until":"2070-06-30","reason":"appraisal: historical value"}`), "application/json")
			if resp.StatusCode != 200 || decode[PackageView](t, out).RetainUntil != "2070-06-30" {
				t.Fatalf("longer retention: %d %s", resp.StatusCode, out)
			}
			resp, out = e.do(http.MethodPut, "/api/v1/packages/"+pkg.ID+"/legal-hold", archivist, strings.NewReader(`{"on":true}`), "application/json")
			if resp.StatusCode != 422 || decode[Problem](t, out).Field != "reason" {
				t.Fatalf("legal hold without a reason: %d %s", resp.StatusCode, out)
			}
			resp, out = e.do(http.MethodPut, "/api/v1/packages/"+pkg.ID+"/legal-hold", archivist, strings.NewReader(`{"on":true,"reason":"litigation 2026-17"}`), "application/json")
			if resp.StatusCode != 200 || !decode[PackageView](t, out).LegalHold {
				t.Fatalf("legal hold: %d %s", resp.StatusCode, out)
			}
			resp, out = e.do(http.MethodDelete, "/api/v1/packages/"+pkg.ID, archivist, nil, "")
			if resp.StatusCode != 409 || !decode[Problem](t, out).LegalHold {
				t.Fatalf("DELETE under a legal hold: %d %s", resp.StatusCode, out)
			}

			if r, ok := store.(storage.Retainer); ok {
				// The server itself refuses to delete the locked version.
				if err := store.Delete(context.Background(), p.Key); !errors.Is(err, storage.ErrRetained) {
					t.Fatalf("MinIO deleted a compliance-locked object: %v", err)
				}
				until, hold, err := r.Retention(context.Background(), p.Key)
				if err != nil || !hold || until.Format(time.DateOnly) != "2070-06-29" && until.Format(time.DateOnly) != "2070-06-30" {
					t.Fatalf("object retention %v hold %v err %v", until, hold, err)
				}
			}
		})
	}
}

// TestMinIOOutage: with MinIO stopped, ingests fail within 10 s with 503 and Retry-After,
// /readyz is not ready and nothing is indexed; when MinIO is back, ingest works again
// without restarting dangan.
func TestMinIOOutage(t *testing.T) {
	srv := miniotest.Start(t)
	st, err := storage.OpenS3(context.Background(), storage.S3Config{Endpoint: srv.Endpoint, Bucket: "dangan-outage", AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, Options{}, st)
	c, parts := exampleCase(t)
	if resp, body := e.ingest(e.tokA, c, parts); resp.StatusCode != 201 {
		t.Fatalf("ingest before the outage: %d %s", resp.StatusCode, body)
	}
	srv.Stop()
	time.Sleep(1100 * time.Millisecond) // past the cached health check
	n0, _ := e.a.Index().Count()
	c["case_no"] = "QJSCJ-2025-OUTAGE"
	start := time.Now()
	resp, body := e.ingest(e.tokA, c, parts)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("ingest during the outage took %v", d)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || decode[Problem](t, body).Type != ProblemBase+"unavailable" {
		t.Fatalf("ingest during the outage: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodGet, "/readyz", "", nil, ""); resp.StatusCode != 503 {
		t.Fatalf("readyz during the outage: %d", resp.StatusCode)
	}
	if n1, _ := e.a.Index().Count(); n1 != n0 {
		t.Fatal("something was indexed during the outage")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body = e.ingest(e.tokA, c, parts)
		if resp.StatusCode == 201 || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if resp.StatusCode != 201 {
		t.Fatalf("ingest after MinIO came back: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodGet, "/readyz", "", nil, ""); resp.StatusCode != 200 {
		t.Fatalf("readyz after the outage: %d", resp.StatusCode)
	}
}

func TestMain(m *testing.M) { testenv.RunCheckingLogs(m) }
