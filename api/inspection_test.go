package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/storage"
)

// 检查评估: the department's archive makes a compliance report, signed by the department,
// which the county archive receives and verifies; each figure equals its query run by hand
// against the department's API; a report altered on the way is refused.
func TestInspectionReportVerifiesAtTheCountyArchive(t *testing.T) {
	p := newPair(t, nil)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour).UTC()
	e := p.deptEnv
	ingest := func(no, ret, scope, finished string) PackageView {
		c, parts := exampleCase(t)
		c["case_no"], c["retention"] = no, ret
		c["sharing"] = map[string]any{"scope": scope}
		fin, _ := time.Parse(time.RFC3339, finished)
		c["accepted_at"], c["finished_at"] = fin.Add(-96*time.Hour).Format(time.RFC3339), finished
		resp, body := e.ingest(e.tokA, c, parts)
		if resp.StatusCode != 201 {
			t.Fatalf("ingest %s: %d %s", no, resp.StatusCode, body)
		}
		return decode[PackageView](t, body)
	}
	ingest("INS-LATE", "Y", "不予共享", "2015-03-05T16:30:00+08:00") // archived late, overdue at the county archive
	shared := ingest("INS-SHARED", "D30", "有条件共享", time.Now().Add(-48*time.Hour).Format(time.RFC3339))
	// Department B asks for the shared record, A grants it, B reads it.
	until := time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339)
	resp, body := e.postJSON("/api/v1/use-requests", e.tokenB(), fmt.Sprintf(`{"owner":"%s","packages":["%s"],"purpose":"核验","until":"%s"}`, deptA, shared.ID, until))
	if resp.StatusCode != 201 {
		t.Fatalf("use request: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.postJSON("/api/v1/use-requests/"+decode[archive.UseRequest](t, body).ID+"/decision", e.tokA, `{"action":"approve"}`); resp.StatusCode != 200 {
		t.Fatalf("grant: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/packages/"+shared.ID+"/eep?purpose=核验", e.tokenB(), nil, ""); resp.StatusCode != 200 {
		t.Fatalf("shared read: %d", resp.StatusCode)
	}
	bk, err := storage.OpenFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.dept.Backup(ctx, bk, nil); err != nil {
		t.Fatal(err)
	}

	resp, body = e.postJSON("/api/v1/inspections", e.tokA, fmt.Sprintf(`{"from":"%s"}`, start.Format(time.RFC3339)))
	if resp.StatusCode != 201 {
		t.Fatalf("make the report: %d %s", resp.StatusCode, body)
	}
	ins := decode[archive.Inspection](t, body)
	if !ins.Sent {
		t.Fatalf("the report was not sent: %+v", ins)
	}
	countyArchivist, _ := p.county.CreateToken(archive.RoleArchive, "", "县档案馆")
	resp, body = p.countyEnv.do(http.MethodGet, "/api/v1/inspection-reports?department="+deptA, countyArchivist, nil, "")
	var got struct {
		Reports []archive.ReceivedReport `json:"reports"`
	}
	if json.Unmarshal(body, &got); resp.StatusCode != 200 || len(got.Reports) != 1 || !got.Reports[0].Verified || got.Reports[0].Content == nil {
		t.Fatalf("the county archive's reports: %d %s", resp.StatusCode, body)
	}
	rep := got.Reports[0].Content

	// Each figure, counted by hand from its query at the department's archive.
	byHand := map[string]func(f archive.Figure) int{}
	arch, _ := p.dept.CreateToken(archive.RoleArchive, "", "核对")
	pages := func(query, items string, each func(json.RawMessage)) {
		path := strings.TrimPrefix(query, "GET ")
		for cursor := ""; ; {
			u := path
			if cursor != "" {
				sep := "?"
				if strings.Contains(u, "?") {
					sep = "&"
				}
				u += sep + "cursor=" + url.QueryEscape(cursor)
			}
			resp, body := e.do(http.MethodGet, u, arch, nil, "")
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", u, resp.StatusCode, body)
			}
			var page map[string]json.RawMessage
			json.Unmarshal(body, &page)
			var list []json.RawMessage
			json.Unmarshal(page[items], &list)
			for _, x := range list {
				each(x)
			}
			// next is a cursor, or (the schedule) a cursor for each kind.
			var next string
			if json.Unmarshal(page["next"], &next) != nil {
				var byKind map[string]string
				json.Unmarshal(page["next"], &byKind)
				pu, _ := url.Parse(path)
				next = byKind[pu.Query().Get("kind")]
			}
			if next == "" {
				return
			}
			cursor = next
		}
	}
	deptOf := func(id string) string {
		_, body := e.do(http.MethodGet, "/api/v1/packages/"+id, arch, nil, "")
		return decode[PackageView](t, body).Department
	}
	for _, k := range []string{archive.FigureLate, archive.FigureTransferOverdue, archive.FigureAuditOverdue} {
		byHand[k] = func(f archive.Figure) (n int) { pages(f.Query, "items", func(json.RawMessage) { n++ }); return }
	}
	byHand[archive.FigureTransferDeferred] = func(f archive.Figure) (n int) {
		pages(f.Query, "deferrals", func(x json.RawMessage) {
			var d archive.Deferral
			json.Unmarshal(x, &d)
			if d.Department == deptA && d.Status == archive.DeferralApproved {
				var dec archive.DeferralDecision
				json.Unmarshal([]byte(d.Decision.Body), &dec)
				n += len(dec.Packages)
			}
		})
		return
	}
	byHand[archive.FigureAuditFailed] = func(f archive.Figure) (n int) {
		pages(f.Query, "results", func(x json.RawMessage) {
			var r archive.AuditResult
			json.Unmarshal(x, &r)
			if r.At.Before(rep.To) && deptOf(r.Package) == deptA {
				n++
			}
		})
		return
	}
	byHand[archive.FigureDestroyed] = func(f archive.Figure) (n int) {
		pages(f.Query, "decisions", func(x json.RawMessage) {
			var d archive.Decision
			json.Unmarshal(x, &d)
			if d.Status == archive.DisposalDestroyed && !d.ApprovedAt.Before(rep.From) && d.ApprovedAt.Before(rep.To) && deptOf(d.Package) == deptA {
				n++
			}
		})
		return
	}
	byHand[archive.FigureGrants] = func(f archive.Figure) (n int) {
		pages(f.Query, "requests", func(x json.RawMessage) {
			var u archive.UseRequest
			json.Unmarshal(x, &u)
			if u.Decision != nil && u.Decision.Action != archive.UseRefuse && !u.Decision.At.Before(rep.From) && u.Decision.At.Before(rep.To) {
				n++
			}
		})
		return
	}
	byHand[archive.FigureSharedReads] = func(f archive.Figure) (n int) {
		pages(f.Query, "reads", func(x json.RawMessage) {
			var r archive.Read
			json.Unmarshal(x, &r)
			if who, ok := strings.CutPrefix(r.Who, "department:"); ok && who != deptA && deptOf(r.Package) == deptA {
				n++
			}
		})
		return
	}
	byHand[archive.FigureBackups] = func(f archive.Figure) (n int) { pages(f.Query, "backups", func(json.RawMessage) { n++ }); return }
	want := map[string]int{archive.FigureLate: 1, archive.FigureTransferOverdue: 1, archive.FigureGrants: 1, archive.FigureSharedReads: 1, archive.FigureBackups: 1}
	for _, f := range rep.Figures {
		count, ok := byHand[f.Key]
		if !ok {
			t.Fatalf("figure %s has no query counted here", f.Key)
		}
		if n := count(f); n != f.Value || n != want[f.Key] {
			t.Errorf("figure %s (%s %s): reported %d, by hand %d, want %d (query %s)", f.Key, f.Article, f.Name, f.Value, n, want[f.Key], f.Query)
		}
	}
	if len(rep.Figures) != len(byHand) {
		t.Errorf("%d figures, %d known", len(rep.Figures), len(byHand))
	}

	// Altered on the way: refused.
	altered := *ins.Report
	altered.Body = strings.Replace(altered.Body, `"value": 1`, `"value": 0`, 1)
	ab, _ := json.Marshal(altered)
	if resp, body := p.countyEnv.postJSON("/api/v1/inspection-reports", p.countyTok, string(ab)); resp.StatusCode != 422 {
		t.Fatalf("an altered report: %d %s", resp.StatusCode, body)
	}
	// Sent again: kept once.
	again, _ := json.Marshal(ins.Report)
	if resp, body := p.countyEnv.postJSON("/api/v1/inspection-reports", p.countyTok, string(again)); resp.StatusCode != 201 {
		t.Fatalf("the same report again: %d %s", resp.StatusCode, body)
	}
	if rs, _, _ := p.county.ReceivedReports(ctx, archive.Principal{Role: archive.RoleAuditor}, deptA, "", 10); len(rs) != 1 {
		t.Fatalf("%d reports kept after a resend", len(rs))
	}
	// The county archive keeps the reports through the loss of its index.
	p.county.Close()
	os.Remove(filepath.Join(p.countyDir, "index.db"))
	county, err := archive.Open(archive.Config{DataDir: p.countyDir, Logger: testenv.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer county.Close()
	if rs, _, err := county.ReceivedReports(ctx, archive.Principal{Role: archive.RoleAuditor}, deptA, "", 10); err != nil || len(rs) != 1 || !rs[0].Verified {
		t.Fatalf("the county archive's reports after an index rebuild: %v %+v", err, rs)
	}
}
