package api

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/redact"
)

// Through the API and the public pages: two archivists open a record finished 26 years
// ago; anyone reads its public copy without a token, with the applicant's name and address
// removed and the copy marked as redacted; the EEP is byte for byte what it was; a record
// not opened is 404 there; closing it makes it 404 again.
func TestOpeningOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	c, parts := exampleCase(t)
	b, _ := json.Marshal(c)
	json.Unmarshal([]byte(strings.ReplaceAll(string(b), "2025-03-0", "2000-03-0")), &c)
	c["case_no"] = "OPEN-1"
	resp, body := e.ingest(e.tokA, c, parts)
	if resp.StatusCode != 201 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	p := decode[PackageView](t, body)
	recent := e.ingestCase("OPEN-2")
	wang, _ := e.a.CreateToken(archive.RoleArchive, "", "王档案")
	li, _ := e.a.CreateToken(archive.RoleArchive, "", "李档案")
	eepSM3 := func() string {
		resp, body := e.do(http.MethodGet, "/api/v1/packages/"+p.ID+"/eep", e.tokA, nil, "")
		if resp.StatusCode != 200 {
			t.Fatalf("eep: %d", resp.StatusCode)
		}
		sum := sm3.Sum(body)
		return hex.EncodeToString(sum[:])
	}
	before := eepSM3()
	if resp, body := e.postJSON("/api/v1/openings", wang, fmt.Sprintf(`{"packages":["%s"],"reason":"到期"}`, recent.ID)); resp.StatusCode != 409 || decode[Problem](t, body).Field != "packages[0]" {
		t.Fatalf("a record within its closed period: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.postJSON("/api/v1/openings", e.tokA, fmt.Sprintf(`{"packages":["%s"],"reason":"到期"}`, p.ID)); resp.StatusCode != 403 {
		t.Fatalf("a department proposed: %d", resp.StatusCode)
	}
	resp, body = e.postJSON("/api/v1/openings", wang, fmt.Sprintf(`{"packages":["%s"],"reason":"形成满二十五年，经鉴定可以开放"}`, p.ID))
	if resp.StatusCode != 201 {
		t.Fatalf("propose: %d %s", resp.StatusCode, body)
	}
	d := decode[archive.OpeningDecision](t, body)
	if resp, _ := e.postJSON("/api/v1/openings/"+d.ID+"/approve", wang, `{"approve":true}`); resp.StatusCode != 403 {
		t.Fatalf("the proposer approved: %d", resp.StatusCode)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/open/"+p.ID, "", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("public before the approval: %d", resp.StatusCode)
	}
	if resp, body := e.postJSON("/api/v1/openings/"+d.ID+"/approve", li, `{"approve":true,"note":"同意"}`); resp.StatusCode != 200 || !decode[archive.OpeningDecision](t, body).Results[0].Opened {
		t.Fatalf("approve: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do(http.MethodGet, "/api/v1/open/"+p.ID, "", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("the public copy: %d %s", resp.StatusCode, body)
	}
	pc := decode[archive.PublicCopy](t, body)
	for _, personal := range []string{"张三", "东大街12号", "11010519491231002X"} {
		if strings.Contains(string(body), personal) {
			t.Errorf("the public copy holds %q", personal)
		}
	}
	if !pc.Redacted || pc.Removed["住址"] == 0 || pc.Removed[redact.KnownKind] == 0 || !strings.Contains(string(body), "热食类食品制售") {
		t.Errorf("the public copy: %s", body)
	}
	if after := eepSM3(); after != before || after != p.PackageSM3 {
		t.Fatalf("the EEP changed: %s → %s", before, after)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/open/"+recent.ID, "", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("a record not opened: %d", resp.StatusCode)
	}
	resp, body = e.do(http.MethodGet, "/open/"+p.ID, "", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "公开副本（已删除个人信息）") || strings.Contains(string(body), "张三") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("the public page: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodGet, "/open/"+recent.ID, "", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("the page of a record not opened: %d", resp.StatusCode)
	}
	waitOpen(t, e, "热食类", 1)
	waitOpen(t, e, "东大街", 0) // removed from the copy: not found by it either
	if resp, body := e.postJSON("/api/v1/openings/close", li, fmt.Sprintf(`{"package":"%s","reason":"暂缓开放"}`, p.ID)); resp.StatusCode != 200 {
		t.Fatalf("close: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodGet, "/api/v1/open/"+p.ID, "", nil, ""); resp.StatusCode != 404 {
		t.Fatalf("public after closing: %d", resp.StatusCode)
	}
}

// waitOpen waits until the public search counts n records for q.
func waitOpen(t *testing.T, e *env, q string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, body := e.do(http.MethodGet, "/open?q="+url.QueryEscape(q), "", nil, "")
		if resp.StatusCode == 200 && strings.Contains(string(body), fmt.Sprintf("共 %d 件", n)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the public search page for %s: %d %s, want %d records", q, resp.StatusCode, body, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
