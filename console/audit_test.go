package console

import (
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// 四性检测: an archivist starts a run of every record; the page shows its progress (and
// reloads itself while it runs), then the finished run and the record whose stored bytes
// were changed, with the check it failed. A department account does not reach the page.
func TestAuditPage(t *testing.T) {
	dir := t.TempDir()
	a, srv := newConsoleIn(t, dir)
	dept := uscc(t, 7)
	ingest(t, a, dept, "AU-1", "食品经营许可", "甲")
	bad := ingest(t, a, dept, "AU-2", "食品经营许可", "乙")
	p, _ := a.Package(t.Context(), archive.Principal{Role: archive.RoleArchive}, bad)
	var file string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(filepath.ToSlash(path), p.Key) {
			file = path
		}
		return nil
	})
	if file == "" {
		t.Fatalf("no file for %s", p.Key)
	}
	b, _ := os.ReadFile(file)
	os.Chmod(file, 0o644)
	b[len(b)/2] ^= 1
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	wang := loginAs(t, srv.URL, "wang", "long enough password")
	if resp, _ := send(t, "POST", srv.URL+"/console/audit/start", url.Values{"all": {"1"}}, wang, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		run, _ := a.AuditRunStatus(archive.Principal{Role: archive.RoleArchive})
		if !run.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the audit did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, body := send(t, "GET", srv.URL+"/console/audit", nil, wang, nil)
	run := body[strings.Index(body, `id="run"`):]
	if resp.StatusCode != 200 || !strings.Contains(run, "已完成") || !strings.Contains(run, "2 / 2 · 1 失败") || strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("the finished run: %d %s", resp.StatusCode, run)
	}
	fails := body[strings.Index(body, `id="failures"`):]
	if !strings.Contains(fails, p.ArchivalCode) || !strings.Contains(fails, `class="chip bad"`) {
		t.Fatalf("the failure: %s", fails)
	}
	addAccounts(t, a, archive.Account{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept})
	if resp, _ := send(t, "GET", srv.URL+"/console/audit", nil, loginAs(t, srv.URL, "clerk", "long enough password"), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a department account on the audit page: %d", resp.StatusCode)
	}
}
