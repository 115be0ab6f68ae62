package api

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dangan-archive/dangan/internal/testenv"
)

// 移交与接收 in headless Chromium, between two dangan instances: a department archivist
// sees the three records due, creates the transfer with one button, and watches the batch
// go from 发送中 to 已完成 with the county archive's signed receipt without the page being
// reloaded (the county archive is unavailable at first, so the batch is seen being sent);
// the county archive's archivist sees the accession. Screenshots are saved as test output.
func TestConsoleTransferInChromium(t *testing.T) {
	p := newPair(t, nil)
	p.countyDown.Store(true)
	duePermanentCases(t, p, "CB-")
	ctx := testenv.Browser(t, 3*time.Minute)
	shots := filepath.Join(os.TempDir(), "dangan-console-screenshots")
	os.MkdirAll(shots, 0o755)
	shot := func(name string) {
		if b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			os.WriteFile(filepath.Join(shots, name+".png"), b, 0o644)
		}
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot("failed-transfer")
			t.Fatalf("%s: %v", what, err)
		}
	}
	login := func(base, name string) {
		t.Helper()
		step("log in as "+name,
			chromedp.Navigate(base+"/console/"),
			chromedp.WaitVisible(chromedp.CSS(`input[name="name"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), "long enough password"),
			chromedp.Submit(chromedp.CSS(`.login form`)),
			chromedp.WaitVisible(chromedp.ID("holdings")))
	}
	login(p.deptEnv.srv.URL, "clerk")
	step("the transfers page", chromedp.Navigate(p.deptEnv.srv.URL+"/console/transfers"), chromedp.WaitVisible(chromedp.ID("due")))
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#due a[href^="/console/packages/"]').length`)); n != 3 {
		t.Fatalf("%d records due, want 3", n)
	}
	shot("transfers-due")
	step("create the transfer", chromedp.Submit(chromedp.CSS(`#due form`)), chromedp.WaitVisible(chromedp.CSS(`body[data-refresh]`)))
	state, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("batches")))
	if !strings.Contains(state, "发送中") {
		t.Fatalf("the new batch: %q", state)
	}
	shot("transfers-sending")
	// A mark on this page: a reload would lose it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stayed = true`)); err != nil {
		t.Fatal(err)
	}
	p.countyDown.Store(false)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("batches").textContent.includes("已完成")`, chromedp.WithPollingTimeout(90*time.Second))); err != nil {
		shot("failed-transfer")
		t.Fatalf("the batch did not complete on the page: %v", err)
	}
	shot("transfers-done")
	stayed, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stayed === true && !("refresh" in document.body.dataset)`))
	if !stayed {
		t.Fatal("the page was reloaded, or still asks to be")
	}
	done, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("batches")))
	if !strings.Contains(done, "3 / 3") || !strings.Contains(done, "已签收") {
		t.Fatalf("the finished batch: %q", done)
	}
	if due, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#due a[href^="/console/packages/"]').length`)); due != 0 {
		t.Fatalf("%d records still shown as due after the transfer", due)
	}
	login(p.countyEnv.srv.URL, "keeper") // the same host: this session replaces the other
	step("the county archive's accessions", chromedp.Navigate(p.countyEnv.srv.URL+"/console/transfers"), chromedp.WaitVisible(chromedp.ID("accessions")))
	shot("transfers-accession")
	acc, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("accessions")))
	if !strings.Contains(acc, "3") {
		t.Fatalf("the county archive's accessions: %q", acc)
	}
}
