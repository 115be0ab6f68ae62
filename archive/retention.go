package archive

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// RetainedError refuses a deletion: the package is under retention or a legal hold. It
// wraps storage.ErrRetained.
type RetainedError struct {
	ID        string
	Until     time.Time
	LegalHold bool
}

func (e *RetainedError) Error() string {
	if e.LegalHold {
		return fmt.Sprintf("package %s is under a legal hold (and retained until %s)", e.ID, e.Until.Format(time.DateOnly))
	}
	return fmt.Sprintf("package %s is retained until %s", e.ID, e.Until.Format(time.DateOnly))
}

func (e *RetainedError) Unwrap() error { return storage.ErrRetained }

// RetentionEnd is when a package's retention ends. D30 and D10 count whole years from the
// year after the case finished; Y (永久) is kept here until its transfer deadline plus the
// years the department keeps its copy, after which the county archive holds it.
func (a *Archive) RetentionEnd(code string, year int) time.Time {
	years := map[string]int{"D30": 30, "D10": 10, "Y": a.cfg.TransferYears + a.cfg.KeepYears}[code]
	return time.Date(year+1+years, time.January, 1, 0, 0, 0, 0, eep.CST())
}

func (a *Archive) archivist(who Principal) error {
	if who.Role != RoleArchive {
		return fmt.Errorf("%w: only the archive role changes retention and legal holds", ErrForbidden)
	}
	return nil
}

// objectsOf are the objects that must live as long as the package.
func objectsOf(p *index.Package) []string { return p.Keys() }

// ExtendRetention moves a package's retention end later, never earlier.
func (a *Archive) ExtendRetention(ctx context.Context, who Principal, id string, until time.Time, reason string) (*index.Package, error) {
	if err := a.archivist(who); err != nil {
		return nil, err
	}
	p, err := a.Package(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if until.Before(p.RetainUntil) {
		return nil, fieldErr("until", fmt.Errorf("%w: %w: package %s is retained until %s", ErrConflict, storage.ErrRetentionShortened, id, p.RetainUntil.Format(time.DateOnly)))
	}
	if r, ok := a.store.(storage.Retainer); ok {
		for _, k := range objectsOf(p) {
			if err := r.Retain(ctx, k, until); err != nil && !errors.Is(err, storage.ErrRetentionShortened) {
				return nil, err
			}
		}
	}
	p, err = a.index.UpdatePackage(id, func(p *index.Package) error { p.RetainUntil = until; return nil })
	if err != nil {
		return nil, err
	}
	a.log.Info("retention extended", "who", who.String(), "package", id, "until", until.Format(time.DateOnly), "reason", reason)
	return p, a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeAmendment, Actor: who.String(), Subject: id, Digest: p.PackageSM3,
		Attrs: map[string]string{"change": "retention", "retain_until": until.Format(time.DateOnly), "reason": reason}})
}

// SetLegalHold places or releases a legal hold on a package.
func (a *Archive) SetLegalHold(ctx context.Context, who Principal, id string, on bool, reason string) (*index.Package, error) {
	if err := a.archivist(who); err != nil {
		return nil, err
	}
	if on && reason == "" {
		return nil, fieldErr("reason", fmt.Errorf("%w: a legal hold needs a reason", ErrInvalidCase))
	}
	p, err := a.Package(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if r, ok := a.store.(storage.Retainer); ok {
		for _, k := range objectsOf(p) {
			if err := r.SetLegalHold(ctx, k, on); err != nil {
				return nil, err
			}
		}
	}
	p, err = a.index.UpdatePackage(id, func(p *index.Package) error {
		p.LegalHold, p.HoldReason = on, reason
		return nil
	})
	if err != nil {
		return nil, err
	}
	a.log.Info("legal hold", "who", who.String(), "package", id, "on", on, "reason", reason)
	return p, a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeAmendment, Actor: who.String(), Subject: id, Digest: p.PackageSM3,
		Attrs: map[string]string{"change": "legal-hold", "legal_hold": strconv.FormatBool(on), "reason": reason}})
}

// RefuseDelete says why a package cannot be deleted: a *RetainedError while its retention
// or a legal hold applies (whatever the store; on MinIO the server refuses too), and after
// that ErrConflict, because destruction needs appraisal, approval and a tombstone, the
// disposal workflow's, which this version does not have. It never returns nil.
func (a *Archive) RefuseDelete(ctx context.Context, who Principal, id string) error {
	if err := a.archivist(who); err != nil {
		return err
	}
	p, err := a.Package(ctx, who, id)
	if err != nil {
		return err
	}
	if p.LegalHold || a.now().Before(p.RetainUntil) {
		return &RetainedError{ID: id, Until: p.RetainUntil, LegalHold: p.LegalHold}
	}
	return fmt.Errorf("%w: package %s may be destroyed only through appraisal and disposal, which this version does not have", ErrConflict, id)
}
