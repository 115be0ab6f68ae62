package eep

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

var copyBuf = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// An amended package (修改型) keeps the package it amends whole: the previous 被签名对象 and
// 电子签名块, byte for byte, under 原封装包, then the revision (修订内容) — the record as it
// is now, holding only the documents that changed — and is signed again over the new
// 被签名对象. The previous signatures still verify over their own 被签名对象, so each layer
// is checked on its own.
//
// C14N drops a namespace declaration that the parent already makes, so the nested
// 被签名对象 and 电子签名块 are written without the xmlns their start tags carried as the
// apex of a signed span; their signed bytes are the file's with it put back after the
// element name, which is also what C14N of the nested element alone gives. Both the outer
// and the nested spans therefore stay canonical, and a generic C14N tool agrees with both.

// Amendment is what goes into an amended package.
type Amendment struct {
	Created time.Time
	Creator string // 封装包创建单位
	// Layer is this amendment's number (修改标识符 修改<Layer>): 1 wraps an original package.
	Layer int
	// Signed is the previous package's 被签名对象, start tag to end tag, as its signatures
	// cover it; Block its 电子签名块 the same way.
	Signed io.Reader
	Block  io.Reader
	// Entity is the record as revised: its metadata, and the documents with new encodings
	// only, each numbered (Document.N) as in the package it wraps.
	Entity     Entity
	Businesses []Business // the amendment's own record: what was done, when, on whose order
	Agents     []Agent
}

// nsDecl is the declaration a nested apex carries in its signed bytes but not in the file.
const nsDecl = ` xmlns="` + Namespace + `"`

// ErrNotCanonical is returned when the previous package's spans do not begin with the
// canonical start tags dangan's profile writes.
var ErrNotCanonical = errors.New("the previous package's signed spans are not canonical")

// PreviousPlace says where the previous 被签名对象 lies in an amended package.
type PreviousPlace struct {
	Start int64 // offset of its start tag
}

// Move maps an offset inside the previous 被签名对象 (which began at prevStart in its own
// file) to the amended package: the bytes are the same, less the declaration dropped from
// the start tag.
func (p PreviousPlace) Move(off, prevStart int64) int64 {
	return p.Start + (off - prevStart) - int64(len(nsDecl))
}

// WriteAmended streams an amended package to w, calling the hooks to sign its new
// 被签名对象 and lock its new 电子签名块, as Write does.
func WriteAmended(w io.Writer, a *Amendment, hooks Hooks) (*Result, *PreviousPlace, error) {
	if hooks.Signed == nil || hooks.Sign == nil || hooks.Locked == nil || hooks.Lock == nil {
		return nil, nil, errors.New("eep: all signing hooks are required")
	}
	if a.Layer < 1 {
		return nil, nil, fmt.Errorf("eep: amendment layer %d: the first amendment is 1", a.Layer)
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(w)
	defer writers.Put(bw)
	x := &xw{bw: bw}
	res := &Result{}
	x.head(hooks, TypeAmended, TypeAmendedDesc, a.Created, a.Creator)
	x.write("<修改封装内容>\n")
	x.elem("修改标识符", "修改"+strconv.Itoa(a.Layer))
	x.write("<原封装包>\n")
	prev := &PreviousPlace{Start: x.n}
	if err := copyNested(x, a.Signed, "被签名对象"); err != nil {
		return nil, nil, fmt.Errorf("previous 被签名对象: %w", err)
	}
	x.write("\n")
	if err := copyNested(x, a.Block, "电子签名块"); err != nil {
		return nil, nil, fmt.Errorf("previous 电子签名块: %w", err)
	}
	x.write("\n")
	x.close("原封装包")
	x.write("<修订内容>\n")
	if err := writeEntity(x, a.Layer, &a.Entity, res); err != nil {
		return nil, nil, err
	}
	writeBusinesses(x, a.Businesses)
	writeAgents(x, a.Agents)
	x.close("修订内容")
	x.close("修改封装内容")
	x.write("</被签名对象>")
	x.capture = nil
	x.write("\n")
	if x.err != nil {
		return nil, nil, fmt.Errorf("write EEP: %w", x.err)
	}
	if err := finish(x, res, hooks); err != nil {
		return nil, nil, err
	}
	return res, prev, nil
}

// copyNested copies a span that was the apex of its own signature into the package,
// without the namespace declaration its start tag carried (the parent makes it).
func copyNested(x *xw, r io.Reader, name string) error {
	open := "<" + name + nsDecl
	head := make([]byte, len(open))
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return fmt.Errorf("read: %w", err)
	}
	if head = head[:n]; !bytes.Equal(head, []byte(open)) {
		return fmt.Errorf("%w: it begins %q, not %q", ErrNotCanonical, head, open)
	}
	x.write("<" + name)
	buf := copyBuf.Get().(*[]byte)
	defer copyBuf.Put(buf)
	if _, err := io.CopyBuffer(x, struct{ io.Reader }{r}, *buf); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return x.err
}
