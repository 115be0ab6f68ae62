package archive

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/storage/index"
)

// use says what a read of a package is for.
type use int

const (
	useDescription use = iota // the package description
	useContent                // the EEP and its documents
	useEvidence               // the timestamp and digests
)

// lookup returns the package when who may read it for u: the archive may read everything,
// a department its own packages, an auditor evidence. Another department's package is
// ErrNotFound, so a department cannot learn what others hold; an auditor asking for a
// description is ErrForbidden. A package whose sharing scope is 不予共享 is read by the
// archive only with a stated purpose. A destroyed package has no content left: ErrGone.
func (a *Archive) lookup(who Principal, id string, u use) (*index.Package, error) {
	p, err := a.index.Package(id)
	if errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	shared := false
	switch {
	case who.Role == RoleArchive, who.Role == RoleDepartment && who.Org == p.Department,
		who.Role == RoleAuditor && u == useEvidence:
	case who.Role == RoleAuditor && u == useDescription:
		return nil, fmt.Errorf("%w: auditors read evidence, not package descriptions", ErrForbidden)
	case who.Role == RoleDepartment && a.sharedWith(who.Org, p):
		shared = true
	default:
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	}
	if u == useContent && p.Tombstone != nil {
		return nil, fmt.Errorf("package %s was destroyed on %s (decision %s): %w", id, p.Tombstone.DestroyedAt.Format(time.DateOnly), p.Tombstone.Decision, ErrGone)
	}
	if u == useContent && p.Sharing == SharingNone && who.Role != RoleDepartment && who.Purpose == "" {
		return nil, fieldErr("purpose", fmt.Errorf("%w: package %s is 不予共享: say why it is read (?purpose=)", ErrInvalidCase, id))
	}
	if shared && u != useDescription && strings.TrimSpace(who.Purpose) == "" {
		return nil, fieldErr("purpose", fmt.Errorf("%w: package %s is another department's, shared: say why it is read (?purpose=)", ErrInvalidCase, id))
	}
	return p, nil
}

// sharedWith says whether a department other than the owner may read the package: one
// shared unconditionally, or one it holds a running grant for.
func (a *Archive) sharedWith(dept string, p *index.Package) bool {
	switch SharingClass(p.Sharing) {
	case SharingOpen:
		return true
	case SharingConditional:
		return a.granted(dept, p.ID) != nil
	}
	return false
}

// Package returns a package description for who (see lookup for who may read what).
func (a *Archive) Package(ctx context.Context, who Principal, id string) (*index.Package, error) {
	return a.lookup(who, id, useDescription)
}

// OpenEEP streams a package's EEP file.
func (a *Archive) OpenEEP(ctx context.Context, who Principal, id string) (io.ReadCloser, *index.Package, error) {
	p, err := a.lookup(who, id, useContent)
	if err != nil {
		return nil, nil, err
	}
	rc, _, err := a.getPinned(ctx, p.Key, p.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("package %s object %s: %w", id, p.Key, err)
	}
	if err := a.logRead(who, p, "eep"); err != nil {
		rc.Close()
		return nil, nil, err
	}
	return rc, p, nil
}

// OpenPriorEEP streams a form a migrated package had before its current one (layer 0: the
// package as archived), kept as it was.
func (a *Archive) OpenPriorEEP(ctx context.Context, who Principal, id string, layer int) (io.ReadCloser, *index.PriorForm, error) {
	p, err := a.lookup(who, id, useContent)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range p.Prior {
		if f.Layer != layer {
			continue
		}
		rc, _, err := a.getPinned(ctx, f.Key, f.Version)
		if err != nil {
			return nil, nil, fmt.Errorf("package %s object %s: %w", id, f.Key, err)
		}
		if err := a.logRead(who, p, "eep-layer-"+strconv.Itoa(layer)); err != nil {
			rc.Close()
			return nil, nil, err
		}
		return rc, &f, nil
	}
	return nil, nil, fieldErr("layer", fmt.Errorf("%w: package %s has no earlier form 修改%d (its current form is 修改%d)", ErrNotFound, id, layer, p.Layer))
}

