package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Later transfer (延期移交). A department asks the county archive, with a reason, to take
// named permanent records later than they are due: the request is signed with the
// department's key and sent to the county archive (or carried there). The county archive
// decides on its own instance and signs its decision with its key. The department's
// schedule and its transfers of what is due count from the new date only once it holds
// that signed approval: one signed under its own root (by itself), unsigned, for another
// request or another department is refused.

// Formats of the signed documents.
const (
	DeferralRequestFormat  = "dangan-deferral-request/1"
	DeferralDecisionFormat = "dangan-deferral-decision/1"
)

// Deferral states, on the department's side and on the county archive's.
const (
	DeferralUnsent   = "unsent"   // the county archive has not received it yet
	DeferralSent     = "sent"     // waiting for the county archive's decision
	DeferralApproved = "approved" // the signed approval is held and applied
	DeferralRefused  = "refused"
	DeferralPending  = "pending" // the county archive's side: to decide
)

// DeferralItem is one permanent record of a request, with the date it is due now.
type DeferralItem struct {
	Package      string    `json:"package"`
	ArchivalCode string    `json:"archival_code"`
	Year         int       `json:"year"`
	Due          time.Time `json:"due"`
}

// DeferralRequest is what the department signs.
type DeferralRequest struct {
	Format     string         `json:"format"`
	ID         string         `json:"id"`
	Department string         `json:"department"`
	Archive    string         `json:"archive"` // the department's archive, the sender
	Items      []DeferralItem `json:"items"`
	Until      int            `json:"until"` // the year by whose end the records will be transferred
	Reason     string         `json:"reason"`
	Issued     time.Time      `json:"issued"`
}

// DeferralDecision is what the county archive signs.
type DeferralDecision struct {
	Format     string    `json:"format"`
	Request    string    `json:"request"`
	RequestSM3 string    `json:"request_sm3"`
	Department string    `json:"department"`
	Packages   []string  `json:"packages"`
	Approved   bool      `json:"approved"`
	Until      int       `json:"until,omitempty"` // the year approved, when approved
	Reason     string    `json:"reason"`
	DecidedBy  string    `json:"decided_by"`
	Decided    time.Time `json:"decided"`
	Archive    string    `json:"archive"` // the county archive
}

// Deferral is a request as the department's archive keeps it.
type Deferral struct {
	ID         string  `json:"id"`
	Department string  `json:"department"`
	Status     string  `json:"status"`
	Request    *Signed `json:"request"`
	Decision   *Signed `json:"decision,omitempty"`
	Error      string  `json:"error,omitempty"` // why it was not sent, or a decision not taken
}

// DeferralCase is a request as the county archive keeps it.
type DeferralCase struct {
	ID         string  `json:"id"`
	Department string  `json:"department"`
	Status     string  `json:"status"`
	Request    *Signed `json:"request"`
	Decision   *Signed `json:"decision,omitempty"`
	Received   string  `json:"received"`
}

// DeferralInput is a department's request as it is asked for.
type DeferralInput struct {
	Department string   `json:"department,omitempty"` // the archive role names it
	Packages   []string `json:"packages"`
	Until      int      `json:"until"`
	Reason     string   `json:"reason"`
}

// maxDeferral bounds the records of one request.
const maxDeferral = 1000

