package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// 延期移交 in the console: a clerk asks for a later transfer of a permanent record, which
// waits undelivered while no county archive is configured; on the receiving side the
// archivist sees the request and decides it with a reason.
func TestDeferralForms(t *testing.T) {
	a, srv := newConsole(t)
	dept := uscc(t, 41)
	addAccounts(t, a, archive.Account{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept})
	id := ingestScoped(t, a, dept, "DEF-C1", "重大项目审批", "项目", "Y", time.Now().AddDate(-8, 0, 0), archive.SharingNone)
	clerk, wang := loginAs(t, srv.URL, "clerk", password), loginAs(t, srv.URL, "wang", password)
	if resp, body := send(t, "POST", srv.URL+"/console/transfers/deferrals", url.Values{"packages": {id}, "until": {"2060"}, "reason": {"仍在利用"}}, clerk, nil); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "until") {
		t.Fatalf("a year past the bound: %d %s", resp.StatusCode, body)
	}
	next := time.Now().Year() + 2
	if resp, _ := send(t, "POST", srv.URL+"/console/transfers/deferrals", url.Values{"packages": {id}, "until": {strconv.Itoa(next)}, "reason": {"仍在利用"}}, clerk, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("request: %d", resp.StatusCode)
	}
	_, body := send(t, "GET", srv.URL+"/console/transfers", nil, clerk, nil)
	if !strings.Contains(body, "未送达") || !strings.Contains(body, "/check") {
		t.Fatalf("the clerk's page: %s", body)
	}
	ds, _, _ := a.Deferrals(t.Context(), archive.Principal{Role: archive.RoleArchive}, "", 10)
	if len(ds) != 1 {
		t.Fatalf("%d deferrals", len(ds))
	}
	if _, err := a.ReceiveDeferral(t.Context(), archive.Principal{Role: archive.RoleArchive}, ds[0].Request); err != nil {
		t.Fatal(err)
	}
	if _, body := send(t, "GET", srv.URL+"/console/transfers", nil, wang, nil); !strings.Contains(body, "/console/deferral-requests/"+ds[0].ID+"/decide") {
		t.Fatalf("the archivist is not offered the decision: %s", body)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/deferral-requests/"+ds[0].ID+"/decide", url.Values{"approve": {"1"}}, wang, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a decision without a reason: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/deferral-requests/"+ds[0].ID+"/decide", url.Values{"approve": {"1"}, "reason": {"同意"}}, wang, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("decide: %d", resp.StatusCode)
	}
	if c, _ := a.DeferralRequestFor(t.Context(), archive.Principal{Role: archive.RoleArchive}, ds[0].ID); c.Status != archive.DeferralApproved || c.Decision == nil {
		t.Fatalf("the received request: %+v", c)
	}
}
