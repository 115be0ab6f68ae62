package archive

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A transfer receipt signed by this archive itself (or by a department under its root) is
// refused and marks nothing transferred: only the county archive, under its own root, can
// receive the records, and a transferred copy may later be deleted.
func TestSelfSignedReceiptIsRefused(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	res, err := a.Ingest(ctx, dept, caseFinished("RCPT-1", "Y", time.Now().AddDate(-8, 0, 0)), oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	p := res.Package
	m := &Manifest{Format: ManifestFormat, Batch: "20261201T000000Z-00000001", Department: dept.Org, Created: time.Now().UTC(),
		Items: []ManifestItem{{Package: p.ID, ArchivalCode: p.ArchivalCode, Retention: p.Retention, SM3: p.PackageSM3, Size: p.Size}}, Count: 1, Bytes: p.Size}
	deptID, err := a.pki.Department(dept.Org, "")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := sign(deptID, m)
	if err != nil {
		t.Fatal(err)
	}
	tr := &Transfer{Batch: m.Batch, Department: dept.Org, Manifest: *manifest, Total: 1}
	rcpt := Receipt{Format: ReceiptFormat, Batch: m.Batch, ManifestSM3: manifest.SM3(), Receiver: "self", Issued: time.Now().UTC(),
		Items: []ReceiptItem{{Package: p.ID, ArchivalCode: p.ArchivalCode, SM3: p.PackageSM3, Accepted: true}}, Accepted: 1}
	for name, signer := range map[string]func() (*Signed, error){
		"this archive":   func() (*Signed, error) { return sign(a.pki.Archive, rcpt) },
		"its department": func() (*Signed, error) { return sign(deptID, rcpt) },
	} {
		signed, err := signer()
		if err != nil {
			t.Fatal(err)
		}
		if err := a.applyReceipt(ctx, tr, m, signed); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("a receipt signed by %s: %v", name, err)
		}
	}
	if got, _ := a.index.Package(p.ID); got.Transfer != nil || got.State != "archived" {
		t.Fatalf("a refused receipt marked the package: %+v", got.Transfer)
	}
}

// Ids another archive sends name records and objects here: one not of the shape this
// archive makes is refused before it names anything.
func TestReceivedIDsAreChecked(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	deptID, err := a.pki.Department(dept.Org, "")
	if err != nil {
		t.Fatal(err)
	}
	arch := Principal{Role: RoleArchive}
	for _, id := range []string{"../../packages/x", "", "20261201-x"} {
		rep, _ := sign(deptID, InspectionReport{Format: InspectionFormat, ID: id, Department: dept.Org, Figures: []Figure{{Key: FigureLate}}})
		if _, err := a.ReceiveInspection(ctx, arch, rep); !isField(err, "report") {
			t.Errorf("a report with id %q: %v", id, err)
		}
		req, _ := sign(deptID, DeferralRequest{Format: DeferralRequestFormat, ID: id, Department: dept.Org, Items: []DeferralItem{{Package: "p"}}})
		if _, err := a.ReceiveDeferral(ctx, arch, req); !isField(err, "request") {
			t.Errorf("a later-transfer request with id %q: %v", id, err)
		}
	}
	good := newUseID(time.Now())
	rep, _ := sign(deptID, InspectionReport{Format: InspectionFormat, ID: good, Department: dept.Org, Figures: []Figure{{Key: FigureLate}}})
	if _, err := a.ReceiveInspection(ctx, arch, rep); err != nil {
		t.Fatalf("a report with id %q: %v", good, err)
	}
}
