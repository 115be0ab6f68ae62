package search

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A word every tenth case holds, with facets, over 30,000 cases: a broad search counts its
// 3,000 hits, orders a window of the newest cases and facets the newest 500 or so hits;
// /exact facets every hit, the cost per hit Bleve has when it visits them all.
func BenchmarkCommonWordFacets(b *testing.B) {
	ix, err := OpenBleve(b.TempDir() + "/s")
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	ctx := context.Background()
	var docs []Doc
	for i := 0; i < 30000; i++ {
		title := "个体工商户变更登记"
		if i%10 == 0 {
			title = "食品经营许可证核发"
		}
		docs = append(docs, Doc{ID: fmt.Sprintf("p%06d", i), Department: fmt.Sprintf("D%02d", i%20), Title: title, Year: 2010 + i%15,
			Retention: []string{"Y", "D30", "D10"}[i%3], State: "archived", Formats: []string{"fmt/101"}, IngestedAt: time.Unix(int64(i), 0)})
		if len(docs) == 1000 {
			if err := ix.Put(ctx, docs); err != nil {
				b.Fatal(err)
			}
			docs = docs[:0]
		}
	}
	for _, exact := range []bool{false, true} {
		b.Run(map[bool]string{false: "window", true: "exact"}[exact], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				res, err := ix.Search(ctx, Query{Words: "食品经营许可", Facets: true, ExactFacets: exact, Limit: 20})
				if err != nil || res.Total != 3000 {
					b.Fatal(err, res.Total)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/3000, "µs/hit")
		})
	}
}
