package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

func uscc(t *testing.T, n int) string {
	first := fmt.Sprintf("11610830MB%07d", 2000000+n)
	for i := 0; i < 40; i++ {
		if c, err := archive.USCCCheckChar(first); err == nil {
			return first + string(c)
		}
		first = fmt.Sprintf("11610830MB%07d", 2000000+n+100*(i+1))
	}
	t.Fatal("no USCC")
	return ""
}

// ingest archives a D30 case of dept, finished two days ago, whose application form says text.
func ingest(t *testing.T, a *archive.Archive, dept, caseNo, title, text string) string {
	t.Helper()
	return ingestCase(t, a, dept, caseNo, title, text, "D30", time.Now().Add(-48*time.Hour))
}

func ingestCase(t *testing.T, a *archive.Archive, dept, caseNo, title, text, retention string, finished time.Time) string {
	t.Helper()
	return ingestScoped(t, a, dept, caseNo, title, text, retention, finished, archive.SharingNone)
}

// ingestScoped is ingestCase with a sharing scope.
func ingestScoped(t *testing.T, a *archive.Archive, dept, caseNo, title, text, retention string, finished time.Time, scope string) string {
	t.Helper()
	fin := finished.UTC().Truncate(time.Second)
	c := &archive.Case{CaseNo: caseNo, Item: archive.Item{Code: "ITEM01", Name: title, Category: "行政许可"},
		Department: archive.Department{Name: "测试部门", USCC: dept}, Applicant: archive.Applicant{Name: "申请人", Kind: "法人"},
		AcceptedAt: fin.Add(-72 * time.Hour), FinishedAt: fin, Result: archive.Result{Status: "办结", Decision: "准予许可", Opinion: "审核通过"},
		Retention: retention, Sharing: archive.Sharing{Scope: scope},
		Steps:     []archive.Step{{Name: "受理", Actor: "窗口", At: fin.Add(-72 * time.Hour), Opinion: "材料齐全"}, {Name: "审核", Actor: "科室", At: fin, Opinion: "审核通过"}},
		Documents: []archive.CaseDoc{{File: "form", Title: title + "申请表", Kind: "申请表格", Main: true}}}
	form, _ := json.Marshal(map[string]string{"说明": text})
	sent := false
	res, err := a.Ingest(context.Background(), archive.Principal{Role: archive.RoleDepartment, Org: dept}, c, func() (*archive.Upload, error) {
		if sent {
			return nil, io.EOF
		}
		sent = true
		return &archive.Upload{Part: "form", FileName: "form.json", Body: strings.NewReader(string(form))}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Package.ID
}

func loginAs(t *testing.T, base, name, password string) *http.Cookie {
	t.Helper()
	resp, _ := send(t, "POST", base+"/console/login", url.Values{"name": {name}, "password": {password}}, nil, nil)
	ck := sessionOf(resp)
	if ck == nil {
		t.Fatalf("login as %s: %d", name, resp.StatusCode)
	}
	return ck
}

// 检索: a department finds its own case by a word of its application form, with the
// fragment that matched, never another department's; facets narrow the search; a search
// within the results keeps both words; a case's own markup is shown as text.
func TestSearchPage(t *testing.T) {
	a, srv := newConsole(t)
	deptA, deptB := uscc(t, 1), uscc(t, 2)
	addAccounts(t, a, []archive.Account{{Name: "clerk.a", Display: "甲", Role: archive.RoleDepartment, Department: deptA},
		{Name: "clerk.b", Display: "乙", Role: archive.RoleDepartment, Department: deptB}}...)
	ingest(t, a, deptA, "A-1", "食品经营许可", "经营场所位于人民路十八号，符合食品安全要求")
	ingest(t, a, deptA, "A-2", "户外广告设置许可<script>alert(1)</script>", "广告牌设于人民路口")
	ingest(t, a, deptB, "B-1", "食品经营许可", "经营场所位于解放路")
	waitIndexed(t, a, 3)
	ckA, ckB := loginAs(t, srv.URL, "clerk.a", "long enough password"), loginAs(t, srv.URL, "clerk.b", "long enough password")
	get := func(ck *http.Cookie, q string) string {
		t.Helper()
		resp, body := send(t, "GET", srv.URL+"/console/search?"+q, nil, ck, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("?%s: %d %s", q, resp.StatusCode, body)
		}
		return body
	}
	body := get(ckA, "q="+url.QueryEscape("人民路"))
	if !strings.Contains(body, "共找到 2 件") || !strings.Contains(body, "<mark>人民</mark>") && !strings.Contains(body, "<mark>人民路</mark>") {
		t.Fatalf("department A's search: %s", body)
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatal("a title's markup reached the page unescaped")
	}
	if body := get(ckB, "q="+url.QueryEscape("人民路")); !strings.Contains(body, "共找到 0 件") {
		t.Fatalf("department B sees A's cases: %s", body)
	}
	// Within the results of 人民路, 食品: one case, and both words are kept.
	body = get(ckA, "q="+url.QueryEscape("食品")+"&prev="+url.QueryEscape("人民路")+"&refine=1")
	if !strings.Contains(body, "共找到 1 件") || !strings.Contains(body, `name="within" value="人民路"`) {
		t.Fatalf("search within results: %s", body)
	}
	// A facet link narrows the search: retention D30 holds both of A's 人民路 cases.
	body = get(ckA, "q="+url.QueryEscape("人民路"))
	if !strings.Contains(body, `/console/search?q=`+url.QueryEscape("人民路")+`&amp;retention=D30`) {
		t.Fatalf("no facet link for retention D30: %s", body)
	}
	if body := get(ckA, "q="+url.QueryEscape("人民路")+"&retention=D10"); !strings.Contains(body, "共找到 0 件") {
		t.Fatalf("a retention filter: %s", body)
	}
}
