package archive

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/internal/testenv"
)

// Reports on a schedule: the first report of a department covers one period back; it is
// not made again until a period after its end, and the next one starts where it ended, so
// the reports cover the time without gaps or overlaps. Each is signed and logged as one
// made by hand.
func TestInspectionOnASchedule(t *testing.T) {
	clk := &clock{t: testenv.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := t.Context()
	if _, err := a.Ingest(ctx, dept, caseFinished("INS-1", "D30", clk.Now().AddDate(0, -1, 0)), oneDoc(t)); err != nil {
		t.Fatal(err)
	}
	year := 365 * 24 * time.Hour
	reports := func() []InspectionReport {
		t.Helper()
		list, _, err := a.Inspections(ctx, Principal{Role: RoleArchive}, "", 50)
		if err != nil {
			t.Fatal(err)
		}
		var out []InspectionReport
		for _, ins := range list {
			var r InspectionReport
			if err := json.Unmarshal([]byte(ins.Report.Body), &r); err != nil {
				t.Fatal(err)
			}
			if _, err := ins.Report.Verify(a.Trust(), clk.Now(), new(InspectionReport)); err != nil {
				t.Fatalf("report %s does not verify: %v", ins.ID, err)
			}
			out = append(out, r)
		}
		return out
	}
	if n, err := a.InspectDue(ctx, year); err != nil || n != 1 {
		t.Fatalf("the first scheduled report: %d %v", n, err)
	}
	first := reports()
	if len(first) != 1 || first[0].Department != dept.Org || !first[0].To.Equal(clk.Now()) || !first[0].From.Equal(clk.Now().Add(-year)) {
		t.Fatalf("the first report: %+v", first)
	}
	clk.Add(200 * 24 * time.Hour)
	if n, err := a.InspectDue(ctx, year); err != nil || n != 0 {
		t.Fatalf("within the period: %d %v", n, err)
	}
	clk.Add(170 * 24 * time.Hour)
	if n, err := a.InspectDue(ctx, year); err != nil || n != 1 {
		t.Fatalf("a period after the last report: %d %v", n, err)
	}
	all := reports()
	if len(all) != 2 {
		t.Fatalf("%d reports", len(all))
	}
	var next InspectionReport
	for _, r := range all {
		if !r.From.Equal(first[0].From) {
			next = r
		}
	}
	if !next.From.Equal(first[0].To) || !next.To.Equal(clk.Now()) {
		t.Fatalf("the second report covers %s–%s, want from %s", next.From, next.To, first[0].To)
	}
}
