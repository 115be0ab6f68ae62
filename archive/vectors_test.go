package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
)

var updateVectors = flag.Bool("update", false, "regenerate testdata/evidence")

const evidenceVectors = "testdata/evidence"

// TestEvidenceVectors checks the packages and evidence files kept in the repository: the
// archived package with its evidence passes; a changed package, or a package with another
// package's evidence, fails with the reason. Regenerate with go test -run TestEvidenceVectors
// -update.
func TestEvidenceVectors(t *testing.T) {
	if *updateVectors {
		generateEvidenceVectors(t)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(evidenceVectors, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	certs, err := signing.ParseCertsPEM(read("roots.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := signing.NewPool(certs...)
	ev, err := LoadEvidence(read("package.evidence"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadEvidence(read("other.evidence"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file string
		ev         *Evidence
		failCode   string // "" for valid
		failWhere  string
	}{
		{"the archived package", "package.eep", ev, "", ""},
		{"one byte of a document changed", "changed.eep", ev, eep.CodePackage, "封装包"},
		{"another package's evidence", "package.eep", other, eep.CodeFixity, "时间戳"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := read(c.file)
			rep, err := Verify(bytes.NewReader(b), int64(len(b)), VerifyOptions{Roots: roots, Evidence: c.ev})
			if err != nil {
				t.Fatal(err)
			}
			if c.failCode == "" {
				if !rep.Valid || rep.TimestampAt == nil {
					t.Fatalf("valid vector failed: %+v", rep.Findings)
				}
				return
			}
			if rep.Valid {
				t.Fatal("a tampered vector verified")
			}
			for _, f := range rep.Findings {
				if f.Status == eep.Fail && f.Code == c.failCode && f.Where == c.failWhere && (f.Found != "" || f.Detail != "") {
					return
				}
			}
			t.Fatalf("no %s failure at %s: %+v", c.failCode, c.failWhere, rep.Findings)
		})
	}
}

func generateEvidenceVectors(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	arch := Principal{Role: RoleArchive}
	ctx := context.Background()
	var ids []string
	for _, no := range []string{"VEC-1", "VEC-2"} {
		res, err := a.Ingest(ctx, dept, benchCaseFor(no), oneDoc(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.Package.ID)
	}
	os.MkdirAll(evidenceVectors, 0o755)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(evidenceVectors, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rc, _, err := a.OpenEEP(ctx, arch, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	pkg, _ := io.ReadAll(rc)
	rc.Close()
	write("package.eep", pkg)
	for i, name := range []string{"package.evidence", "other.evidence"} {
		resp, err := a.Evidence(ctx, arch, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := jsonIndent(resp)
		if i == 1 {
			// Relabelled: another package's proof under this package's id.
			b = bytes.ReplaceAll(b, []byte(`"package_id": "`+ids[1]+`"`), []byte(`"package_id": "`+ids[0]+`"`))
		}
		write(name, b)
	}
	// One base64 character of the document changed: the document, the signature and the
	// package digest no longer match.
	i := bytes.Index(pkg, []byte("<编码数据 ")) + 120
	changed := append([]byte(nil), pkg...)
	if changed[i] == 'A' {
		changed[i] = 'B'
	} else {
		changed[i] = 'A'
	}
	write("changed.eep", changed)
	write("roots.pem", a.TrustPEM())
	write("README", []byte(strings.TrimSpace(`
Evidence test vectors for TestEvidenceVectors (archive/vectors_test.go), made by
go test ./archive -run TestEvidenceVectors -update with a fresh development PKI:
package.eep + package.evidence verify; changed.eep (one base64 character of its document
changed) fails GD-1-14 and GD-1-10/GD-1-1; other.evidence is another package's proof
relabelled with package.eep's id and fails the timestamp check. roots.pem is the PKI's root.
`)+"\n"))
}

func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", " ") }
