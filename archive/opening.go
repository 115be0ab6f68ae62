package archive

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/text"
	"github.com/dangan-archive/dangan/search"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Opening to the public (开放鉴定). Once a record's closed period has passed (25 years from
// its case's end, Config.OpenAfterYears), an archivist proposes it, or a series of a year, for
// opening, with a reason; a second archivist approves or refuses, as for destruction. An
// approval makes for each record a public copy, derived and stored apart: its description
// and its documents' text with personal data removed by the redaction policy, marked as a
// redacted copy and saying what was removed. The archival package is never touched. Anyone
// finds and reads opened records without a token; an archivist may close one again. Every
// step is an event.

// Opening decision states.
const (
	OpeningPending  = "pending-approval"
	OpeningOpened   = "opened"
	OpeningRejected = "rejected"
)

// PublicCopyFormat names the public copy's layout.
const PublicCopyFormat = "dangan-public-copy/1"

// OpeningDecision is a proposal to open records, and what became of it.
type OpeningDecision struct {
	ID           string          `json:"id"`
	Packages     []string        `json:"packages"`
	Series       string          `json:"series,omitempty"` // the series proposed, when it was one
	Reason       string          `json:"reason"`
	ProposedBy   string          `json:"proposed_by"`
	ProposedByID string          `json:"proposed_by_token"`
	ProposedAt   time.Time       `json:"proposed_at"`
	ApprovedBy   string          `json:"approved_by,omitempty"`
	ApprovedAt   time.Time       `json:"approved_at,omitzero"`
	Note         string          `json:"note,omitempty"`
	Status       string          `json:"status"`
	Results      []OpeningResult `json:"results,omitempty"`
}

// OpeningResult is one record of an approved decision: opened, or why not.
type OpeningResult struct {
	Package      string `json:"package"`
	ArchivalCode string `json:"archival_code,omitempty"`
	Opened       bool   `json:"opened"`
	Error        string `json:"error,omitempty"`
}

// OpeningRequest proposes records for opening: named packages, or a department's series of
// one year (and retention).
type OpeningRequest struct {
	Packages   []string `json:"packages,omitempty"`
	Department string   `json:"department,omitempty"`
	Year       int      `json:"year,omitempty"`
	Retention  string   `json:"retention,omitempty"`
	Reason     string   `json:"reason"`
}

// PublicCopy is what the public reads of an opened record: a derived copy, never the
// archival package.
type PublicCopy struct {
	Format       string           `json:"format"`
	Redacted     bool             `json:"redacted"` // always true: personal data were removed
	Notice       string           `json:"notice"`
	Package      string           `json:"package"`
	ArchivalCode string           `json:"archival_code"`
	Title        string           `json:"title"`
	Department   string           `json:"department"` // its name
	Year         int              `json:"year"`
	Retention    string           `json:"retention"`
	ItemName     string           `json:"item_name"`
	FinishedAt   time.Time        `json:"finished_at"`
	OpenedAt     time.Time        `json:"opened_at"`
	Decision     string           `json:"decision"`
	Policy       string           `json:"policy"`  // the redaction policy's version
	Removed      map[string]int   `json:"removed"` // kind → how many were removed
	Left         []string         `json:"left_out,omitempty"`
	Documents    []PublicDocument `json:"documents"`
}

// PublicDocument is one document's text in a public copy.
type PublicDocument struct {
	N     int    `json:"n"`
	Title string `json:"title"`
	Text  string `json:"text,omitempty"`
	Note  string `json:"note,omitempty"` // why there is no text
}

const publicNotice = "本件为开放利用的派生副本，已按删除规则删除个人信息（见 removed）；档案原件未作任何改动。" +
	" This is a derived copy for public use with personal data removed (see removed); the archival record is unchanged."

// maxOpening bounds the records of one proposal.
const maxOpening = 1000

