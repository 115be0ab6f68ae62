package archive

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage/index"
)

// maxMetadata bounds the metadata of one package read for Metadata: the EEP without its
// documents' data is a few kilobytes, and a package whose is larger is not shown.
const maxMetadata = 8 << 20

// Metadata is the package's metadata as its EEP holds it: every element under 被签名对象
// with its text, the agents (机构人员), the businesses (业务) and the notes. Only the EEP's
// bytes outside its documents' data are read from storage (the index knows where the data
// lie), so the cost does not grow with the documents. It is content: read like the EEP,
// with a purpose where the package needs one, and logged. The package's record comes with it.
func (a *Archive) Metadata(ctx context.Context, who Principal, id string) (*index.Package, *eep.Scan, error) {
	p, err := a.lookup(who, id, useContent)
	if err != nil {
		return nil, nil, err
	}
	var data [][2]int64
	for _, d := range p.Documents {
		for _, e := range d.Encoded {
			data = append(data, [2]int64{e.DataOffset, e.DataOffset + e.DataLength})
		}
	}
	slices.SortFunc(data, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	var skeleton bytes.Buffer
	at := int64(0)
	read := func(from, to int64) error {
		if to <= from {
			return nil
		}
		if int64(skeleton.Len())+to-from > maxMetadata {
			return fmt.Errorf("package %s: %w: its metadata is larger than %d bytes", id, ErrInvalidCase, maxMetadata)
		}
		rc, err := a.getPinnedRange(ctx, p.Key, p.Version, from, to-from)
		if err != nil {
			return fmt.Errorf("package %s object %s: %w", id, p.Key, err)
		}
		defer rc.Close()
		_, err = io.Copy(&skeleton, rc)
		return err
	}
	for _, r := range data {
		if err := read(at, r[0]); err != nil {
			return nil, nil, err
		}
		at = max(at, r[1])
	}
	if err := read(at, p.Size); err != nil {
		return nil, nil, err
	}
	scan, err := eep.Read(bytes.NewReader(skeleton.Bytes()), int64(skeleton.Len()), eep.ScanOptions{NewHash: sm3.New})
	if err != nil {
		return nil, nil, fmt.Errorf("package %s metadata: %w", id, err)
	}
	// What the scan computed of the data it was not given means nothing: each encoding
	// carries the size and SM3 recorded when the package was made instead.
	for i := range scan.Documents {
		for j := range scan.Documents[i].Encodings {
			e := &scan.Documents[i].Encodings[j]
			e.Size, e.SM3 = e.DeclaredSize, ""
			if i < len(p.Documents) && j < len(p.Documents[i].Encoded) {
				e.Size, e.SM3 = p.Documents[i].Encoded[j].Size, p.Documents[i].Encoded[j].SM3
			}
		}
	}
	if err := a.logRead(who, p, "metadata"); err != nil {
		return nil, nil, err
	}
	return p, scan, nil
}
