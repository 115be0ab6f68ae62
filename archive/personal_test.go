package archive

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/dangan-archive/dangan/search"
	"github.com/dangan-archive/dangan/storage/index"
)

// containsInClear reports the files under dir that hold s.
func containsInClear(t *testing.T, dir string, s string) []string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(s)) {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// Neither the index nor the search index holds an applicant's ID number in clear; the
// archive still finds the case by the exact number, and a department its own; the data key
// is wrapped with the key password, so the archive (and a restored copy) does not open
// without it. Case texts stored in clear before are sealed at the next start.
func TestIdentityNumbersEncryptedAtRest(t *testing.T) {
	const idNumber = "610102199001011231"
	dir := t.TempDir()
	password := []byte("a key password for the test")
	a, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true, KeyPassword: password})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := benchCaseFor("PII-1")
	c.Applicant = Applicant{Name: "李晓明", Kind: "个人", IDType: "111", IDNumber: idNumber}
	res, err := a.Ingest(ctx, dept, c, oneDoc(t))
	if err != nil {
		t.Fatal(err)
	}
	waitSearchReady(t, a, 1)
	for _, who := range []Principal{{Role: RoleArchive, Name: "档案员"}, dept} {
		got, err := a.Search(ctx, who, SearchQuery{Query: search.Query{ApplicantID: " 610102199001011231 "}})
		if err != nil || got.Total != 1 || got.Hits[0].Package.ID != res.Package.ID {
			t.Fatalf("%s looks up the exact number: %+v %v", who.Role, got, err)
		}
	}
	if got, err := a.Search(ctx, deptB, SearchQuery{Query: search.Query{ApplicantID: idNumber}}); err != nil || got.Total != 0 {
		t.Fatalf("another department finds it: %+v %v", got, err)
	}
	if ct, err := a.caseText(res.Package.ID); err != nil || ct.ApplicantID != idNumber || ct.Applicant != "李晓明" {
		t.Fatalf("the sealed case text opens to %+v %v", ct, err)
	}
	a.Close()
	for _, f := range []string{"index.db", "search"} {
		if files := containsInClear(t, filepath.Join(dir, f), idNumber); len(files) > 0 {
			t.Fatalf("the ID number is in clear in %v", files)
		}
	}
	if files := containsInClear(t, filepath.Join(dir, "index.db"), "李晓明"); len(files) > 0 {
		t.Fatalf("the applicant's name is in clear in %v", files)
	}
	if _, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true}); err == nil {
		t.Fatal("opened without the key password")
	}

	// An index from before sealing: a clear case text is sealed at the next start.
	a, err = Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true, KeyPassword: password})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.index.PutRecords(index.Rec{Bucket: index.CaseTexts, Key: res.Package.ID, Value: index.CaseText{Applicant: "李晓明", ApplicantID: idNumber}},
		index.Rec{Bucket: index.State, Key: personalSealedKey}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if a, err = Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true, KeyPassword: password}); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ct, err := a.index.CaseText(res.Package.ID)
	if err != nil || ct.ApplicantID != "" || len(ct.Sealed) == 0 {
		t.Fatalf("not sealed at the start: %+v %v", ct, err)
	}
	waitSearchReady(t, a, 1)
	if got, err := a.Search(ctx, dept, SearchQuery{Query: search.Query{ApplicantID: idNumber}}); err != nil || got.Total != 1 {
		t.Fatalf("after sealing: %+v %v", got, err)
	}
}
