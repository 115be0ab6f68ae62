package archive

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/internal/testenv"
	"github.com/dangan-archive/dangan/storage"
)

// TestBackupRestore: back up, destroy the primary, restore into a fresh instance, and every
// package verifies; a second backup run copies only what is new.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "primary")
	a, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ingestMany(t, a, 40)
	backup, err := storage.OpenFS(filepath.Join(t.TempDir(), "backup"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Backup(ctx, backup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Copied == 0 || rep.Packages != 40 {
		t.Fatalf("first backup: %+v", rep)
	}
	first := rep.Copied
	// Two more cases: the second run copies only their objects.
	ingestMany2 := func(no string) {
		if _, err := a.Ingest(ctx, dept, benchCaseFor(no), oneDoc(t)); err != nil {
			t.Fatal(err)
		}
	}
	ingestMany2("NEW-1")
	ingestMany2("NEW-2")
	rep, err = a.Backup(ctx, backup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Copied < 2 || rep.Copied > 8 || rep.Skipped != first { // two packages, and the log bundles and checkpoints written meanwhile
		t.Fatalf("second backup copied %d, skipped %d (first copied %d)", rep.Copied, rep.Skipped, first)
	}
	want := snapshot(t, a.Index())
	a.Close()
	if err := os.RemoveAll(dir); err != nil { // the primary is lost
		t.Fatal(err)
	}

	fresh := filepath.Join(t.TempDir(), "restored")
	primary, _ := storage.OpenFS(filepath.Join(fresh, "objects"))
	rr, err := Restore(ctx, backup, primary, fresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rr.Snapshot == "" || rr.Copied != first+rep.Copied {
		t.Fatalf("restore: %+v", rr)
	}
	b, err := Open(Config{DataDir: fresh, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := snapshot(t, b.Index())
	if len(got) != len(want) {
		t.Fatalf("restored %d packages, had %d", len(got), len(want))
	}
	arch := Principal{Role: RoleArchive}
	for id := range want {
		rc, _, err := b.OpenEEP(ctx, arch, id)
		if err != nil {
			t.Fatal(err)
		}
		file, _ := io.ReadAll(rc)
		rc.Close()
		ev, err := b.Evidence(ctx, arch, id)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Verify(bytes.NewReader(file), int64(len(file)), VerifyOptions{Roots: b.Trust(), Evidence: ev})
		if err != nil || !r.Valid {
			t.Fatalf("restored package %s does not verify: %v %+v", id, err, r)
		}
	}
	// The restored instance signs with the same keys and goes on numbering.
	if _, err := b.Ingest(ctx, dept, benchCaseFor("AFTER-RESTORE"), oneDoc(t)); err != nil {
		t.Fatalf("ingest after restore: %v", err)
	}
}

// Every prefix the archive writes objects under is backed up.
func TestBackupCoversEveryPrefix(t *testing.T) {
	clk := &clock{t: testenv.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	res, err := a.Ingest(ctx, dept, caseFinished("BK-1", "D10", testenv.Date(2014, 5, 1, 9, 0, 0, 0, time.UTC)), oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ingest(ctx, dept, caseFinished("BK-2", "D30", testenv.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)), oneDoc(t)); err != nil {
		t.Fatal(err)
	}
	d, err := a.Decide(ctx, Principal{Role: RoleArchive, TokenID: "a"}, DecisionRequest{Package: res.Package.ID, Action: DisposalDestroy, Reason: "到期"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Approve(ctx, Principal{Role: RoleArchive, TokenID: "b"}, d.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueCertificate(ctx, Principal{Role: RoleIssuer, Org: "11430000006122244L"}, licence()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Log().Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	covered := func(key string) bool {
		for _, p := range backupPrefixes {
			if strings.HasPrefix(key, p) {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	a.Store().List(ctx, "", func(o storage.ObjectInfo) error {
		top := strings.SplitN(o.Key, "/", 2)[0]
		seen[top] = true
		if !covered(o.Key) {
			t.Errorf("%s is not backed up", o.Key)
		}
		return nil
	})
	for _, want := range []string{"packages", "log", "tombstones", "certificates"} {
		if !seen[want] {
			t.Errorf("no %s/ objects made by the test", want)
		}
	}
}
