package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/archive"
)

// 档案详情: the owning department reads its record and opens a document in place, as text;
// another department gets a 404 like for a record that does not exist; the archive reads a
// 不予共享 record only with a purpose, and the read log shows each read with its account
// and purpose.
func TestRecordPage(t *testing.T) {
	a, srv := newConsole(t)
	deptA, deptB := uscc(t, 3), uscc(t, 4)
	addAccounts(t, a, []archive.Account{{Name: "clerk.a", Display: "甲", Role: archive.RoleDepartment, Department: deptA},
		{Name: "clerk.b", Display: "乙", Role: archive.RoleDepartment, Department: deptB}}...)
	id := ingest(t, a, deptA, "R-1", "食品经营许可", "经营场所位于人民路十八号")
	ckA := loginAs(t, srv.URL, "clerk.a", "long enough password")
	ckB := loginAs(t, srv.URL, "clerk.b", "long enough password")
	ckArch := loginAs(t, srv.URL, "wang", "long enough password")

	resp, body := send(t, "GET", srv.URL+"/console/packages/"+id, nil, ckA, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "食品经营许可申请表") || !strings.Contains(body, "R-1") || strings.Contains(body, `id="reads"`) {
		t.Fatalf("the owner's record page: %d %s", resp.StatusCode, body)
	}
	steps := body[strings.Index(body, `id="steps"`):]
	steps = steps[:strings.Index(steps, "</section>")]
	if !strings.Contains(steps, "<li>受理 窗口</li>") || !strings.Contains(steps, "准予许可") || !strings.Contains(steps, "材料齐全") || strings.Contains(steps, "申请人") {
		t.Fatalf("the case's steps: %s", steps)
	}
	link := "/console/packages/" + id + "/documents/1/1"
	if !strings.Contains(body, link) {
		t.Fatalf("no link to the document's archival copy: %s", body)
	}
	resp, body = send(t, "GET", srv.URL+link, nil, ckA, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "inline") || !strings.Contains(body, "人民路十八号") ||
		!strings.Contains(resp.Header.Get("Content-Security-Policy"), "sandbox") {
		t.Fatalf("the document: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, path := range []string{"/console/packages/" + id, link, "/console/packages/" + id + "/eep", "/console/packages/no-such-id"} {
		if resp, _ := send(t, "GET", srv.URL+path, nil, ckB, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("department B, %s: %d", path, resp.StatusCode)
		}
	}
	// Verify now: the stored package checks out, and the report is on the page.
	resp, body = send(t, "POST", srv.URL+"/console/packages/"+id+"/verify", url.Values{}, ckA, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `id="report"`) || !strings.Contains(body, "验证通过") || strings.Contains(body[strings.Index(body, `id="report"`):], ">未通过<") {
		t.Fatalf("verify now: %d %s", resp.StatusCode, body)
	}
	// The archive: 不予共享 needs a purpose.
	resp, body = send(t, "GET", srv.URL+"/console/packages/"+id, nil, ckArch, nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `name="purpose"`) {
		t.Fatalf("the archive's record page asks no purpose: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+link, nil, ckArch, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("the archive reads without a purpose: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+link+"?purpose=%E5%B9%B4%E5%BA%A6%E6%A3%80%E6%9F%A5", nil, ckArch, nil); resp.StatusCode != 200 {
		t.Fatalf("the archive reads with a purpose: %d", resp.StatusCode)
	}
	_, body = send(t, "GET", srv.URL+"/console/packages/"+id, nil, ckArch, nil)
	reads := body[strings.Index(body, `id="reads"`):]
	if !strings.Contains(reads, "(clerk.a)") || !strings.Contains(reads, "(wang)") || !strings.Contains(reads, "年度检查") {
		t.Fatalf("the read log: %s", reads)
	}
}

// 档案详情 · 元数据: the package's metadata as its EEP holds it (agents, business actions,
// documents, every element), read like its content: the owner reads it, another department
// gets a 404, the archive needs a purpose for a 不予共享 record, and each read is logged.
func TestMetadataPage(t *testing.T) {
	a, srv := newConsole(t)
	deptA, deptB := uscc(t, 5), uscc(t, 6)
	addAccounts(t, a, []archive.Account{{Name: "clerk.a", Display: "甲", Role: archive.RoleDepartment, Department: deptA},
		{Name: "clerk.b", Display: "乙", Role: archive.RoleDepartment, Department: deptB}}...)
	id := ingest(t, a, deptA, "M-1", "食品经营许可", "经营场所位于人民路十八号")
	ckA := loginAs(t, srv.URL, "clerk.a", "long enough password")
	_, body := send(t, "GET", srv.URL+"/console/packages/"+id, nil, ckA, nil)
	if !strings.Contains(body, `href="/console/packages/`+id+`/metadata"`) {
		t.Fatalf("no link to the metadata: %s", body)
	}
	resp, body := send(t, "GET", srv.URL+"/console/packages/"+id+"/metadata", nil, ckA, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	for _, want := range []string{"<td>单位</td><td>测试部门</td>", "<td>受理</td><td>窗口</td>", "食品经营许可申请表", "档号 › 年度", "form.xml", "不予共享"} {
		if !strings.Contains(body, want) {
			t.Errorf("the metadata page lacks %q", want)
		}
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/packages/"+id+"/metadata", nil, loginAs(t, srv.URL, "clerk.b", "long enough password"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("another department: %d", resp.StatusCode)
	}
	arch := loginAs(t, srv.URL, "wang", "long enough password")
	if resp, _ := send(t, "GET", srv.URL+"/console/packages/"+id+"/metadata", nil, arch, nil); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("the archive without a purpose: %d", resp.StatusCode)
	}
	if resp, _ := send(t, "GET", srv.URL+"/console/packages/"+id+"/metadata?purpose="+url.QueryEscape("编研"), nil, arch, nil); resp.StatusCode != 200 {
		t.Errorf("the archive with a purpose: %d", resp.StatusCode)
	}
	reads, _, _ := a.ReadLog(t.Context(), archive.Principal{Role: archive.RoleArchive}, archive.ReadFilter{Package: id, Limit: 10})
	n := 0
	for _, r := range reads {
		if r.What == "metadata" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d metadata reads logged, want 2: %+v", n, reads)
	}
}
