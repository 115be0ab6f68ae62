package archive

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/internal/testenv"
)

// formCase is a case of dept finished at `finished`, whose one document is a JSON form
// holding the applicant's personal data.
func formCase(t *testing.T, no string, finished time.Time) (*Case, func() (*Upload, error)) {
	t.Helper()
	c := caseFinished(no, "Y", finished)
	c.Applicant = Applicant{Name: "张三丰", Kind: "自然人", IDType: "111", IDNumber: "11010519491231002X"}
	c.Documents = []CaseDoc{{File: "form", Title: "个体工商户登记申请表", Kind: "申请表格", Main: true}}
	form, _ := json.Marshal(map[string]string{"经营者": "张三丰", "身份证号": "11010519491231002X", "联系电话": "13912345678",
		"住所": "陕西省榆林市清涧县宽州镇解放路12号", "经营范围": "预包装食品销售"})
	sent := false
	return c, func() (*Upload, error) {
		if sent {
			return nil, io.EOF
		}
		sent = true
		return &Upload{Part: "form", FileName: "form.json", Body: strings.NewReader(string(form))}, nil
	}
}

// objectSM3 is the SM3 of a stored object, hex.
func objectSM3(t *testing.T, a *Archive, key string) string {
	t.Helper()
	rc, _, err := a.store.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sm3.New()
	io.Copy(h, rc)
	return hex.EncodeToString(h.Sum(nil))
}

// 开放鉴定: a record past its closed period is opened by two archivists and served publicly
// through a copy with the applicant's name, ID number, phone and address removed, while its
// archival package stays byte for byte the same; a record not opened, or closed again, is
// not found there; a record within its closed period cannot be proposed.
func TestOpeningToThePublic(t *testing.T) {
	clk := &clock{t: testenv.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	ctx := context.Background()
	c, up := formCase(t, "OPEN-2000", time.Date(2000, 6, 1, 9, 0, 0, 0, time.UTC))
	old, err := a.Ingest(ctx, dept, c, up)
	if err != nil {
		t.Fatal(err)
	}
	c, up = formCase(t, "OPEN-2020", time.Date(2020, 6, 1, 9, 0, 0, 0, time.UTC))
	recent, err := a.Ingest(ctx, dept, c, up)
	if err != nil {
		t.Fatal(err)
	}
	id := old.Package.ID
	before := objectSM3(t, a, old.Package.Key)
	wang := Principal{Role: RoleArchive, TokenID: "@wang", Name: "王档案"}
	li := Principal{Role: RoleArchive, TokenID: "@li", Name: "李档案"}

	if _, err := a.ProposeOpening(ctx, wang, OpeningRequest{Packages: []string{recent.Package.ID}, Reason: "到期开放"}); !errors.Is(err, ErrState) || !isField(err, "packages[0]") {
		t.Fatalf("a record within its closed period was proposed: %v", err)
	}
	if _, err := a.ProposeOpening(ctx, dept, OpeningRequest{Packages: []string{id}, Reason: "x"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department proposed an opening: %v", err)
	}
	if _, err := a.ProposeOpening(ctx, wang, OpeningRequest{Packages: []string{id}}); !isField(err, "reason") {
		t.Fatalf("a proposal without a reason: %v", err)
	}
	d, err := a.ProposeOpening(ctx, wang, OpeningRequest{Department: dept.Org, Year: 2000, Retention: "Y", Reason: "形成满二十五年，经鉴定可以开放"})
	if err != nil || len(d.Packages) != 1 || d.Packages[0] != id {
		t.Fatalf("propose the series of 2000: %v %+v", err, d)
	}
	if _, err := a.PublicCopy(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a proposed record is public before its approval: %v", err)
	}
	if _, err := a.ApproveOpening(ctx, wang, d.ID, true, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the proposer approved: %v", err)
	}
	if d, err = a.ApproveOpening(ctx, li, d.ID, true, "同意开放"); err != nil || d.Status != OpeningOpened || !d.Results[0].Opened {
		t.Fatalf("approve: %v %+v", err, d)
	}

	pc, err := a.PublicCopy(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(pc)
	for _, personal := range []string{"11010519491231002X", "13912345678", "解放路12号", "张三丰"} {
		if strings.Contains(string(b), personal) {
			t.Errorf("the public copy holds %q: %s", personal, b)
		}
	}
	if !pc.Redacted || pc.Format != PublicCopyFormat || !strings.Contains(pc.Notice, "派生副本") || !strings.Contains(string(b), "预包装食品销售") {
		t.Errorf("the public copy is not marked, or lost the record's own words: %s", b)
	}
	for _, kind := range []string{"身份证号", "手机号码", "住址", "申请人信息"} {
		if pc.Removed[kind] == 0 {
			t.Errorf("the public copy does not say it removed %s: %v", kind, pc.Removed)
		}
	}
	if after := objectSM3(t, a, old.Package.Key); after != before || after != old.Package.PackageSM3 {
		t.Fatalf("the archival package changed: %s → %s (recorded %s)", before, after, old.Package.PackageSM3)
	}
	if _, err := a.PublicCopy(ctx, recent.Package.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a record not opened: %v", err)
	}
	if _, err := a.PublicCopy(ctx, "no-such-package"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a package that does not exist: %v", err)
	}

	// The public search finds it by its own words, not by what its copy removed.
	waitOpenHits(t, a, "预包装食品", 1)
	if res, err := a.SearchOpen(ctx, "13912345678", "", 10); err != nil || res.Total != 0 {
		t.Fatalf("the public search found the record by a removed phone number: %v %+v", err, res)
	}
	if res, _ := a.SearchOpen(ctx, "张三丰", "", 10); res.Total != 0 {
		t.Fatalf("the public search found the record by the applicant's name: %+v", res)
	}

	// An index rebuilt from storage knows the record is open: its public copy is stored.
	a.Close()
	os.Remove(filepath.Join(dir, "index.db"))
	if a, err = Open(Config{DataDir: dir, Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true}); err != nil {
		t.Fatal(err)
	}
	if got, err := a.PublicCopy(ctx, id); err != nil || got.Decision != d.ID {
		t.Fatalf("the public copy after an index rebuild: %v", err)
	}
	if _, err := a.PublicCopy(ctx, recent.Package.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a record not opened, after the rebuild: %v", err)
	}

	if _, err := a.CloseOpening(ctx, li, id, ""); !isField(err, "reason") {
		t.Fatalf("closing without a reason: %v", err)
	}
	if _, err := a.CloseOpening(ctx, li, id, "发现涉及第三方权益，暂缓开放"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PublicCopy(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a closed record is still public: %v", err)
	}
	waitOpenHits(t, a, "预包装食品", 0)
	if after := objectSM3(t, a, old.Package.Key); after != before {
		t.Fatal("closing changed the archival package")
	}

	entries, err := a.elog.Entries(ctx, 0, a.elog.Size())
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		ev, _ := eventlog.ParseEvent([]byte(e.Event))
		count[ev.Type]++
	}
	if count[eventlog.TypeOpening] != 1 || count[eventlog.TypeOpened] != 1 || count[eventlog.TypeOpeningClosed] != 1 {
		t.Fatalf("opening events: %v", count)
	}
}

// waitOpenHits waits for the public search to count n hits for words (the search index
// follows the records' changes in the background).
func waitOpenHits(t *testing.T, a *Archive, words string, n uint64) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		res, err := a.SearchOpen(t.Context(), words, "", 10)
		if err == nil && res.Total == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("public search for %s: %v %+v, want %d hits", words, err, res, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
