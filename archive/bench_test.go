package archive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchPDF writes a valid PDF of about size bytes.
func benchPDF(b *testing.B, path string, size int) {
	b.Helper()
	var buf bytes.Buffer
	buf.WriteString("%PDF-1.7\n")
	offs := []int{}
	obj := func(s string) { offs = append(offs, buf.Len()); buf.WriteString(s) }
	obj("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	obj("2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n")
	obj("3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>\nendobj\n")
	pad := strings.Repeat("% padding line of a content stream.............................\n", size/64)
	obj(fmt.Sprintf("4 0 obj\n<< /Length %d >>\nstream\n%s\nendstream\nendobj\n", len(pad), pad))
	x := buf.Len()
	fmt.Fprintf(&buf, "xref\n0 5\n0000000000 65535 f \n")
	for _, o := range offs {
		fmt.Fprintf(&buf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&buf, "trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", x)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
}

func benchArchive(b *testing.B) (*Archive, Principal) {
	b.Helper()
	var out io.Writer = io.Discard
	if os.Getenv("DANGAN_BENCH_LOG") != "" {
		out = os.Stderr
	}
	a, err := Open(Config{DataDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	return a, Principal{Role: RoleDepartment, Org: "91610830MA6Y00001G"}
}

func benchCaseFor(no string) *Case {
	at, _ := time.Parse(time.RFC3339, "2025-03-01T09:00:00+08:00")
	return &Case{CaseNo: no, Item: Item{Code: "X1", Name: "食品经营许可证核发"}, Department: Department{Name: "清涧县市场监督管理局", USCC: "91610830MA6Y00001G"},
		Applicant: Applicant{Name: "张三"}, AcceptedAt: at, FinishedAt: at.Add(time.Hour), Result: Result{Status: "办结"}, Retention: "D30",
		Sharing: Sharing{Scope: "政务共享"}, Documents: []CaseDoc{{File: "doc", Title: "材料", Main: true}}}
}

func benchIngest(b *testing.B, size int) {
	a, who := benchArchive(b)
	src := filepath.Join(b.TempDir(), "doc.pdf")
	benchPDF(b, src, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, _ := os.Open(src)
		sent := false
		next := func() (*Upload, error) {
			if sent {
				return nil, io.EOF
			}
			sent = true
			return &Upload{Part: "doc", FileName: "doc.pdf", Body: f}, nil
		}
		if _, err := a.Ingest(context.Background(), who, benchCaseFor(fmt.Sprintf("B-%d", i)), next); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkIngestSmall is one case with a 20 KB PDF: the per-case overhead.
func BenchmarkIngestSmall(b *testing.B) { benchIngest(b, 20<<10) }

// BenchmarkIngestLarge is one case with a 64 MiB PDF: the streaming throughput.
func BenchmarkIngestLarge(b *testing.B) { benchIngest(b, 64<<20) }

// BenchmarkIngestSmallParallel is many small cases from concurrent clients.
func BenchmarkIngestSmallParallel(b *testing.B) {
	a, who := benchArchive(b)
	src := filepath.Join(b.TempDir(), "doc.pdf")
	benchPDF(b, src, 20<<10)
	data, _ := os.ReadFile(src)
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sent := false
			next := func() (*Upload, error) {
				if sent {
					return nil, io.EOF
				}
				sent = true
				return &Upload{Part: "doc", FileName: "doc.pdf", Body: bytes.NewReader(data)}, nil
			}
			if _, err := a.Ingest(context.Background(), who, benchCaseFor(fmt.Sprintf("P-%d", seq.Add(1))), next); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
