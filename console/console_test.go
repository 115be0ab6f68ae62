package console

import (
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

func quiet() *slog.Logger { return testenv.Logger() }

// newConsole is a real archive with one archivist account, behind the console.
func newConsole(t *testing.T) (*archive.Archive, *httptest.Server) {
	t.Helper()
	return newConsoleIn(t, t.TempDir())
}

func newConsoleIn(t *testing.T, dir string) (*archive.Archive, *httptest.Server) {
	t.Helper()
	a, err := archive.Open(archive.Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true,
		PasswordCost: archive.PasswordCost{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}, LockFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	addAccounts(t, a, archive.Account{Name: "wang", Display: "王档案", Role: archive.RoleArchive})
	srv := httptest.NewServer(New(a, Options{Logger: quiet()}))
	t.Cleanup(srv.Close)
	return a, srv
}

// password is every test account's.
const password = "long enough password"

// addAccounts makes accounts with the test password.
func addAccounts(t *testing.T, a *archive.Archive, accs ...archive.Account) {
	t.Helper()
	for _, acc := range accs {
		if _, err := a.CreateAccount(archive.Principal{Role: archive.RoleAdmin}, acc, password); err != nil {
			t.Fatal(err)
		}
	}
}

// waitIndexed waits until the search index holds n cases and nothing is queued.
func waitIndexed(t *testing.T, a *archive.Archive, n uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if ready, queued, have := a.SearchStatus(); ready && queued == 0 && have == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the search index did not reach %d cases", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func send(t *testing.T, method, u string, form url.Values, cookie *http.Cookie, header map[string]string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func sessionOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			return c
		}
	}
	return nil
}

// A person logs in with the form, gets an HttpOnly SameSite=Strict session cookie, sees
// 首页 in Chinese (English when asked) under a strict CSP, and logging out ends the session
// on the server: the old cookie no longer opens a page.
func TestLoginSessionLogout(t *testing.T) {
	_, srv := newConsole(t)
	resp, _ := send(t, "GET", srv.URL+"/console/", nil, nil, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("not signed in: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := send(t, "POST", srv.URL+"/console/login", url.Values{"name": {"wang"}, "password": {"not the password"}}, nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "用户名或密码不正确") || sessionOf(resp) != nil {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, body)
	}
	resp, _ = send(t, "POST", srv.URL+"/console/login", url.Values{"name": {"wang"}, "password": {"long enough password"}}, nil, nil)
	ck := sessionOf(resp)
	if resp.StatusCode != http.StatusSeeOther || ck == nil {
		t.Fatalf("login: %d %v", resp.StatusCode, resp.Header)
	}
	raw := resp.Header.Get("Set-Cookie")
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/console/" || !strings.Contains(raw, "HttpOnly") || !strings.Contains(raw, "SameSite=Strict") {
		t.Fatalf("session cookie %q", raw)
	}
	resp, body = send(t, "GET", srv.URL+"/console/", nil, ck, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "<h1>首页</h1>") || !strings.Contains(body, "王档案") || !strings.Contains(body, "馆藏") {
		t.Fatalf("home: %d %s", resp.StatusCode, body)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("headers %v", resp.Header)
	}
	if _, body := send(t, "GET", srv.URL+"/console/?lang=en", nil, ck, nil); !strings.Contains(body, "<h1>Home</h1>") || !strings.Contains(body, "Holdings") {
		t.Fatalf("English home: %s", body)
	}
	resp, _ = send(t, "POST", srv.URL+"/console/logout", url.Values{}, ck, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/", nil, ck, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the old cookie after logout: %d", resp.StatusCode)
	}
}

// A form posted from another site is refused before it reaches the console: a login (login
// CSRF) and a logout, whether the browser says so in Sec-Fetch-Site or only in Origin.
func TestCrossSitePostsRefused(t *testing.T) {
	_, srv := newConsole(t)
	resp, _ := send(t, "POST", srv.URL+"/console/login", url.Values{"name": {"wang"}, "password": {"long enough password"}}, nil, nil)
	ck := sessionOf(resp)
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://elsewhere.example"},
	} {
		if resp, _ := send(t, "POST", srv.URL+"/console/logout", url.Values{}, ck, h); resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site logout %v: %d", h, resp.StatusCode)
		}
		if resp, _ := send(t, "POST", srv.URL+"/console/login", url.Values{"name": {"wang"}, "password": {"long enough password"}}, nil, h); resp.StatusCode != http.StatusForbidden || sessionOf(resp) != nil {
			t.Errorf("cross-site login %v: %d", h, resp.StatusCode)
		}
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/", nil, ck, nil); resp.StatusCode != 200 {
		t.Fatalf("the refused logouts ended the session: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/logout", url.Values{}, ck, map[string]string{"Sec-Fetch-Site": "same-origin"}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a same-origin logout: %d", resp.StatusCode)
	}
}

// Five wrong passwords through the form lock the account: the fifth answer and the next,
// with the right password, say so.
func TestFiveWrongPasswordsLockTheAccount(t *testing.T) {
	_, srv := newConsole(t)
	for i := 1; i <= 5; i++ {
		resp, body := send(t, "POST", srv.URL+"/console/login", url.Values{"name": {"wang"}, "password": {"wrong password"}}, nil, nil)
		if i < 5 && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, resp.StatusCode)
		}
		if i == 5 && (resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "已暂时锁定")) {
			t.Fatalf("the fifth wrong password: %d %s", resp.StatusCode, body)
		}
	}
	resp, body := send(t, "POST", srv.URL+"/console/login", url.Values{"name": {"wang"}, "password": {"long enough password"}}, nil, nil)
	if resp.StatusCode != http.StatusTooManyRequests || sessionOf(resp) != nil || !strings.Contains(body, "已暂时锁定") {
		t.Fatalf("the right password while locked: %d", resp.StatusCode)
	}
}

// Every word a template asks for exists in Chinese and in English.
func TestEveryWordInBothLanguages(t *testing.T) {
	key := regexp.MustCompile(`\{\{T "([^"]+)"\}\}`)
	names, _ := fs.Glob(templateFiles, "templates/*.html")
	for _, name := range names {
		b, _ := fs.ReadFile(templateFiles, name)
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			for lang, dict := range words {
				if _, ok := dict[m[1]]; !ok {
					t.Errorf("%s: %q has no %s word", name, m[1], lang)
				}
			}
		}
	}
	for k := range words["zh"] {
		if _, ok := words["en"][k]; !ok {
			t.Errorf("%q is only in Chinese", k)
		}
	}
	for k := range words["en"] {
		if _, ok := words["zh"][k]; !ok {
			t.Errorf("%q is only in English", k)
		}
	}
}

func TestMain(m *testing.M) { testenv.RunCheckingLogs(m) }
