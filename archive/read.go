package archive

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/dangan-archive/dangan/storage/index"
)

// canRead reports whether who may read p: its department, and the archive.
func canRead(who Principal, p *index.Package) bool {
	switch who.Role {
	case RoleArchive:
		return true
	case RoleDepartment:
		return who.Org == p.Department
	}
	return false
}

// Package returns a package description for who. A department asking for another
// department's package gets ErrNotFound, so it cannot learn what others hold.
func (a *Archive) Package(ctx context.Context, who Principal, id string) (*index.Package, error) {
	p, err := a.index.Package(id)
	if errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if !canRead(who, p) && !(who.Role == RoleAuditor) {
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	}
	return p, nil
}

func (a *Archive) readable(ctx context.Context, who Principal, id string) (*index.Package, error) {
	p, err := a.Package(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if !canRead(who, p) {
		return nil, fmt.Errorf("package %s: %w", id, ErrNotFound)
	}
	return p, nil
}

// logRead records every read of a record.
func (a *Archive) logRead(who Principal, p *index.Package, what string) {
	a.log.Info("record read", "who", who.String(), "package", p.ID, "archival_code", p.ArchivalCode, "what", what)
}

// OpenEEP streams a package's EEP file.
func (a *Archive) OpenEEP(ctx context.Context, who Principal, id string) (io.ReadCloser, *index.Package, error) {
	p, err := a.readable(ctx, who, id)
	if err != nil {
		return nil, nil, err
	}
	rc, _, err := a.store.Get(ctx, p.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("package %s object %s: %w", id, p.Key, err)
	}
	a.logRead(who, p, "eep")
	return rc, p, nil
}

// OpenDocument streams document n (1-based) of a package: the archival rendition, or the
// original when original is set. It reads only that document's bytes from the EEP.
func (a *Archive) OpenDocument(ctx context.Context, who Principal, id string, n int, original bool) (io.ReadCloser, *index.Encoding, error) {
	p, err := a.readable(ctx, who, id)
	if err != nil {
		return nil, nil, err
	}
	if n < 1 || n > len(p.Documents) {
		return nil, nil, fieldErr("n", fmt.Errorf("%w: package %s has documents 1..%d", ErrNotFound, id, len(p.Documents)))
	}
	encs := p.Documents[n-1].Encoded
	enc := &encs[0]
	if original {
		enc = &encs[len(encs)-1]
	}
	rc, err := a.store.GetRange(ctx, p.Key, enc.DataOffset, enc.DataLength)
	if err != nil {
		return nil, nil, fmt.Errorf("read document %d of %s: %w", n, id, err)
	}
	a.logRead(who, p, fmt.Sprintf("document %d (%s)", n, enc.FileName))
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

// Search lists packages who may see: a department only its own.
func (a *Archive) Search(ctx context.Context, who Principal, f index.Filter) ([]*index.Package, error) {
	switch who.Role {
	case RoleArchive:
	case RoleDepartment:
		if f.Department != "" && f.Department != who.Org {
			return nil, fieldErr("department", fmt.Errorf("%w: a department searches only its own records", ErrForbidden))
		}
		f.Department = who.Org
	default:
		return nil, fmt.Errorf("%w: role %s cannot search packages", ErrForbidden, who.Role)
	}
	res, err := a.index.Search(f)
	if err == nil {
		a.log.Info("records listed", "who", who.String(), "department", f.Department, "year", f.Year, "item_code", f.ItemCode, "q", f.Query, "count", len(res))
	}
	return res, err
}

// Evidence is what proves a package offline beside its EEP: the digests and the RFC 3161
// token over the department signature.
type Evidence struct {
	Format       string    `json:"format"`
	PackageID    string    `json:"package_id"`
	ArchivalCode string    `json:"archival_code"`
	PackageSM3   string    `json:"package_sm3"`
	Signature    string    `json:"signature"`
	Timestamp    Timestamp `json:"timestamp"`
}

// Timestamp is an RFC 3161 token over a batch manifest that lists the package's signature.
type Timestamp struct {
	Covers   string    `json:"covers"`
	Time     time.Time `json:"time"`
	Manifest string    `json:"manifest"` // the batch manifest (text)
	Token    string    `json:"token"`    // base64 DER ContentInfo over SM3(manifest)
}

// EvidenceFormat names the evidence file layout.
const EvidenceFormat = "dangan-evidence/1"

// Evidence returns the evidence of a package (owner, archive, auditor).
func (a *Archive) Evidence(ctx context.Context, who Principal, id string) (*Evidence, error) {
	p, err := a.Package(ctx, who, id)
	if err != nil {
		return nil, err
	}
	b, err := a.batchEvidence(ctx, p.TimestampKey)
	if err != nil {
		return nil, fmt.Errorf("evidence of %s: %w", id, err)
	}
	a.logRead(who, p, "evidence")
	return &Evidence{Format: EvidenceFormat, PackageID: p.ID, ArchivalCode: p.ArchivalCode, PackageSM3: p.PackageSM3,
		Signature: p.SignatureB64,
		Timestamp: Timestamp{Covers: "SM3 of the manifest, which lists \"<package id> <SM3(签名结果)>\"", Time: p.TimestampAt,
			Manifest: b.Manifest, Token: b.Token}}, nil
}
