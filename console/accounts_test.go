package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/archive"
)

// 系统管理 · 账户: the admin makes accounts from the form (a bad one is shown again with its
// field marked, and nothing is made), removes them, and cannot remove their own; no other
// role reaches the page.
func TestAccountsPage(t *testing.T) {
	a, srv := newConsole(t)
	addAccounts(t, a, archive.Account{Name: "root", Display: "管理员", Role: archive.RoleAdmin})
	admin := loginAs(t, srv.URL, "root", "long enough password")
	dept := uscc(t, 5)
	form := func(name, role, department string) url.Values {
		return url.Values{"name": {name}, "display": {"张三"}, "role": {role}, "department": {department}, "password": {"a long password 1"}}
	}
	resp, body := send(t, "POST", srv.URL+"/console/admin/accounts", form("zhang", archive.RoleDepartment, "not a USCC"), admin, nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, `<label class="bad">部门统一社会信用代码`) || !strings.Contains(body, `value="zhang"`) {
		t.Fatalf("a bad USCC: %d %s", resp.StatusCode, body)
	}
	if list, _ := a.Accounts(archive.Principal{Role: archive.RoleAdmin}); len(list) != 2 {
		t.Fatalf("a refused account was made: %+v", list)
	}
	for _, f := range []url.Values{form("zhang", archive.RoleDepartment, dept), form("li", archive.RoleArchive, "")} {
		if resp, _ := send(t, "POST", srv.URL+"/console/admin/accounts", f, admin, nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("create %s: %d", f.Get("name"), resp.StatusCode)
		}
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/admin/accounts", form("li", archive.RoleArchive, ""), admin, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("a taken name: %d", resp.StatusCode)
	}
	_, body = send(t, "GET", srv.URL+"/console/admin/accounts", nil, admin, nil)
	if !strings.Contains(body, "<td>zhang</td>") || !strings.Contains(body, "<td>"+dept+"</td>") || !strings.Contains(body, "部门档案员") {
		t.Fatalf("the list: %s", body)
	}
	zhang := loginAs(t, srv.URL, "zhang", "a long password 1")
	for _, req := range [][2]string{{"GET", "/console/admin/accounts"}, {"POST", "/console/admin/accounts"}, {"POST", "/console/admin/accounts/li/remove"}} {
		if resp, _ := send(t, req[0], srv.URL+req[1], url.Values{}, zhang, nil); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a department account, %s %s: %d", req[0], req[1], resp.StatusCode)
		}
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/admin/accounts/root/remove", url.Values{}, admin, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("the admin removes their own account: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/admin/accounts/zhang/remove", url.Values{}, admin, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/", nil, zhang, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("a removed account's session still opens pages: %d", resp.StatusCode)
	}
}

// 系统管理 · 令牌与信任根: the admin makes an API token from the form and sees it once, on the
// answer, never again on the list (which names it by the start of its hash); the token
// authenticates; a bad one is refused; the trust roots are shown; no other role gets in.
func TestTokensPage(t *testing.T) {
	a, srv := newConsole(t)
	addAccounts(t, a, archive.Account{Name: "root", Display: "管理员", Role: archive.RoleAdmin})
	admin := loginAs(t, srv.URL, "root", "long enough password")
	if resp, _ := send(t, "POST", srv.URL+"/console/admin/tokens", url.Values{"role": {"department"}, "org": {"not a USCC"}}, admin, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a bad token: %d", resp.StatusCode)
	}
	resp, body := send(t, "POST", srv.URL+"/console/admin/tokens", url.Values{"role": {"auditor"}, "note": {"年度审计"}}, admin, nil)
	i := strings.Index(body, `id="new-token"`)
	if resp.StatusCode != 200 || i < 0 {
		t.Fatalf("make a token: %d %s", resp.StatusCode, body)
	}
	tok := body[i:]
	tok = tok[strings.Index(tok, "<pre>")+5 : strings.Index(tok, "</pre>")]
	who, err := a.Authenticate(tok)
	if err != nil || who.Role != archive.RoleAuditor {
		t.Fatalf("the token shown does not authenticate: %q %v", tok, err)
	}
	_, body = send(t, "GET", srv.URL+"/console/admin/tokens", nil, admin, nil)
	if strings.Contains(body, tok) || !strings.Contains(body, "<code>"+who.TokenID+"</code>") || !strings.Contains(body, "年度审计") || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Fatalf("the token list: %s", body)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/admin/tokens", nil, loginAs(t, srv.URL, "wang", "long enough password"), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an archivist on the tokens page: %d", resp.StatusCode)
	}
}

// 系统管理 · 格式策略: the rules in the order they decide, a configured one first, with whether
// each tool is installed here; for the administrator only.
func TestFormatPolicyPage(t *testing.T) {
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(`{"format": "dangan-format-policy/1", "rules": [{"name": "本县规定：WordPerfect 文档拒收", "match": ["x-fmt/394"], "action": "refuse"}]}`), 0o644)
	a, err := archive.Open(archive.Config{DataDir: filepath.Join(dir, "data"), Logger: quiet(), NoBackgroundAudit: true, FormatPolicy: policy,
		PasswordCost: archive.PasswordCost{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addAccounts(t, a, archive.Account{Name: "root", Display: "管理员", Role: archive.RoleAdmin}, archive.Account{Name: "wang", Display: "王档案", Role: archive.RoleArchive})
	srv := httptest.NewServer(New(a, Options{Logger: quiet()}))
	defer srv.Close()
	resp, body := send(t, "GET", srv.URL+"/console/admin/formats", nil, loginAs(t, srv.URL, "root", "long enough password"), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	rules := body[strings.Index(body, `id="rules"`):]
	first := strings.Index(rules, "本县规定")
	if first < 0 || first > strings.Index(rules, "<code>fmt/") || !strings.Contains(rules, "拒收") {
		t.Fatalf("the configured rule is not first: %s", rules)
	}
	for _, tool := range []string{"libreoffice · <span class=\"ok\">installed", "ghostscript · <span class=\"ok\">"} {
		if !strings.Contains(rules, tool) {
			t.Errorf("%q not shown: %s", tool, rules)
		}
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/admin/formats", nil, loginAs(t, srv.URL, "wang", "long enough password"), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an archivist on the format policy page: %d", resp.StatusCode)
	}
}