// openable says why a record cannot be opened now, or nil.
func (a *Archive) openable(p *index.Package, now time.Time) error {
	switch {
	case p.Tombstone != nil:
		return fmt.Errorf("%w: %s was destroyed", ErrState, p.ArchivalCode)
	case p.Opened != nil:
		return fmt.Errorf("%w: %s is open already", ErrState, p.ArchivalCode)
	}
	if until := p.FinishedAt.AddDate(a.cfg.OpenAfterYears, 0, 0); now.Before(until) {
		return fmt.Errorf("%w: %s is closed until %s (%d years after its case finished)", ErrState, p.ArchivalCode, until.Format(time.DateOnly), a.cfg.OpenAfterYears)
	}
	return nil
}

// ProposeOpening records an archivist's proposal; a second archivist approves it.
func (a *Archive) ProposeOpening(ctx context.Context, who Principal, req OpeningRequest) (*OpeningDecision, error) {
	if who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: opening records to the public is the archive's", ErrForbidden)
	}
	if err := useText("reason", req.Reason, true, 500); err != nil {
		return nil, err
	}
	now := a.now()
	ids, series, err := a.openingCandidates(req)
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		p, err := a.index.PackageRecord(id)
		if errors.Is(err, index.ErrNotFound) {
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("package %s: %w", id, ErrNotFound))
		} else if err != nil {
			return nil, err
		}
		if err := a.openable(p, now); err != nil {
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), err)
		}
	}
	d := &OpeningDecision{ID: newUseID(now), Packages: ids, Series: series, Reason: strings.TrimSpace(req.Reason),
		ProposedBy: who.Person(), ProposedByID: who.TokenID, ProposedAt: now.UTC(), Status: OpeningPending}
	if err := a.index.PutRecords(index.Rec{Bucket: index.Openings, Key: d.ID, Value: d},
		index.Rec{Bucket: index.OpeningPending, Key: d.ID, Value: json.RawMessage("1")}); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeOpening, Actor: who.Person(), Subject: "opening/" + d.ID,
		Attrs: map[string]string{"status": d.Status, "packages": strconv.Itoa(len(ids)), "reason": d.Reason, "series": series}}); err != nil {
		return nil, err
	}
	a.log.Info("opening proposed", "decision", d.ID, "packages", len(ids), "by", d.ProposedBy)
	return d, nil
}

// openingCandidates are the package ids a proposal names, or its series' (at most
// maxOpening).
func (a *Archive) openingCandidates(req OpeningRequest) ([]string, string, error) {
	var ids []string
	for i, id := range req.Packages {
		if id = strings.TrimSpace(id); id == "" {
			return nil, "", fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("%w: a package id", ErrInvalidCase))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	series := ""
	if req.Department != "" || req.Year != 0 {
		if CheckUSCC(req.Department) != nil || req.Year < 1900 {
			return nil, "", fieldErr("department", fmt.Errorf("%w: a series is a department (USCC) and a year", ErrInvalidCase))
		}
		series = fmt.Sprintf("%s/%d/%s", req.Department, req.Year, req.Retention)
		for cursor := ""; ; {
			page, err := a.index.List(index.InYear(req.Department, req.Year, req.Retention), cursor, 200)
			if err != nil {
				return nil, "", err
			}
			for _, p := range page.Packages {
				if p.Tombstone == nil && p.Opened == nil && !slices.Contains(ids, p.ID) {
					ids = append(ids, p.ID)
				}
			}
			if cursor = page.Next; cursor == "" || len(ids) > maxOpening {
				break
			}
		}
	}
	switch {
	case len(ids) == 0:
		return nil, "", fieldErr("packages", fmt.Errorf("%w: name packages or a series with records to open", ErrInvalidCase))
	case len(ids) > maxOpening:
		return nil, "", fieldErr("packages", fmt.Errorf("%w: at most %d records a proposal", ErrInvalidCase, maxOpening))
	}
	return ids, series, nil
}

// ApproveOpening is the second archivist's answer. An approval opens each record still
// openable: its public copy is made and stored, then the record marked open; a record that
// fails is reported in the decision's results and stays closed.
func (a *Archive) ApproveOpening(ctx context.Context, who Principal, id string, approve bool, note string) (*OpeningDecision, error) {
	if who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: opening records to the public is the archive's", ErrForbidden)
	}
	a.openingMu.Lock()
	defer a.openingMu.Unlock()
	var d OpeningDecision
	if err := a.index.Record(index.Openings, id, &d); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("opening decision %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if d.Status != OpeningPending {
		return nil, fmt.Errorf("%w: opening decision %s is %s", ErrState, id, d.Status)
	}
	if d.ProposedByID != "" && d.ProposedByID == who.TokenID {
		return nil, fmt.Errorf("%w: a second archivist approves an opening, not its proposer", ErrForbidden)
	}
	now := a.now()
	d.ApprovedBy, d.ApprovedAt, d.Note = who.Person(), now.UTC(), strings.TrimSpace(note)
	d.Status = OpeningRejected
	if approve {
		d.Status = OpeningOpened
		for _, pid := range d.Packages {
			res := OpeningResult{Package: pid}
			p, err := a.openOne(ctx, &d, pid, now)
			if p != nil {
				res.ArchivalCode = p.ArchivalCode
			}
			if err != nil {
				res.Error = err.Error()
				a.log.Warn("record not opened", "decision", d.ID, "package", pid, "err", err)
			} else {
				res.Opened = true
			}
			d.Results = append(d.Results, res)
		}
	} else if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeOpening, Actor: who.Person(), Subject: "opening/" + d.ID,
		Attrs: map[string]string{"status": d.Status, "note": d.Note}}); err != nil {
		return nil, err
	}
	if err := a.index.PutRecords(index.Rec{Bucket: index.Openings, Key: d.ID, Value: &d},
		index.Rec{Bucket: index.OpeningPending, Key: d.ID}); err != nil {
		return nil, err
	}
	a.log.Info("opening decided", "decision", d.ID, "status", d.Status, "by", d.ApprovedBy)
	return &d, nil
}

