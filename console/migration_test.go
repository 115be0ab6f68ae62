package console

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// 日常迁移: records archived while JSON forms were kept as they came; under the shipped
// policy an archivist starts a migration from the page, which shows the run's progress and
// outcome; the record page then shows its current form and the form kept from before, which
// downloads unchanged. An auditor sees the page without the form; a department does not.
func TestMigrationPage(t *testing.T) {
	dir := t.TempDir()
	keep := testenv.PolicyWith(t, testenv.KeepJSON)
	old, err := archive.Open(archive.Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true, FormatPolicy: keep})
	if err != nil {
		t.Fatal(err)
	}
	dept := uscc(t, 3)
	var ids []string
	for _, no := range []string{"MG-1", "MG-2"} {
		ids = append(ids, ingestScoped(t, old, dept, no, "食品经营许可", "迁移测试", "D30", time.Date(2025, 3, 5, 8, 0, 0, 0, time.UTC), "政务共享"))
	}
	before, _ := old.Index().Package(ids[0])
	old.Close()

	a, srv := newConsoleIn(t, dir)
	wang := loginAs(t, srv.URL, "wang", password)
	if resp, body := send(t, "POST", srv.URL+"/console/migration/start", url.Values{"rate": {"-1"}}, wang, nil); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "速率") {
		t.Fatalf("a negative rate: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "POST", srv.URL+"/console/migration/start", url.Values{"rate": {"20"}}, wang, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("start: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		run, _ := a.MigrationStatus(archive.Principal{Role: archive.RoleArchive})
		if !run.Running && !run.Finished.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the migration did not finish")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, body := send(t, "GET", srv.URL+"/console/migration", nil, wang, nil)
	run := body[strings.Index(body, `id="run"`):]
	if resp.StatusCode != 200 || !strings.Contains(run, "已完成") || !strings.Contains(run, "2 / 2 · 2 件已迁移") || !strings.Contains(run, "王档案") || strings.Contains(body, `http-equiv="refresh"`) {
		t.Fatalf("the finished run: %d %s", resp.StatusCode, run)
	}
	resp, body = send(t, "GET", srv.URL+"/console/packages/"+ids[0], nil, wang, nil)
	forms := body[strings.Index(body, `id="forms"`):]
	if resp.StatusCode != 200 || !strings.Contains(forms, "修改1 · 当前形态") || !strings.Contains(forms, "修改0 · 原封装包") || !strings.Contains(forms, before.PackageSM3) {
		t.Fatalf("the record's forms: %d %.600s", resp.StatusCode, forms)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/console/packages/"+ids[0]+"/eep?layer=0", nil)
	req.AddCookie(wang)
	dl, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if sum := sm3.Sum(data); dl.StatusCode != 200 || hex.EncodeToString(sum[:]) != before.PackageSM3 {
		t.Fatalf("the form as archived: %d, SM3 %x, want %s", dl.StatusCode, sum, before.PackageSM3)
	}

	addAccounts(t, a, archive.Account{Name: "zhao", Display: "赵审计", Role: archive.RoleAuditor},
		archive.Account{Name: "clerk", Display: "丙", Role: archive.RoleDepartment, Department: dept})
	resp, body = send(t, "GET", srv.URL+"/console/migration", nil, loginAs(t, srv.URL, "zhao", password), nil)
	if resp.StatusCode != 200 || strings.Contains(body, "/console/migration/start") {
		t.Fatalf("the auditor's page: %d (a start form shown: %v)", resp.StatusCode, strings.Contains(body, "/console/migration/start"))
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/migration", nil, loginAs(t, srv.URL, "clerk", password), nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a department account on the migration page: %d", resp.StatusCode)
	}
}
