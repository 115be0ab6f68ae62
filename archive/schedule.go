package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage/index"
)

// Kinds of schedule items.
const (
	DueLateArchiving   = "late-archiving"   // archived after 30 June of the year after the case finished
	DueTransfer        = "transfer-due"     // a permanent record to move to the county archive
	DueRetentionExpiry = "retention-expiry" // a D30/D10 record whose retention ends: appraise it
	DueCopyDeletable   = "copy-deletable"   // a transferred record whose department copy may go
	DueAuditOverdue    = "audit-overdue"    // not checked within the audit cycle
)

// ScheduleItem is one thing due.
type ScheduleItem struct {
	Kind         string    `json:"kind"`
	Package      string    `json:"package"`
	ArchivalCode string    `json:"archival_code"`
	Department   string    `json:"department"`
	Retention    string    `json:"retention"`
	Date         time.Time `json:"date"` // the deadline or due date
	Overdue      bool      `json:"overdue"`
}

// Schedule is what is due up to a horizon: a page of each kind asked for, each in its own
// order (by date), with the cursor of its next page.
type Schedule struct {
	At      time.Time         `json:"at"`
	Until   time.Time         `json:"until"`
	Periods map[string]any    `json:"periods"` // the rules in force
	Items   []ScheduleItem    `json:"items"`
	Next    map[string]string `json:"next,omitempty"` // kind → cursor of its next page
}

// ScheduleQuery asks for the schedule at At (zero: now) up to Horizon after it, of one
// department (archive roles; a department always gets its own), of one Kind or of all.
// Cursor continues one Kind's list; Limit is per kind.
type ScheduleQuery struct {
	At         time.Time
	Horizon    time.Duration
	Department string
	Kind       string
	Cursor     string
	Limit      int
}

// ScheduleKinds are the kinds of schedule items, in the order a schedule lists them.
var ScheduleKinds = []string{DueLateArchiving, DueTransfer, DueRetentionExpiry, DueCopyDeletable, DueAuditOverdue}

// ArchiveDeadline is when a case finished at finished must be archived: ArchiveBy (30 June)
// of the following year, end of day, China time.
func (a *Archive) ArchiveDeadline(finished time.Time) time.Time {
	md, _ := time.Parse("01-02", a.cfg.ArchiveBy)
	y := finished.In(eep.CST()).Year() + 1
	return time.Date(y, md.Month(), md.Day(), 23, 59, 59, 0, eep.CST())
}

// TransferDue is when a permanent record formed in year must be at the county archive: the
// end of the TransferYears-th year after it.
func (a *Archive) TransferDue(year int) time.Time {
	return time.Date(year+1+a.cfg.TransferYears, time.January, 1, 0, 0, 0, 0, eep.CST())
}

// Now is the archive's clock (shifted in drills and tests with Config.Now).
func (a *Archive) Now() time.Time { return a.now() }

// Schedule lists what is due: each kind is one range of the index, so a page costs its
// own length however large the archive is.
func (a *Archive) Schedule(ctx context.Context, who Principal, q ScheduleQuery) (*Schedule, error) {
	dept, err := departmentScope(who, q.Department, "schedule", RoleArchive, RoleAuditor, RoleAdmin)
	if err != nil {
		return nil, err
	}
	if q.Limit < 0 || q.Limit > maxPage {
		return nil, fieldErr("limit", fmt.Errorf("%w: limit is 1 to %d", ErrInvalidCase, maxPage))
	}
	if q.Limit == 0 {
		q.Limit = defaultPage
	}
	kinds := ScheduleKinds
	if q.Kind != "" {
		if !slices.Contains(ScheduleKinds, q.Kind) {
			return nil, fieldErr("kind", fmt.Errorf("%w: kind is one of %s", ErrInvalidCase, strings.Join(ScheduleKinds, ", ")))
		}
		kinds = []string{q.Kind}
	} else if q.Cursor != "" {
		return nil, fieldErr("cursor", fmt.Errorf("%w: a cursor continues one kind: give kind too", ErrInvalidCase))
	}
	scope := dept
	if scope == "" {
		scope = index.AllDepartments
	}
	at := q.At
	if at.IsZero() {
		at = a.now()
	}
	until := at.Add(q.Horizon)
	s := &Schedule{At: at, Until: until, Items: []ScheduleItem{}, Next: map[string]string{}, Periods: map[string]any{
		"archive_by": a.cfg.ArchiveBy + " of the following year", "transfer_years": a.cfg.TransferYears,
		"keep_years": a.cfg.KeepYears, "audit_cycle_days": int(a.cfg.AuditCycle / (24 * time.Hour))}}
	for _, kind := range kinds {
		var span index.Span
		var date func(*index.Package) time.Time
		switch kind {
		case DueLateArchiving:
			span, date = index.ArchivedLate(scope), func(p *index.Package) time.Time { return a.ArchiveDeadline(p.FinishedAt) }
		case DueTransfer:
			// TransferDue(y) is 1 January of y+1+TransferYears: due by until for y up to this.
			last := until.In(eep.CST()).Year() - 1 - a.cfg.TransferYears
			span, date = index.TransferDueBy(scope, last), a.transferDueOf
		case DueRetentionExpiry:
			span, date = index.RetentionEndsBy(scope, until), func(p *index.Package) time.Time { return p.RetainUntil }
		case DueCopyDeletable:
			span, date = index.CopyDeletableBy(scope, until), func(p *index.Package) time.Time { return p.Transfer.KeepUntil }
		case DueAuditOverdue:
			span, date = index.CheckedBy(scope, at.Add(-a.cfg.AuditCycle)), func(p *index.Package) time.Time {
				last := p.IngestedAt
				if p.Audit != nil {
					last = p.Audit.At
				}
				return last.Add(a.cfg.AuditCycle)
			}
		}
		page, err := a.index.List(span, q.Cursor, q.Limit)
		if errors.Is(err, index.ErrBadCursor) {
			return nil, fieldErr("cursor", fmt.Errorf("%w: %w", ErrInvalidCase, err))
		} else if err != nil {
			return nil, err
		}
		for _, p := range page.Packages {
			d := date(p)
			s.Items = append(s.Items, ScheduleItem{Kind: kind, Package: p.ID, ArchivalCode: p.ArchivalCode, Department: p.Department,
				Retention: p.Retention, Date: d, Overdue: !d.After(at)})
		}
		if page.Next != "" {
			s.Next[kind] = page.Next
		}
	}
	return s, nil
}

// archivedLate reports whether a package formed here was archived after its deadline.
func (a *Archive) archivedLate(p *index.Package) bool {
	return p.Source == "" && p.IngestedAt.After(a.ArchiveDeadline(p.FinishedAt))
}