// OpenDocument streams document n (1-based) of a package: the archival rendition, or the
// original when original is set. It reads only that document's bytes from the EEP.
func (a *Archive) OpenDocument(ctx context.Context, who Principal, id string, n int, original bool) (io.ReadCloser, *index.Encoding, error) {
	p, err := a.lookup(who, id, useContent)
	if err != nil {
		return nil, nil, err
	}
	if n < 1 || n > len(p.Documents) {
		return nil, nil, fieldErr("n", fmt.Errorf("%w: package %s has documents 1..%d", ErrNotFound, id, len(p.Documents)))
	}
	encs := p.Documents[n-1].Encoded
	k := 1 // the archival copy
	if original {
		for i := range encs {
			if encs[i].Original {
				k = i + 1
				break
			}
		}
	}
	return a.openEncoding(ctx, who, p, n, k)
}

// OpenEncoding opens encoding k (1: the archival copy, then the original or a rendition
// kept beside it, in package order) of document n.
func (a *Archive) OpenEncoding(ctx context.Context, who Principal, id string, n, k int) (io.ReadCloser, *index.Encoding, error) {
	p, err := a.lookup(who, id, useContent)
	if err != nil {
		return nil, nil, err
	}
	if n < 1 || n > len(p.Documents) {
		return nil, nil, fieldErr("n", fmt.Errorf("%w: package %s has documents 1..%d", ErrNotFound, id, len(p.Documents)))
	}
	return a.openEncoding(ctx, who, p, n, k)
}

