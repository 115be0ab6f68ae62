package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// 开放鉴定 in the console: one archivist proposes a record finished 26 years ago, is not
// offered their own proposal to approve, and a second approves it, which opens it; it is
// listed as open and can be closed again; a department's clerk does not reach the page.
func TestOpeningPages(t *testing.T) {
	a, srv := newConsole(t)
	dept := uscc(t, 31)
	addAccounts(t, a, []archive.Account{{Name: "li", Display: "李档案", Role: archive.RoleArchive},
		{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept}}...)
	id := ingestScoped(t, a, dept, "OPEN-C1", "个体工商户登记", "经营者张某，电话13912345678", "Y", time.Now().AddDate(-26, 0, 0), archive.SharingNone)
	waitIndexed(t, a, 1)
	wang, li := loginAs(t, srv.URL, "wang", password), loginAs(t, srv.URL, "li", password)
	if resp, _ := send(t, "GET", srv.URL+"/console/opening", nil, loginAs(t, srv.URL, "clerk", password), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a clerk reached 开放鉴定: %d", resp.StatusCode)
	}
	if resp, body := send(t, "POST", srv.URL+"/console/opening", url.Values{"packages": {id}}, wang, nil); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "reason") {
		t.Fatalf("a proposal without a reason: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/opening", url.Values{"packages": {id}, "reason": {"形成满二十五年"}}, wang, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("propose: %d", resp.StatusCode)
	}
	ds, _, _ := a.OpeningDecisions(t.Context(), archive.Principal{Role: archive.RoleArchive}, true, "", 0)
	if len(ds) != 1 {
		t.Fatalf("%d pending", len(ds))
	}
	approve := "/console/opening/" + ds[0].ID + "/approve"
	if _, body := send(t, "GET", srv.URL+"/console/opening", nil, wang, nil); strings.Contains(body, approve) {
		t.Fatal("the proposer is offered the approval")
	}
	if _, body := send(t, "GET", srv.URL+"/console/opening", nil, li, nil); !strings.Contains(body, approve) {
		t.Fatalf("the second archivist is not offered the approval: %s", body)
	}
	resp, body := send(t, "POST", srv.URL+approve, url.Values{"approve": {"1"}}, li, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "已开放") {
		t.Fatalf("approve: %d %s", resp.StatusCode, body)
	}
	pc, err := a.PublicCopy(t.Context(), id)
	if err != nil || strings.Contains(pc.Documents[0].Text, "13912345678") {
		t.Fatalf("the public copy: %v %+v", err, pc)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, body = send(t, "GET", srv.URL+"/console/opening", nil, li, nil)
		if strings.Contains(body, "/console/opening/"+id+"/close") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the opened record is not listed: %s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/opening/"+id+"/close", url.Values{"reason": {"暂缓"}}, li, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %d", resp.StatusCode)
	}
	if _, err := a.PublicCopy(t.Context(), id); !errors.Is(err, archive.ErrNotFound) {
		t.Fatalf("closed, yet public: %v", err)
	}
}