// RequestDeferral makes and signs a request for a later transfer of a department's
// permanent records and sends it to the county archive when one is configured (unsent
// otherwise: CheckDeferral sends it again, or the signed request is carried over).
func (a *Archive) RequestDeferral(ctx context.Context, who Principal, in DeferralInput) (*Deferral, error) {
	dept, err := departmentScope(who, in.Department, "records", RoleArchive)
	if err != nil {
		return nil, err
	}
	if dept == "" {
		return nil, fieldErr("department", fmt.Errorf("%w: name the department", ErrInvalidCase))
	}
	if err := useText("reason", in.Reason, true, 1000); err != nil {
		return nil, err
	}
	if len(in.Packages) == 0 || len(in.Packages) > maxDeferral {
		return nil, fieldErr("packages", fmt.Errorf("%w: 1 to %d permanent records", ErrInvalidCase, maxDeferral))
	}
	now := a.now()
	req := &DeferralRequest{Format: DeferralRequestFormat, ID: newUseID(now), Department: dept, Archive: a.cfg.ArchiveName,
		Until: in.Until, Reason: strings.TrimSpace(in.Reason), Issued: now.UTC()}
	name := ""
	for i, id := range in.Packages {
		p, err := a.index.PackageRecord(id)
		if err != nil || p.Department != dept {
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("package %s: %w", id, ErrNotFound))
		}
		switch {
		case p.Retention != "Y" || p.Source != "":
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("%w: %s is not a permanent record formed here", ErrInvalidCase, p.ArchivalCode))
		case p.Transfer != nil || p.Tombstone != nil:
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("%w: %s was transferred or destroyed", ErrState, p.ArchivalCode))
		}
		due := a.transferDueOf(p)
		if in.Until < due.In(eep.CST()).Year() || in.Until > due.In(eep.CST()).Year()+20 {
			return nil, fieldErr("until", fmt.Errorf("%w: until is a year after %s's due date (%s), at most 20 years later",
				ErrInvalidCase, p.ArchivalCode, due.Format(time.DateOnly)))
		}
		if slices.ContainsFunc(req.Items, func(it DeferralItem) bool { return it.Package == p.ID }) {
			continue
		}
		req.Items = append(req.Items, DeferralItem{Package: p.ID, ArchivalCode: p.ArchivalCode, Year: p.Year, Due: due})
		name = p.DepartmentName
	}
	id, err := a.pki.Department(dept, name)
	if err != nil {
		return nil, fmt.Errorf("department signing identity: %w", err)
	}
	signed, err := sign(id, req)
	if err != nil {
		return nil, err
	}
	d := &Deferral{ID: req.ID, Department: dept, Status: DeferralUnsent, Request: signed}
	if err := a.putJSON(ctx, "deferrals/"+d.ID+"/request.json", signed); err != nil {
		return nil, err
	}
	if err := a.index.PutRecord(index.Deferrals, d.ID, d); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeDeferral, Actor: who.Person(), Subject: "deferral/" + d.ID, Digest: signed.SM3(),
		Attrs: map[string]string{"role": "requester", "department": dept, "packages": strconv.Itoa(len(req.Items)), "until": strconv.Itoa(req.Until), "reason": req.Reason}}); err != nil {
		return nil, err
	}
	a.log.Info("later transfer requested", "deferral", d.ID, "department", dept, "packages", len(req.Items), "until", req.Until)
	if a.cfg.County != nil {
		return a.CheckDeferral(ctx, who, d.ID)
	}
	return d, nil
}

// transferDueOf is when a permanent record is due at the county archive: from its year, or
// from an approved later date.
func (a *Archive) transferDueOf(p *index.Package) time.Time {
	if p.Deferral != nil {
		return a.TransferDue(p.Deferral.CountFrom)
	}
	return a.TransferDue(p.Year)
}

// Deferral returns a request of the department's archive (the department, the archive).
func (a *Archive) Deferral(ctx context.Context, who Principal, id string) (*Deferral, error) {
	var d Deferral
	if err := a.index.Record(index.Deferrals, id, &d); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("deferral %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if _, err := departmentScope(who, d.Department, "records", RoleArchive, RoleAuditor); err != nil {
		return nil, fmt.Errorf("deferral %s: %w", id, ErrNotFound)
	}
	return &d, nil
}

// Deferrals lists the department's archive's requests, oldest first.
func (a *Archive) Deferrals(ctx context.Context, who Principal, cursor string, limit int) ([]Deferral, string, error) {
	dept, err := departmentScope(who, "", "records", RoleArchive, RoleAuditor)
	if err != nil {
		return nil, "", err
	}
	return listTimed(a.index, index.Deferrals, "", "", time.Time{}, time.Time{}, cursor, limit, func(d Deferral) (time.Time, bool) {
		return time.Time{}, dept == "" || d.Department == dept
	})
}

