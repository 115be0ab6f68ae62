package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Appraisal and disposal (鉴定与销毁). A package whose retention has ended (D10, D30), or a
// transferred department copy past its keeping period, is a candidate. An archivist decides:
// extend it (a new period and a reason, applied at once) or destroy it, which a second
// archivist must approve. Destruction deletes the package's objects, never before the WORM
// retention ends, and leaves a tombstone (in the index and as an object) that is never
// deleted; the destruction register (销毁清册) lists every tombstone, signed.

// Disposal decision actions and states.
const (
	DisposalDestroy = "destroy"
	DisposalExtend  = "extend"

	DisposalPending   = "pending-approval" // a destruction waiting for a second archivist
	DisposalDestroyed = "destroyed"
	DisposalExtended  = "extended"
	DisposalRejected  = "rejected" // the second archivist refused
)

// Candidate is a package up for appraisal.
type Candidate struct {
	Package      string    `json:"package"`
	ArchivalCode string    `json:"archival_code"`
	Department   string    `json:"department"`
	Title        string    `json:"title"`
	Retention    string    `json:"retention"`
	Rule         string    `json:"rule"` // why it is a candidate
	Since        time.Time `json:"since"`
	Pending      string    `json:"pending_decision,omitempty"`
}

// Decision is an appraisal decision.
type Decision struct {
	ID           string    `json:"id"`
	Package      string    `json:"package"`
	ArchivalCode string    `json:"archival_code"`
	Action       string    `json:"action"`
	Until        time.Time `json:"until,omitempty"` // for extend
	Reason       string    `json:"reason"`
	Rule         string    `json:"rule"`
	DecidedBy    string    `json:"decided_by"`
	DecidedByID  string    `json:"decided_by_token"`
	DecidedAt    time.Time `json:"decided_at"`
	ApprovedBy   string    `json:"approved_by,omitempty"`
	ApprovedAt   time.Time `json:"approved_at,omitempty"`
	Status       string    `json:"status"`
	Note         string    `json:"note,omitempty"`
}

// candidateRule says why a package may be disposed of now, or "" when it may not.
func (a *Archive) candidateRule(p *index.Package, now time.Time) (string, time.Time) {
	if p.Tombstone != nil || p.LegalHold || now.Before(p.RetainUntil) {
		return "", time.Time{}
	}
	switch {
	case p.Transfer != nil && !now.Before(p.Transfer.KeepUntil):
		return fmt.Sprintf("transferred to the county archive on %s (batch %s); the department's copy was kept until %s",
			p.Transfer.At.Format(time.DateOnly), p.Transfer.Batch, p.Transfer.KeepUntil.Format(time.DateOnly)), p.Transfer.KeepUntil
	case p.Transfer == nil && (p.Retention == "D10" || p.Retention == "D30"):
		return fmt.Sprintf("保管期限 %s, counted from %d: retained until %s", p.Retention, p.Year+1, p.RetainUntil.Format(time.DateOnly)), p.RetainUntil
	}
	return "", time.Time{}
}

func (a *Archive) archivistOrAuditor(who Principal) error {
	if who.Role == RoleArchive || who.Role == RoleAuditor {
		return nil
	}
	return fmt.Errorf("%w: appraisal is the archive's (auditors may read it)", ErrForbidden)
}

// CandidatePage is one page of candidates; Next continues the list.
type CandidatePage struct {
	Candidates []Candidate `json:"candidates"`
	Next       string      `json:"next,omitempty"`
}

