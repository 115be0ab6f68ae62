package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

func TestCheckUSCC(t *testing.T) {
	for _, tc := range []struct {
		code string
		ok   bool
	}{
		{"91350100M000100Y43", true}, // published example of a valid code
		{"11610830MB1234567W", true},
		{"91610830MA6Y00001G", true},
		{"91610830MA6Y00001H", false}, // wrong check character
		{"91610830MA6Y0001G", false},  // 17 characters
		{"9161O830MA6Y00001G", false}, // letter O is not in the alphabet
		{"", false},
	} {
		if err := CheckUSCC(tc.code); (err == nil) != tc.ok {
			t.Errorf("CheckUSCC(%q) = %v, want ok=%v", tc.code, err, tc.ok)
		}
	}
}

func TestCheckResidentID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"11010519491231002X", true}, // the GB 11643 example
		{"11010519491231002x", true},
		{"110105194912310021", false}, // wrong check digit
		{"110105194913310028", false}, // month 13
		{"11010519491231002", false},
		{"1101051949123100AX", false},
	} {
		if err := CheckResidentID(tc.id); (err == nil) != tc.ok {
			t.Errorf("CheckResidentID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func validCase() *Case {
	c := benchCaseFor("QJSCJ-2025-000123")
	c.Applicant = Applicant{Name: "张三", Kind: "个人", IDType: "111", IDNumber: "11010519491231002X"}
	c.Steps = []Step{{Name: "受理", Actor: "李四", ActorID: "0123", At: c.AcceptedAt, Opinion: "材料齐全"}}
	return c
}

func TestValidateNamesEachBadField(t *testing.T) {
	now := validCase().FinishedAt.AddDate(0, 10, 0) // the case finished ten months before
	if err := validCase().Validate(now); err != nil {
		t.Fatalf("valid case refused: %v", err)
	}
	for _, tc := range []struct {
		field string
		mut   func(c *Case)
	}{
		{"case_no", func(c *Case) { c.CaseNo = "../x" }},
		{"retention", func(c *Case) { c.Retention = "D20" }},
		{"department.uscc", func(c *Case) { c.Department.USCC = "91610830MA6Y00001H" }},
		{"applicant.id_number", func(c *Case) { c.Applicant.IDNumber = "110105194912310021" }},
		{"finished_at", func(c *Case) { c.FinishedAt = c.AcceptedAt.Add(-time.Hour) }},
		{"finished_at", func(c *Case) { c.FinishedAt = now.Add(time.Hour) }},
		{"item.name", func(c *Case) { c.Item.Name = "bad\x01name" }},
		{"documents", func(c *Case) { c.Documents = nil }},
		{"documents[1].file", func(c *Case) { c.Documents = append(c.Documents, c.Documents[0]) }},
		{"steps[0].at", func(c *Case) { c.Steps[0].At = time.Time{} }},
		{"case_type", func(c *Case) { c.CaseType = "普通件" }},
	} {
		c := validCase()
		tc.mut(c)
		err := c.Validate(now)
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidCase) {
			t.Errorf("%s: %v", tc.field, err)
			continue
		}
		found := false
		for _, f := range ve.Fields {
			found = found || f.Field == tc.field
		}
		if !found {
			t.Errorf("%s not named: %v", tc.field, ve)
		}
	}
}

func TestCheckFileName(t *testing.T) {
	for name, ok := range map[string]bool{"申请书.pdf": true, "a b.pdf": true, "../x.pdf": false, "/etc/passwd": false,
		`C:\x.pdf`: false, "": false, "..": false, "a\nb.pdf": false} {
		if err := CheckFileName(name); (err == nil) != ok {
			t.Errorf("CheckFileName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestSpoolStaysInBudgetAndSpills(t *testing.T) {
	p := newSpoolPool(t.TempDir(), 1024, 4096)
	defer p.close()
	var bufs []*spoolBuf
	data := bytes.Repeat([]byte("档案"), 300) // 1800 bytes: over the per-buffer limit
	small := []byte(strings.Repeat("x", 1000))
	for i := 0; i < 6; i++ {
		b := p.New()
		bufs = append(bufs, b)
		src := small
		if i == 0 {
			src = data
		}
		if _, err := b.Write(src); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, b.Size())
		if _, err := b.ReadAt(got, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got, src) {
			t.Fatalf("buffer %d reads back wrong", i)
		}
	}
	if bufs[0].f == nil {
		t.Fatal("a buffer over the per-buffer limit stayed in memory")
	}
	inFiles := 0
	for _, b := range bufs[1:] {
		if b.f != nil {
			inFiles++
		}
	}
	if inFiles != 1 { // 4 × 1000 bytes fit the 4096-byte budget, the fifth spills
		t.Fatalf("%d small buffers spilled, want 1", inFiles)
	}
	for _, b := range bufs {
		b.Release()
	}
	if p.budget.Load() != 4096 {
		t.Fatalf("budget after release %d, want 4096", p.budget.Load())
	}
	if len(p.idle) != 2 {
		t.Fatalf("%d scratch files kept for reuse, want 2", len(p.idle))
	}
}

func TestHashTeeMatchesDirectHashing(t *testing.T) {
	for _, size := range []int{0, 10, teeChunkSize - 1, teeChunkSize, 3*teeChunkSize + 17} {
		data := bytes.Repeat([]byte{0x5a, 0x01, 0xff}, size/3+1)[:size]
		tee := newHashTee(sm3.New(), sm3.New())
		for off := 0; off < size; off += 7777 {
			tee.Write(data[off:min(off+7777, size)])
		}
		sums := tee.Sums()
		want := sm3.Sum(data)
		for i, s := range sums {
			if !bytes.Equal(s, want[:]) {
				t.Fatalf("size %d hash %d differs", size, i)
			}
		}
		if again := tee.Sums(); fmt.Sprint(again) != fmt.Sprint(sums) {
			t.Fatal("second Sums differs")
		}
	}
}

func TestCopyFullTellsTruncationFromEnd(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 1000)
	var out bytes.Buffer
	// iotest-style: a source that yields 7 bytes per Read, then EOF.
	n, err := copyFull(&out, &chunky{r: bytes.NewReader(data), n: 7}, make([]byte, 4096))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("clean end: n=%d err=%v", n, err)
	}
	// A part cut short returns io.ErrUnexpectedEOF: that must be an error, not the end.
	truncated := io.MultiReader(bytes.NewReader(data[:100]), errReader{io.ErrUnexpectedEOF})
	if _, err := copyFull(io.Discard, truncated, make([]byte, 4096)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated source: %v", err)
	}
}

type chunky struct {
	r io.Reader
	n int
}

func (c *chunky) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestRetentionEnd(t *testing.T) {
	a := &Archive{cfg: Config{TransferYears: 3, KeepYears: 2}}
	for code, want := range map[string]string{"D30": "2056-01-01", "D10": "2036-01-01", "Y": "2031-01-01"} {
		if got := a.RetentionEnd(code, 2025).Format(time.DateOnly); got != want {
			t.Errorf("%s for a case finished in 2025: %s, want %s", code, got, want)
		}
	}
}
