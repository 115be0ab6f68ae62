package console

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// ingestExample archives examples/case-001 (a PDF decision, a scanned JPEG, a JSON form)
// as a case of dept.
func ingestExample(t *testing.T, a *archive.Archive, dept, caseNo string) string {
	t.Helper()
	b, err := os.ReadFile("../examples/case-001/case.json")
	if err != nil {
		t.Fatal(err)
	}
	var c archive.Case
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	c.CaseNo, c.Department.USCC = caseNo, dept
	var files []string
	for _, d := range c.Documents {
		files = append(files, d.File)
	}
	i := 0
	res, err := a.Ingest(context.Background(), archive.Principal{Role: archive.RoleDepartment, Org: dept}, &c, func() (*archive.Upload, error) {
		if i == len(files) {
			return nil, io.EOF
		}
		f, err := os.Open(filepath.Join("../examples/case-001", files[i]))
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { f.Close() })
		i++
		return &archive.Upload{Part: files[i-1], FileName: files[i-1], Body: f}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Package.ID
}

// In headless Chromium, as the people would: the first login is the admin account
// with the password dangan wrote to <data>/admin-password; the admin makes a department
// archivist on 系统管理; the archivist searches for a two-character word, opens the record
// found and sees the first page of its PDF decision drawn by the console's own pdf.js
// (checked on the page's canvas, not by fetching the file); another department's record is
// 页面不存在; the session cookie is HttpOnly and SameSite=Strict; logging out ends the
// session. Two archivists of the archive: one decides a destruction and cannot approve it,
// the other approves it. Screenshots of every page are saved as test output.
func TestConsoleInChromium(t *testing.T) {
	a, err := archive.Open(archive.Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true,
		PasswordCost: archive.PasswordCost{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	path, err := a.EnsureAdminAccount()
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := os.ReadFile(path)
	deptA, deptB := uscc(t, 11), uscc(t, 12)
	expired := ingestCase(t, a, deptA, "BR-3", "旧档", "保管期满", "D10", time.Now().AddDate(-12, 0, 0))
	ingestExample(t, a, deptA, "BR-1") // newest: the first hit
	other := ingestExample(t, a, deptB, "BR-2")
	mux := http.NewServeMux()
	mux.Handle(Prefix, New(a, Options{Logger: quiet()}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := testenv.Browser(t, 180*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // the browser starts under ctx, not a step's
		t.Fatal(err)
	}
	shots := filepath.Join(os.TempDir(), "dangan-console-screenshots")
	os.MkdirAll(shots, 0o755)
	shot := func(name string) {
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644)
		}
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second) // leaves time for the screenshot
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	login := func(name, password string) {
		t.Helper()
		step("log in as "+name,
			chromedp.Navigate(srv.URL+"/console/"),
			chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
			chromedp.Submit(chromedp.CSS(`.login form`)),
			chromedp.WaitVisible(chromedp.ID("holdings")))
	}
	logout := func() {
		t.Helper()
		step("log out", chromedp.WaitVisible(chromedp.CSS(`header form button`)), chromedp.Submit(chromedp.CSS(`header form`)), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	}
	step("open the console", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)))
	shot("login")
	login("admin", strings.TrimSpace(string(pw)))
	shot("home")
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	holdings, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("holdings")))
	if heading != "首页" || !strings.Contains(holdings, "3 件") {
		t.Fatalf("home: %q, holdings %q", heading, holdings)
	}
	res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/console/"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range res.Cookies {
		if c.Name == sessionCookie {
			found = true
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Fatalf("session cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie in %+v", res.Cookies)
	}
	// 系统管理: a department archivist and two of the archive's archivists.
	for _, acct := range []struct{ name, display, role, dept string }{
		{"clerk.a", "部门档案员甲", "department", deptA}, {"wang", "档案员王", "archive", ""}, {"li", "档案员李", "archive", ""}} {
		actions := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(srv.URL + "/console/admin/accounts"),
			chromedp.WaitVisible(chromedp.ID("new-account")),
			chromedp.SendKeys(chromedp.CSS(`#new-account input[name="name"]`), acct.name),
			chromedp.SendKeys(chromedp.CSS(`#new-account input[name="display"]`), acct.display),
			chromedp.SetValue(chromedp.CSS(`#new-account select[name="role"]`), acct.role)}
		if acct.dept != "" {
			actions = append(actions, chromedp.SendKeys(chromedp.CSS(`#new-account input[name="department"]`), acct.dept))
		}
		step("make the account "+acct.name, append(actions,
			chromedp.SendKeys(chromedp.CSS(`#new-account input[name="password"]`), "a long password 1"),
			chromedp.Submit(chromedp.CSS(`#new-account`)),
			chromedp.WaitVisible(chromedp.CSS(`p.ok`)))...)
	}
	shot("accounts")
	step("the tokens page", chromedp.Navigate(srv.URL+"/console/admin/tokens"), chromedp.WaitVisible(chromedp.CSS("h1")))
	shot("tokens")
	step("the format policy", chromedp.Navigate(srv.URL+"/console/admin/formats"), chromedp.WaitVisible(chromedp.ID("rules")))
	shot("formats")
	logout()
	login("clerk.a", "a long password 1")
	// 检索 for 许可 (in the decision's text and the title), then the record, then its PDF.
	waitIndexed(t, a, 3)
	step("search",
		chromedp.Navigate(srv.URL+"/console/search"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "许可"),
		chromedp.Submit(chromedp.CSS(`form.searchform`)),
		chromedp.WaitVisible(chromedp.ID("hits")))
	shot("search")
	total, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("total")))
	if !strings.Contains(total, "共找到 2 件") { // the decision's case and the expired one
		t.Fatalf("department A's search: %q", total)
	}
	step("open the record", chromedp.Click(chromedp.CSS(`#hits a.title`)), chromedp.WaitVisible(chromedp.ID("documents")))
	shot("record")
	recordURL, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href`))
	step("the record's metadata", chromedp.Click(chromedp.ID("metadata-link")), chromedp.WaitVisible(chromedp.ID("fields")))
	shot("metadata")
	step("back to the record", chromedp.Navigate(recordURL), chromedp.WaitVisible(chromedp.ID("documents")))
	step("view the decision's PDF", chromedp.Click(chromedp.CSS(`#documents > li:last-child a.view`)), chromedp.WaitVisible(chromedp.CSS(`#viewer[data-drawn="1"]`)))
	shot("viewer")
	if title, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1"))); title != "准予行政许可决定书" {
		t.Fatalf("the viewer shows %q", title)
	}
	inked, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => {
		const c = document.getElementById("page");
		const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
		let n = 0;
		for (let i = 0; i < d.length; i += 4) if (d[i] < 128 && d[i+1] < 128 && d[i+2] < 128 && d[i+3] > 0) n++;
		return n;
	})()`))
	if err != nil || inked < 500 {
		t.Fatalf("the viewer drew %d dark pixels (%v): the page is not drawn", inked, err)
	}
	step("another department's record", chromedp.Navigate(srv.URL+"/console/packages/"+other), chromedp.WaitVisible(chromedp.CSS("p.error")))
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("p.error"))); msg != "页面不存在。" {
		t.Fatalf("another department's record: %q", msg)
	}
	logout()

	// 鉴定与销毁: wang decides to destroy the expired record; the page does not offer wang the
	// approval, and the server refuses it when wang asks anyway; li approves it.
	login("wang", "a long password 1")
	step("the disposal page", chromedp.Navigate(srv.URL+"/console/disposal"), chromedp.WaitVisible(chromedp.CSS(`#candidates input[value="`+expired+`"]`)))
	shot("disposal")
	step("decide the destruction",
		chromedp.Click(chromedp.CSS(`#candidates input[value="`+expired+`"]`)),
		chromedp.SendKeys(chromedp.CSS(`#decide input[name="reason"]`), "保管期满，无继续保存价值"),
		chromedp.Submit(chromedp.CSS(`#decide`)),
		chromedp.WaitVisible(chromedp.ID("pending")))
	pending, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("pending")))
	approvals, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#pending form[action$="/approve"]').length`))
	if !strings.Contains(pending, "本人所作鉴定") || approvals != 0 {
		t.Fatalf("the decider's queue offers %d approvals: %q", approvals, pending)
	}
	decs, _, err := a.Decisions(t.Context(), archive.Principal{Role: archive.RoleArchive}, "", 10)
	if err != nil || len(decs) != 1 {
		t.Fatalf("decisions %v %v", decs, err)
	}
	refused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/console/disposal/`+decs[0].ID+`/approve", {method: "POST",
		headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "approve=1"}).then(async r => r.status + " " + await r.text())`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(refused, "403 ") || !strings.Contains(refused, "不能审批本人所作的销毁鉴定") {
		t.Fatalf("the decider approving their own decision: %.200q %v", refused, err)
	}
	logout()
	login("li", "a long password 1")
	step("approve as the second archivist",
		chromedp.Navigate(srv.URL+"/console/disposal"),
		chromedp.WaitVisible(chromedp.CSS(`#pending form[action="/console/disposal/`+decs[0].ID+`/approve"]`)),
		chromedp.SendKeys(chromedp.CSS(`#pending input[name="note"]`), "同意销毁"),
		chromedp.Click(chromedp.CSS(`#pending button[value="1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.ok`)))
	shot("disposal-approved")
	if p, err := a.Package(t.Context(), archive.Principal{Role: archive.RoleArchive}, expired); err != nil || p.Tombstone == nil {
		t.Fatalf("the approved destruction did not happen: %v", err)
	}
	// The other pages an archivist works on, each drawn.
	for _, pg := range []struct{ path, visible string }{
		{"/console/audit", "#run"}, {"/console/migration", "#run"}, {"/console/certificates", "h1"}, {"/console/log", "h1"}, {"/console/transfers", "#deferrals"},
		{"/console/use", "#forus"}, {"/console/opening", "#propose"}, {"/console/inspection", "#make"},
		{"/console/packages/" + expired, "#documents"}} {
		step("open "+pg.path, chromedp.Navigate(srv.URL+pg.path), chromedp.WaitVisible(chromedp.CSS(pg.visible)))
		shot(strings.ReplaceAll(strings.Trim(pg.path, "/"), "/", "-"))
	}
	logout()
	step("after logout", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	t.Logf("screenshots in %s", shots)
}
