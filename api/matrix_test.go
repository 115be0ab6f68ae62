package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/archive"
)

// The authorization matrix: who may call each route of the OpenAPI document. A role
// listed may pass (the answer is not 401 or 403; a package route then finds the package);
// a role not listed gets 403 (anonymous: 401); "other" is a department that does not own
// the package a route names, which must get 403 or 404 and never the record. A route in the
// document without a row fails the test, so a new route needs a decision here.
//
//	public  anyone, without a token
//	admin, archive, auditor, dept (the owner), issuer: the roles (tokens)
//	other   another department may pass as well (it is not a package of someone else's)
var matrix = map[string]string{
	"DELETE /api/v1/packages/{id}":                  "archive",
	"GET /api/v1/accessions":                        "archive auditor admin dept other issuer",
	"GET /api/v1/accessions/{batch}":                "archive auditor admin dept other",
	"GET /api/v1/audits":                            "archive auditor admin",
	"GET /api/v1/audits/run":                        "archive auditor admin",
	"GET /api/v1/backups":                           "archive auditor admin",
	"GET /api/v1/certificates":                      "issuer archive",
	"GET /api/v1/certificates/revocations":          "public",
	"GET /api/v1/certificates/{identifier}":         "public",
	"GET /api/v1/certificates/{identifier}/entry":   "issuer archive",
	"GET /api/v1/certificates/{identifier}/ofd":     "issuer archive",
	"GET /api/v1/certificates/{identifier}/pdf":     "issuer archive",
	"GET /api/v1/deferral-requests":                 "archive auditor dept other",
	"GET /api/v1/deferral-requests/{id}":            "archive auditor admin",
	"GET /api/v1/deferrals":                         "dept other archive auditor",
	"GET /api/v1/deferrals/{id}":                    "dept other archive auditor admin",
	"GET /api/v1/disposals":                         "archive auditor",
	"GET /api/v1/disposals/candidates":              "archive auditor",
	"GET /api/v1/disposals/register":                "archive auditor",
	"GET /api/v1/inspection-reports":                "archive auditor",
	"GET /api/v1/inspection-reports/{id}":           "archive auditor",
	"GET /api/v1/inspections":                       "archive auditor dept other",
	"GET /api/v1/log/checkpoint":                    "public",
	"GET /api/v1/log/entries":                       "archive auditor admin",
	"GET /api/v1/log/proof/consistency":             "public",
	"GET /api/v1/log/proof/inclusion":               "public",
	"GET /api/v1/log/witnessed":                     "archive auditor admin",
	"GET /api/v1/migrations/current":                "archive auditor admin",
	"GET /api/v1/open":                              "public",
	"GET /api/v1/open/{id}":                         "public",
	"GET /api/v1/openapi.json":                      "public",
	"GET /api/v1/openings":                          "archive auditor",
	"GET /api/v1/packages":                          "dept other archive",
	"GET /api/v1/packages/{id}":                     "dept archive",
	"GET /api/v1/packages/{id}/documents/{n}":       "dept archive",
	"GET /api/v1/packages/{id}/eep":                 "dept archive",
	"GET /api/v1/packages/{id}/evidence":            "dept archive auditor",
	"GET /api/v1/reads":                             "archive auditor admin",
	"GET /api/v1/schedule":                          "dept other archive auditor admin",
	"GET /api/v1/search":                            "dept other archive",
	"GET /api/v1/statistics":                        "dept other archive auditor admin",
	"GET /api/v1/tokens":                            "admin",
	"GET /api/v1/transfers":                         "dept other archive auditor admin issuer",
	"GET /api/v1/transfers/{batch}":                 "dept other archive auditor admin",
	"GET /api/v1/trust":                             "public",
	"GET /api/v1/use-requests":                      "dept other archive auditor",
	"GET /api/v1/use-requests/{id}":                 "dept other archive auditor admin",
	"POST /api/v1/accessions":                       "dept other archive",
	"POST /api/v1/accessions/{batch}/receipt":       "dept other archive",
	"POST /api/v1/audits/run":                       "archive auditor admin",
	"POST /api/v1/cases":                            "dept other",
	"POST /api/v1/certificates":                     "issuer",
	"POST /api/v1/certificates/{identifier}/revoke": "issuer",
	"POST /api/v1/deferral-requests":                "dept other archive",
	"POST /api/v1/deferral-requests/{id}/decision":  "archive",
	"POST /api/v1/deferrals":                        "dept other archive",
	"POST /api/v1/deferrals/{id}/check":             "dept other archive",
	"POST /api/v1/deferrals/{id}/decision":          "dept other archive",
	"POST /api/v1/disposals":                        "archive",
	"POST /api/v1/disposals/{id}/approve":           "archive",
	"POST /api/v1/inspection-reports":               "dept other archive",
	"POST /api/v1/inspections":                      "archive dept other",
	"POST /api/v1/log/renew":                        "admin",
	"POST /api/v1/log/witness":                      "dept other archive",
	"POST /api/v1/migrations":                       "archive admin",
	"POST /api/v1/openings":                         "archive",
	"POST /api/v1/openings/close":                   "archive",
	"POST /api/v1/openings/{id}/approve":            "archive",
	"POST /api/v1/search":                           "dept other archive",
	"POST /api/v1/tokens":                           "admin",
	"POST /api/v1/tokens/{id}/revoke":               "admin",
	"POST /api/v1/transfers":                        "dept other archive",
	"POST /api/v1/transfers/{batch}/retry":          "dept other archive",
	"POST /api/v1/use-requests":                     "dept other",
	"POST /api/v1/use-requests/{id}/decision":       "dept other archive",
	"POST /api/v1/use-requests/{id}/revoke":         "dept other archive",
	"POST /api/v1/verify":                           "public",
	"PUT /api/v1/accessions/{batch}/packages/{id}":  "dept other archive",
	"PUT /api/v1/certificates/{identifier}":         "issuer",
	"PUT /api/v1/packages/{id}/legal-hold":          "archive",
	"PUT /api/v1/packages/{id}/retention":           "archive",
	"GET /healthz":                                  "public",
	"GET /readyz":                                   "public",
	"GET /metrics":                                  "public",
	"POST /tsa":                                     "public",
	"GET /verify":                                   "public",
	"POST /verify":                                  "public",
	"GET /open":                                     "public",
	"GET /open/{id}":                                "public",
}

