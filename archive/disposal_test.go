package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	pdfapi "github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/search"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Expired D10 packages are destroyed only when two archivists agree and only after their
// retention ends; tombstones and the signed register survive, also an index rebuild.
func TestDisposal(t *testing.T) {
	clk := &clock{t: testenv.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ingest := func(no, ret string, finished time.Time) string {
		res, err := a.Ingest(ctx, dept, caseFinished(no, ret, finished), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		return res.Package.ID
	}
	old := ingest("DISP-1", "D10", testenv.Date(2014, 5, 1, 9, 0, 0, 0, time.UTC))   // retained until 2025-01-01
	young := ingest("DISP-2", "D10", testenv.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)) // until 2035-01-01
	keep := ingest("DISP-3", "D10", testenv.Date(2015, 5, 1, 9, 0, 0, 0, time.UTC))  // until 2026-01-01
	alice := Principal{Role: RoleArchive, TokenID: "aaaa", Name: "甲"}
	bob := Principal{Role: RoleArchive, TokenID: "bbbb", Name: "乙"}

	cands, err := a.Candidates(ctx, Principal{Role: RoleAuditor}, "", "", 0)
	if err != nil || len(cands.Candidates) != 2 || cands.Next != "" {
		t.Fatalf("candidates: %v %+v", err, cands)
	}
	first, err := a.Candidates(ctx, Principal{Role: RoleAuditor}, dept.Org, "", 1)
	if err != nil || len(first.Candidates) != 1 || first.Next == "" {
		t.Fatalf("the department's first candidate: %v %+v", err, first)
	}
	second, err := a.Candidates(ctx, Principal{Role: RoleAuditor}, dept.Org, first.Next, 1)
	if err != nil || len(second.Candidates) != 1 || second.Next != "" || second.Candidates[0].Package == first.Candidates[0].Package {
		t.Fatalf("the department's second candidate: %v %+v", err, second)
	}
	if other, _ := a.Candidates(ctx, Principal{Role: RoleAuditor}, "11610830MB1234567W", "", 0); len(other.Candidates) != 0 {
		t.Fatalf("another department's candidates: %+v", other)
	}
	if _, err := a.Candidates(ctx, dept, "", "", 0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department listed candidates: %v", err)
	}
	// Not a candidate while retained.
	if _, err := a.Decide(ctx, alice, DecisionRequest{Package: young, Action: DisposalDestroy, Reason: "到期"}); !errors.Is(err, ErrState) {
		t.Fatalf("destroying a retained package: %v", err)
	}
	if _, err := a.Decide(ctx, alice, DecisionRequest{Package: old, Action: DisposalDestroy}); !errors.Is(err, ErrInvalidCase) {
		t.Fatalf("a decision without a reason: %v", err)
	}
	d, err := a.Decide(ctx, alice, DecisionRequest{Package: old, Action: DisposalDestroy, Reason: "保管期满，无继续保存价值"})
	if err != nil || d.Status != DisposalPending {
		t.Fatalf("decide: %v %+v", err, d)
	}
	// The package is still there until a second archivist approves; the decider cannot.
	if _, err := a.Approve(ctx, alice, d.ID, true, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := a.Approve(ctx, dept, d.ID, true, ""); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department approved: %v", err)
	}
	p, _ := a.Index().Package(old)
	if _, err := a.Store().Stat(ctx, p.Key); err != nil {
		t.Fatal("destroyed before approval")
	}
	d, err = a.Approve(ctx, bob, d.ID, true, "同意销毁")
	if err != nil || d.Status != DisposalDestroyed {
		t.Fatalf("approve: %v %+v", err, d)
	}
	if _, err := a.Store().Stat(ctx, p.Key); err == nil {
		t.Fatal("the package object survived its destruction")
	}
	if _, _, err := a.OpenEEP(ctx, Principal{Role: RoleArchive, Purpose: "x"}, old); !errors.Is(err, ErrGone) {
		t.Fatalf("reading a destroyed package: %v", err)
	}
	p, _ = a.Index().Package(old)
	if p.Tombstone == nil || p.Tombstone.DecidedBy != alice.Person() || p.Tombstone.ApprovedBy != bob.Person() || p.Tombstone.Digests["package_sm3"] != p.PackageSM3 {
		t.Fatalf("tombstone: %+v", p.Tombstone)
	}
	checkStatistics(t, a, "after the destruction")
	// Its words go from the search with it; the others stay.
	waitSearchReady(t, a, 2)
	if res, err := a.Search(ctx, alice, SearchQuery{Query: search.Query{Exact: "DISP-1"}}); err != nil || len(res.Hits) != 0 {
		t.Fatalf("the destroyed case is still found: %v %+v", err, res)
	}
	if res, err := a.Search(ctx, alice, SearchQuery{Query: search.Query{Exact: "DISP-3"}}); err != nil || len(res.Hits) != 1 {
		t.Fatalf("a kept case is not found: %v %+v", err, res)
	}
	// Extend the other: applied at once, the retention moves.
	until := testenv.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)
	if d2, err := a.Decide(ctx, alice, DecisionRequest{Package: keep, Action: DisposalExtend, Until: until, Reason: "仍有查考价值"}); err != nil || d2.Status != DisposalExtended {
		t.Fatalf("extend: %v", err)
	}
	if p, _ := a.Index().Package(keep); !p.RetainUntil.Equal(until) {
		t.Fatalf("extended retention %v", p.RetainUntil)
	}

	// The register: signed XML that verifies, fails when changed; and a PDF.
	reg, err := a.Register(ctx, Principal{Role: RoleAuditor})
	if err != nil {
		t.Fatal(err)
	}
	info, err := VerifyRegister(reg, a.Trust())
	if err != nil || info.Entries != 1 {
		t.Fatalf("register: %v %+v", err, info)
	}
	forged := bytes.Replace(reg, []byte("保管期满"), []byte("保管未满"), 1)
	if _, err := VerifyRegister(forged, a.Trust()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a changed register verified: %v", err)
	}
	pdf, err := a.RegisterPDF(ctx, Principal{Role: RoleArchive})
	if err != nil {
		t.Fatal(err)
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationStrict
	if err := pdfapi.Validate(bytes.NewReader(pdf), conf); err != nil {
		t.Fatalf("register PDF: %v", err)
	}

	// The decisions, a page of one at a time.
	dfirst, next, err := a.Decisions(ctx, Principal{Role: RoleAuditor}, "", 1)
	if err != nil || len(dfirst) != 1 || next == "" {
		t.Fatalf("first page of decisions: %v %d %q", err, len(dfirst), next)
	}
	rest, next2, err := a.Decisions(ctx, Principal{Role: RoleAuditor}, next, 1)
	if err != nil || len(rest) != 1 || next2 != "" || rest[0].ID == dfirst[0].ID {
		t.Fatalf("second page of decisions: %v %+v %q", err, rest, next2)
	}
	if _, _, err := a.Decisions(ctx, Principal{Role: RoleAuditor}, "", 5000); !errors.Is(err, ErrInvalidCase) {
		t.Fatalf("a limit of 5,000: %v", err)
	}
	// The tombstone survives the loss of the index.
	a.Close()
	os.Remove(filepath.Join(dir, "index.db"))
	a, err = Open(Config{DataDir: dir, Logger: quiet(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p, err = a.Index().Package(old)
	if err != nil || p.Tombstone == nil || p.Tombstone.Decision != d.ID {
		t.Fatalf("tombstone after an index rebuild: %v %+v", err, p)
	}
	checkStatistics(t, a, "after the destruction and an index rebuild")
	if st, _ := a.Statistics(ctx, Principal{Role: RoleAuditor}, ""); st.By["state"]["destroyed"].Count != 1 || st.Total.Count != 2 {
		t.Fatalf("statistics after the rebuild: %+v", st)
	}
	if info, err := VerifyRegister(must(a.Register(ctx, Principal{Role: RoleAuditor})), a.Trust()); err != nil || info.Entries != 1 {
		t.Fatalf("register after the rebuild: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
