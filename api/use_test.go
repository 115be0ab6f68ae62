package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// Through the API: department B reads department A's conditionally shared package only
// while A's approval of B's request runs; bad requests are 422 problems naming the field and
// change nothing; the requester cannot decide its own request.
func TestUseRequestsOverHTTP(t *testing.T) {
	e := newEnv(t, Options{})
	c, parts := exampleCase(t)
	c["case_no"] = "USE-1"
	c["sharing"] = map[string]any{"scope": "有条件共享", "conditions": "凭利用申请"}
	resp, body := e.ingest(e.tokA, c, parts)
	if resp.StatusCode != 201 {
		t.Fatalf("ingest: %d %s", resp.StatusCode, body)
	}
	p := decode[PackageView](t, body)
	if p.Sharing != archive.SharingConditional || p.SharingConditions != "凭利用申请" {
		t.Fatalf("the package's sharing: %q %q", p.Sharing, p.SharingConditions)
	}
	eep := "/api/v1/packages/" + p.ID + "/eep?purpose=" + "核验"
	if resp, _ := e.do(http.MethodGet, eep, e.tokB, nil, ""); resp.StatusCode != 404 {
		t.Fatalf("B read A's conditional package without a grant: %d", resp.StatusCode)
	}
	until := time.Now().Add(7 * 24 * time.Hour).UTC().Format(time.RFC3339)
	for field, bad := range map[string]string{
		"owner":   fmt.Sprintf(`{"owner":"bad","packages":["%s"],"purpose":"核验","until":"%s"}`, p.ID, until),
		"purpose": fmt.Sprintf(`{"owner":"%s","packages":["%s"],"until":"%s"}`, deptA, p.ID, until),
		"until":   fmt.Sprintf(`{"owner":"%s","packages":["%s"],"purpose":"核验","until":"2020-01-01T00:00:00Z"}`, deptA, p.ID),
	} {
		resp, body := e.postJSON("/api/v1/use-requests", e.tokB, bad)
		if resp.StatusCode != 422 || decode[Problem](t, body).Field != field {
			t.Fatalf("a request with a bad %s: %d %s", field, resp.StatusCode, body)
		}
	}
	if resp, body := e.do(http.MethodGet, "/api/v1/use-requests", e.tokB, nil, ""); resp.StatusCode != 200 || !strings.Contains(string(body), `"requests": []`) {
		t.Fatalf("bad requests were recorded: %d %s", resp.StatusCode, body)
	}
	resp, body = e.postJSON("/api/v1/use-requests", e.tokB, fmt.Sprintf(`{"owner":"%s","packages":["%s"],"purpose":"核验","until":"%s"}`, deptA, p.ID, until))
	if resp.StatusCode != 201 {
		t.Fatalf("request: %d %s", resp.StatusCode, body)
	}
	req := decode[archive.UseRequest](t, body)
	decision := "/api/v1/use-requests/" + req.ID + "/decision"
	if resp, body := e.postJSON(decision, e.tokB, `{"action":"approve"}`); resp.StatusCode != 403 {
		t.Fatalf("the requester approved its own request: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.postJSON(decision, e.tokA, `{"action":"refuse"}`); resp.StatusCode != 422 || decode[Problem](t, body).Field != "reason" {
		t.Fatalf("a refusal without a reason: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.postJSON(decision, e.tokA, `{"action":"approve"}`); resp.StatusCode != 200 {
		t.Fatalf("approve: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.postJSON(decision, e.tokA, `{"action":"approve"}`); resp.StatusCode != 409 {
		t.Fatalf("approved twice: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(http.MethodGet, "/api/v1/packages/"+p.ID+"/eep", e.tokB, nil, ""); resp.StatusCode != 422 || decode[Problem](t, body).Field != "purpose" {
		t.Fatalf("a shared read without a purpose: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(http.MethodGet, eep, e.tokB, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("B reads during the grant: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.postJSON("/api/v1/use-requests/"+req.ID+"/revoke", e.tokA, `{"reason":"核验完毕"}`); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(http.MethodGet, eep, e.tokB, nil, ""); resp.StatusCode != 404 {
		t.Fatalf("B read after the revocation: %d", resp.StatusCode)
	}
	resp, body = e.do(http.MethodGet, "/api/v1/use-requests/"+req.ID, e.tokA, nil, "")
	if got := decode[archive.UseRequest](t, body); resp.StatusCode != 200 || got.Status != archive.UseRevoked || got.Revocation.Reason != "核验完毕" {
		t.Fatalf("the owner sees the request: %d %s", resp.StatusCode, body)
	}
}
