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
// session. Screenshots of the pages are saved as test output.
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
	ingestExample(t, a, deptA, "BR-1")
	other := ingestExample(t, a, deptB, "BR-2")
	mux := http.NewServeMux()
	mux.Handle(Prefix, New(a, Options{Logger: quiet()}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := testenv.Browser(t, 90*time.Second)
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
		if err := chromedp.Do(ctx, actions...); err != nil {
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
	if heading != "首页" || !strings.Contains(holdings, "2 件") {
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
	// 系统管理: a department archivist.
	step("make an account",
		chromedp.Navigate(srv.URL+"/console/admin/accounts"),
		chromedp.WaitVisible(chromedp.ID("new-account")),
		chromedp.SendKeys(chromedp.CSS(`#new-account input[name="name"]`), "clerk.a"),
		chromedp.SendKeys(chromedp.CSS(`#new-account input[name="display"]`), "部门档案员甲"),
		chromedp.SetValue(chromedp.CSS(`#new-account select[name="role"]`), "department"),
		chromedp.SendKeys(chromedp.CSS(`#new-account input[name="department"]`), deptA),
		chromedp.SendKeys(chromedp.CSS(`#new-account input[name="password"]`), "a long password 1"),
		chromedp.Submit(chromedp.CSS(`#new-account`)),
		chromedp.WaitVisible(chromedp.CSS(`p.ok`)))
	shot("accounts")
	logout()
	login("clerk.a", "a long password 1")
	// 检索 for 许可 (in the decision's text and the title), then the record, then its PDF.
	waitIndexed(t, a, 2)
	step("search",
		chromedp.Navigate(srv.URL+"/console/search"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "许可"),
		chromedp.Submit(chromedp.CSS(`form.searchform`)),
		chromedp.WaitVisible(chromedp.ID("hits")))
	shot("search")
	total, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("total")))
	if !strings.Contains(total, "共找到 1 件") {
		t.Fatalf("department A's search: %q", total)
	}
	step("open the record", chromedp.Click(chromedp.CSS(`#hits a.title`)), chromedp.WaitVisible(chromedp.ID("documents")))
	shot("record")
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
	step("home again", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.ID("holdings")))
	logout()
	step("after logout", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	t.Logf("screenshots in %s", shots)
}