func (a *Archive) openEncoding(ctx context.Context, who Principal, p *index.Package, n, k int) (io.ReadCloser, *index.Encoding, error) {
	encs := p.Documents[n-1].Encoded
	if k < 1 || k > len(encs) {
		return nil, nil, fieldErr("encoding", fmt.Errorf("%w: document %d of %s has encodings 1..%d", ErrNotFound, n, p.ID, len(encs)))
	}
	enc := &encs[k-1]
	id := p.ID
	rc, err := a.getPinnedRange(ctx, p.Key, p.Version, enc.DataOffset, enc.DataLength)
	if err != nil {
		return nil, nil, fmt.Errorf("read document %d of %s: %w", n, id, err)
	}
	if err := a.logRead(who, p, fmt.Sprintf("document %d (%s)", n, enc.FileName)); err != nil {
		rc.Close()
		return nil, nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{base64.NewDecoder(base64.StdEncoding, newlineStripper{rc}), rc}, enc, nil
}

// newlineStripper drops the LFs that break base64 lines in an EEP.
type newlineStripper struct{ r io.Reader }

func (s newlineStripper) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\n' && c != '\r' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// Page sizes of every list: a limit above maxPage is refused, none is defaultPage.
const (
	defaultPage = 100
	maxPage     = 1000
)

// ListQuery selects one list of packages: a department's or the archive's, whole or of one
// year (and retention), one item code or one state. Lists that combine these are the search
// index's (Archive.Search).
type ListQuery struct {
	Department string
	Year       int
	Retention  string
	ItemCode   string
	State      string
	Cursor     string
	Limit      int
}

// List pages through packages who may see, in ingest order (a year's by retention first):
// a department only its own. Each page costs its own length, however large the archive.
func (a *Archive) List(ctx context.Context, who Principal, q ListQuery) (*index.Page, error) {
	var err error
	if q.Department, err = departmentScope(who, q.Department, "records", RoleArchive); err != nil {
		return nil, err
	}
	if q.Limit < 0 || q.Limit > maxPage {
		return nil, fieldErr("limit", fmt.Errorf("%w: limit is 1 to %d", ErrInvalidCase, maxPage))
	}
	if q.Limit == 0 {
		q.Limit = defaultPage
	}
	scope := q.Department
	if scope == "" {
		scope = index.AllDepartments
	}
	var spans []index.Span
	if q.Year != 0 {
		spans = append(spans, index.InYear(scope, q.Year, q.Retention))
	} else if q.Retention != "" {
		return nil, fieldErr("retention", fmt.Errorf("%w: retention narrows a year: give year too", ErrInvalidCase))
	}
	if q.ItemCode != "" {
		spans = append(spans, index.WithItem(scope, q.ItemCode))
	}
	if q.State != "" {
		spans = append(spans, index.InState(scope, q.State))
	}
	switch len(spans) {
	case 0:
		spans = append(spans, index.Ingested(scope))
	case 1:
	default:
		return nil, fieldErr("year", fmt.Errorf("%w: a list takes one of year, item_code and state; combine them with the search (/api/v1/search)", ErrInvalidCase))
	}
	page, err := a.index.List(spans[0], q.Cursor, q.Limit)
	if errors.Is(err, index.ErrBadCursor) {
		return nil, fieldErr("cursor", fmt.Errorf("%w: %w", ErrInvalidCase, err))
	} else if err != nil {
		return nil, err
	}
	a.log.Info("records listed", "who", who.String(), "department", q.Department, "year", q.Year, "item_code", q.ItemCode, "state", q.State, "count", len(page.Packages))
	return page, nil
}

// Evidence is what proves a package offline beside its EEP: its digests and the proof that
// its ingest event is in the event log, in a checkpoint signed and timestamped then (and
// renewed and witnessed since, when that happened).
type Evidence struct {
	Format       string         `json:"format"`
	PackageID    string         `json:"package_id"`
	ArchivalCode string         `json:"archival_code"`
	PackageSM3   string         `json:"package_sm3"`
	Signature    string         `json:"signature"`
	Proof        eventlog.Proof `json:"proof"`
}

// EvidenceFormat names the evidence file layout.
const EvidenceFormat = "dangan-evidence/2"

// Evidence returns the evidence of a package (owner, archive, auditor). A package ingested
// less than a checkpoint interval ago gets a checkpoint made for it now. Fetched again
// later, the evidence carries the renewals and the latest witnessed checkpoint.
func (a *Archive) Evidence(ctx context.Context, who Principal, id string) (*Evidence, error) {
	return a.EvidenceOfForm(ctx, who, id, -1)
}

// EvidenceOfForm is the evidence of one form of a package: layer -1 (or the current
// layer) its current form, else a form a migration kept (0: the package as archived).
func (a *Archive) EvidenceOfForm(ctx context.Context, who Principal, id string, layer int) (*Evidence, error) {
	p, err := a.lookup(who, id, useEvidence)
	if err != nil {
		return nil, err
	}
	if layer >= 0 && layer != p.Layer {
		var form *index.PriorForm
		for i := range p.Prior {
			if p.Prior[i].Layer == layer {
				form = &p.Prior[i]
			}
		}
		if form == nil {
			return nil, fieldErr("layer", fmt.Errorf("%w: package %s has no earlier form 修改%d (its current form is 修改%d)", ErrNotFound, id, layer, p.Layer))
		}
		q := *p
		q.LogIndex, q.PackageSM3, q.SignatureB64 = form.LogIndex, form.PackageSM3, form.Signature
		p = &q
	}
	proof, err := a.elog.Prove(ctx, p.LogIndex)
	if err != nil {
		// The log holds every ingest event; what fails here is a checkpoint (the TSA).
		return nil, fmt.Errorf("%w: evidence of %s: %v", ErrUnavailable, id, err)
	}
	if err := a.logRead(who, p, "evidence"); err != nil {
		return nil, err
	}
	return &Evidence{Format: EvidenceFormat, PackageID: p.ID, ArchivalCode: p.ArchivalCode, PackageSM3: p.PackageSM3,
		Signature: p.SignatureB64, Proof: *proof}, nil
}

// CheckpointedAt is when the checkpoint that first covered a package was made; zero while
// none has yet (within a checkpoint interval of the ingest).
func (a *Archive) CheckpointedAt(p *index.Package) time.Time { return a.elog.CoveredAt(p.LogIndex) }

// CanAudit says whether who may read the event log's entries and witness records: the
// auditor, the archive and the admin.
func (a *Archive) CanAudit(who Principal) error {
	switch who.Role {
	case RoleAuditor, RoleArchive, RoleAdmin:
		return nil
	}
	return fmt.Errorf("%w: the event log is read by auditors and the archive", ErrForbidden)
}

// CaseSteps is how a case was handled, as its record keeps it for the search: the steps with
// their actors, the opinions and the decision. It carries no personal data of the applicant.
type CaseSteps struct {
	Decision string
	Opinions []string
	Steps    []string // "step actor"
}

// Steps returns a package's case steps for who may read its description.
func (a *Archive) Steps(ctx context.Context, who Principal, id string) (*CaseSteps, error) {
	if _, err := a.lookup(who, id, useDescription); err != nil {
		return nil, err
	}
	ct, err := a.caseText(id)
	if err != nil || ct == nil {
		return &CaseSteps{}, err
	}
	return &CaseSteps{Decision: ct.Decision, Opinions: ct.Opinions, Steps: ct.Steps}, nil
}
