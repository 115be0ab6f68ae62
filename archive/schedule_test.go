package archive

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/internal/testenv"
)

func caseFinished(no, retention string, finished time.Time) *Case {
	c := benchCaseFor(no)
	c.Retention = retention
	c.AcceptedAt = finished.Add(-48 * time.Hour)
	c.FinishedAt = finished
	return c
}

func TestSchedule(t *testing.T) {
	now := testenv.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	ids := map[string]string{}
	for no, c := range map[string]*Case{
		"Y-2019":   caseFinished("Y-2019", "Y", testenv.Date(2019, 5, 1, 9, 0, 0, 0, time.UTC)),
		"Y-2026":   caseFinished("Y-2026", "Y", testenv.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)),
		"D10-2015": caseFinished("D10-2015", "D10", testenv.Date(2015, 6, 1, 9, 0, 0, 0, time.UTC)),
		"D30-2026": caseFinished("D30-2026", "D30", testenv.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)),
	} {
		res, err := a.Ingest(ctx, dept, c, oneDoc(t))
		if err != nil {
			t.Fatalf("%s: %v", no, err)
		}
		ids[no] = res.Package.ID
	}
	kinds := func(s *Schedule) map[string]map[string]bool {
		out := map[string]map[string]bool{}
		for _, it := range s.Items {
			if out[it.Kind] == nil {
				out[it.Kind] = map[string]bool{}
			}
			out[it.Kind][it.Package] = it.Overdue
		}
		return out
	}
	s, err := a.Schedule(ctx, Principal{Role: RoleArchive}, ScheduleQuery{Horizon: 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	k := kinds(s)
	// Finished in 2019 and 2015, archived in 2026: after 30 June of the following year.
	if len(k[DueLateArchiving]) != 2 || !k[DueLateArchiving][ids["Y-2019"]] || !k[DueLateArchiving][ids["D10-2015"]] {
		t.Fatalf("late archiving: %v", k[DueLateArchiving])
	}
	// Y formed in 2019: due at the county archive by the end of 2024; the 2026 one is not due yet.
	if len(k[DueTransfer]) != 1 || !k[DueTransfer][ids["Y-2019"]] {
		t.Fatalf("transfers: %v", k[DueTransfer])
	}
	for _, it := range s.Items {
		if it.Kind == DueTransfer && !it.Date.Equal(testenv.Date(2025, 1, 1, 0, 0, 0, 0, it.Date.Location())) {
			t.Fatalf("transfer due %v", it.Date)
		}
	}
	// D10 of 2015: kept until 2026-01-01, so it is up for appraisal; D30 of 2026 is not.
	if len(k[DueRetentionExpiry]) != 1 || !k[DueRetentionExpiry][ids["D10-2015"]] {
		t.Fatalf("retention expiries: %v", k[DueRetentionExpiry])
	}
	if len(k[DueAuditOverdue]) != 0 {
		t.Fatalf("audits overdue right after ingest: %v", k[DueAuditOverdue])
	}
	// Six years on: the 2026 Y record is due too, and every audit is overdue.
	s, _ = a.Schedule(ctx, Principal{Role: RoleAuditor}, ScheduleQuery{At: testenv.Date(2032, 6, 1, 0, 0, 0, 0, time.UTC)})
	k = kinds(s)
	if !k[DueTransfer][ids["Y-2026"]] || len(k[DueAuditOverdue]) != 4 {
		t.Fatalf("in 2032: %v", k)
	}
	// A department sees its own schedule only.
	s, _ = a.Schedule(ctx, Principal{Role: RoleDepartment, Org: "11610830MB1234567W"}, ScheduleQuery{Horizon: 365 * 24 * time.Hour})
	if len(s.Items) != 0 {
		t.Fatalf("another department's schedule: %v", s.Items)
	}
	if _, err := a.Schedule(ctx, Principal{Role: RoleDepartment, Org: "11610830MB1234567W"}, ScheduleQuery{Department: dept.Org}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a department asked for another's schedule: %v", err)
	}
	// One kind, three items a page: the four overdue audits come on two pages.
	at := testenv.Date(2032, 6, 1, 0, 0, 0, 0, time.UTC)
	var pages [][]string
	for cursor := ""; ; {
		s, err := a.Schedule(ctx, Principal{Role: RoleArchive}, ScheduleQuery{At: at, Kind: DueAuditOverdue, Cursor: cursor, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		var page []string
		for _, it := range s.Items {
			page = append(page, it.Package)
		}
		pages = append(pages, page)
		if cursor = s.Next[DueAuditOverdue]; cursor == "" {
			break
		}
	}
	if len(pages) != 2 || len(pages[0]) != 3 || len(pages[1]) != 1 {
		t.Fatalf("audit-overdue pages of 3: %v", pages)
	}
	if _, err := a.Schedule(ctx, Principal{Role: RoleArchive}, ScheduleQuery{Cursor: "x"}); !errors.Is(err, ErrInvalidCase) {
		t.Fatalf("a cursor without its kind: %v", err)
	}
	if _, err := a.Schedule(ctx, Principal{Role: RoleArchive}, ScheduleQuery{Kind: "soon"}); !errors.Is(err, ErrInvalidCase) {
		t.Fatalf("an unknown kind: %v", err)
	}
}