// CheckDeferral sends an unsent request to the county archive and takes its decision when
// it has one.
func (a *Archive) CheckDeferral(ctx context.Context, who Principal, id string) (*Deferral, error) {
	d, err := a.Deferral(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if a.cfg.County == nil {
		return nil, fmt.Errorf("%w: no county archive is configured: carry the signed request there and its decision back", ErrState)
	}
	if d.Status == DeferralUnsent {
		var c DeferralCase
		err := a.cfg.County.call(ctx, http.MethodPost, "/api/v1/deferral-requests", "application/json", jsonBody(d.Request), &c)
		if err != nil {
			d.Error = err.Error()
			if perr := a.index.PutRecord(index.Deferrals, d.ID, d); perr != nil {
				return nil, perr
			}
			return d, nil
		}
		d.Status, d.Error = DeferralSent, ""
		if err := a.index.PutRecord(index.Deferrals, d.ID, d); err != nil {
			return nil, err
		}
	}
	if d.Status != DeferralSent {
		return d, nil
	}
	var c DeferralCase
	if err := a.cfg.County.call(ctx, http.MethodGet, "/api/v1/deferral-requests/"+url.PathEscape(d.ID), "", nil, &c); err != nil {
		return nil, fmt.Errorf("%w: the county archive: %v", ErrUnavailable, err)
	}
	if c.Decision == nil {
		return d, nil
	}
	return a.ApplyDeferral(ctx, who, d.ID, c.Decision)
}

// ApplyDeferral takes the county archive's signed decision on a request. It must be signed
// by an archive's key chaining to another archive's root than this one's, be for this
// request (its SM3) and department; an approval then moves the records' due date.
func (a *Archive) ApplyDeferral(ctx context.Context, who Principal, id string, signed *Signed) (*Deferral, error) {
	d, err := a.Deferral(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if who.Role == RoleAuditor {
		return nil, fmt.Errorf("%w: auditors read deferrals", ErrForbidden)
	}
	if d.Status == DeferralApproved || d.Status == DeferralRefused {
		return nil, fmt.Errorf("%w: deferral %s is %s", ErrState, id, d.Status)
	}
	dec, err := a.takeDecision(d, signed)
	if err != nil {
		return nil, err
	}
	if err := a.putJSON(ctx, "deferrals/"+d.ID+"/decision.json", signed); err != nil {
		return nil, err
	}
	if err := a.index.PutRecord(index.Deferrals, d.ID, d); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeDeferral, Actor: who.Person(), Subject: "deferral/" + d.ID, Digest: signed.SM3(),
		Attrs: map[string]string{"role": "requester", "status": d.Status, "until": strconv.Itoa(dec.Until), "decided_by": dec.Archive}}); err != nil {
		return nil, err
	}
	a.log.Info("later transfer decided", "deferral", d.ID, "status", d.Status, "until", dec.Until, "by", dec.Archive)
	return d, nil
}

// othersTrust is the pool of the other archives' roots: what a decision of the county
// archive chains to, and what this archive's own keys do not.
func (a *Archive) othersTrust() *smx509.CertPool {
	return signing.NewPool(a.pki.Extra...)
}

// ReceiveDeferral records a department's signed request at the county archive: signed by
// that department's key, chaining to a trusted root, sent with its token.
func (a *Archive) ReceiveDeferral(ctx context.Context, who Principal, signed *Signed) (*DeferralCase, error) {
	if who.Role != RoleDepartment && who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: requests for a later transfer come from a department's archive, with its token", ErrForbidden)
	}
	var req DeferralRequest
	cert, err := signed.Verify(a.Trust(), a.now(), &req)
	if err != nil {
		return nil, fieldErr("request", fmt.Errorf("%w: %v", ErrInvalidCase, err))
	}
	switch {
	case req.Format != DeferralRequestFormat || !recordIDRe.MatchString(req.ID) || len(req.Items) == 0 || len(req.Items) > maxDeferral:
		return nil, fieldErr("request", fmt.Errorf("%w: not a request for a later transfer", ErrInvalidCase))
	case cert.Subject.SerialNumber != req.Department:
		return nil, fieldErr("request", fmt.Errorf("%w: the request of department %s is signed by %q", ErrInvalidCase, req.Department, cert.Subject.CommonName))
	case who.Role == RoleDepartment && who.Org != req.Department:
		return nil, fmt.Errorf("%w: requests of department %s are sent with its own token", ErrForbidden, req.Department)
	}
	c := &DeferralCase{ID: req.ID, Department: req.Department, Status: DeferralPending, Request: signed, Received: a.now().UTC().Format(time.RFC3339)}
	c, created, err := keepOnce(a.index, index.DeferralRequests, req.ID, c, func(c *DeferralCase) *Signed { return c.Request })
	if err != nil {
		return nil, err
	}
	if err := a.putJSON(ctx, "deferral-requests/"+req.ID+"/request.json", signed); err != nil {
		return nil, err
	}
	if created {
		if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeDeferral, Actor: who.Person(), Subject: "deferral/" + req.ID, Digest: signed.SM3(),
			Attrs: map[string]string{"role": "county", "status": c.Status, "department": req.Department, "packages": strconv.Itoa(len(req.Items)), "until": strconv.Itoa(req.Until)}}); err != nil {
			return nil, err
		}
		a.log.Info("later transfer request received", "deferral", req.ID, "department", req.Department, "packages", len(req.Items))
	}
	return c, nil
}

