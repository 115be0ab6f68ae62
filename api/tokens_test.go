package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

type wallclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *wallclock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *wallclock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Over the API: the admin makes a token with a lifetime, lists and revokes tokens; an
// expired and a revoked token get 401 with the reason; an address that keeps failing gets
// 429 with Retry-After.
func TestTokenLifecycleOverTheAPI(t *testing.T) {
	c := &wallclock{t: time.Date(2030, 6, 1, 8, 0, 0, 0, time.UTC)}
	a, err := archive.Open(archive.Config{DataDir: t.TempDir(), Logger: testenv.Logger(), Wallclock: c.Now, AuthFailures: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(a, Options{Logger: testenv.Logger()}))
	t.Cleanup(func() { srv.Close(); a.Close() })
	e := &env{t: t, a: a, srv: srv}
	e.admin, _ = a.CreateToken(archive.RoleAdmin, "", "")

	resp, body := e.postJSON("/api/v1/tokens", e.admin, `{"role":"auditor","note":"审计 李","ttl":"48h"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var made struct {
		Token   string
		ID      string
		Expires time.Time
	}
	json.Unmarshal(body, &made)
	if !made.Expires.Equal(c.Now().Add(48*time.Hour)) || made.ID == "" || !strings.HasPrefix(made.Token, "dg_") {
		t.Fatalf("created: %s", body)
	}
	for _, bad := range []struct{ body, field string }{
		{`{"role":"auditor","ttl":"forever"}`, "ttl"},
		{`{"role":"auditor","ttl":"1s"}`, "ttl"},
		{`{"role":"auditor","client_cert":"not PEM"}`, "client_cert"},
		{`{"role":"department","org":"x"}`, "org"},
	} {
		resp, body := e.postJSON("/api/v1/tokens", e.admin, bad.body)
		var p struct{ Field string }
		json.Unmarshal(body, &p)
		if resp.StatusCode != http.StatusUnprocessableEntity || p.Field != bad.field {
			t.Fatalf("%s: %d %s", bad.body, resp.StatusCode, body)
		}
	}
	if resp, _ := e.do("GET", "/api/v1/audits", made.Token, nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("the new token: %d", resp.StatusCode)
	}
	c.Add(48 * time.Hour)
	resp, body = e.do("GET", "/api/v1/audits", made.Token, nil, "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "expired") {
		t.Fatalf("an expired token: %d %s", resp.StatusCode, body)
	}

	arch, _ := a.CreateToken(archive.RoleArchive, "", "王档案")
	resp, body = e.do("GET", "/api/v1/tokens", e.admin, nil, "")
	var list struct{ Tokens []archive.TokenInfo }
	json.Unmarshal(body, &list)
	if resp.StatusCode != http.StatusOK || len(list.Tokens) != 3 || strings.Contains(string(body), "dg_") {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}
	var archID string
	for _, ti := range list.Tokens {
		if ti.Note == "王档案" {
			archID = ti.ID
		}
	}
	if resp, _ := e.do("GET", "/api/v1/tokens", arch, nil, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an archivist lists tokens: %d", resp.StatusCode)
	}
	if resp, _ := e.postJSON("/api/v1/tokens/"+archID+"/revoke", arch, `{}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an archivist revokes: %d", resp.StatusCode)
	}
	if resp, body := e.postJSON("/api/v1/tokens/"+archID+"/revoke", e.admin, `{}`); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"revoked"`) {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.postJSON("/api/v1/tokens/0123456789ab/revoke", e.admin, `{}`); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("revoke an unknown id: %d", resp.StatusCode)
	}
	resp, body = e.do("GET", "/api/v1/schedule", arch, nil, "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "revoked") {
		t.Fatalf("a revoked token: %d %s", resp.StatusCode, body)
	}

	// The expired and the revoked token were failures of this address; wrong tokens go on
	// until it is throttled.
	var throttled *http.Response
	for i := 0; i < 10 && throttled == nil; i++ {
		if resp, _ := e.do("GET", "/api/v1/audits", "dg_not-a-token", nil, ""); resp.StatusCode == http.StatusTooManyRequests {
			throttled = resp
		} else if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a wrong token: %d", resp.StatusCode)
		}
	}
	if throttled == nil || throttled.Header.Get("Retry-After") == "" {
		t.Fatal("repeated failures from one address are not throttled")
	}
	if resp, _ := e.do("GET", "/api/v1/tokens", e.admin, nil, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the admin's right token from the throttled address: %d", resp.StatusCode)
	}
}
