package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// 延期移交 between two instances: the department asks for a later transfer of a permanent
// record; its schedule keeps the old date until it holds the county archive's signed
// approval, then shows the new one; a decision that is unsigned, altered, or signed by the
// department's own archive (under its own root) is refused and moves nothing.
func TestLaterTransferApprovedByTheCountyArchive(t *testing.T) {
	p := newPair(t, nil)
	ctx := context.Background()
	c, parts := exampleCase(t)
	c["case_no"], c["retention"] = "DEFER-1", "Y"
	c["accepted_at"], c["finished_at"] = "2015-03-01T09:00:00+08:00", "2015-03-05T16:30:00+08:00"
	resp, body := p.deptEnv.ingest(p.deptEnv.tokA, c, parts)
	if resp.StatusCode != 201 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	pkg := decode[PackageView](t, body)
	dueDate := func() string {
		t.Helper()
		resp, body := p.deptEnv.do(http.MethodGet, "/api/v1/schedule?kind=transfer-due&horizon_days=3650", p.deptEnv.tokA, nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("schedule: %d %s", resp.StatusCode, body)
		}
		for _, it := range decode[archive.Schedule](t, body).Items {
			if it.Package == pkg.ID {
				return it.Date.Format("2006-01-02")
			}
		}
		return ""
	}
	if got := dueDate(); got != "2021-01-01" {
		t.Fatalf("due before the request: %q", got)
	}
	if resp, body := p.deptEnv.postJSON("/api/v1/deferrals", p.deptEnv.tokA, fmt.Sprintf(`{"packages":["%s"],"until":2030}`, pkg.ID)); resp.StatusCode != 422 {
		t.Fatalf("a request without a reason: %d %s", resp.StatusCode, body)
	}
	resp, body = p.deptEnv.postJSON("/api/v1/deferrals", p.deptEnv.tokA, fmt.Sprintf(`{"packages":["%s"],"until":2030,"reason":"重大项目档案，仍在频繁利用"}`, pkg.ID))
	if resp.StatusCode != 201 {
		t.Fatalf("request: %d %s", resp.StatusCode, body)
	}
	d := decode[archive.Deferral](t, body)
	if d.Status != archive.DeferralSent {
		t.Fatalf("the request was not sent to the county archive: %+v", d)
	}
	if got := dueDate(); got != "2021-01-01" {
		t.Fatalf("the date moved before any approval: %q", got)
	}

	// Forgeries: the department's own archive approving its own request, unsigned, altered.
	self := archive.Principal{Role: archive.RoleArchive, Name: "本部门档案员"}
	if _, err := p.dept.ReceiveDeferral(ctx, self, d.Request); err != nil {
		t.Fatal(err)
	}
	own, err := p.dept.DecideDeferral(ctx, self, d.ID, true, 2040, "自批")
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(own.Decision)
	unsigned, _ := json.Marshal(archive.Signed{Body: own.Decision.Body})
	for name, body := range map[string][]byte{"signed by the department's own archive": forged, "unsigned": unsigned} {
		resp, b := p.deptEnv.postJSON("/api/v1/deferrals/"+d.ID+"/decision", p.deptEnv.tokA, string(body))
		if resp.StatusCode != 422 || decode[Problem](t, b).Field != "decision" {
			t.Fatalf("a decision %s: %d %s", name, resp.StatusCode, b)
		}
	}
	if got := dueDate(); got != "2021-01-01" {
		t.Fatalf("a refused decision moved the date: %q", got)
	}

	// Sent again, the county archive keeps the one it has.
	again, _ := json.Marshal(d.Request)
	if resp, b := p.countyEnv.postJSON("/api/v1/deferral-requests", p.countyTok, string(again)); resp.StatusCode != 201 || decode[archive.DeferralCase](t, b).Status != archive.DeferralPending {
		t.Fatalf("the same request again: %d %s", resp.StatusCode, b)
	}

	// The county archive decides on its own instance.
	countyArchivist, _ := p.county.CreateToken(archive.RoleArchive, "", "县档案馆 张馆员")
	if resp, _ := p.countyEnv.postJSON("/api/v1/deferral-requests/"+d.ID+"/decision", p.countyTok, `{"approve":true,"reason":"同意"}`); resp.StatusCode != 403 {
		t.Fatalf("the department decided at the county archive: %d", resp.StatusCode)
	}
	resp, body = p.countyEnv.postJSON("/api/v1/deferral-requests/"+d.ID+"/decision", countyArchivist, `{"approve":true,"reason":"同意延期至2030年底移交"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("the county archive's decision: %d %s", resp.StatusCode, body)
	}
	county := decode[archive.DeferralCase](t, body)
	altered := *county.Decision
	altered.Body = strings.Replace(altered.Body, "2030", "2045", 1)
	ab, _ := json.Marshal(altered)
	if resp, b := p.deptEnv.postJSON("/api/v1/deferrals/"+d.ID+"/decision", p.deptEnv.tokA, string(ab)); resp.StatusCode != 422 {
		t.Fatalf("an altered approval: %d %s", resp.StatusCode, b)
	}
	resp, body = p.deptEnv.postJSON("/api/v1/deferrals/"+d.ID+"/check", p.deptEnv.tokA, "")
	if resp.StatusCode != 200 || decode[archive.Deferral](t, body).Status != archive.DeferralApproved {
		t.Fatalf("check: %d %s", resp.StatusCode, body)
	}
	if got := dueDate(); got != "2031-01-01" {
		t.Fatalf("due after the approval: %q, want 2031-01-01 (transferred by the end of 2030)", got)
	}
	if resp, b := p.deptEnv.postJSON("/api/v1/deferrals/"+d.ID+"/decision", p.deptEnv.tokA, string(forged)); resp.StatusCode != 409 {
		t.Fatalf("a second decision: %d %s", resp.StatusCode, b)
	}

	// The approval survives the loss of the department's index: it is kept in storage.
	p.dept.Close()
	os.Remove(filepath.Join(p.deptDir, "index.db"))
	again2, err := archive.Open(archive.Config{DataDir: p.deptDir, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer again2.Close()
	arch := archive.Principal{Role: archive.RoleArchive}
	if got, err := again2.Deferral(ctx, arch, d.ID); err != nil || got.Status != archive.DeferralApproved {
		t.Fatalf("the deferral after an index rebuild: %v %+v", err, got)
	}
	if rec, err := again2.Index().Package(pkg.ID); err != nil || rec.Deferral == nil || rec.Deferral.Until != 2030 {
		t.Fatalf("the record's later transfer after an index rebuild: %v %+v", err, rec)
	}
}
