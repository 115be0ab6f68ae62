package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/archive"
)

// TestLifecycleRoles: each lifecycle endpoint refuses the roles it is not for, before it
// does anything.
func TestLifecycleRoles(t *testing.T) {
	e := newEnv(t, Options{})
	auditor, _ := e.a.CreateToken(archive.RoleAuditor, "", "")
	arch, _ := e.a.CreateToken(archive.RoleArchive, "", "")
	issuer, _ := e.a.CreateToken(archive.RoleIssuer, deptA, "")
	cases := []struct {
		method, path, body string
		token              string
		status             int
	}{
		{"GET", "/api/v1/schedule", "", "", 401},
		{"POST", "/api/v1/inspections", `{"from":"2026-01-01T00:00:00Z"}`, auditor, 403},
		{"GET", "/api/v1/inspections", "", issuer, 403},
		{"POST", "/api/v1/inspection-reports", `{"body":"{}","signature":"","certificates":[]}`, auditor, 403},
		{"GET", "/api/v1/inspection-reports", "", e.tokA, 403},
		{"GET", "/api/v1/inspection-reports", "", auditor, 200},
		{"GET", "/api/v1/backups", "", e.tokA, 403},
		{"GET", "/api/v1/backups", "", auditor, 200},
		{"POST", "/api/v1/deferrals", `{"packages":["x"],"until":2030,"reason":"r"}`, auditor, 403},
		{"GET", "/api/v1/deferrals", "", issuer, 403},
		{"GET", "/api/v1/deferrals/x", "", e.tokA, 404},
		{"POST", "/api/v1/deferral-requests", `{"body":"{}","signature":"","certificates":[]}`, auditor, 403},
		{"POST", "/api/v1/deferral-requests/x/decision", `{"approve":true,"reason":"r"}`, e.tokA, 403},
		{"GET", "/api/v1/deferral-requests", "", auditor, 200},
		{"POST", "/api/v1/openings", `{"packages":["x"],"reason":"r"}`, auditor, 403},
		{"POST", "/api/v1/openings", `{"packages":["x"],"reason":"r"}`, e.tokA, 403},
		{"GET", "/api/v1/openings", "", e.tokA, 403},
		{"GET", "/api/v1/openings?pending=1", "", auditor, 200},
		{"POST", "/api/v1/openings/x/approve", `{"approve":true}`, auditor, 403},
		{"POST", "/api/v1/openings/close", `{"package":"x","reason":"r"}`, e.tokA, 403},
		{"GET", "/api/v1/open/x", "", "", 404},
		{"POST", "/api/v1/use-requests", `{"owner":"` + deptB + `","packages":["x"],"purpose":"p","until":"2099-01-01T00:00:00Z"}`, auditor, 403},
		{"POST", "/api/v1/use-requests", `{"owner":"` + deptB + `","packages":["x"],"purpose":"p","until":"2099-01-01T00:00:00Z"}`, arch, 403},
		{"GET", "/api/v1/use-requests", "", issuer, 403},
		{"GET", "/api/v1/use-requests", "", auditor, 200},
		{"GET", "/api/v1/use-requests?department=" + deptB, "", e.tokA, 403},
		{"GET", "/api/v1/use-requests/00000000000000000001-00000000", "", e.tokA, 404},
		{"POST", "/api/v1/use-requests/00000000000000000001-00000000/decision", `{"action":"approve"}`, auditor, 404},
		{"POST", "/api/v1/use-requests/00000000000000000001-00000000/revoke", `{"reason":"r"}`, e.tokA, 404},
		{"GET", "/api/v1/reads", "", e.tokA, 403},
		{"GET", "/api/v1/reads", "", auditor, 200},
		{"GET", "/api/v1/disposals/candidates", "", e.tokA, 403},
		{"GET", "/api/v1/disposals/candidates", "", auditor, 200},
		{"POST", "/api/v1/disposals", `{"package":"x","action":"destroy","reason":"r"}`, auditor, 403},
		{"POST", "/api/v1/disposals", `{"package":"x","action":"destroy","reason":"r"}`, e.tokA, 403},
		{"POST", "/api/v1/disposals/D1/approve", `{"approve":true}`, e.tokA, 403},
		{"POST", "/api/v1/disposals/D1/approve", `{"approve":true}`, auditor, 403},
		{"GET", "/api/v1/disposals/register", "", e.tokA, 403},
		{"GET", "/api/v1/disposals/register", "", auditor, 200},
		{"POST", "/api/v1/audits/run", `{"all":true}`, e.tokA, 403},
		{"GET", "/api/v1/audits", "", e.tokA, 403},
		{"GET", "/api/v1/audits/run", "", auditor, 200},
		{"POST", "/api/v1/migrations", `{}`, e.tokA, 403},
		{"POST", "/api/v1/migrations", `{}`, auditor, 403},
		{"POST", "/api/v1/migrations", `{"rate":-1}`, arch, 422},
		{"GET", "/api/v1/migrations/current", "", e.tokA, 403},
		{"GET", "/api/v1/migrations/current", "", auditor, 200},
		{"GET", "/api/v1/packages/x/eep?layer=-1", "", arch, 422},
		{"POST", "/api/v1/transfers", `{"due":true}`, auditor, 403},
		{"GET", "/api/v1/transfers/20261122T000000Z-00000000", "", e.tokA, 404},
		{"POST", "/api/v1/accessions", `{"body":"{}","signature":"","certificates":[]}`, auditor, 403},
		{"POST", "/api/v1/accessions", `{"body":"{}","signature":"","certificates":[]}`, e.tokA, 422},
		{"GET", "/api/v1/accessions/20261122T000000Z-00000000", "", e.tokB, 404},
		{"POST", "/api/v1/log/renew", "", arch, 403},
		{"GET", "/api/v1/log/entries", "", e.tokA, 403},
		// An issuer issues certificates and nothing else of its department's.
		{"GET", "/api/v1/packages", "", issuer, 403},
		{"POST", "/api/v1/cases", `{}`, issuer, 403},
		{"GET", "/api/v1/reads", "", issuer, 403},
		{"POST", "/api/v1/certificates", `{}`, e.tokA, 403},
		{"POST", "/api/v1/certificates", `{}`, arch, 403},
		{"GET", "/api/v1/certificates", "", auditor, 403},
		{"GET", "/api/v1/certificates", "", arch, 200},
		{"POST", "/api/v1/certificates/1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0/revoke", `{"code":"03","reason":"x"}`, arch, 403},
	}
	for _, c := range cases {
		var body *strings.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		var resp *http.Response
		if body != nil {
			resp, _ = e.do(c.method, c.path, c.token, body, "application/json")
		} else {
			resp, _ = e.do(c.method, c.path, c.token, nil, "")
		}
		if resp.StatusCode != c.status {
			t.Errorf("%s %s as %q: %d, want %d", c.method, c.path, c.token[:min(6, len(c.token))], resp.StatusCode, c.status)
		}
	}
}
