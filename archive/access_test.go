package archive

import (
	"context"
	"errors"
	"testing"
)

// A 不予共享 record is read by its department freely and by the archive only with a
// purpose; every read is recorded with who and why and auditors can list them.
func TestSharingScopeAndReadLog(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	c := benchCaseFor("SHARE-1")
	c.Sharing.Scope = SharingNone
	res, err := a.Ingest(ctx, dept, c, oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Package.ID
	if res.Package.Sharing != SharingNone {
		t.Fatalf("sharing %q", res.Package.Sharing)
	}
	arch := Principal{Role: RoleArchive}
	_, _, err = a.OpenEEP(ctx, arch, id)
	var fe *FieldErr
	if !errors.Is(err, ErrInvalidCase) || !errors.As(err, &fe) || fe.Field != "purpose" {
		t.Fatalf("archive read without a purpose: %v", err)
	}
	arch.Purpose = "依申请查阅 2026-118"
	rc, _, err := a.OpenEEP(ctx, arch, id)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	rc, _, err = a.OpenEEP(ctx, dept, id)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	other := Principal{Role: RoleDepartment, Org: "11610830MB1234567W", Purpose: "核查"}
	if _, _, err := a.OpenEEP(ctx, other, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another department: %v", err)
	}
	if _, err := a.ReadLog(ctx, dept, ReadFilter{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department read the read log: %v", err)
	}
	reads, err := a.ReadLog(ctx, Principal{Role: RoleAuditor}, ReadFilter{Package: id})
	if err != nil || len(reads) != 2 {
		t.Fatalf("reads: %v %+v", err, reads)
	}
	if reads[0].Who != "archive" || reads[0].Purpose != arch.Purpose || reads[1].Who != dept.String() || reads[0].At.IsZero() {
		t.Fatalf("reads recorded wrongly: %+v", reads)
	}
}