// openOne makes a record's public copy, stores it, marks the record open and logs it.
func (a *Archive) openOne(ctx context.Context, d *OpeningDecision, id string, now time.Time) (*index.Package, error) {
	p, err := a.index.Package(id)
	if err != nil {
		return nil, err
	}
	if err := a.openable(p, now); err != nil {
		return p, err
	}
	pc, err := a.publicCopy(ctx, p, d, now)
	if err != nil {
		return p, err
	}
	b, err := json.MarshalIndent(pc, "", " ")
	if err != nil {
		return p, err
	}
	key := "open/" + p.ID + ".json"
	a.store.Delete(ctx, key) // a copy left by a closing whose delete failed
	if _, err := a.store.Put(ctx, key, bytes.NewReader(b), int64(len(b)), storage.PutOptions{}); err != nil {
		return p, fmt.Errorf("%w: store the public copy: %v", ErrUnavailable, err)
	}
	mark := &index.OpenMark{At: now.UTC(), Decision: d.ID, Copy: key, Policy: pc.Policy, Removed: pc.Removed, Title: pc.Title}
	if _, err := a.index.UpdatePackage(p.ID, func(q *index.Package) error { q.Opened = mark; return nil }); err != nil {
		a.discard(ctx, key)
		return p, err
	}
	attrs := map[string]string{"decision": d.ID, "policy": pc.Policy, "copy": key}
	for kind, n := range pc.Removed {
		attrs["removed:"+kind] = strconv.Itoa(n)
	}
	return p, a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeOpened, Actor: d.ApprovedBy, Subject: p.ID, Digest: p.PackageSM3, Attrs: attrs})
}

