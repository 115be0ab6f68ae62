package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// citizenCert is valid from the first day of this year for ten years, so it is valid on
// whatever day the test runs.
var citizenCert = fmt.Sprintf(`{"type_code":"11100000000013338W009","title":"残疾人证","number":"43010219800101001X42",
 "holder":{"name":"王堃","code":"11010519491231002X","code_type":"111"},"valid_from":"%[1]d-01-01","valid_until":"%[2]d-01-01",
 "issuer_name":"某县残疾人联合会","fields":[{"name":"残疾类别","value":"肢体"}]}`, time.Now().Year(), time.Now().Year()+10)

func (e *env) verifyFile(name string, file []byte, fields map[string]string) (*http.Response, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if file != nil {
		w, _ := mw.CreateFormFile("file", name)
		w.Write(file)
	}
	mw.Close()
	return e.do(http.MethodPost, "/api/v1/verify", "", &buf, mw.FormDataContentType())
}

func TestCertificatesOverHTTP(t *testing.T) {
	e := newEnv(t, Options{PublicRate: -1})
	issuerA, _ := e.a.CreateToken(archive.RoleIssuer, deptA, "证照发证")
	issuerB, _ := e.a.CreateToken(archive.RoleIssuer, deptB, "")

	// Only an issuer token issues; a bad request names its field.
	if resp, _ := e.do(http.MethodPost, "/api/v1/certificates", e.tokA, strings.NewReader(citizenCert), "application/json"); resp.StatusCode != 403 {
		t.Fatalf("a department token issued: %d", resp.StatusCode)
	}
	resp, body := e.do(http.MethodPost, "/api/v1/certificates", issuerA, strings.NewReader(strings.Replace(citizenCert, `"111"`, `"112"`, 1)), "application/json")
	if resp.StatusCode != 422 || decode[Problem](t, body).Field != "holder.code_type" {
		t.Fatalf("bad code type: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(http.MethodPost, "/api/v1/certificates", issuerA, strings.NewReader(citizenCert), "application/json")
	if resp.StatusCode != 201 {
		t.Fatalf("issue: %d %s", resp.StatusCode, body)
	}
	c := decode[archive.Certificate](t, body)

	// The public status never shows the identity number.
	resp, body = e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"?purpose=bank", "", nil, "")
	st := decode[archive.CertStatus](t, body)
	if resp.StatusCode != 200 || st.Status != "valid" || st.StatusCode != "01" || st.Holder != "王堃" || bytes.Contains(body, []byte("11010519491231002X")) {
		t.Fatalf("status: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(http.MethodGet, "/api/v1/certificates/1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.1", "", nil, ""); resp.StatusCode != 422 {
		t.Fatalf("a bad check character: %d %s", resp.StatusCode, body)
	}

	// Files: the issuer and the archive may download, another department's issuer may not.
	resp, pdf := e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"/pdf", issuerA, nil, "")
	if resp.StatusCode != 200 || !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("pdf: %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"/ofd", issuerB, nil, ""); resp.StatusCode != 404 {
		t.Fatalf("another issuer read the OFD: %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"/ofd", e.tokA, nil, ""); resp.StatusCode != 403 {
		t.Fatalf("a department token read the OFD: %d", resp.StatusCode)
	}
	_, ofdFile := e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"/ofd", issuerA, nil, "")

	// Verify both files, the identifier (JSON) and a tampered PDF.
	for name, f := range map[string][]byte{"c.pdf": pdf, "c.ofd": ofdFile} {
		resp, body := e.verifyFile(name, f, map[string]string{"purpose": "贷款审核"})
		rep := decode[archive.CertReport](t, body)
		if resp.StatusCode != 200 || !rep.Valid || rep.Identifier != c.Identifier {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
	}
	resp, body = e.do(http.MethodPost, "/api/v1/verify", "", strings.NewReader(`{"identifier":"`+c.Identifier+`"}`), "application/json")
	if rep := decode[archive.CertReport](t, body); resp.StatusCode != 200 || !rep.Valid || rep.Kind != "identifier" {
		t.Fatalf("identifier: %s", body)
	}
	bad := append([]byte(nil), pdf...)
	bad[len(bad)/2] ^= 1
	_, body = e.verifyFile("c.pdf", bad, nil)
	if rep := decode[archive.CertReport](t, body); rep.Valid || len(rep.Failed()) == 0 {
		t.Fatalf("tampered: %s", body)
	}
	if resp, body := e.verifyFile("x", nil, nil); resp.StatusCode != 400 {
		t.Fatalf("nothing to verify: %d %s", resp.StatusCode, body)
	}

	// Update, then revoke; the list follows.
	resp, body = e.do(http.MethodPut, "/api/v1/certificates/"+c.Identifier, issuerB, strings.NewReader(citizenCert), "application/json")
	if resp.StatusCode != 404 {
		t.Fatalf("another issuer updated: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(http.MethodPut, "/api/v1/certificates/"+c.Identifier, issuerA, strings.NewReader(citizenCert), "application/json")
	if resp.StatusCode != 201 {
		t.Fatalf("update: %d %s", resp.StatusCode, body)
	}
	v2 := decode[archive.Certificate](t, body)
	resp, body = e.do(http.MethodPost, "/api/v1/certificates/"+v2.Identifier+"/revoke", issuerA, strings.NewReader(`{"code":"03","reason":"申请人主动注销"}`), "application/json")
	if resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodPost, "/api/v1/certificates/"+v2.Identifier+"/revoke", issuerA, strings.NewReader(`{"code":"03","reason":"again"}`), "application/json"); resp.StatusCode != 409 {
		t.Fatalf("revoked twice: %d", resp.StatusCode)
	}
	_, body = e.do(http.MethodGet, "/api/v1/certificates/revocations", "", nil, "")
	var signed archive.Signed
	json.Unmarshal(body, &signed)
	if !strings.Contains(signed.Body, c.Identifier) || !strings.Contains(signed.Body, v2.Identifier) || !strings.Contains(signed.Body, "申请人主动注销") {
		t.Fatalf("revocation list: %s", signed.Body)
	}
	_, body = e.do(http.MethodGet, "/api/v1/certificates?status=revoked", issuerA, nil, "")
	list := decode[struct{ Certificates []archive.Certificate }](t, body)
	if len(list.Certificates) != 1 || list.Certificates[0].Identifier != v2.Identifier {
		t.Fatalf("revoked list: %s", body)
	}
	if _, body = e.do(http.MethodGet, "/api/v1/certificates", issuerB, nil, ""); strings.Contains(string(body), c.Identifier) {
		t.Fatalf("another issuer lists them: %s", body)
	}
}

func TestPublicRateLimit(t *testing.T) {
	e := newEnv(t, Options{PublicRate: 1, PublicBurst: 3})
	codes := []int{}
	var last *http.Response
	for range 5 {
		resp, _ := e.do(http.MethodGet, "/api/v1/log/checkpoint", "", nil, "")
		codes = append(codes, resp.StatusCode)
		last = resp
	}
	if codes[0] == 429 || codes[2] == 429 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("codes %v", codes)
	}
	if s, err := strconv.Atoi(last.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q", last.Header.Get("Retry-After"))
	}
	// Authenticated and health endpoints are not limited.
	for range 5 {
		if resp, _ := e.do(http.MethodGet, "/healthz", "", nil, ""); resp.StatusCode != 200 {
			t.Fatal("healthz limited")
		}
		if resp, _ := e.do(http.MethodGet, "/api/v1/packages", e.tokA, nil, ""); resp.StatusCode == 429 {
			t.Fatal("an authenticated call limited")
		}
	}
}

func TestVerifyPage(t *testing.T) {
	e := newEnv(t, Options{PublicRate: -1})
	issuer, _ := e.a.CreateToken(archive.RoleIssuer, deptA, "")
	_, body := e.do(http.MethodPost, "/api/v1/certificates", issuer, strings.NewReader(citizenCert), "application/json")
	c := decode[archive.Certificate](t, body)

	resp, page := e.do(http.MethodGet, "/verify", "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(page), `<form method="post" action="/verify" enctype="multipart/form-data">`) || strings.Contains(string(page), "<script") {
		t.Fatalf("form: %d", resp.StatusCode)
	}
	resp, page = e.do(http.MethodGet, "/verify?id="+c.Identifier, "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(page), "有效") || !strings.Contains(string(page), `class="verdict valid"`) {
		t.Fatalf("QR link: %d %s", resp.StatusCode, page)
	}
	// The form as a browser sends it with an identifier typed and no file chosen.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("purpose", "")
	mw.WriteField("identifier", c.Identifier)
	mw.CreateFormFile("file", "")
	mw.Close()
	resp, page = e.do(http.MethodPost, "/verify", "", &buf, mw.FormDataContentType())
	if resp.StatusCode != 200 || !strings.Contains(string(page), `class="verdict valid"`) {
		t.Fatalf("identifier typed, no file: %d %s", resp.StatusCode, page)
	}
	resp, page = e.do(http.MethodGet, "/verify?id=1.2.156.3005.2.x", "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(page), `class="verdict invalid"`) || !strings.Contains(string(page), "证照标识") {
		t.Fatalf("bad identifier: %s", page)
	}
}
