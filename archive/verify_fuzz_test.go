package archive

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The public verifiers take any bytes. For every input (the signed corpus as seeds, and
// what `go test -fuzz` makes of them): no panic, an answer within 3 s, and at most 256 MiB
// allocated while answering.

const (
	fuzzMaxTime  = 3 * time.Second
	fuzzMaxAlloc = 256 << 20
)

func fuzzSeeds(f *testing.F, ext string) {
	files, _ := filepath.Glob("../../shared/corpus/signed/*" + ext)
	more, _ := filepath.Glob("../../shared/corpus/ofd/*" + ext)
	files = append(files, more...)
	if len(files) < 10 {
		f.Fatalf("the signed corpus must be beside the checkout: %d %s files", len(files), ext)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func bounded(t *testing.T, verify func()) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	verify()
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if took > fuzzMaxTime {
		t.Fatalf("took %v", took)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > fuzzMaxAlloc {
		t.Fatalf("allocated %d MiB", alloc>>20)
	}
}

func FuzzVerifyPDF(f *testing.F) {
	fuzzSeeds(f, ".pdf")
	// A cross-reference chain that loops (/Prev to itself) and a truncated file.
	f.Add([]byte("%PDF-1.7\n1 0 obj\n<< /Type /Sig /ByteRange [0 10 20 5] /Contents <00> >>\nendobj\nxref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1 /Prev 72 >>\nstartxref\n72\n%%EOF\n"))
	f.Add([]byte("%PDF-1.7\n/ByteRange [0 99999999999 3 4] /Contents <"))
	a := fuzzArchive(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 20<<20 {
			return
		}
		bounded(t, func() { a.VerifyCertificatePDF(doc) })
	})
}

func FuzzVerifyOFD(f *testing.F) {
	fuzzSeeds(f, ".ofd")
	a := fuzzArchive(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 20<<20 {
			return
		}
		bounded(t, func() { a.VerifyCertificateOFD(doc) })
	})
}

func fuzzArchive(f *testing.F) *Archive {
	a, err := Open(Config{DataDir: f.TempDir(), Logger: quiet(), NoBackgroundAudit: true, NoConverters: true, CheckpointInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })
	return a
}

// A cross-reference chain that points at itself is an answer, not a hang.
func TestLoopingCrossReferenceIsAnAnswer(t *testing.T) {
	a := certArchive(t)
	doc := []byte("%PDF-1.7\n1 0 obj\n<< /Type /XRef /Size 2 /W [1 2 1] /Prev 9 /Length 4 >>\nstream\n\x01\x00\x09\x00\nendstream\nendobj\n" +
		"2 0 obj\n<< /Type /Sig /ByteRange [0 100 150 20] /Contents <3000> >>\nendobj\nstartxref\n9\n%%EOF\n")
	done := make(chan *CertReport, 1)
	go func() { done <- a.VerifyCertificatePDF(doc) }()
	select {
	case rep := <-done:
		if rep.Valid || !strings.Contains(strings.Join(rep.Failed(), ","), CheckDocument) {
			t.Fatalf("%+v", rep.Checks)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("verification of a looping cross-reference did not end")
	}
}
