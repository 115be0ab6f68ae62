package eep

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// amend wraps a package written by writeTest in an amendment that revises document 2.
func amend(t *testing.T, file []byte, s *Scan, newDoc []byte) ([]byte, []byte, *Result, *PreviousPlace) {
	t.Helper()
	sum := sm3.Sum(newDoc)
	a := &Amendment{
		Created: time.Date(2031, 5, 1, 9, 0, 0, 0, CST()), Creator: "测试县档案馆", Layer: 1,
		Signed: bytes.NewReader(file[s.SignedSpan[0]:s.SignedSpan[1]]),
		Block:  bytes.NewReader(file[s.LockedSpan[0]:s.LockedSpan[1]]),
		Entity: Entity{
			Creator: "清涧县市场监督管理局", RecordNo: "QJSCJ-2025-000123", Fonds: "F001", Year: 2025,
			Retention: "D30", ItemNo: 7, Title: "迁移后", Responsible: "清涧县市场监督管理局", Date: "2025-03-05",
			Classification: "非密", Location: "packages/F001/2025/x.m1.eep",
			Documents: []Document{{N: 2, Title: "文档a.xml", Encodings: []Encoding{{FileName: "a.c14n.xml", Size: int64(len(newDoc)),
				Description: "SM3:" + hex.EncodeToString(sum[:]), DecodeKey: "xml",
				Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(newDoc)), nil }}}}},
		},
		Businesses: []Business{{ID: "修改1-业务-1", AgentID: "A9", RecordNo: "QJSCJ-2025-000123", State: "历史行为", Action: "迁移", Time: time.Date(2031, 5, 1, 9, 0, 0, 0, CST())}},
		Agents:     []Agent{{ID: "A9", Kind: "单位", Name: "测试县档案馆"}},
	}
	var signed, locked, out bytes.Buffer
	res, prev, err := WriteAmended(&out, a, Hooks{
		Signed: &signed,
		Sign: func() ([]Signature, error) {
			return []Signature{{ID: "M1", Rule: "test", Time: a.Created, Value: []byte{9}, Certs: [][]byte{{8}}, Algorithm: "1.2.156.10197.1.501"}}, nil
		},
		Locked: &locked,
		Lock: func() (*Signature, error) {
			return &Signature{LockedID: "M1", Rule: "lock", Time: a.Created, Value: []byte{7}, Certs: [][]byte{{6}}, Algorithm: "1.2.156.10197.1.501"}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes(), signed.Bytes(), res, prev
}

// An amended package holds the package it amends byte for byte: the previous layer's
// signed bytes (as its own signatures cover them) read back from inside it, its documents
// are where the writer says, and both the outer and the nested 被签名对象 are what a
// generic C14N canonicaliser (goxmldsig's) makes of them.
func TestAmendedPackageKeepsThePreviousLayer(t *testing.T) {
	docs := []doc{{"申请书.pdf", bytes.Repeat([]byte("%PDF-1.7 申请"), 5000)}, {"a.json", []byte(`{"a":1}`)}}
	file, origSigned, _ := writeTest(t, docs, "食品经营许可证核发")
	orig := read(t, file)
	newDoc := []byte("<a>1</a>")
	amended, signed, res, prev := amend(t, file, orig, newDoc)

	s := read(t, amended)
	if s.Failed() {
		t.Fatalf("amended package fails: %+v", s.Findings)
	}
	if s.Type != TypeAmended || len(s.Layers) != 1 || s.Layers[0].Type != TypeOriginal || s.Layers[0].Err() != nil {
		t.Fatalf("layers: %q %+v", s.Type, s.Layers)
	}
	want := sm3.Sum(origSigned)
	if !bytes.Equal(s.Layers[0].SignedSM3, want[:]) || !bytes.Equal(orig.SignedSM3, want[:]) {
		t.Fatal("the previous layer's signed bytes changed inside the amendment")
	}
	if ls := s.Layers[0].Signatures; len(ls) != 1 || ls[0].ID != "S1" || !bytes.Equal(ls[0].Value, []byte{1, 2, 3}) {
		t.Fatalf("previous signatures: %+v", ls)
	}
	if len(s.Signatures) != 1 || s.Signatures[0].ID != "M1" || s.Lock == nil || s.Lock.LockedID != "M1" {
		t.Fatalf("the amendment's own signatures: %+v %+v", s.Signatures, s.Lock)
	}
	if !bytes.Equal(amended[s.SignedSpan[0]:s.SignedSpan[1]], signed) {
		t.Fatal("the outer span is not the bytes the hook signed")
	}
	if got := s.Fields[s.EntityPath()+"内容描述/题名"]; got != "迁移后" {
		t.Fatalf("the record as it stands has title %q", got)
	}
	// The documents: the original's two at depth 1, where they moved; the revision's one.
	if len(s.Documents) != 3 || s.Documents[0].Depth != 1 || s.Documents[1].Depth != 1 || s.Documents[2].Depth != 0 {
		t.Fatalf("documents: %+v", s.Documents)
	}
	for i := range 2 {
		e, o := s.Documents[i].Encodings[0], orig.Documents[i].Encodings[0]
		if e.SM3 != o.SM3 || e.DataOffset != prev.Move(o.DataOffset, orig.SignedSpan[0]) || e.DataLength != o.DataLength {
			t.Fatalf("document %d moved to %d, Move says %d", i+1, e.DataOffset, prev.Move(o.DataOffset, orig.SignedSpan[0]))
		}
	}
	n := res.Encodings[0]
	dec, _ := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(amended[n.DataOffset:n.DataOffset+n.DataLength]), "\n", ""))
	if !bytes.Equal(dec, newDoc) || s.Documents[2].ID != "修改1-文档2" || s.Documents[2].Seq != "2" {
		t.Fatalf("the revision's document: %q %+v", dec, s.Documents[2])
	}
	v := s.Versions()
	if len(v) != 2 || len(v[0]) != 1 || len(v[1]) != 2 || v[1][0].Depth != 0 || v[1][1].Depth != 1 {
		t.Fatalf("versions: %+v", v)
	}

	outer, err := CanonicalElement(bytes.NewReader(amended), "被签名对象")
	if err != nil || !bytes.Equal(outer, signed) {
		t.Fatalf("the outer 被签名对象 is not canonical: %v", err)
	}
	inner, err := CanonicalElement(bytes.NewReader(amended), "原封装包/被签名对象")
	if err != nil || !bytes.Equal(inner, origSigned) {
		t.Fatalf("C14N of the nested 被签名对象 is not the bytes its signature covers: %v", err)
	}
	block, err := CanonicalElement(bytes.NewReader(amended), "原封装包/电子签名块")
	if err != nil || !bytes.Equal(block, file[orig.LockedSpan[0]:orig.LockedSpan[1]]) {
		t.Fatalf("C14N of the nested 电子签名块 is not the previous one: %v", err)
	}
}