// DeferralRequestFor returns a received request (the archive; the department its own).
func (a *Archive) DeferralRequestFor(ctx context.Context, who Principal, id string) (*DeferralCase, error) {
	var c DeferralCase
	if err := a.index.Record(index.DeferralRequests, id, &c); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("deferral request %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if _, err := departmentScope(who, c.Department, "records", RoleArchive, RoleAuditor); err != nil {
		return nil, fmt.Errorf("deferral request %s: %w", id, ErrNotFound)
	}
	return &c, nil
}

// DeferralRequests lists received requests, oldest first (the archive, auditors; a
// department its own).
func (a *Archive) DeferralRequests(ctx context.Context, who Principal, cursor string, limit int) ([]DeferralCase, string, error) {
	dept, err := departmentScope(who, "", "records", RoleArchive, RoleAuditor)
	if err != nil {
		return nil, "", err
	}
	return listTimed(a.index, index.DeferralRequests, "", "", time.Time{}, time.Time{}, cursor, limit, func(c DeferralCase) (time.Time, bool) {
		return time.Time{}, dept == "" || c.Department == dept
	})
}

// DecideDeferral is the county archive's decision on a received request, signed with its
// key: approved until a year (the one asked for, or another), or refused, with a reason.
func (a *Archive) DecideDeferral(ctx context.Context, who Principal, id string, approve bool, until int, reason string) (*DeferralCase, error) {
	if who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: the county archive decides a later transfer", ErrForbidden)
	}
	if err := useText("reason", reason, true, 1000); err != nil {
		return nil, err
	}
	a.transferMu.Lock()
	defer a.transferMu.Unlock()
	c, err := a.DeferralRequestFor(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if c.Status != DeferralPending {
		return nil, fmt.Errorf("%w: deferral request %s is %s", ErrState, id, c.Status)
	}
	var req DeferralRequest
	if err := json.Unmarshal([]byte(c.Request.Body), &req); err != nil {
		return nil, err
	}
	dec := DeferralDecision{Format: DeferralDecisionFormat, Request: req.ID, RequestSM3: c.Request.SM3(), Department: req.Department,
		Approved: approve, Reason: strings.TrimSpace(reason), DecidedBy: who.Person(), Decided: a.now().UTC(), Archive: a.cfg.ArchiveName}
	for _, it := range req.Items {
		dec.Packages = append(dec.Packages, it.Package)
	}
	if approve {
		dec.Until = req.Until
		if until != 0 {
			if until < req.Items[0].Due.In(eep.CST()).Year() || until > req.Until+20 {
				return nil, fieldErr("until", fmt.Errorf("%w: until is a year from the records' due date", ErrInvalidCase))
			}
			dec.Until = until
		}
	}
	signed, err := sign(a.pki.Archive, dec)
	if err != nil {
		return nil, err
	}
	if err := a.putJSON(ctx, "deferral-requests/"+c.ID+"/decision.json", signed); err != nil {
		return nil, err
	}
	c.Decision = signed
	c.Status = DeferralRefused
	if approve {
		c.Status = DeferralApproved
	}
	if err := a.index.PutRecord(index.DeferralRequests, c.ID, c); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeDeferral, Actor: who.Person(), Subject: "deferral/" + c.ID, Digest: signed.SM3(),
		Attrs: map[string]string{"role": "county", "status": c.Status, "department": c.Department, "until": strconv.Itoa(dec.Until), "reason": dec.Reason}}); err != nil {
		return nil, err
	}
	a.log.Info("later transfer decided", "deferral", c.ID, "status", c.Status, "until", dec.Until, "by", dec.DecidedBy)
	return c, nil
}

