package archive

import (
	"context"
	"fmt"
	"sort"
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

// Schedule is what is due up to a horizon.
type Schedule struct {
	At      time.Time      `json:"at"`
	Until   time.Time      `json:"until"`
	Periods map[string]any `json:"periods"` // the rules in force
	Counts  map[string]int `json:"counts"`
	Items   []ScheduleItem `json:"items"`
}

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

// Schedule lists what is due up to horizon after at (zero at: now): a department sees its
// own records, the archive, auditors and admins all.
func (a *Archive) Schedule(ctx context.Context, who Principal, at time.Time, horizon time.Duration) (*Schedule, error) {
	dept := ""
	switch who.Role {
	case RoleArchive, RoleAuditor, RoleAdmin:
	case RoleDepartment:
		dept = who.Org
	default:
		return nil, fmt.Errorf("%w: role %s has no schedule", ErrForbidden, who.Role)
	}
	if at.IsZero() {
		at = a.now()
	}
	until := at.Add(horizon)
	s := &Schedule{At: at, Until: until, Counts: map[string]int{}, Periods: map[string]any{
		"archive_by": a.cfg.ArchiveBy + " of the following year", "transfer_years": a.cfg.TransferYears,
		"keep_years": a.cfg.KeepYears, "audit_cycle_days": int(a.cfg.AuditCycle / (24 * time.Hour))}}
	add := func(p *index.Package, kind string, date time.Time) {
		s.Items = append(s.Items, ScheduleItem{Kind: kind, Package: p.ID, ArchivalCode: p.ArchivalCode, Department: p.Department,
			Retention: p.Retention, Date: date, Overdue: !date.After(at)})
		s.Counts[kind]++
	}
	err := a.index.ForEachPackage(func(p *index.Package) error {
		if dept != "" && p.Department != dept || p.Tombstone != nil {
			return nil
		}
		if p.Source == "" {
			if d := a.ArchiveDeadline(p.FinishedAt); p.IngestedAt.After(d) {
				add(p, DueLateArchiving, d)
			}
		}
		switch {
		case p.Transfer != nil:
			if !p.Transfer.KeepUntil.After(until) {
				add(p, DueCopyDeletable, p.Transfer.KeepUntil)
			}
		case p.Retention == "Y" && p.Source == "":
			if d := a.TransferDue(p.Year); !d.After(until) {
				add(p, DueTransfer, d)
			}
		case p.Retention == "D10" || p.Retention == "D30":
			if !p.RetainUntil.After(until) {
				add(p, DueRetentionExpiry, p.RetainUntil)
			}
		}
		last := p.IngestedAt
		if p.Audit != nil {
			last = p.Audit.At
		}
		if d := last.Add(a.cfg.AuditCycle); !d.After(at) {
			add(p, DueAuditOverdue, d)
		}
		return nil
	})
	sort.SliceStable(s.Items, func(i, j int) bool { return s.Items[i].Date.Before(s.Items[j].Date) })
	return s, err
}