// Candidates lists the packages up for appraisal now, a department's (dept) or all: first
// the D10/D30 records whose retention ended, by retention end, then the transferred ones
// whose department copy may go, by the end of the copy. A page reads only its own entries
// (and the few on legal hold or retained longer that it passes over).
func (a *Archive) Candidates(ctx context.Context, who Principal, dept, cursor string, limit int) (*CandidatePage, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxPage {
		limit = defaultPage
	}
	scope := dept
	if scope == "" {
		scope = index.AllDepartments
	}
	now := a.now()
	spans := []struct {
		tag  string
		span index.Span
	}{{"R", index.RetentionEndsBy(scope, now)}, {"K", index.CopyDeletableBy(scope, now)}}
	at, inner := 0, ""
	if cursor != "" {
		tag, rest, ok := strings.Cut(cursor, ".")
		if !ok || (tag != "R" && tag != "K") {
			return nil, fieldErr("cursor", fmt.Errorf("%w: %w", ErrInvalidCase, index.ErrBadCursor))
		}
		if tag == "K" {
			at = 1
		}
		inner = rest
	}
	out := &CandidatePage{Candidates: []Candidate{}}
	for ; at < len(spans); at, inner = at+1, "" {
		for len(out.Candidates) < limit {
			page, err := a.index.List(spans[at].span, inner, limit-len(out.Candidates))
			if errors.Is(err, index.ErrBadCursor) {
				return nil, fieldErr("cursor", fmt.Errorf("%w: %w", ErrInvalidCase, err))
			} else if err != nil {
				return nil, err
			}
			for _, p := range page.Packages {
				rule, since := a.candidateRule(p, now)
				if rule == "" {
					continue // on legal hold, or its copy ends before its retention
				}
				pending, err := a.pendingDecision(p.ID)
				if err != nil {
					return nil, err
				}
				out.Candidates = append(out.Candidates, Candidate{Package: p.ID, ArchivalCode: p.ArchivalCode, Department: p.Department,
					Title: p.Title, Retention: p.Retention, Rule: rule, Since: since, Pending: pending})
			}
			if page.Next == "" {
				break
			}
			inner = page.Next
			if len(out.Candidates) == limit {
				out.Next = spans[at].tag + "." + inner
				return out, nil
			}
		}
		if len(out.Candidates) == limit && at+1 < len(spans) {
			if more, err := a.index.First(spans[at+1].span); err != nil {
				return nil, err
			} else if more {
				out.Next = spans[at+1].tag + "."
			}
			return out, nil
		}
	}
	return out, nil
}

// DecisionRequest is an archivist's decision on a candidate.
type DecisionRequest struct {
	Package string    `json:"package"`
	Action  string    `json:"action"` // destroy or extend
	Until   time.Time `json:"until,omitempty"`
	Reason  string    `json:"reason"`
}

func newDecisionID(now time.Time) string {
	r := make([]byte, 4)
	rand.Read(r)
	return "D" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(r)
}

// Decide records an appraisal decision. Extend applies at once; destroy waits for a second
// archivist's approval.
func (a *Archive) Decide(ctx context.Context, who Principal, req DecisionRequest) (*Decision, error) {
	if who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: appraisal decisions are the archive's", ErrForbidden)
	}
	if req.Reason == "" {
		return nil, fieldErr("reason", fmt.Errorf("%w: a decision needs a reason", ErrInvalidCase))
	}
	if req.Action != DisposalDestroy && req.Action != DisposalExtend {
		return nil, fieldErr("action", fmt.Errorf("%w: action is destroy or extend", ErrInvalidCase))
	}
	p, err := a.index.Package(req.Package)
	if errors.Is(err, index.ErrNotFound) {
		return nil, fieldErr("package", fmt.Errorf("package %s: %w", req.Package, ErrNotFound))
	} else if err != nil {
		return nil, err
	}
	now := a.now()
	rule, _ := a.candidateRule(p, now)
	if rule == "" {
		return nil, fieldErr("package", fmt.Errorf("%w: package %s is not up for appraisal (retained until %s, legal hold %v, destroyed %v)",
			ErrState, p.ID, p.RetainUntil.Format(time.DateOnly), p.LegalHold, p.Tombstone != nil))
	}
	if req.Action == DisposalExtend && !req.Until.After(now) {
		return nil, fieldErr("until", fmt.Errorf("%w: an extension needs a future date", ErrInvalidCase))
	}
	d := &Decision{ID: newDecisionID(now), Package: p.ID, ArchivalCode: p.ArchivalCode, Action: req.Action, Until: req.Until, Reason: req.Reason,
		Rule: rule, DecidedBy: who.Person(), DecidedByID: who.TokenID, DecidedAt: now.UTC(), Status: DisposalPending}
	a.disposalMu.Lock()
	defer a.disposalMu.Unlock()
	clash, err := a.pendingDecision(p.ID)
	if err != nil {
		return nil, err
	}
	if clash != "" {
		return nil, fieldErr("package", fmt.Errorf("%w: decision %s on package %s waits for approval", ErrState, clash, p.ID))
	}
	if req.Action == DisposalExtend {
		if _, err := a.ExtendRetention(ctx, who, p.ID, req.Until, "appraisal: "+req.Reason); err != nil {
			return nil, err
		}
		d.Status = DisposalExtended
	}
	if err := a.putDecision(d); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeDisposal, Actor: who.Person(), Subject: p.ID, Digest: p.PackageSM3,
		Attrs: map[string]string{"decision": d.ID, "action": d.Action, "reason": d.Reason, "rule": rule, "status": d.Status}}); err != nil {
		return nil, err
	}
	a.log.Info("appraisal decision", "decision", d.ID, "package", p.ID, "archival_code", p.ArchivalCode, "action", d.Action, "by", d.DecidedBy)
	return d, nil
}

