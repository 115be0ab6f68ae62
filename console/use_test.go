package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// 利用申请 in the console: a clerk of department B asks for department A's conditionally
// shared record; A's clerk approves it; B finds the record in a search of shared records and
// is asked for a purpose to read it; after A revokes the grant, B gets 404; a bad request
// is shown with the archive's reason and records nothing.
func TestUsePages(t *testing.T) {
	a, srv := newConsole(t)
	deptA, deptB := uscc(t, 21), uscc(t, 22)
	addAccounts(t, a, []archive.Account{{Name: "clerka", Display: "甲部门", Role: archive.RoleDepartment, Department: deptA},
		{Name: "clerkb", Display: "乙部门", Role: archive.RoleDepartment, Department: deptB},
		{Name: "aud", Display: "审计", Role: archive.RoleAuditor}}...)
	id := ingestScoped(t, a, deptA, "USE-C1", "建设工程规划许可", "规划条件核实", "D30", time.Now().AddDate(0, -1, 0), archive.SharingConditional)
	waitIndexed(t, a, 1)
	ca, cb := loginAs(t, srv.URL, "clerka", "long enough password"), loginAs(t, srv.URL, "clerkb", "long enough password")

	if resp, _ := send(t, "GET", srv.URL+"/console/packages/"+id, nil, cb, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("B opened A's record without a grant: %d", resp.StatusCode)
	}
	until := time.Now().AddDate(0, 0, 7).Format("2006-01-02")
	resp, body := send(t, "POST", srv.URL+"/console/use", url.Values{"owner": {"bad"}, "packages": {id}, "purpose": {"核验"}, "until": {until}}, cb, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "owner") {
		t.Fatalf("a request with a bad owner: %d %s", resp.StatusCode, body)
	}
	if rs, _, _ := a.UseRequests(t.Context(), archive.Principal{Role: archive.RoleAuditor}, archive.UseFilter{}); len(rs) != 0 {
		t.Fatalf("a refused form recorded %d requests", len(rs))
	}
	resp, _ = send(t, "POST", srv.URL+"/console/use", url.Values{"owner": {deptA}, "packages": {id}, "purpose": {"核验规划许可"}, "until": {until}}, cb, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("request: %d", resp.StatusCode)
	}
	rs, _, _ := a.UseRequests(t.Context(), archive.Principal{Role: archive.RoleAuditor}, archive.UseFilter{})
	if len(rs) != 1 {
		t.Fatalf("%d requests", len(rs))
	}
	decide := "/console/use/" + rs[0].ID + "/decide"
	if _, body := send(t, "GET", srv.URL+"/console/use", nil, cb, nil); strings.Contains(body, decide) || !strings.Contains(body, "待审批") {
		t.Fatalf("the requester is offered the decision, or does not see the request waiting: %s", body)
	}
	if resp, _ := send(t, "POST", srv.URL+decide, url.Values{"action": {"approve"}}, cb, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the requester decided: %d", resp.StatusCode)
	}
	if _, body := send(t, "GET", srv.URL+"/console/use", nil, ca, nil); !strings.Contains(body, decide) {
		t.Fatalf("the owner is not offered the decision: %s", body)
	}
	if resp, _ := send(t, "POST", srv.URL+decide, url.Values{"action": {"approve"}}, ca, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	if _, body := send(t, "GET", srv.URL+"/console/search?q=规划&shared=1", nil, cb, nil); !strings.Contains(body, "/console/packages/"+id) {
		t.Fatalf("B's search of shared records does not find the granted record: %s", body)
	}
	if _, body := send(t, "GET", srv.URL+"/console/search?q=规划", nil, cb, nil); strings.Contains(body, "/console/packages/"+id) {
		t.Fatal("B's search of its own records found A's")
	}
	resp, body = send(t, "GET", srv.URL+"/console/packages/"+id, nil, cb, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "本档案为其他部门共享") {
		t.Fatalf("B opens the granted record: %d %s", resp.StatusCode, body)
	}
	if _, body := send(t, "GET", srv.URL+"/console/use", nil, loginAs(t, srv.URL, "aud", "long enough password"), nil); !strings.Contains(body, "已批准") || strings.Contains(body, "/revoke") {
		t.Fatalf("the auditor's page: %s", body)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/use/"+rs[0].ID+"/revoke", url.Values{"reason": {"核验完毕"}}, ca, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/packages/"+id, nil, cb, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("B opened the record after the revocation: %d", resp.StatusCode)
	}
}