// A byte changed inside the previous layer breaks that layer's digest (and its document's
// recorded SM3), not only the outer one; a previous span that is not canonical is refused.
func TestAmendedPackageTamperedInside(t *testing.T) {
	file, origSigned, _ := writeTest(t, []doc{{"a.json", bytes.Repeat([]byte(`{"a":1}`), 100)}}, "t")
	orig := read(t, file)
	amended, _, _, _ := amend(t, file, orig, []byte("<a>1</a>"))
	s := read(t, amended)
	at := s.Documents[0].Encodings[0].DataOffset + 10
	bad := bytes.Clone(amended)
	bad[at] ^= 0x01
	if bad[at] == '\n' {
		bad[at] = 'A'
	}
	ts := read(t, bad)
	want := sm3.Sum(origSigned)
	if bytes.Equal(ts.Layers[0].SignedSM3, want[:]) || !ts.Failed() {
		t.Fatal("a change inside the previous layer went unnoticed")
	}
	_, _, err := WriteAmended(io.Discard, &Amendment{Layer: 1, Signed: strings.NewReader("<被签名对象 eep版本=\"2009\"></被签名对象>"), Block: strings.NewReader("")},
		Hooks{Signed: io.Discard, Sign: func() ([]Signature, error) { return nil, nil }, Locked: io.Discard, Lock: func() (*Signature, error) { return &Signature{}, nil }})
	if err == nil || !strings.Contains(err.Error(), ErrNotCanonical.Error()) {
		t.Fatalf("a non-canonical previous span: %v", err)
	}
}
