package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// 电子证照: an issuer issues a certificate from the form and finds it listed, with its PDF to
// download, and never with the holder's identity number on the page; a refused form does not
// echo the number back; revoking it with a reason marks it revoked; a department account
// does not reach the page.
func TestCertificatesPage(t *testing.T) {
	a, srv := newConsole(t)
	dept := uscc(t, 9)
	addAccounts(t, a, []archive.Account{{Name: "issuer", Display: "发证员", Role: archive.RoleIssuer, Department: dept},
		{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept}}...)
	issuer := loginAs(t, srv.URL, "issuer", "long enough password")
	const idNumber = "11010519491231002X"
	form := url.Values{"type_code": {"11100000000013338W009"}, "title": {"残疾人证"}, "number": {"43010219800101001X42"},
		"holder_name": {"王堃"}, "holder_code": {idNumber}, "holder_code_type": {"111"},
		"valid_from": {fmt.Sprintf("%d-01-01", time.Now().Year())}, "valid_until": {fmt.Sprintf("%d-01-01", time.Now().Year()+10)},
		"issuer_name": {"某县残疾人联合会"}, "fields": {"残疾类别=肢体"}}
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("type_code", "not a type code")
	resp, body := send(t, "POST", srv.URL+"/console/certificates", bad, issuer, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(body, idNumber) {
		t.Fatalf("a refused form: %d, echoes the ID number: %v", resp.StatusCode, strings.Contains(body, idNumber))
	}
	resp, _ = send(t, "POST", srv.URL+"/console/certificates", form, issuer, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("issue: %d", resp.StatusCode)
	}
	done, _ := url.QueryUnescape(strings.TrimPrefix(resp.Header.Get("Location"), "/console/certificates?done="))
	resp, body = send(t, "GET", srv.URL+resp.Header.Get("Location"), nil, issuer, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<code>"+done+"</code>") || !strings.Contains(body, "王堃") || strings.Contains(body, idNumber) {
		t.Fatalf("the list after issuing %q: %d %s", done, resp.StatusCode, body)
	}
	resp, pdf := send(t, "GET", srv.URL+"/console/certificates/"+done+"/pdf", nil, issuer, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(pdf, "%PDF-") {
		t.Fatalf("the PDF: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/certificates/"+done+"/revoke", url.Values{"code": {"03"}, "reason": {""}}, issuer, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("revoke without a reason: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/certificates/"+done+"/revoke", url.Values{"code": {"03"}, "reason": {"信息有误"}}, issuer, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if cert, err := a.Certificate(archive.Principal{Role: archive.RoleIssuer, Org: dept}, done); err != nil || cert.Status != "revoked" {
		t.Fatalf("after revoking: %+v %v", cert, err)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/certificates", nil, loginAs(t, srv.URL, "clerk", "long enough password"), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a department account on the certificates page: %d", resp.StatusCode)
	}
}
