package archive

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/dangan-archive/dangan/storage/index"
)

// recountStatistics counts the whole archive and each department from the package records
// one by one, by the rule StatisticsReport states, to compare with the kept counters.
func recountStatistics(t *testing.T, a *Archive) map[string]*StatisticsReport {
	t.Helper()
	out := map[string]*StatisticsReport{}
	report := func(dept string) *StatisticsReport {
		if out[dept] == nil {
			out[dept] = &StatisticsReport{Department: dept, By: map[string]map[string]index.Counter{}}
			for _, dim := range []string{"year", "retention", "state", "format", "department"} {
				if dim != "department" || dept == "" {
					out[dept].By[dim] = map[string]index.Counter{}
				}
			}
		}
		return out[dept]
	}
	add := func(r *StatisticsReport, dim, v string, n int64) {
		c := r.By[dim][v]
		c.Count++
		c.Bytes += n
		r.By[dim][v] = c
	}
	err := a.Index().ForEachPackage(func(c *index.Package) error {
		p, err := a.Index().Package(c.ID)
		if err != nil {
			return err
		}
		size := p.Size // every form stored: the current one and those a migration kept
		for _, f := range p.Prior {
			size += f.Size
		}
		for _, r := range []*StatisticsReport{report(""), report(p.Department)} {
			if p.Tombstone != nil {
				add(r, "state", "destroyed", 0)
				continue
			}
			r.Total.Count++
			r.Total.Bytes += size
			if r.Department == "" {
				add(r, "department", p.Department, size)
			}
			add(r, "year", fmt.Sprintf("%04d", p.Year), size)
			add(r, "retention", p.Retention, size)
			add(r, "state", p.State, size)
			for _, d := range p.Documents {
				for _, e := range d.Encoded {
					add(r, "format", e.Format, e.Size)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkStatistics compares every scope's statistics with a recount.
func checkStatistics(t *testing.T, a *Archive, when string) {
	t.Helper()
	want := recountStatistics(t, a)
	if len(want) < 2 {
		t.Fatalf("%s: nothing to count", when)
	}
	for dept, w := range want {
		got, err := a.Statistics(context.Background(), Principal{Role: RoleAuditor}, dept)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s, statistics of %q:\n got %+v\nwant %+v", when, dept, got, w)
		}
	}
}

func TestStatisticsScope(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ingestMany(t, a, 5)
	checkStatistics(t, a, "after ingest")
	own, err := a.Statistics(context.Background(), dept, "")
	if err != nil || own.Department != dept.Org || own.Total.Count != 5 || own.By["department"] != nil {
		t.Fatalf("a department's own statistics: %v %+v", err, own)
	}
	if _, err := a.Statistics(context.Background(), dept, "11610830MB1234567W"); err == nil {
		t.Fatal("a department read another's statistics")
	}
}
