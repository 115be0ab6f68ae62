package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/storage"
)

// 检查评估 in the console: a clerk makes the department's report, which lists each figure
// with its article and query; an auditor reads the received reports, verified; a wrong
// date is refused.
func TestInspectionPage(t *testing.T) {
	a, srv := newConsole(t)
	dept := uscc(t, 51)
	addAccounts(t, a, []archive.Account{{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept},
		{Name: "aud", Display: "审计", Role: archive.RoleAuditor}}...)
	ingestScoped(t, a, dept, "INS-C1", "建设工程规划许可", "项目", "Y", time.Now().AddDate(-3, 0, 0), archive.SharingNone)
	clerk := loginAs(t, srv.URL, "clerk", password)
	if resp, _ := send(t, "POST", srv.URL+"/console/inspection", url.Values{"from": {"yesterday"}}, clerk, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a bad date: %d", resp.StatusCode)
	}
	from := time.Now().AddDate(0, -1, 0).Format("2006-01-02")
	if resp, _ := send(t, "POST", srv.URL+"/console/inspection", url.Values{"from": {from}}, clerk, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("make: %d", resp.StatusCode)
	}
	_, body := send(t, "GET", srv.URL+"/console/inspection", nil, clerk, nil)
	for _, want := range []string{"第二十三条", "逾期归档的办件", "GET /api/v1/schedule?kind=late-archiving", "未报送"} {
		if !strings.Contains(body, want) {
			t.Fatalf("the clerk's page lacks %q: %s", want, body)
		}
	}
	ins, _, _ := a.Inspections(t.Context(), archive.Principal{Role: archive.RoleArchive}, "", 10)
	if len(ins) != 1 {
		t.Fatalf("%d reports", len(ins))
	}
	// Received (here by the same archive, as the county archive would).
	if _, err := a.ReceiveInspection(t.Context(), archive.Principal{Role: archive.RoleArchive}, ins[0].Report); err != nil {
		t.Fatal(err)
	}
	bk, err := storage.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Backup(t.Context(), bk, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body = send(t, "GET", srv.URL+"/console/inspection", nil, loginAs(t, srv.URL, "aud", password), nil)
	if !strings.Contains(body, "签名有效") || !strings.Contains(body, dept) || strings.Contains(body, `action="/console/inspection"`) ||
		!strings.Contains(body, rep.Snapshot) {
		t.Fatalf("the auditor's page: %s", body)
	}
}
