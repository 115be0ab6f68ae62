package api

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// consoleLogin logs in to the console of srv and returns the session cookie.
func consoleLogin(t *testing.T, base, name, password string) *http.Cookie {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(base+"/console/login", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "dangan_session" && ck.Value != "" {
			return ck
		}
	}
	t.Fatalf("console login as %s: %s", name, resp.Status)
	return nil
}

// duePermanentCases archives three permanent cases of 2015 (due for transfer) in the
// department's archive, and makes the console accounts clerk (the department's) and keeper
// (the county archive's), both with the password "long enough password".
func duePermanentCases(t *testing.T, p *pair, prefix string) {
	t.Helper()
	for i := range 3 {
		c, parts := exampleCase(t)
		c["case_no"] = prefix + string(rune('A'+i))
		c["retention"] = "Y"
		c["accepted_at"], c["finished_at"] = "2015-03-01T09:00:00+08:00", "2015-03-05T16:30:00+08:00"
		if resp, body := p.deptEnv.ingest(p.deptEnv.tokA, c, parts); resp.StatusCode != 201 {
			t.Fatalf("ingest: %d %s", resp.StatusCode, body)
		}
	}
	admin := archive.Principal{Role: archive.RoleAdmin}
	if _, err := p.dept.CreateAccount(admin, archive.Account{Name: "clerk", Display: "部门档案员", Role: archive.RoleDepartment, Department: deptA}, "long enough password"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.county.CreateAccount(admin, archive.Account{Name: "keeper", Display: "县档案馆档案员", Role: archive.RoleArchive}, "long enough password"); err != nil {
		t.Fatal(err)
	}
}

func consoleDo(t *testing.T, method, u string, form url.Values, ck *http.Cookie) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.AddCookie(ck)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// 移交与接收 in the console, between two instances: a department archivist sees the records
// due, transfers them with one button, and watches the batch finish with the county
// archive's signed receipt; the county archive's archivist sees the accession.
func TestConsoleTransferToCountyArchive(t *testing.T) {
	p := newPair(t, nil)
	duePermanentCases(t, p, "CT-")
	clerk := consoleLogin(t, p.deptEnv.srv.URL, "clerk", "long enough password")
	status, body := consoleDo(t, "GET", p.deptEnv.srv.URL+"/console/transfers", nil, clerk)
	if status != 200 || strings.Count(body[strings.Index(body, `id="due"`):strings.Index(body, `id="batches"`)], "/console/packages/") != 3 {
		t.Fatalf("the records due: %d %s", status, body)
	}
	if status, _ := consoleDo(t, "POST", p.deptEnv.srv.URL+"/console/transfers", url.Values{}, clerk); status != http.StatusSeeOther {
		t.Fatalf("create the transfer: %d", status)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, body = consoleDo(t, "GET", p.deptEnv.srv.URL+"/console/transfers", nil, clerk)
		batches := body[strings.Index(body, `id="batches"`):]
		if strings.Contains(batches, "已完成") {
			if !strings.Contains(batches, "3 / 3") || !strings.Contains(batches, "已签收") || strings.Contains(body, `http-equiv="refresh"`) {
				t.Fatalf("the finished batch: %s", batches)
			}
			break
		}
		if !strings.Contains(body, `http-equiv="refresh"`) {
			t.Fatalf("a batch being sent does not reload its page: %s", batches)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the transfer did not finish: %s", batches)
		}
		time.Sleep(100 * time.Millisecond)
	}
	keeper := consoleLogin(t, p.countyEnv.srv.URL, "keeper", "long enough password")
	_, body = consoleDo(t, "GET", p.countyEnv.srv.URL+"/console/transfers", nil, keeper)
	if !strings.Contains(body, `id="accessions"`) || !strings.Contains(body[strings.Index(body, `id="accessions"`):], "<td>3</td>") {
		t.Fatalf("the county archive's accessions: %s", body)
	}
}