// publicCopy derives the public copy of a record: its description without the fields the
// policy leaves out, and each document's text (the archival rendition's) with personal
// data removed. The applicant's name and ID number as the case recorded them are removed
// wherever they appear.
func (a *Archive) publicCopy(ctx context.Context, p *index.Package, d *OpeningDecision, now time.Time) (*PublicCopy, error) {
	var known []string
	if ct, err := a.caseText(p.ID); err == nil && ct != nil {
		known = append(known, ct.Applicant, ct.ApplicantID)
	}
	if _, scan, err := a.Metadata(ctx, Principal{Role: RoleArchive, Name: d.ApprovedBy, Purpose: "开放鉴定：生成公开副本 " + d.ID}, p.ID); err == nil {
		for _, n := range scan.Notes {
			if k, v, ok := strings.Cut(n, "："); ok && a.redaction.Drops(k) {
				known = append(known, v)
			}
		}
	} else {
		return nil, err
	}
	pc := &PublicCopy{Format: PublicCopyFormat, Redacted: true, Notice: publicNotice, Package: p.ID, ArchivalCode: p.ArchivalCode,
		Department: p.DepartmentName, Year: p.Year, Retention: p.Retention, ItemName: p.ItemName, FinishedAt: p.FinishedAt,
		OpenedAt: now.UTC(), Decision: d.ID, Policy: a.redaction.Version, Removed: map[string]int{}, Left: a.redaction.Metadata}
	add := func(removed map[string]int) {
		for k, n := range removed {
			pc.Removed[k] += n
		}
	}
	var removed map[string]int
	pc.Title, removed = a.redaction.Text(p.Title, known)
	add(removed)
	for _, doc := range p.Documents {
		pd := PublicDocument{N: doc.N}
		pd.Title, removed = a.redaction.Text(doc.Title, known)
		add(removed)
		if len(doc.Encoded) == 0 {
			continue
		}
		e := doc.Encoded[0]
		rc, err := a.getPinnedRange(ctx, p.Key, p.Version, e.DataOffset, e.DataLength)
		if err != nil {
			return nil, fmt.Errorf("%w: read document %d: %v", ErrUnavailable, doc.N, err)
		}
		s, err := text.Extract(ctx, base64.NewDecoder(base64.StdEncoding, newlineStripper{rc}), e.MIME)
		rc.Close()
		switch {
		case errors.Is(err, text.ErrUnsupported):
			pd.Note = "本文件没有可公开的文字（" + e.MIME + "），不提供。 No text to show."
		case err != nil:
			return nil, fmt.Errorf("the text of document %d: %w", doc.N, err)
		default:
			pd.Text, removed = a.redaction.Text(s, known)
			add(removed)
		}
		pc.Documents = append(pc.Documents, pd)
	}
	return pc, nil
}

// CloseOpening closes an opened record again (an archivist, with a reason): its public copy
// is removed and the public endpoints answer 404.
func (a *Archive) CloseOpening(ctx context.Context, who Principal, id, reason string) (*index.Package, error) {
	if who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: opening records to the public is the archive's", ErrForbidden)
	}
	if err := useText("reason", reason, true, 500); err != nil {
		return nil, err
	}
	a.openingMu.Lock()
	defer a.openingMu.Unlock()
	p, err := a.index.PackageRecord(id)
	if errors.Is(err, index.ErrNotFound) {
		return nil, fieldErr("package", fmt.Errorf("package %s: %w", id, ErrNotFound))
	} else if err != nil {
		return nil, err
	}
	if p.Opened == nil {
		return nil, fieldErr("package", fmt.Errorf("%w: %s is not open", ErrState, p.ArchivalCode))
	}
	mark := p.Opened
	if p, err = a.index.UpdatePackage(id, func(q *index.Package) error { q.Opened = nil; return nil }); err != nil {
		return nil, err
	}
	if err := a.store.Delete(ctx, mark.Copy); err != nil && !errors.Is(err, storage.ErrNotFound) {
		a.log.Error("remove the public copy of a closed record", "package", id, "key", mark.Copy, "err", err)
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeOpeningClosed, Actor: who.Person(), Subject: id, Digest: p.PackageSM3,
		Attrs: map[string]string{"decision": mark.Decision, "reason": strings.TrimSpace(reason)}}); err != nil {
		return nil, err
	}
	a.log.Info("opening closed", "package", id, "by", who.Person())
	return p, nil
}

// OpeningDecisions lists decisions, oldest first (archive, auditor); pending only with
// pending.
func (a *Archive) OpeningDecisions(ctx context.Context, who Principal, pending bool, cursor string, limit int) ([]OpeningDecision, string, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, "", err
	}
	if !pending {
		return listTimed(a.index, index.Openings, "", "", time.Time{}, time.Time{}, cursor, limit, func(d OpeningDecision) (time.Time, bool) {
			return d.ProposedAt, true
		})
	}
	var out []OpeningDecision
	err := a.index.ForEachVia(index.OpeningPending, "", "", index.Openings, func(_ string, data []byte) error {
		var d OpeningDecision
		if err := json.Unmarshal(data, &d); err != nil {
			return err
		}
		out = append(out, d)
		if len(out) == maxPage {
			return index.ErrStop
		}
		return nil
	})
	return out, "", err
}