// putDecision stores a decision with the package's pending lookup, in one transaction.
func (a *Archive) putDecision(d *Decision) error {
	pending := index.Rec{Bucket: index.DisposalPending, Key: d.Package}
	if d.Status == DisposalPending {
		pending.Value = d.ID
	}
	return a.index.PutRecords(index.Rec{Bucket: index.Disposals, Key: d.ID, Value: d}, pending)
}

// pendingDecision is the id of the package's decision waiting for approval, or "".
func (a *Archive) pendingDecision(pkg string) (string, error) {
	var id string
	if err := a.index.Record(index.DisposalPending, pkg, &id); err != nil && !errors.Is(err, index.ErrNotFound) {
		return "", err
	}
	return id, nil
}

// indexPendingDecisions builds the pending lookup once for an index written before it
// existed.
func (a *Archive) indexPendingDecisions() error {
	return a.buildLookupsOnce("disposal-pending-indexed", []lookupSource{{index.Disposals, func(_ string, data []byte) ([]index.Rec, error) {
		var d Decision
		if json.Unmarshal(data, &d) != nil || d.Status != DisposalPending {
			return nil, nil
		}
		return []index.Rec{{Key: d.Package, Value: d.ID}}, nil
	}, index.DisposalPending}})
}

// Decisions lists appraisal decisions, oldest first, a page after cursor (limit 1–1,000,
// default 100), with the cursor of the next page.
func (a *Archive) Decisions(ctx context.Context, who Principal, cursor string, limit int) ([]Decision, string, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, "", err
	}
	return listTimed(a.index, index.Disposals, "", "", time.Time{}, time.Time{}, cursor, limit, func(Decision) (time.Time, bool) { return time.Time{}, true })
}