// takeDecision verifies the county archive's signed decision on d and applies it: d's
// status, and for an approval the records' new due date. It must be signed by an archive's
// key under another root than this archive's, for this request (its SM3) and department.
func (a *Archive) takeDecision(d *Deferral, signed *Signed) (*DeferralDecision, error) {
	var dec DeferralDecision
	if signed == nil || len(signed.Signature) == 0 {
		return nil, fieldErr("decision", fmt.Errorf("%w: the decision is not signed", ErrBadSignature))
	}
	cert, err := signed.Verify(a.othersTrust(), a.now(), &dec)
	if err != nil {
		return nil, fieldErr("decision", fmt.Errorf("%w (a decision is signed by the county archive, under its own root)", err))
	}
	var req DeferralRequest
	json.Unmarshal([]byte(d.Request.Body), &req)
	switch {
	case cert.Subject.SerialNumber != "":
		return nil, fieldErr("decision", fmt.Errorf("%w: signed by %q, a department, not an archive", ErrBadSignature, cert.Subject.CommonName))
	case dec.Format != DeferralDecisionFormat || dec.Request != d.ID || dec.RequestSM3 != d.Request.SM3() || dec.Department != d.Department:
		return nil, fieldErr("decision", fmt.Errorf("%w: the decision is for request %s (%s) of %s, not this one", ErrBadSignature, dec.Request, dec.RequestSM3, dec.Department))
	case dec.Approved && (dec.Until < req.Until-20 || dec.Until > req.Until+20):
		return nil, fieldErr("decision", fmt.Errorf("%w: an approval until %d", ErrBadSignature, dec.Until))
	}
	d.Decision, d.Error = signed, ""
	d.Status = DeferralRefused
	if dec.Approved {
		d.Status = DeferralApproved
		mark := &index.DeferralMark{Until: dec.Until, CountFrom: dec.Until - a.cfg.TransferYears, Request: d.ID, DecisionSM3: signed.SM3(),
			By: dec.Archive + " (" + cert.Subject.CommonName + ")"}
		ids := slices.DeleteFunc(slices.Clone(dec.Packages), func(id string) bool {
			return !slices.ContainsFunc(req.Items, func(it DeferralItem) bool { return it.Package == id })
		})
		if err := a.index.UpdatePackages(ids, func(p *index.Package) error {
			if p.Transfer == nil && p.Tombstone == nil {
				p.Deferral = mark
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return &dec, nil
}

// restoreDeferrals brings back into the index the later transfers it lacks (an index
// rebuilt from storage), from their signed documents: the department's requests with the
// decisions it took, and the requests the county archive received with its decisions.
func (a *Archive) restoreDeferrals(ctx context.Context) (int, error) {
	n := 0
	load := func(key string) (*Signed, error) {
		var s Signed
		if ok, err := a.getJSON(ctx, key, &s); !ok || err != nil {
			return nil, err
		}
		return &s, nil
	}
	each := func(prefix, bucket string, restore func(id string, req, dec *Signed) (any, error)) error {
		return a.store.List(ctx, prefix, func(o storage.ObjectInfo) error {
			id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, prefix), "/request.json")
			if !ok {
				return nil
			}
			var have json.RawMessage
			if a.index.Record(bucket, id, &have) == nil {
				return nil
			}
			req, err := load(o.Key)
			if err != nil || req == nil {
				return err
			}
			dec, err := load(prefix + id + "/decision.json")
			if err != nil {
				return err
			}
			rec, err := restore(id, req, dec)
			if err != nil {
				return err
			}
			n++
			return a.index.PutRecord(bucket, id, rec)
		})
	}
	err := each("deferrals/", index.Deferrals, func(id string, req, dec *Signed) (any, error) {
		var r DeferralRequest
		json.Unmarshal([]byte(req.Body), &r)
		d := &Deferral{ID: id, Department: r.Department, Status: DeferralSent, Request: req}
		if dec != nil {
			if _, err := a.takeDecision(d, dec); err != nil {
				d.Error = err.Error()
			}
		}
		return d, nil
	})
	if err != nil {
		return n, err
	}
	err = each("deferral-requests/", index.DeferralRequests, func(id string, req, dec *Signed) (any, error) {
		var r DeferralRequest
		json.Unmarshal([]byte(req.Body), &r)
		c := &DeferralCase{ID: id, Department: r.Department, Status: DeferralPending, Request: req, Decision: dec}
		if dec != nil {
			var d DeferralDecision
			json.Unmarshal([]byte(dec.Body), &d)
			c.Status = map[bool]string{true: DeferralApproved, false: DeferralRefused}[d.Approved]
		}
		return c, nil
	})
	return n, err
}
