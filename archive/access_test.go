package archive

import (
	"context"
	"errors"
	"testing"

	"github.com/dangan-archive/dangan/storage/index"
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
	if _, _, err := a.ReadLog(ctx, dept, ReadFilter{}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department read the read log: %v", err)
	}
	reads, _, err := a.ReadLog(ctx, Principal{Role: RoleAuditor}, ReadFilter{Package: id})
	if err != nil || len(reads) != 2 {
		t.Fatalf("reads: %v %+v", err, reads)
	}
	if reads[0].Who != "archive" || reads[0].Purpose != arch.Purpose || reads[1].Who != dept.String() || reads[0].At.IsZero() {
		t.Fatalf("reads recorded wrongly: %+v", reads)
	}
}

// A package's reads come from its own lookup keys, not a walk of every read; an index
// whose reads have no lookup keys gets them when it is opened.
func TestReadsByPackageAndPerson(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(Config{DataDir: dir, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var ids []string
	for _, no := range []string{"RD-1", "RD-2"} {
		res, err := a.Ingest(ctx, dept, benchCaseFor(no), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Package.ID)
	}
	archivist := Principal{Role: RoleArchive, TokenID: "abcd", Name: "档案员", Purpose: "查考"}
	for _, r := range []struct {
		who Principal
		id  string
	}{{dept, ids[0]}, {archivist, ids[0]}, {archivist, ids[1]}, {dept, ids[0]}} {
		rc, _, err := a.OpenEEP(ctx, r.who, r.id)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	check := func(when string) {
		auditor := Principal{Role: RoleAuditor}
		if rs, _, err := a.ReadLog(ctx, auditor, ReadFilter{Package: ids[1]}); err != nil || len(rs) != 1 || rs[0].Who != archivist.String() {
			t.Errorf("%s: reads of the second package: %v %+v", when, err, rs)
		}
		if rs, _, err := a.ReadLog(ctx, auditor, ReadFilter{Who: dept.String()}); err != nil || len(rs) != 2 || rs[0].Package != ids[0] {
			t.Errorf("%s: the department's reads: %v %+v", when, err, rs)
		}
		if rs, _, _ := a.ReadLog(ctx, auditor, ReadFilter{Package: ids[0], Who: archivist.String()}); len(rs) != 1 {
			t.Errorf("%s: the archivist's reads of the first package: %+v", when, rs)
		}
	}
	check("as written")
	// Paged by one: four reads, each once, in order.
	var seen []string
	for cursor := ""; ; {
		rs, next, err := a.ReadLog(ctx, Principal{Role: RoleAuditor}, ReadFilter{Cursor: cursor, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			seen = append(seen, r.Package+" "+r.Who)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if len(seen) != 4 || seen[3] != ids[0]+" "+dept.String() {
		t.Errorf("reads paged by one: %v", seen)
	}
	if _, _, err := a.ReadLog(ctx, Principal{Role: RoleAuditor}, ReadFilter{Cursor: "x"}); !errors.Is(err, ErrInvalidCase) {
		t.Errorf("a made-up cursor: %v", err)
	}
	var drop []index.Rec
	a.Index().ForEachRecord(index.ReadKeys, "", "", func(k string, _ []byte) error {
		drop = append(drop, index.Rec{Bucket: index.ReadKeys, Key: k})
		return nil
	})
	if len(drop) != 8 {
		t.Fatalf("%d lookup keys for 4 reads", len(drop))
	}
	a.Index().PutRecords(append(drop, index.Rec{Bucket: index.State, Key: "record-keys-indexed", Value: false})...)
	a.Close()
	if a, err = Open(Config{DataDir: dir, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	check("after the lookups were built on open")
}
