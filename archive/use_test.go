package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/search"
)

// sharedCase is a case of dept with a sharing scope.
func sharedCase(no, scope string) *Case {
	c := benchCaseFor(no)
	c.Sharing = Sharing{Scope: scope, Conditions: "仅限政务服务核验"}
	return c
}

// canRead reports whether who may read the package's EEP; any refusal but not-found fails.
func canRead(t *testing.T, a *Archive, who Principal, id string) bool {
	t.Helper()
	rc, _, err := a.OpenEEP(t.Context(), who, id)
	if errors.Is(err, ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatalf("read %s as %s: %v", id, who, err)
	}
	rc.Close()
	return true
}

// sharedHits are the ids a search of shared records finds for who.
func sharedHits(t *testing.T, a *Archive, who Principal) []string {
	t.Helper()
	res, err := a.Search(t.Context(), who, SearchQuery{Query: search.Query{Words: "食品经营许可证核发"}, Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	return hitIDs(res)
}

// Two departments: a conditional package is invisible to the other department until its
// request is approved, readable during the grant, invisible again after the grant is
// revoked or ends; an unconditional one is readable with a purpose; a not-shared one never;
// every step is an event in the log.
func TestSharingScopesAndUseRequests(t *testing.T) {
	clk := &clock{t: testenv.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { a.Close() }()
	ctx := context.Background()
	ids := map[string]string{}
	for no, scope := range map[string]string{"OPEN": "无条件共享", "COND": "有条件共享", "OLD": "政务共享", "NONE": "不予共享"} {
		res, err := a.Ingest(ctx, dept, sharedCase(no, scope), oneDoc(t))
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		ids[no] = res.Package.ID
	}
	if p, _ := a.Package(ctx, dept, ids["OLD"]); p.Sharing != SharingConditional || p.SharingConditions != "仅限政务服务核验" {
		t.Fatalf("政务共享 recorded as %q (%q), want %s with its conditions", p.Sharing, p.SharingConditions, SharingConditional)
	}
	if _, err := a.Ingest(ctx, dept, sharedCase("BAD", "随便"), oneDoc(t)); !isField(err, "sharing.scope") {
		t.Fatalf("an unknown sharing scope: %v", err)
	}
	waitSearchReady(t, a, 4)

	other := Principal{Role: RoleDepartment, Org: "11610830MB1234567W", Name: "王五"}
	third := Principal{Role: RoleDepartment, Org: "12610830MB0000001X", Purpose: "核查"}
	reader := other
	reader.Purpose = "办理 2026-77 号申请，核验营业执照"

	// Unconditional: found in a search of shared records, read with a purpose only.
	if _, _, err := a.OpenEEP(ctx, other, ids["OPEN"]); !isField(err, "purpose") {
		t.Fatalf("a shared read without a purpose: %v", err)
	}
	if !canRead(t, a, reader, ids["OPEN"]) {
		t.Fatal("another department cannot read an unconditionally shared package")
	}
	if got := sharedHits(t, a, other); !slices.Equal(got, []string{ids["OPEN"]}) {
		t.Fatalf("shared search before any grant: %v, want only %s", got, ids["OPEN"])
	}
	if res, _ := a.Search(ctx, other, SearchQuery{Query: search.Query{Words: "食品经营许可证核发"}}); res.Total != 0 {
		t.Fatalf("a department's own search found another's records: %d", res.Total)
	}
	for _, no := range []string{"COND", "OLD", "NONE"} {
		if canRead(t, a, reader, ids[no]) {
			t.Fatalf("%s readable by another department without a grant", no)
		}
		if _, err := a.Package(ctx, other, ids[no]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s described to another department: %v", no, err)
		}
	}

	// A request for the conditional and the not-shared one.
	in := UseRequestInput{Owner: dept.Org, Packages: []string{ids["COND"], ids["NONE"]}, Purpose: "核验经营许可", Until: clk.Now().AddDate(0, 1, 0)}
	for field, bad := range map[string]UseRequestInput{
		"owner":    {Owner: other.Org, Packages: in.Packages, Purpose: in.Purpose, Until: in.Until},
		"purpose":  {Owner: dept.Org, Packages: in.Packages, Until: in.Until},
		"until":    {Owner: dept.Org, Packages: in.Packages, Purpose: in.Purpose, Until: clk.Now().AddDate(2, 0, 0)},
		"packages": {Owner: dept.Org, Purpose: in.Purpose, Until: in.Until},
	} {
		if _, err := a.RequestUse(ctx, other, bad); !isField(err, field) {
			t.Fatalf("a request with a bad %s: %v", field, err)
		}
	}
	r, err := a.RequestUse(ctx, other, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DecideUse(ctx, other, r.ID, UseDecisionInput{Action: UseApprove}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the requester decided its own request: %v", err)
	}
	if _, err := a.UseRequest(ctx, third, r.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a third department saw the request: %v", err)
	}
	if _, err := a.DecideUse(ctx, dept, r.ID, UseDecisionInput{Action: UseApprove}); !errors.Is(err, ErrState) || !isField(err, "packages[1]") {
		t.Fatalf("approving a request that names a not-shared package: %v", err)
	}
	if _, err := a.DecideUse(ctx, dept, r.ID, UseDecisionInput{Action: UseNarrow, Packages: []string{ids["NONE"]}, Reason: "x"}); !isField(err, "packages[0]") {
		t.Fatalf("narrowing to a not-shared package: %v", err)
	}
	if _, err := a.DecideUse(ctx, dept, r.ID, UseDecisionInput{Action: UseNarrow, Packages: []string{ids["COND"]}}); !isField(err, "reason") {
		t.Fatalf("a narrowing without a reason: %v", err)
	}
	if canRead(t, a, reader, ids["COND"]) {
		t.Fatal("readable while the request waits")
	}
	r, err = a.DecideUse(ctx, dept, r.ID, UseDecisionInput{Action: UseNarrow, Packages: []string{ids["COND"]},
		Until: clk.Now().AddDate(0, 0, 14), Reason: "不予共享的不提供"})
	if err != nil || r.Status != UseApproved || !slices.Equal(r.Decision.Packages, []string{ids["COND"]}) {
		t.Fatalf("narrowed approval: %v %+v", err, r)
	}
	if !canRead(t, a, reader, ids["COND"]) || canRead(t, a, reader, ids["NONE"]) || canRead(t, a, third, ids["COND"]) {
		t.Fatal("during the grant: the granted package must be readable by the requester only, the not-shared one by nobody")
	}
	if got, want := sharedHits(t, a, other), sortedIDs(ids["OPEN"], ids["COND"]); !slices.Equal(got, want) {
		t.Fatalf("shared search during the grant: %v, want %v", got, want)
	}
	if _, err := a.RevokeUse(ctx, other, r.ID, "不需要了"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the requester revoked: %v", err)
	}
	if r, err = a.RevokeUse(ctx, dept, r.ID, "核验已完成"); err != nil || r.Status != UseRevoked {
		t.Fatalf("revoke: %v %+v", err, r)
	}
	if canRead(t, a, reader, ids["COND"]) || slices.Contains(sharedHits(t, a, other), ids["COND"]) {
		t.Fatal("readable or found after the grant was revoked")
	}

	// A second request, by a search of the owner's records, approved by the archive; it
	// ends with its time.
	r2, err := a.RequestUse(ctx, other, UseRequestInput{Owner: dept.Org, Words: "食品经营许可证核发", Purpose: "年度核查", Until: clk.Now().AddDate(0, 0, 10)})
	if err != nil {
		t.Fatal(err)
	}
	r2, err = a.DecideUse(ctx, Principal{Role: RoleArchive, Name: "李档案"}, r2.ID, UseDecisionInput{Action: UseApprove})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedIDs(r2.Decision.Packages...), sortedIDs(ids["OPEN"], ids["COND"], ids["OLD"]); !slices.Equal(got, want) {
		t.Fatalf("a search grants %v, want the shared ones %v", got, want)
	}
	if !canRead(t, a, reader, ids["OLD"]) || canRead(t, a, reader, ids["NONE"]) {
		t.Fatal("the search's grant: 政务共享 must be readable, 不予共享 never")
	}
	clk.Add(11 * 24 * time.Hour)
	if canRead(t, a, reader, ids["OLD"]) {
		t.Fatal("readable after the grant ended")
	}
	if n, err := a.ExpireGrants(ctx); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	if r2, _ = a.UseRequest(ctx, other, r2.ID); r2.Status != UseExpired {
		t.Fatalf("after its end the request is %s", r2.Status)
	}
	if n, _ := a.ExpireGrants(ctx); n != 0 {
		t.Fatalf("expired twice: %d", n)
	}

	// Auditors list the requests; each department its own, as requester or as owner.
	all, _, err := a.UseRequests(ctx, Principal{Role: RoleAuditor}, UseFilter{})
	if err != nil || len(all) != 2 {
		t.Fatalf("auditor's list: %v %d", err, len(all))
	}
	if mine, _, _ := a.UseRequests(ctx, dept, UseFilter{As: "owner"}); len(mine) != 2 {
		t.Fatalf("the owner's list: %d", len(mine))
	}
	if theirs, _, _ := a.UseRequests(ctx, dept, UseFilter{}); len(theirs) != 0 {
		t.Fatalf("the owner asked for nothing, yet lists %d as requester", len(theirs))
	}

	// Every step is an event.
	entries, err := a.elog.Entries(ctx, 0, a.elog.Size())
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range entries {
		ev, err := eventlog.ParseEvent([]byte(e.Event))
		if err != nil {
			t.Fatal(err)
		}
		count[ev.Type]++
		if ev.Type == eventlog.TypeSharedRead && ev.Attrs["purpose"] != reader.Purpose {
			t.Fatalf("a shared read without its purpose: %+v", ev)
		}
	}
	want := map[string]int{eventlog.TypeUseRequest: 2, eventlog.TypeUseDecision: 2, eventlog.TypeUseRevoked: 1,
		eventlog.TypeGrantExpired: 1, eventlog.TypeSharedRead: 3}
	for typ, n := range want {
		if count[typ] != n {
			t.Errorf("%d %s events, want %d", count[typ], typ, n)
		}
	}
	reads, _, err := a.ReadLog(ctx, Principal{Role: RoleAuditor}, ReadFilter{Who: reader.String()})
	if err != nil || len(reads) != 3 {
		t.Fatalf("the reads under sharing in the read log: %v %d", err, len(reads))
	}

	// The requests survive the loss of the index, and a grant still running runs on.
	r3, err := a.RequestUse(ctx, other, UseRequestInput{Owner: dept.Org, Packages: []string{ids["COND"]}, Purpose: "复核", Until: clk.Now().AddDate(0, 0, 5)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.DecideUse(ctx, dept, r3.ID, UseDecisionInput{Action: UseApprove}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	os.Remove(filepath.Join(dir, "index.db"))
	if a, err = Open(Config{DataDir: dir, Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true}); err != nil {
		t.Fatal(err)
	}
	for id, status := range map[string]string{r.ID: UseRevoked, r2.ID: UseExpired, r3.ID: UseApproved} {
		got, err := a.UseRequest(ctx, other, id)
		if err != nil || got.Status != status {
			t.Fatalf("request %s after an index rebuild: %v %+v, want %s", id, err, got, status)
		}
	}
	if !canRead(t, a, reader, ids["COND"]) || canRead(t, a, reader, ids["OLD"]) {
		t.Fatal("after an index rebuild: the running grant must hold, the ended ones not")
	}
}

func sortedIDs(ids ...string) []string { return slices.Sorted(slices.Values(ids)) }

// isField reports whether err names field: a FieldErr, or a ValidationError among others.
func isField(err error, field string) bool {
	var fe *FieldErr
	var ve *ValidationError
	switch {
	case errors.As(err, &fe):
		return fe.Field == field
	case errors.As(err, &ve):
		return slices.ContainsFunc(ve.Fields, func(f FieldError) bool { return f.Field == field })
	}
	return false
}