// PublicCopy returns an opened record's public copy, to anyone; a record not open is
// ErrNotFound, whether or not it exists.
func (a *Archive) PublicCopy(ctx context.Context, id string) (*PublicCopy, error) {
	p, err := a.index.PackageRecord(id)
	if err != nil || p.Opened == nil {
		return nil, fmt.Errorf("open record %s: %w", id, ErrNotFound)
	}
	var pc PublicCopy
	if ok, err := a.getJSON(ctx, p.Opened.Copy, &pc); err != nil || !ok {
		return nil, fmt.Errorf("%w: the public copy of %s: %v (stored: %v)", ErrUnavailable, id, err, ok)
	}
	a.log.Info("public copy read", "package", id)
	return &pc, nil
}

// OpenHit is an opened record as the public search lists it.
type OpenHit struct {
	Package      string    `json:"package"`
	ArchivalCode string    `json:"archival_code"`
	Title        string    `json:"title"`
	Department   string    `json:"department"`
	Year         int       `json:"year"`
	ItemName     string    `json:"item_name"`
	OpenedAt     time.Time `json:"opened_at"`
}

// OpenResult is one page of the public search.
type OpenResult struct {
	Total uint64    `json:"total"`
	Hits  []OpenHit `json:"hits"`
	Next  string    `json:"next,omitempty"`
}

// SearchOpen is the public search: opened records only, words matched against the
// record's text but no fragment returned (the public reads the redacted copy), and titles
// from the public copy's redaction.
func (a *Archive) SearchOpen(ctx context.Context, words, cursor string, limit int) (*OpenResult, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	if a.search == nil || !a.search.ready.Load() {
		return nil, ErrSearchNotReady
	}
	res, err := a.search.ix.Search(ctx, search.Query{Words: words, OpenOnly: true, Cursor: cursor, Limit: limit})
	if errors.Is(err, search.ErrBadQuery) {
		return nil, fieldErr("q", fmt.Errorf("%w: %w", ErrInvalidCase, err))
	} else if err != nil {
		return nil, err
	}
	out := &OpenResult{Total: res.Total, Next: res.Next, Hits: []OpenHit{}}
	for _, h := range res.Hits {
		p, err := a.index.PackageRecord(h.ID)
		if err != nil || p.Opened == nil {
			continue // closed since it was indexed
		}
		out.Hits = append(out.Hits, OpenHit{Package: p.ID, ArchivalCode: p.ArchivalCode, Title: p.Opened.Title, Department: p.DepartmentName,
			Year: p.Year, ItemName: p.ItemName, OpenedAt: p.Opened.At})
	}
	return out, nil
}

// RemovedKinds are a public copy's removals in a stable order, for pages.
func (pc *PublicCopy) RemovedKinds() []string { return slices.Sorted(maps.Keys(pc.Removed)) }

// restoreOpenings marks open again the records whose public copy is stored but whose index
// entry does not say so (an index rebuilt from storage): a closed record's copy is removed
// when it is closed, so what is stored is what is open.
func (a *Archive) restoreOpenings(ctx context.Context) (int, error) {
	n := 0
	err := a.store.List(ctx, "open/", func(o storage.ObjectInfo) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, "open/"), ".json")
		if !ok {
			return nil
		}
		p, err := a.index.PackageRecord(id)
		if err != nil || p.Opened != nil {
			return nil // not (yet) in the index, or marked
		}
		var pc PublicCopy
		if _, err := a.getJSON(ctx, o.Key, &pc); err != nil {
			return err
		}
		if pc.Package != id {
			return fmt.Errorf("public copy %s is of package %q", o.Key, pc.Package)
		}
		mark := &index.OpenMark{At: pc.OpenedAt, Decision: pc.Decision, Copy: o.Key, Policy: pc.Policy, Removed: pc.Removed, Title: pc.Title}
		if _, err := a.index.UpdatePackage(id, func(q *index.Package) error { q.Opened = mark; return nil }); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
