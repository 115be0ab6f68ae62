package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// 鉴定与销毁: one archivist decides to destroy two expired records at once; the page does not
// offer them their own decisions to approve and refuses when they try; a second archivist
// approves one, which is destroyed and entered in the register; a department account does
// not reach the page.
func TestDisposalPages(t *testing.T) {
	a, srv := newConsole(t)
	dept := uscc(t, 6)
	addAccounts(t, a, []archive.Account{{Name: "li", Display: "李档案", Role: archive.RoleArchive},
		{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept}}...)
	old := time.Now().AddDate(-12, 0, 0)
	ids := []string{ingestCase(t, a, dept, "OLD-1", "旧档一", "甲", "D10", old), ingestCase(t, a, dept, "OLD-2", "旧档二", "乙", "D10", old),
		ingestCase(t, a, dept, "OLD-3", "旧档三", "丙", "D10", old)}
	wang, li := loginAs(t, srv.URL, "wang", "long enough password"), loginAs(t, srv.URL, "li", "long enough password")
	_, body := send(t, "GET", srv.URL+"/console/disposal", nil, wang, nil)
	for _, id := range ids {
		if !strings.Contains(body, `name="package" value="`+id+`"`) {
			t.Fatalf("candidate %s not offered: %s", id, body)
		}
	}
	resp, body := send(t, "POST", srv.URL+"/console/disposal/decide", url.Values{"package": ids[:2], "action": {"destroy"}, "reason": {"保管期满，无继续保存价值"}}, wang, nil)
	if resp.StatusCode != 200 || strings.Count(body, archive.DisposalPending) < 2 {
		t.Fatalf("decide: %d %s", resp.StatusCode, body)
	}
	pending := body[strings.Index(body, `id="pending"`):strings.Index(body, `id="decide"`)]
	if strings.Contains(pending, "/approve") || !strings.Contains(pending, "本人所作鉴定") {
		t.Fatalf("the decider is offered their own decisions: %s", pending)
	}
	decs, _, _ := a.Decisions(t.Context(), archive.Principal{Role: archive.RoleArchive}, "", 10)
	if len(decs) != 2 {
		t.Fatalf("%d decisions", len(decs))
	}
	if resp, body := send(t, "POST", srv.URL+"/console/disposal/"+decs[0].ID+"/approve", url.Values{"approve": {"1"}}, wang, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "不能审批本人") {
		t.Fatalf("the decider approves: %d", resp.StatusCode)
	}
	_, body = send(t, "GET", srv.URL+"/console/disposal", nil, li, nil)
	if !strings.Contains(body, "/console/disposal/"+decs[0].ID+"/approve") {
		t.Fatalf("the second archivist is not offered the approval: %s", body)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/disposal/"+decs[0].ID+"/approve", url.Values{"approve": {"1"}, "note": {"同意"}}, li, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the second archivist approves: %d", resp.StatusCode)
	}
	if p, err := a.Package(t.Context(), archive.Principal{Role: archive.RoleArchive}, decs[0].Package); err != nil || p.Tombstone == nil {
		t.Fatalf("the approved record was not destroyed: %+v %v", p, err)
	}
	resp, body = send(t, "GET", srv.URL+"/console/disposal/register/xml", nil, li, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, decs[0].ArchivalCode) {
		t.Fatalf("the register: %d %s", resp.StatusCode, body)
	}
	clerk := loginAs(t, srv.URL, "clerk", "long enough password")
	if resp, _ := send(t, "GET", srv.URL+"/console/disposal", nil, clerk, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a department account on the disposal page: %d", resp.StatusCode)
	}
}
