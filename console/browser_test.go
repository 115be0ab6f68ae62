package console

import (
	"context"
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

// In headless Chromium: the first login is the admin account with the password dangan
// wrote to <data>/admin-password; 首页 shows the holdings; the session cookie is HttpOnly
// and SameSite=Strict; logging out ends the session, so 首页 sends the browser back to the
// login page. Screenshots of the pages are saved as test output.
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
	mux := http.NewServeMux()
	mux.Handle(Prefix, New(a, Options{Logger: quiet()}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := testenv.Browser(t, 60*time.Second)
	shots := filepath.Join(os.TempDir(), "dangan-console-screenshots")
	os.MkdirAll(shots, 0o755)
	shot := func(name string) {
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err == nil {
			os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644)
		}
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	shot("login")
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), strings.TrimSpace(string(pw))),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("holdings")),
	)
	if err != nil {
		t.Fatal(err)
	}
	shot("home")
	heading, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	holdings, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("holdings")))
	if heading != "首页" || !strings.Contains(holdings, "0 件") {
		t.Fatalf("home: %q, holdings %q", heading, holdings)
	}
	res, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/console/"}})
	})
	cookies := res.Cookies
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cookies {
		if c.Name == sessionCookie {
			found = true
			if !c.HTTPOnly || c.SameSite != network.CookieSameSiteStrict {
				t.Fatalf("session cookie %+v", c)
			}
		}
	}
	if !found {
		t.Fatalf("no session cookie in %+v", cookies)
	}
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`header form button`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
		chromedp.Navigate(srv.URL+"/console/"),
		chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)),
	)
	if err != nil {
		t.Fatalf("after logout: %v", err)
	}
	t.Logf("screenshots in %s", shots)
}
