package api

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// TestVerifyPageInChromium drives the verification page in a real headless browser: a
// citizen uploads an issued certificate and reads a green verdict, then uploads a changed
// copy and reads a red one that names the failed check.
func TestVerifyPageInChromium(t *testing.T) {
	e := newEnv(t, Options{PublicRate: -1})
	issuer, _ := e.a.CreateToken(archive.RoleIssuer, deptA, "")
	_, body := e.do(http.MethodPost, "/api/v1/certificates", issuer, strings.NewReader(citizenCert), "application/json")
	c := decode[archive.Certificate](t, body)
	_, pdf := e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"/pdf", issuer, nil, "")
	_, ofdFile := e.do(http.MethodGet, "/api/v1/certificates/"+c.Identifier+"/ofd", issuer, nil, "")
	dir := t.TempDir()
	good := filepath.Join(dir, "certificate.pdf")
	bad := filepath.Join(dir, "changed.pdf")
	goodOFD := filepath.Join(dir, "certificate.ofd")
	os.WriteFile(good, pdf, 0o644)
	os.WriteFile(goodOFD, ofdFile, 0o644)
	changed := append([]byte(nil), pdf...)
	changed[len(changed)/3] ^= 0x04
	os.WriteFile(bad, changed, 0o644)

	ctx := testenv.Browser(t, 60*time.Second)

	upload := func(path string) (verdict, checks string) {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(e.srv.URL+"/verify"),
			chromedp.WaitVisible(chromedp.ID("file")),
			chromedp.SendKeys(chromedp.ID("purpose"), "银行开户核验"),
			chromedp.SetUploadFiles(chromedp.ID("file"), []string{path}),
			chromedp.Click(chromedp.ID("submit")),
			chromedp.WaitVisible(chromedp.ID("verdict")),
		)
		if err == nil {
			verdict, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("verdict")))
		}
		if err == nil {
			checks, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("checks")))
		}
		if err != nil {
			t.Fatalf("upload %s: %v", path, err)
		}
		return verdict, checks
	}
	for _, f := range []string{good, goodOFD} {
		verdict, checks := upload(f)
		if !strings.Contains(verdict, "有效") || !strings.Contains(verdict, "Valid") || strings.Contains(verdict, "无效") {
			t.Errorf("%s: verdict %q", filepath.Base(f), verdict)
		}
		if !strings.Contains(checks, "签名人可信") || !strings.Contains(checks, "通过") {
			t.Errorf("%s: checks %q", filepath.Base(f), checks)
		}
	}
	verdict, checks := upload(bad)
	if !strings.Contains(verdict, "无效") || !strings.Contains(verdict, "Invalid") || !strings.Contains(verdict, "文件未被篡改") {
		t.Errorf("changed file: verdict %q", verdict)
	}
	if !strings.Contains(checks, "未通过") {
		t.Errorf("changed file: checks %q", checks)
	}

	// A foreign PDF with four signatures in four revisions (iText): each signature is a row
	// with its revision, its algorithm, and what the later revisions changed.
	corpus, _ := filepath.Abs("../../shared/corpus/signed")
	upload(filepath.Join(corpus, "pdf-rsa-four-sigs-mdp.pdf"))
	rows, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("signatures")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2 / 5", "3 / 5", "4 / 5", "5 / 5", "RSA with SHA-256", "Alice Specimen", "Dave Specimen",
		"form field", "the file extends it with permitted changes", "the whole file", "intact, not trusted"} {
		if !strings.Contains(rows, want) {
			t.Errorf("the signatures table lacks %q:\n%s", want, rows)
		}
	}
	// The shadow attack: the signature is intact, the update after it is named.
	verdict, _ = upload(filepath.Join(corpus, "pdf-rsa-shadow-attack-hide-replace.pdf"))
	rows, _ = chromedp.Run(ctx, chromedp.Text(chromedp.ID("signatures")))
	if !strings.Contains(verdict, "签名后的修改") || !strings.Contains(rows, "later revisions change it in ways a signature does not allow") {
		t.Errorf("shadow attack: verdict %q, signatures %q", verdict, rows)
	}
}
