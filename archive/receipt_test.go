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
