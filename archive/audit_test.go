package archive

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/storage/index"
)

func waitAudit(t *testing.T, a *Archive) *AuditRun {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		run, err := a.AuditRunStatus(Principal{Role: RoleAuditor})
		if err != nil {
			t.Fatal(err)
		}
		if !run.Running {
			return run
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the audit run did not finish")
	return nil
}

// A full audit passes clean packages, finds a flipped byte and names the failing check;
// a revoked signer fails too; results are stored and listed.
func TestAudit(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	open := true
	t.Cleanup(func() {
		if open {
			a.Close() // a failure on the way: the background work stops before the directory goes
		}
	})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 6; i++ {
		res, err := a.Ingest(ctx, dept, benchCaseFor("AUD-"+string(rune('A'+i))), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Package.ID)
	}
	if _, err := a.Log().Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartAudit(ctx, dept, true, 0); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department started an audit: %v", err)
	}
	if _, err := a.StartAudit(ctx, Principal{Role: RoleAuditor}, true, 0); err != nil {
		t.Fatal(err)
	}
	run := waitAudit(t, a)
	if run.Done != 6 || run.Failures != 0 || run.Error != "" {
		t.Fatalf("clean run: %+v", run)
	}
	res, _, _ := a.Audits(ctx, Principal{Role: RoleAuditor}, AuditFilter{Package: ids[0]})
	if len(res) != 1 || !res[0].OK || len(res[0].Checks) < 6 {
		t.Fatalf("result: %+v", res)
	}
	codes := map[string]bool{}
	for _, c := range res[0].Checks {
		codes[c.Code] = true
	}
	for _, want := range []string{"BC-1-14", "BC-1-1", "BC-3-1", "BC-2-4", "BC-3-2"} {
		if !codes[want] {
			t.Fatalf("check %s missing: %+v", want, res[0].Checks)
		}
	}

	if !res[0].Reopened || res[0].Opened == nil || res[0].Opened.Software != readerSoftware() {
		t.Fatalf("the first audit did not open the documents: %+v", res[0])
	}
	// Again: the same bytes and the same reading software, so the documents are not opened
	// again, and the report says so; another reading software opens them again.
	if _, err := a.Index().UpdatePackage(ids[1], func(p *index.Package) error { p.Audit.Opened.Software = "dangan 0.0.9"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StartAudit(ctx, Principal{Role: RoleAuditor}, true, 0); err != nil {
		t.Fatal(err)
	}
	if run := waitAudit(t, a); run.Done != 6 || run.Failures != 0 {
		t.Fatalf("second run: %+v", run)
	}
	second := func(id string) AuditResult {
		rs, _, _ := a.Audits(ctx, Principal{Role: RoleAuditor}, AuditFilter{Package: id})
		if len(rs) != 2 {
			t.Fatalf("%d results of %s", len(rs), id)
		}
		return rs[1]
	}
	if r := second(ids[0]); r.Reopened || !strings.Contains(fmt.Sprint(r.Checks), "not opened again") || r.Opened.At != res[0].Opened.At {
		t.Fatalf("a memoised audit: %+v", r)
	}
	if r := second(ids[1]); !r.Reopened || r.Opened.Software != readerSoftware() {
		t.Fatalf("after a change of reading software: %+v", r)
	}

	// Flip one byte of a stored document.
	p, _ := a.Index().Package(ids[3])
	path := filepath.Join(dir, "objects", filepath.FromSlash(p.Key))
	data, _ := os.ReadFile(path)
	off := p.Documents[0].Encoded[0].DataOffset + 40
	if data[off] == 'A' {
		data[off] = 'B'
	} else {
		data[off] = 'A'
	}
	os.Chmod(path, 0o644)
	os.WriteFile(path, data, 0o644)
	if _, err := a.StartAudit(ctx, Principal{Role: RoleArchive}, true, 0); err != nil {
		t.Fatal(err)
	}
	run = waitAudit(t, a)
	if run.Failures != 1 {
		t.Fatalf("run after a flipped byte: %+v", run)
	}
	failed, _, _ := a.Audits(ctx, Principal{Role: RoleAuditor}, AuditFilter{FailedOnly: true})
	if len(failed) != 1 || failed[0].Package != ids[3] || !strings.Contains(strings.Join(failed[0].Failed, "\n"), "BC-1-14") ||
		!strings.Contains(strings.Join(failed[0].Failed, "\n"), "BC-1-10") {
		t.Fatalf("failed results: %+v", failed)
	}
	if p, _ := a.Index().Package(ids[3]); p.Audit == nil || p.Audit.OK {
		t.Fatal("the package is not marked")
	}
	if a.AuditStats().Failures.Load() != 1 {
		t.Fatal("failure not counted")
	}

	// The department's certificate revoked before it signed: BC-1-1 fails everywhere.
	a.Close()
	open = false
	pki := a.pki
	deptID, _ := pki.Department(dept.Org, "")
	crl, err := pki.Root.CreateCRL(map[*big.Int]time.Time{deptID.Cert.SerialNumber: time.Now().Add(-time.Hour)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pki", "crls.pem"), crl, 0o644)
	a, err = Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	open = true
	if _, err := a.StartAudit(ctx, Principal{Role: RoleArchive}, true, 0); err != nil {
		t.Fatal(err)
	}
	run = waitAudit(t, a)
	if run.Failures != 6 {
		t.Fatalf("revoked signer: %+v", run)
	}
	failed, _, _ = a.Audits(ctx, Principal{Role: RoleAuditor}, AuditFilter{Package: ids[0], FailedOnly: true})
	if len(failed) != 1 || !strings.Contains(strings.Join(failed[0].Failed, "\n"), "revoked") {
		t.Fatalf("revocation not reported: %+v", failed)
	}
}

// A throttled run keeps to its rate, and a run interrupted by a restart resumes.
func TestAuditThrottleAndResume(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var total int64
	for i := 0; i < 8; i++ {
		res, err := a.Ingest(ctx, dept, benchCaseFor("THR-"+string(rune('A'+i))), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		total += res.Package.Size
	}
	rate := total * 2 // bytes per second: the run should take about half a second
	start := time.Now()
	if _, err := a.StartAudit(ctx, Principal{Role: RoleArchive}, true, rate); err != nil {
		t.Fatal(err)
	}
	run := waitAudit(t, a)
	if took := time.Since(start); took < 400*time.Millisecond || run.Done != 8 {
		t.Fatalf("throttled to %d B/s, %d bytes took %v (%+v)", rate, total, took, run)
	}
	// Interrupt a slow run by closing the archive; it resumes at the next open.
	if _, err := a.StartAudit(ctx, Principal{Role: RoleArchive}, true, total/4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond)
	a.Close()
	var before AuditRun
	a2, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	a2.index.Record("state", auditRunKey, &before)
	if !before.Running || before.Done == 0 || before.Done == 8 {
		t.Fatalf("interrupted run state: %+v", before)
	}
	a2.Close()
	// With the background auditor on, the run is resumed and finished.
	a3, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a3.Close()
	run = waitAudit(t, a3)
	if run.Done != 8 || run.Running {
		t.Fatalf("resumed run: %+v", run)
	}
}