func TestAuthorizationMatrix(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for p, ops := range doc.Paths {
		for m := range ops {
			routes = append(routes, strings.ToUpper(m)+" "+p)
		}
	}
	sort.Strings(routes)
	e := newEnv(t, Options{PublicRate: -1})
	pkg := e.ingestCase("MATRIX-1").ID
	tokens := map[string]string{"admin": e.admin, "dept": e.tokA, "other": e.tokB}
	for _, r := range []struct{ name, role, org string }{{"archive", archive.RoleArchive, ""}, {"auditor", archive.RoleAuditor, ""}, {"issuer", archive.RoleIssuer, deptA}} {
		tokens[r.name], _ = e.a.CreateToken(r.role, r.org, "matrix "+r.name)
	}
	callers := []string{"anonymous", "admin", "archive", "auditor", "dept", "other", "issuer"}
	var observed []string
	for _, route := range routes {
		row, ok := matrix[route]
		if !ok {
			t.Errorf("%s has no row in the authorization matrix", route)
			continue
		}
		method, path, _ := strings.Cut(route, " ")
		path = strings.NewReplacer("{id}", pkg, "{n}", "1", "{batch}", "B-none", "{identifier}", "none").Replace(path)
		if strings.HasPrefix(route, "POST /api/v1/tokens/") {
			path = "/api/v1/tokens/000000000000/revoke"
		}
		allowed := strings.Fields(row)
		var seen []string
		for _, who := range callers {
			body := strings.NewReader("{}")
			resp, _ := e.do(method, path, tokens[who], body, "application/json")
			seen = append(seen, fmt.Sprintf("%s=%d", who, resp.StatusCode))
			passed := resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden
			switch {
			case row == "public":
				if !passed {
					t.Errorf("%s is public, but %s got %d", route, who, resp.StatusCode)
				}
			case who == "anonymous":
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s without a token: %d, want 401", route, resp.StatusCode)
				}
			case slices.Contains(allowed, who):
				if !passed || strings.HasPrefix(route, "GET /api/v1/packages/{id}") && resp.StatusCode != http.StatusOK {
					t.Errorf("%s is for %s, who got %d", route, who, resp.StatusCode)
				}
			case who == "other" && strings.Contains(route, "{id}") && strings.HasPrefix(path, "/api/v1/packages/"):
				if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
					t.Errorf("%s: another department got %d", route, resp.StatusCode)
				}
			default:
				if resp.StatusCode != http.StatusForbidden && !(resp.StatusCode == http.StatusNotFound && strings.Contains(route, "{")) {
					t.Errorf("%s is not for %s, who got %d", route, who, resp.StatusCode)
				}
			}
		}
		observed = append(observed, route+"\t"+strings.Join(seen, " "))
	}
	for route := range matrix {
		if !slices.Contains(routes, route) {
			t.Errorf("the matrix has a row for %s, which the OpenAPI document does not describe", route)
		}
	}
	if t.Failed() && os.Getenv("DANGAN_MATRIX_PRINT") != "" {
		t.Log("observed:\n" + strings.Join(observed, "\n"))
	}
}
