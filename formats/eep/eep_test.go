package eep

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

type doc struct {
	name string
	data []byte
}

// testPackage builds a package; hooks here record bytes and return placeholder signature
// values (the cryptography is archive's and signing's to test).
func writeTest(t *testing.T, docs []doc, title string) (file []byte, signed []byte, res *Result) {
	t.Helper()
	var signedBuf, lockedBuf bytes.Buffer
	pkg := &Package{
		Created: time.Date(2025, 3, 6, 10, 0, 0, 0, CST()),
		Creator: "测试县档案馆",
		Entity: Entity{
			Creator: "清涧县市场监督管理局", RecordNo: "QJSCJ-2025-000123", Fonds: "F001", Year: 2025,
			Retention: "D30", ItemNo: 7, Title: title, Responsible: "清涧县市场监督管理局", Date: "2025-03-05",
			Classification: "非密", Location: "packages/F001/2025/x.eep",
			Grants: []Grant{{To: "政务共享", Action: "仅限 \"市场监管\" 部门\t查阅"}},
			Notes:  []string{"办件编号：QJSCJ-2025-000123", "a < b & c > d\r\n"},
		},
		Businesses: []Business{{ID: "B1", AgentID: "A1", RecordNo: "QJSCJ-2025-000123", State: "历史行为", Action: "受理", Time: time.Date(2025, 3, 1, 9, 10, 0, 0, CST())}},
		Agents:     []Agent{{ID: "A1", Kind: "单位", Name: "清涧县市场监督管理局"}},
	}
	for i, d := range docs {
		d := d
		sum := sm3.Sum(d.data)
		pkg.Entity.Documents = append(pkg.Entity.Documents, Document{Main: i == 0, Title: "文档" + d.name, Encodings: []Encoding{{
			FileName: d.name, Size: int64(len(d.data)), FormatInfo: "fmt/276", Description: "SM3:" + hex.EncodeToString(sum[:]), DecodeKey: filepath.Ext(d.name),
			Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(d.data)), nil },
		}}})
	}
	var out bytes.Buffer
	res, err := Write(&out, pkg, Hooks{
		Signed: &signedBuf,
		Sign: func() ([]Signature, error) {
			return []Signature{{ID: "S1", Rule: "test", Time: pkg.Created, Value: []byte{1, 2, 3}, Certs: [][]byte{{4, 5}}, Algorithm: "1.2.156.10197.1.501"}}, nil
		},
		Locked: &lockedBuf,
		Lock: func() (*Signature, error) {
			return &Signature{LockedID: "S1", Rule: "lock", Time: pkg.Created, Value: []byte{6}, Certs: [][]byte{{7}}, Algorithm: "1.2.156.10197.1.501"}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if int64(out.Len()) != res.Size {
		t.Fatalf("result size %d, wrote %d", res.Size, out.Len())
	}
	return out.Bytes(), signedBuf.Bytes(), res
}

func read(t *testing.T, file []byte) *Scan {
	t.Helper()
	s, err := Read(bytes.NewReader(file), int64(len(file)), ScanOptions{NewHash: sm3.New})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWriteReadRoundTrip(t *testing.T) {
	docs := []doc{{"申请书.pdf", bytes.Repeat([]byte("%PDF-1.7 申请"), 5000)}, {"a.xml", []byte("<a>1</a>")}, {"empty-ish.bin", []byte{0}}}
	file, signed, res := writeTest(t, docs, "食品经营许可证核发 & 变更")
	s := read(t, file)
	if s.Failed() {
		t.Fatalf("fresh package fails: %+v", s.Findings)
	}
	if got := s.Fields[entity+"内容描述/题名"]; got != "食品经营许可证核发 & 变更" {
		t.Fatalf("title %q", got)
	}
	if s.Fields[entity+"档号/保管期限"] != "D30" || len(s.Businesses) != 1 || len(s.Agents) != 1 || len(s.Signatures) != 1 || s.Lock == nil {
		t.Fatalf("metadata: %+v", s)
	}
	if len(s.Documents) != 3 {
		t.Fatalf("%d documents", len(s.Documents))
	}
	for i, d := range docs {
		e := s.Documents[i].Encodings[0]
		want := sm3.Sum(d.data)
		if e.SM3 != hex.EncodeToString(want[:]) || e.Size != int64(len(d.data)) {
			t.Fatalf("document %d: size %d sm3 %s", i+1, e.Size, e.SM3)
		}
		// The recorded offsets let one document be served with a ranged read.
		p := res.Encodings[i]
		if p.DataOffset != e.DataOffset || p.DataLength != e.DataLength {
			t.Fatalf("writer and reader disagree on where document %d lies", i+1)
		}
		dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(file[p.DataOffset:p.DataOffset+p.DataLength]), "\n", ""))
		if err != nil || !bytes.Equal(dec, d.data) {
			t.Fatalf("document %d: ranged bytes do not decode to it: %v", i+1, err)
		}
	}
	// The signed bytes are exactly the file's bytes from <被签名对象 to </被签名对象>…
	if !bytes.Equal(file[s.SignedSpan[0]:s.SignedSpan[1]], signed) {
		t.Fatal("hook bytes differ from the file's span")
	}
	if sum := sm3.Sum(signed); !bytes.Equal(sum[:], s.SignedSM3) {
		t.Fatal("reader's signed digest differs")
	}
	// …and a generic C14N 1.0 canonicaliser produces the same bytes from the parsed file.
	canon, err := CanonicalElement(bytes.NewReader(file), "被签名对象")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(canon, signed) {
		i := 0
		for i < len(canon) && i < len(signed) && canon[i] == signed[i] {
			i++
		}
		t.Fatalf("C14N differs at byte %d:\nfile %q\nc14n %q", i, signed[max(0, i-40):min(len(signed), i+40)], canon[max(0, i-40):min(len(canon), i+40)])
	}
	lock, err := CanonicalElement(bytes.NewReader(file), "电子签名块")
	if err != nil || !bytes.Equal(lock, file[s.LockedSpan[0]:s.LockedSpan[1]]) {
		t.Fatalf("电子签名块 bytes are not canonical: %v", err)
	}
}

func TestTamperingIsDetected(t *testing.T) {
	docs := []doc{{"a.pdf", bytes.Repeat([]byte("0123456789"), 3000)}}
	file, _, res := writeTest(t, docs, "原题名")
	orig := read(t, file)

	// One byte of a document's base64: the signed digest changes and the recorded SM3 no
	// longer matches the content.
	b := append([]byte{}, file...)
	at := res.Encodings[0].DataOffset + 100
	b[at] = map[bool]byte{true: 'B', false: 'A'}[b[at] == 'A']
	s := read(t, b)
	if bytes.Equal(s.SignedSM3, orig.SignedSM3) {
		t.Fatal("signed digest unchanged after a base64 byte flip")
	}
	if f := find(s, CodeContentAttrs); f == nil || f.Status != Fail {
		t.Fatalf("GD-1-10 did not fail: %+v", s.Findings)
	}

	// One byte of signed metadata.
	b = []byte(strings.Replace(string(file), "原题名", "改题名", 1))
	s = read(t, b)
	if bytes.Equal(s.SignedSM3, orig.SignedSM3) || s.Failed() {
		t.Fatalf("metadata change: digest equal=%v failed=%v (metadata stays well-formed; the signature check catches it)", bytes.Equal(s.SignedSM3, orig.SignedSM3), s.Failed())
	}

	// Broken XML.
	b = []byte(strings.Replace(string(file), "</文件实体>", "</文件实休>", 1))
	if f := find(read(t, b), CodeXMLReadable); f == nil || f.Status != Fail {
		t.Fatal("malformed XML not reported under GD-3-1")
	}
}

func TestMissingMandatoryMetadata(t *testing.T) {
	file, _, _ := writeTest(t, []doc{{"a.pdf", []byte("x")}}, "")
	f := find(read(t, file), CodeMandatory)
	if f == nil || f.Status != Fail || !strings.Contains(f.Found, "题名") {
		t.Fatalf("missing 题名 not reported: %+v", f)
	}
}

func find(s *Scan, code string) *Finding {
	var found *Finding
	for i := range s.Findings {
		if s.Findings[i].Code == code && (found == nil || s.Findings[i].Status == Fail) {
			found = &s.Findings[i]
		}
	}
	return found
}

// TestLargeDocumentStreamsInBoundedMemory writes and reads a package with a 96 MiB
// document and checks that allocations stay far below its size.
func TestLargeDocumentStreamsInBoundedMemory(t *testing.T) {
	const size = 96 << 20
	dir := t.TempDir()
	src := filepath.Join(dir, "big.pdf")
	f, _ := os.Create(src)
	chunk := bytes.Repeat([]byte("large scan data "), 4096)
	for n := 0; n < size; n += len(chunk) {
		f.Write(chunk)
	}
	f.Close()
	pkg := &Package{Created: time.Now(), Creator: "x", Entity: Entity{Creator: "x", RecordNo: "r", Fonds: "F", Year: 2025, Retention: "Y", ItemNo: 1,
		Title: "t", Responsible: "r", Date: "2025-01-01", Classification: "非密", Location: "l",
		Documents: []Document{{Main: true, Encodings: []Encoding{{FileName: "big.pdf", Size: size, Description: "d", DecodeKey: ".pdf",
			Open: func() (io.ReadCloser, error) { return os.Open(src) }}}}}},
		Businesses: []Business{{ID: "B", AgentID: "A", RecordNo: "r", State: "历史行为", Action: "归档", Time: time.Now()}},
		Agents:     []Agent{{ID: "A", Name: "x"}}}
	out, _ := os.Create(filepath.Join(dir, "big.eep"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := sm3.New()
	_, err := Write(out, pkg, Hooks{Signed: h, Sign: func() ([]Signature, error) { return []Signature{{ID: "S", Value: []byte{1}}}, nil },
		Locked: io.Discard, Lock: func() (*Signature, error) { return &Signature{LockedID: "S", Value: []byte{1}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := out.Stat()
	s, err := Read(out, st.Size(), ScanOptions{NewHash: sm3.New})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	out.Close()
	if s.Failed() || s.Documents[0].Encodings[0].Size != size {
		t.Fatalf("large package does not read back: %+v", s.Findings)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("write+read of a %d MiB document allocated %.1f MiB in total", size>>20, float64(alloc)/(1<<20))
	if alloc > 24<<20 {
		t.Fatalf("allocated %d MiB for a %d MiB document: not streaming", alloc>>20, size>>20)
	}
}
