package archive

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/formats/eep"
)

// Transfers (移交与接收) move permanent records from a department's archive to the county
// archive, in the spirit of DA/T 93 with DA/T 70's YJ checks:
//
//  1. the department's archive makes a batch: a manifest (移交清单) of package ids, 档号,
//     SM3 digests and sizes with totals, signed with the department's SM2 key;
//  2. it offers the manifest to the county archive (POST /api/v1/accessions), then sends
//     each package with its evidence (PUT …/packages/{id});
//  3. the county archive checks each package (YJ-…), stores what passes in its own storage
//     and index, and signs a receipt (POST …/receipt) listing accepted and rejected packages
//     with reasons;
//  4. the department's archive verifies the receipt and marks the accepted packages
//     transferred, keeping its copy KeepYears more; rejected ones stay, with the reasons.
//
// Every step is idempotent: a batch interrupted on either side resumes where it stopped, and
// a package the county archive already holds is not stored twice.

// Formats of the signed transfer documents.
const (
	ManifestFormat = "dangan-transfer-manifest/1"
	ReceiptFormat  = "dangan-transfer-receipt/1"
)

// Manifest is a transfer batch's 移交清单.
type Manifest struct {
	Format         string         `json:"format"`
	Batch          string         `json:"batch"`
	From           string         `json:"from"` // the sending archive's log origin
	Department     string         `json:"department"`
	DepartmentName string         `json:"department_name"`
	Created        time.Time      `json:"created"`
	Items          []ManifestItem `json:"items"`
	Count          int            `json:"count"`
	Bytes          int64          `json:"bytes"`
}

// ManifestItem is one package of a batch.
type ManifestItem struct {
	Package      string `json:"package"`
	ArchivalCode string `json:"archival_code"`
	Retention    string `json:"retention"`
	SM3          string `json:"sm3"`
	Size         int64  `json:"size"`
}

// Receipt is the county archive's signed answer to a batch.
type Receipt struct {
	Format        string        `json:"format"`
	Batch         string        `json:"batch"`
	ManifestSM3   string        `json:"manifest_sm3"`
	Receiver      string        `json:"receiver"` // the receiving archive's log origin
	Issued        time.Time     `json:"issued"`
	Items         []ReceiptItem `json:"items"`
	Accepted      int           `json:"accepted"`
	Rejected      int           `json:"rejected"`
	AcceptedBytes int64         `json:"accepted_bytes"`
	Checks        []eep.Finding `json:"checks"` // the batch's own: YJ-2-1 count, YJ-2-2 bytes
}

// ReceiptItem is the outcome for one package.
type ReceiptItem struct {
	Package      string   `json:"package"`
	ArchivalCode string   `json:"archival_code"`
	SM3          string   `json:"sm3"`
	Accepted     bool     `json:"accepted"`
	Reasons      []string `json:"reasons,omitempty"` // the failing checks, each with its YJ code
}

var batchIDRe = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)

// checkManifest checks a manifest's own consistency: format, batch id, no duplicates, and
// that the totals are the sums (YJ-2-1, YJ-2-2 as declared).
func checkManifest(m *Manifest) error {
	var problems []string
	if m.Format != ManifestFormat {
		problems = append(problems, fmt.Sprintf("format %q, expected %q", m.Format, ManifestFormat))
	}
	if !batchIDRe.MatchString(m.Batch) {
		problems = append(problems, fmt.Sprintf("batch id %q is not <UTC time>-<8 hex>", m.Batch))
	}
	if err := CheckUSCC(m.Department); err != nil {
		problems = append(problems, "department: "+err.Error())
	}
	seen := map[string]bool{}
	var bytes int64
	for _, it := range m.Items {
		if seen[it.Package] || !packageIDRe.MatchString(it.Package) || len(it.SM3) != 64 || it.Size <= 0 {
			problems = append(problems, fmt.Sprintf("item %q is duplicated or malformed", it.Package))
		}
		seen[it.Package] = true
		bytes += it.Size
	}
	if m.Count != len(m.Items) || len(m.Items) == 0 {
		problems = append(problems, fmt.Sprintf("YJ-2-1 count %d for %d items", m.Count, len(m.Items)))
	}
	if m.Bytes != bytes {
		problems = append(problems, fmt.Sprintf("YJ-2-2 total bytes %d, the items add up to %d", m.Bytes, bytes))
	}
	if len(problems) > 0 {
		return fieldErr("manifest", fmt.Errorf("%w: manifest: %s", ErrInvalidCase, strings.Join(problems, "; ")))
	}
	return nil
}

// packageIDRe is the form of a package id (newID).
var packageIDRe = regexp.MustCompile(`^[0-9a-f]{25}$`)