// PendingDecisions lists the destructions waiting for approval (at most limit, 1–1,000), read
// through their own lookup: the cost is theirs, not the decisions'.
func (a *Archive) PendingDecisions(ctx context.Context, who Principal, limit int) ([]Decision, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > maxPage {
		return nil, fieldErr("limit", fmt.Errorf("%w: limit is 1 to %d", ErrInvalidCase, maxPage))
	}
	var ids []string
	err := a.index.ForEachRecord(index.DisposalPending, "", "", func(_ string, data []byte) error {
		var id string
		if json.Unmarshal(data, &id) == nil && id != "" {
			ids = append(ids, id)
		}
		if len(ids) == limit {
			return index.ErrStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Decision, 0, len(ids))
	for _, id := range ids { // after the walk: no read inside another
		var d Decision
		if err := a.index.Record(index.Disposals, id, &d); errors.Is(err, index.ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if d.Status == DisposalPending {
			out = append(out, d)
		}
	}
	return out, nil
}

// Approve is the second archivist's word on a pending destruction: approve destroys the
// package now (its retention has ended: that made it a candidate); refuse closes the
// decision. The decider cannot approve their own decision.
func (a *Archive) Approve(ctx context.Context, who Principal, id string, approve bool, note string) (*Decision, error) {
	if who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: approvals are the archive's", ErrForbidden)
	}
	a.disposalMu.Lock()
	defer a.disposalMu.Unlock()
	var d Decision
	if err := a.index.Record(index.Disposals, id, &d); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("decision %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if d.Status != DisposalPending {
		return nil, fmt.Errorf("%w: decision %s is %s", ErrState, id, d.Status)
	}
	if who.TokenID == "" || who.TokenID == d.DecidedByID {
		return nil, fmt.Errorf("%w: a destruction is approved by a second archivist, not by %s who decided it", ErrForbidden, who.Person())
	}
	now := a.now()
	d.ApprovedBy, d.ApprovedAt, d.Note = who.Person(), now.UTC(), note
	if !approve {
		d.Status = DisposalRejected
		if err := a.putDecision(&d); err != nil {
			return nil, err
		}
		return &d, a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeDisposal, Actor: who.Person(), Subject: d.Package,
			Attrs: map[string]string{"decision": d.ID, "action": d.Action, "status": d.Status, "note": note}})
	}
	if err := a.destroy(ctx, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// destroy deletes a package's objects and leaves its tombstone.
func (a *Archive) destroy(ctx context.Context, d *Decision) error {
	p, err := a.index.Package(d.Package)
	if err != nil {
		return err
	}
	now := a.now()
	if rule, _ := a.candidateRule(p, now); rule == "" {
		return fmt.Errorf("%w: package %s may not be destroyed now (retained until %s, legal hold %v)", ErrState, p.ID, p.RetainUntil.Format(time.DateOnly), p.LegalHold)
	}
	digests := map[string]string{"package_sm3": p.PackageSM3, "content_digest": p.ContentDigest}
	for _, doc := range p.Documents {
		for j, e := range doc.Encoded {
			digests[fmt.Sprintf("document_%d_%d_%s", doc.N, j+1, e.FileName)] = e.SM3
		}
	}
	// The event first: the log says what is about to go, then it goes.
	idx, err := a.elog.Append(ctx, eventlog.Event{Type: eventlog.TypeDestruction, Time: now, Actor: d.ApprovedBy, Subject: p.ID, Digest: p.PackageSM3,
		Attrs: map[string]string{"decision": d.ID, "archival_code": p.ArchivalCode, "decided_by": d.DecidedBy, "approved_by": d.ApprovedBy, "rule": d.Rule}})
	if err != nil {
		return fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
	}
	ts := &index.Tombstone{DestroyedAt: now.UTC(), Decision: d.ID, DecidedBy: d.DecidedBy, ApprovedBy: d.ApprovedBy, Rule: d.Rule,
		Reason: d.Reason, Digests: digests, LogIndex: idx}
	stone := tombstoneObject{Package: *p, Tombstone: *ts}
	stone.Package.Documents = nil
	if err := a.putJSON(ctx, "tombstones/"+p.ID+".json", stone); err != nil {
		return fmt.Errorf("store the tombstone: %w", err)
	}
	for _, key := range p.Keys() { // every form, the current one first
		if err := a.store.Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("delete package %s object %s (the tombstone is kept; approve again to retry): %w", p.ID, key, err)
		}
	}
	if _, err := a.index.UpdatePackage(p.ID, func(p *index.Package) error {
		p.Tombstone, p.State = ts, "destroyed"
		return nil
	}); err != nil {
		return err
	}
	d.Status = DisposalDestroyed
	if err := a.putDecision(d); err != nil {
		return err
	}
	a.log.Warn("package destroyed", "package", p.ID, "archival_code", p.ArchivalCode, "decision", d.ID, "decided_by", d.DecidedBy, "approved_by", d.ApprovedBy)
	return nil
}

// tombstoneObject is a tombstone as stored: the package's description without its documents'
// locations, and what destroyed it. The index is rebuilt from these when lost.
type tombstoneObject struct {
	Package   index.Package   `json:"package"`
	Tombstone index.Tombstone `json:"tombstone"`
}

// Tombstones lists every destroyed package, oldest destruction first.
func (a *Archive) Tombstones(ctx context.Context, who Principal) ([]*index.Package, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, err
	}
	var out []*index.Package
	cursor := ""
	for {
		page, err := a.index.List(index.InState(index.AllDepartments, "destroyed"), cursor, 1000)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Packages...)
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Tombstone.DestroyedAt.Before(out[j].Tombstone.DestroyedAt) })
	return out, nil
}

// restoreTombstones brings back into the index the tombstones it lacks (an index rebuilt
// from storage): a destroyed package has no EEP left, only its tombstone object.
func (a *Archive) restoreTombstones(ctx context.Context) (int, error) {
	n := 0
	err := a.store.List(ctx, "tombstones/", func(o storage.ObjectInfo) error {
		var t tombstoneObject
		rc, _, err := a.store.Get(ctx, o.Key)
		if err != nil {
			return err
		}
		err = json.NewDecoder(rc).Decode(&t)
		rc.Close()
		if err != nil {
			return fmt.Errorf("tombstone %s: %w", o.Key, err)
		}
		if _, err := a.index.Package(t.Package.ID); err == nil {
			return nil
		}
		rec := t.Package
		rec.Tombstone, rec.State = &t.Tombstone, "destroyed"
		if _, err := a.index.CommitPackages([]*index.Package{&rec}); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
