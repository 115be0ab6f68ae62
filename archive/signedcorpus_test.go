package archive

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/formats/eep"
)

// brokenBecause names, for each broken file of the signed corpus, the check its
// MANIFEST.tsv reason means must fail.
var brokenBecause = map[string]string{
	"pdf-byterange-first-bytes-uncovered.pdf":     CheckDocument,
	"pdf-byterange-gap-smaller-than-contents.pdf": CheckDocument,
	"pdf-byterange-last-bytes-uncovered.pdf":      CheckDocument,
	"pdf-byterange-spaces-before-contents.pdf":    CheckDocument,
	"pdf-byterange-two-contents.pdf":              CheckDocument,
	"pdf-rsa-corrupted-sig-valid-tsa.pdf":         CheckDocument, // its messageDigest does not match
	"pdf-rsa-eol-not-in-byterange.pdf":            CheckDocument,
	"pdf-rsa-empty-econtent-2nd-sig.pdf":          CheckSignature, // strict CMS: signed over the empty eContent
	"pdf-rsa-sha1-digestinfo-mismatch.pdf":        CheckSignature,
	"pdf-rsa-shadow-attack-hide-replace.pdf":      CheckChanges, // an update after signing changes the page tree
	"pdf-sm2-gm-pkcs7-badsig.pdf":                 CheckSignature,
	"ofd-besti-sesv1-garbage-signature.ofd":       CheckSignature, // the signature is fill bytes
	"ofd-kinggrid-besti-malformed.ofd":            CheckDocument,  // two reference digests mismatch
	"ofd-koal-four-sigs-missing-signedvalue.ofd":  CheckDocument,  // a signed value is not in the package
	"ofd-koal-sesv4-content-tampered.ofd":         CheckDocument,  // a page changed after sealing
}

type manifestRow struct{ file, kind, expected, quirks string }

func signedManifest(t *testing.T) []manifestRow {
	t.Helper()
	b, err := os.ReadFile("../../shared/corpus/signed/MANIFEST.tsv")
	if err != nil {
		t.Fatalf("the signed corpus must be beside the checkout (../shared/corpus/signed): %v", err)
	}
	var rows []manifestRow
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		f := strings.Split(line, "\t")
		if len(f) < 8 {
			t.Fatalf("MANIFEST.tsv row with %d fields: %q", len(f), line)
		}
		rows = append(rows, manifestRow{file: f[0], kind: f[4], expected: f[6], quirks: f[7]})
	}
	if len(rows) < 40 {
		t.Fatalf("only %d rows in MANIFEST.tsv", len(rows))
	}
	return rows
}

func (a *Archive) verifyFile(t *testing.T, path string) *CertReport {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".pdf") {
		return a.VerifyCertificatePDF(b)
	}
	rep, err := a.VerifyCertificateOFD(b)
	if err != nil {
		t.Fatalf("OFD refused: %v", err)
	}
	return rep
}

// TestSignedCorpus verifies every file of the signed corpus, made by other software, as
// its manifest says: every intact file's signatures are mathematically valid with their
// documents unchanged and their signers untrusted (none chains to this archive's roots);
// every broken file is invalid and names the failing check; every answer is quick.
func TestSignedCorpus(t *testing.T) {
	a := certArchive(t)
	for _, row := range signedManifest(t) {
		t.Run(row.file, func(t *testing.T) {
			start := time.Now()
			rep := a.verifyFile(t, filepath.Join("../../shared/corpus/signed", row.file))
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v", took)
			}
			if rep.Valid {
				t.Fatalf("reported valid and trusted: no signer of the corpus chains to this archive's roots: %+v", rep.Checks)
			}
			failed := map[string]bool{}
			passed := map[string]bool{}
			for _, c := range rep.Checks {
				if c.Status == eep.Fail {
					failed[c.Check] = true
				}
				if c.Status == eep.Pass {
					passed[c.Check] = true
				}
			}
			switch row.expected {
			case "intact":
				for _, name := range []string{CheckSignature, CheckDocument, CheckChanges} {
					if failed[name] {
						t.Errorf("%s fails on an intact file: %s", name, failingChecks(rep, name))
					}
				}
				if !passed[CheckSignature] || !passed[CheckDocument] {
					t.Errorf("signature or document-unchanged does not pass: %+v", rep.Checks)
				}
				if !failed[CheckSigner] {
					t.Errorf("the signer is not reported untrusted")
				}
				for _, s := range rep.Signatures {
					if !s.Intact {
						t.Errorf("%s is not intact", s.Where)
					}
				}
				// An encoding laxity the manifest lists is reported, never passed silently.
				if strings.Contains(row.quirks, "negative") || strings.Contains(row.quirks, "non-minimal") || strings.Contains(row.quirks, "unused") || strings.Contains(row.quirks, "raw") {
					if !warned(rep) {
						t.Errorf("the file's laxities (%s) are not reported as warnings", row.quirks)
					}
				}
			case "broken":
				want := brokenBecause[row.file]
				if want == "" {
					t.Fatalf("no expected failing check for broken %s", row.file)
				}
				if !failed[want] {
					t.Errorf("broken file: %s does not fail (failed: %v)", want, rep.Failed())
				}
			case "unknown":
				// Intact only under a producer's convention: any verdict, but an answer.
				if len(rep.Checks) == 0 {
					t.Error("no checks")
				}
			default:
				t.Fatalf("manifest verdict %q", row.expected)
			}
		})
	}
}

func failingChecks(rep *CertReport, name string) string {
	var out []string
	for _, c := range rep.Checks {
		if c.Check == name && c.Status == eep.Fail {
			out = append(out, c.Where+": "+c.Detail)
		}
	}
	return strings.Join(out, "; ")
}

func warned(rep *CertReport) bool {
	for _, c := range rep.Checks {
		if c.Status == eep.Warn && c.Check == CheckSignature {
			return true
		}
	}
	return false
}
