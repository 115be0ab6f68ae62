package index

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchPackage is a package as an ingest of a small case records it: one document in two
// encodings, 20 departments, 15 years, three retentions, 15 items.
func benchPackage(i int, at time.Time) *Package {
	dept := fmt.Sprintf("11610000MB%08d", i%20)
	year := 2011 + i%15
	ret := []string{"Y", "D30", "D10"}[i%3]
	series := fmt.Sprintf("%s/%d/%s", dept, year, ret)
	return &Package{ID: fmt.Sprintf("%013x%012x", at.UnixMilli(), i), Key: fmt.Sprintf("%d/%013x.eep", year, i),
		Fonds: "F" + dept[len(dept)-2:], Department: dept, DepartmentName: "某县市场监督管理局",
		CaseNo: fmt.Sprintf("BENCH-%08d", i), ArchivalCode: fmt.Sprintf("%s-%d-%s-%06d", dept, year, ret, i),
		Series: series, ItemNo: i/900 + 1, Year: year, Retention: ret, ItemCode: fmt.Sprintf("ITEM%04d", i%15),
		ItemName: "食品经营许可", Title: "关于食品经营许可申请的办理", FinishedAt: at.Add(-time.Hour), IngestedAt: at,
		Size: 24000, PackageSM3: fmt.Sprintf("%064x", i), ContentDigest: fmt.Sprintf("%064x", i+1),
		SignatureB64: fmt.Sprintf("%0144x", i), Signer: "某县档案馆", LogIndex: uint64(i), State: "archived",
		RetainUntil: time.Date(year+30, 12, 31, 0, 0, 0, 0, time.UTC),
		Documents: []Document{{N: 1, Title: "申请表", Main: true, Part: "正文", Encoded: []Encoding{
			{ID: "f1", FileName: "form.xml", Format: "fmt/101", MIME: "application/xml", Size: 2400, SM3: fmt.Sprintf("%064x", i+2), DataOffset: 4000, DataLength: 3300},
			{ID: "f2", FileName: "form.json", Format: "fmt/817", MIME: "application/json", Size: 2100, SM3: fmt.Sprintf("%064x", i+3), Original: true, DataOffset: 8000, DataLength: 2900},
		}}},
		CaseText: &CaseText{Decision: "准予许可", Opinions: []string{"材料齐全，同意受理", "经审查符合条件"}, Steps: []string{"受理 张三", "审核 李四"},
			Applicant: "王五", ApplicantID: "610102199001011234"},
	}
}

// BenchmarkCommitGroups is the index stage of ingest: a group of 8 packages committed in one
// transaction, into an index that already holds 0, 10,000 or 100,000 packages. The ratio of
// the larger sizes' time to the empty index's is what ingest near a million loses to the
// index (bench scale measures the whole path). DANGAN_BENCH_HOLDING=1000000 adds a size.
func BenchmarkCommitGroups(b *testing.B) {
	sizes := []int{0, 10_000, 100_000}
	if n, err := strconv.Atoi(os.Getenv("DANGAN_BENCH_HOLDING")); err == nil {
		sizes = append(sizes, n) // a million takes a few minutes to fill
	}
	for _, size := range sizes {
		b.Run(fmt.Sprintf("holding=%d", size), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "index.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			next := 0
			commit := func(n int) {
				ps := make([]*Package, n)
				for j := range ps {
					ps[j] = benchPackage(next, start.Add(time.Duration(next)*time.Millisecond))
					next++
				}
				if _, err := db.CommitPackages(ps); err != nil {
					b.Fatal(err)
				}
			}
			for next < size {
				commit(min(1000, size-next))
			}
			b.ResetTimer()
			for range b.N {
				commit(8)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*8), "µs/package")
		})
	}
}
