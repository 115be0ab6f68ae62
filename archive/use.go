package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/search"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Use requests (利用申请). A department asks to read another department's 有条件共享
// packages, named or found by a search of the owner's records, for a purpose and until a
// date. The owning department or the archive approves it, narrows it (fewer packages, an
// earlier end) or refuses it, with a reason. An approval is a grant: until it ends or is
// revoked, the requesting department finds those packages in its searches of shared
// records and reads them, stating a purpose. Every request, decision, revocation, expiry and
// shared read is an event in the log; the requests are records auditors list.
//
// A department holds at most one grant per package: a later approval for the same package
// replaces the earlier one's, and ending either request ends that package's grant.

// Use request states and decision actions.
const (
	UsePending  = "pending"
	UseApproved = "approved" // its grants run until the decision's end
	UseRefused  = "refused"
	UseRevoked  = "revoked"
	UseExpired  = "expired"

	UseApprove = "approve"
	UseNarrow  = "narrow"
	UseRefuse  = "refuse"
)

const (
	maxUsePackages = 1000                 // packages one request may name or a search may grant
	maxUsePeriod   = 366 * 24 * time.Hour // the longest period a request may ask for
)

// UseRequest is a 利用申请 with its outcome.
type UseRequest struct {
	ID          string         `json:"id"`
	Requester   string         `json:"requester"` // the asking department's USCC
	RequestedBy string         `json:"requested_by"`
	Owner       string         `json:"owner"`              // the department whose records are asked for
	Packages    []string       `json:"packages,omitempty"` // named: package ids or 档号
	Words       string         `json:"words,omitempty"`    // or found: a search of the owner's records
	Purpose     string         `json:"purpose"`
	Until       time.Time      `json:"until"` // the end of the period wanted
	CreatedAt   time.Time      `json:"created_at"`
	Status      string         `json:"status"`
	Decision    *UseDecision   `json:"decision,omitempty"`
	Revocation  *UseRevocation `json:"revocation,omitempty"`
	ExpiredAt   time.Time      `json:"expired_at,omitzero"`
}

// UseDecision is the owner's or the archive's answer to a request.
type UseDecision struct {
	Action   string    `json:"action"` // approve, narrow or refuse
	Reason   string    `json:"reason,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Packages []string  `json:"packages,omitempty"` // the package ids granted
	Until    time.Time `json:"until,omitzero"`     // when the grant ends
}

// UseRevocation ends a grant before its time.
type UseRevocation struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Grant lets a department read one package of another's until it ends.
type Grant struct {
	Request string    `json:"request"`
	Until   time.Time `json:"until"`
}

// UseRequestInput is a request as a department sends it.
type UseRequestInput struct {
	Owner    string    `json:"owner"`
	Packages []string  `json:"packages,omitempty"`
	Words    string    `json:"words,omitempty"`
	Purpose  string    `json:"purpose"`
	Until    time.Time `json:"until"`
}

// UseDecisionInput is a decision as the owner or the archive sends it. Narrow names the
// packages kept (of those the request asked for) and may end earlier.
type UseDecisionInput struct {
	Action   string    `json:"action"`
	Packages []string  `json:"packages,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	Reason   string    `json:"reason,omitempty"`
}

// recordIDRe is the shape of the ids newUseID makes: the time, then randomness. Ids another
// archive sends (later-transfer requests, reports) are checked against it before they name
// a record or an object.
var recordIDRe = regexp.MustCompile(`^[0-9]{20}-[0-9a-f]{8}$`)

func newUseID(now time.Time) string {
	r := make([]byte, 4)
	rand.Read(r)
	return fmt.Sprintf("%020d-%s", now.UnixNano(), hex.EncodeToString(r))
}

func useText(field, v string, required bool, max int) error {
	switch {
	case strings.TrimSpace(v) == "" && required:
		return fieldErr(field, fmt.Errorf("%w: %s is required", ErrInvalidCase, field))
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > max:
		return fieldErr(field, fmt.Errorf("%w: %s is longer than %d characters or not UTF-8", ErrInvalidCase, field, max))
	}
	return nil
}

// RequestUse records a department's request to read another department's packages.
func (a *Archive) RequestUse(ctx context.Context, who Principal, in UseRequestInput) (*UseRequest, error) {
	if who.Role != RoleDepartment {
		return nil, fmt.Errorf("%w: use requests are made by departments", ErrForbidden)
	}
	now := a.now()
	switch {
	case CheckUSCC(in.Owner) != nil:
		return nil, fieldErr("owner", fmt.Errorf("%w: owner is the USCC of the department whose records are asked for", ErrInvalidCase))
	case in.Owner == who.Org:
		return nil, fieldErr("owner", fmt.Errorf("%w: a department reads its own records without a request", ErrInvalidCase))
	case len(in.Packages) == 0 && strings.TrimSpace(in.Words) == "":
		return nil, fieldErr("packages", fmt.Errorf("%w: name packages (ids or 档号) or words to search the owner's records for", ErrInvalidCase))
	case len(in.Packages) > maxUsePackages:
		return nil, fieldErr("packages", fmt.Errorf("%w: at most %d packages a request", ErrInvalidCase, maxUsePackages))
	case !in.Until.After(now):
		return nil, fieldErr("until", fmt.Errorf("%w: until is the end of the period wanted, a future time", ErrInvalidCase))
	case in.Until.Sub(now) > maxUsePeriod:
		return nil, fieldErr("until", fmt.Errorf("%w: a request asks for at most a year", ErrInvalidCase))
	}
	if err := useText("purpose", in.Purpose, true, 500); err != nil {
		return nil, err
	}
	if err := useText("words", in.Words, false, 200); err != nil {
		return nil, err
	}
	var pkgs []string
	for i, p := range in.Packages {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 100 {
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("%w: a package id or 档号", ErrInvalidCase))
		}
		if !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	r := &UseRequest{ID: newUseID(now), Requester: who.Org, RequestedBy: who.Person(), Owner: in.Owner, Packages: pkgs,
		Words: strings.TrimSpace(in.Words), Purpose: strings.TrimSpace(in.Purpose), Until: in.Until.UTC(), CreatedAt: now.UTC(), Status: UsePending}
	if err := a.putJSON(ctx, "use/"+r.ID+"/request.json", r); err != nil {
		return nil, err
	}
	if err := a.index.PutRecords(useRecs(r)...); err != nil {
		return nil, err
	}
	// The words stay out of the event: they may name a person.
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeUseRequest, Actor: who.Person(), Subject: "use/" + r.ID,
		Attrs: map[string]string{"requester": r.Requester, "owner": r.Owner, "purpose": r.Purpose, "until": r.Until.Format(time.RFC3339),
			"packages": strconv.Itoa(len(r.Packages)), "by_search": strconv.FormatBool(r.Words != "")}}); err != nil {
		return nil, err
	}
	a.log.Info("use requested", "request", r.ID, "requester", r.Requester, "owner", r.Owner, "packages", len(r.Packages))
	return r, nil
}

// UseRequest returns one request to its requester, its owner, the archive or an auditor.
func (a *Archive) UseRequest(ctx context.Context, who Principal, id string) (*UseRequest, error) {
	var r UseRequest
	if err := a.index.Record(index.UseRequests, id, &r); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("use request %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	switch {
	case who.Role == RoleArchive, who.Role == RoleAuditor,
		who.Role == RoleDepartment && (who.Org == r.Requester || who.Org == r.Owner):
		return &r, nil
	}
	return nil, fmt.Errorf("use request %s: %w", id, ErrNotFound)
}

// UseFilter selects use requests: a department's as requester (the default) or as owner;
// the archive and auditors list all, or one department's either way.
type UseFilter struct {
	As         string // "requester" or "owner"
	Department string // for the archive and auditors
	Cursor     string
	Limit      int
}

// UseRequests lists requests, oldest first.
func (a *Archive) UseRequests(ctx context.Context, who Principal, f UseFilter) ([]UseRequest, string, error) {
	dept := f.Department
	switch who.Role {
	case RoleDepartment:
		if dept != "" && dept != who.Org {
			return nil, "", fieldErr("department", fmt.Errorf("%w: a department lists its own requests", ErrForbidden))
		}
		dept = who.Org
	case RoleArchive, RoleAuditor:
	default:
		return nil, "", fmt.Errorf("%w: use requests are listed by departments, the archive and auditors", ErrForbidden)
	}
	via := ""
	switch f.As {
	case "", "requester":
		if dept != "" {
			via = "r\x00" + dept + "\x00"
		}
	case "owner":
		if dept != "" {
			via = "o\x00" + dept + "\x00"
		}
	default:
		return nil, "", fieldErr("as", fmt.Errorf("%w: as is requester or owner", ErrInvalidCase))
	}
	return listTimed(a.index, index.UseRequests, index.UseKeys, via, time.Time{}, time.Time{}, f.Cursor, f.Limit, func(r UseRequest) (time.Time, bool) {
		return r.CreatedAt, true
	})
}

// decidableUse is the request, for who may decide it or end its grant: the owning
// department or the archive. The requester and auditors may not; anyone else does not see
// it. The caller holds useMu.
func (a *Archive) decidableUse(ctx context.Context, who Principal, id string) (*UseRequest, error) {
	r, err := a.UseRequest(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if who.Role == RoleArchive || who.Role == RoleDepartment && who.Org == r.Owner {
		return r, nil
	}
	return nil, fmt.Errorf("%w: the owning department or the archive decides a use request", ErrForbidden)
}

// DecideUse approves, narrows or refuses a pending request. An approval grants every
// package the request names or its search finds in the owner's records, until the end
// asked for; a package the request names that cannot be granted (another department's,
// 不予共享, destroyed, unknown) refuses the approval: narrow the request instead.
func (a *Archive) DecideUse(ctx context.Context, who Principal, id string, in UseDecisionInput) (*UseRequest, error) {
	a.useMu.Lock()
	defer a.useMu.Unlock()
	r, err := a.decidableUse(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if r.Status != UsePending {
		return nil, fmt.Errorf("%w: use request %s is %s", ErrState, id, r.Status)
	}
	now := a.now()
	d := &UseDecision{Action: in.Action, Reason: strings.TrimSpace(in.Reason), By: who.Person(), At: now.UTC()}
	if err := useText("reason", d.Reason, in.Action != UseApprove, 500); err != nil {
		return nil, err
	}
	switch in.Action {
	case UseRefuse:
		r.Status = UseRefused
	case UseApprove, UseNarrow:
		asked, err := a.usePackages(ctx, r, in.Action == UseApprove)
		if err != nil {
			return nil, err
		}
		d.Packages, d.Until = asked, r.Until
		if in.Action == UseNarrow {
			if d.Packages, err = narrowed(asked, in.Packages); err != nil {
				return nil, err
			}
			if !in.Until.IsZero() {
				if in.Until.After(r.Until) || !in.Until.After(now) {
					return nil, fieldErr("until", fmt.Errorf("%w: a narrowed grant ends after now and no later than asked (%s)", ErrInvalidCase, r.Until.Format(time.RFC3339)))
				}
				d.Until = in.Until.UTC()
			}
			if len(d.Packages) == len(asked) && d.Until.Equal(r.Until) {
				return nil, fieldErr("packages", fmt.Errorf("%w: a narrowed grant keeps fewer packages or ends earlier; to grant all, approve", ErrInvalidCase))
			}
		}
		if len(d.Packages) == 0 {
			return nil, fieldErr("packages", fmt.Errorf("%w: no package of the request can be granted: refuse it", ErrState))
		}
		if !d.Until.After(now) {
			return nil, fieldErr("until", fmt.Errorf("%w: the period asked for has ended: refuse the request", ErrState))
		}
		r.Status = UseApproved
	default:
		return nil, fieldErr("action", fmt.Errorf("%w: action is approve, narrow or refuse", ErrInvalidCase))
	}
	r.Decision = d
	if err := a.putJSON(ctx, "use/"+r.ID+"/decision.json", d); err != nil {
		return nil, err
	}
	if err := a.index.PutRecords(useRecs(r)...); err != nil {
		return nil, err
	}
	attrs := map[string]string{"requester": r.Requester, "owner": r.Owner, "action": d.Action, "status": r.Status}
	if d.Reason != "" {
		attrs["reason"] = d.Reason
	}
	if r.Status == UseApproved {
		// The record lists the packages; the event counts them and binds the list.
		sum := sm3.Sum([]byte(strings.Join(d.Packages, "\n")))
		attrs["granted"], attrs["granted_sm3"] = strconv.Itoa(len(d.Packages)), hex.EncodeToString(sum[:])
		attrs["until"] = d.Until.Format(time.RFC3339)
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeUseDecision, Actor: who.Person(), Subject: "use/" + r.ID, Attrs: attrs}); err != nil {
		return nil, err
	}
	a.log.Info("use request decided", "request", r.ID, "action", d.Action, "packages", len(d.Packages), "by", d.By)
	return r, nil
}

// usePackages are the ids of the packages a request asks for that can be granted: those it
// names that are the owner's, not destroyed and shared (a named one that is not is
// refused, with the field that names it, when strict: an approval grants all), and, for a
// search, those the search finds in the owner's records that are shared (up to
// maxUsePackages).
func (a *Archive) usePackages(ctx context.Context, r *UseRequest, strict bool) ([]string, error) {
	var out []string
	for i, name := range r.Packages {
		p, err := a.ownerPackage(ctx, r.Owner, name)
		if err == nil && p.Tombstone == nil && SharingClass(p.Sharing) != SharingNone {
			if !slices.Contains(out, p.ID) {
				out = append(out, p.ID)
			}
			continue
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if !strict {
			continue
		}
		why := "is not a package of the owning department"
		switch {
		case err != nil:
		case p.Tombstone != nil:
			why = "was destroyed"
		default:
			why = "is " + SharingNone
		}
		return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("%w: %s %s: narrow the request to leave it out", ErrState, name, why))
	}
	if r.Words == "" {
		return out, nil
	}
	if a.search == nil || !a.search.ready.Load() {
		return nil, ErrSearchNotReady
	}
	res, err := a.search.ix.Search(ctx, search.Query{Words: r.Words, Departments: []string{r.Owner}, Limit: maxUsePackages})
	if err != nil {
		return nil, fieldErr("words", fmt.Errorf("%w: %w", ErrInvalidCase, err))
	}
	for _, h := range res.Hits {
		p, err := a.index.PackageRecord(h.ID)
		if err != nil || p.Tombstone != nil || SharingClass(p.Sharing) == SharingNone || slices.Contains(out, p.ID) {
			continue
		}
		out = append(out, p.ID)
	}
	return out, nil
}

// ownerPackage finds a package of the owner by id or by 档号.
func (a *Archive) ownerPackage(ctx context.Context, owner, name string) (*index.Package, error) {
	p, err := a.index.PackageRecord(name)
	if errors.Is(err, index.ErrNotFound) && a.search != nil && a.search.ready.Load() {
		res, serr := a.search.ix.Search(ctx, search.Query{Exact: name, Departments: []string{owner}, Limit: 2})
		if serr == nil && len(res.Hits) == 1 {
			p, err = a.index.PackageRecord(res.Hits[0].ID)
		}
	}
	if errors.Is(err, index.ErrNotFound) || err == nil && p.Department != owner {
		return nil, fmt.Errorf("package %s: %w", name, ErrNotFound)
	}
	return p, err
}

// narrowed is keep (package ids) checked against the packages asked for.
func narrowed(asked, keep []string) ([]string, error) {
	if len(keep) == 0 {
		return asked, nil
	}
	var out []string
	for i, id := range keep {
		if !slices.Contains(asked, id) {
			return nil, fieldErr(fmt.Sprintf("packages[%d]", i), fmt.Errorf("%w: %s is not among the packages of the request that can be granted", ErrInvalidCase, id))
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

func expiryKey(until time.Time, id string) string {
	return "e\x00" + until.UTC().Format("20060102T150405Z") + "\x00" + id
}

// RevokeUse ends an approved request's grants now (the owner or the archive), with a reason.
func (a *Archive) RevokeUse(ctx context.Context, who Principal, id, reason string) (*UseRequest, error) {
	a.useMu.Lock()
	defer a.useMu.Unlock()
	r, err := a.decidableUse(ctx, who, id)
	if err != nil {
		return nil, err
	}
	if err := useText("reason", reason, true, 500); err != nil {
		return nil, err
	}
	if r.Status != UseApproved {
		return nil, fmt.Errorf("%w: use request %s is %s, not approved", ErrState, id, r.Status)
	}
	r.Status = UseRevoked
	r.Revocation = &UseRevocation{By: who.Person(), At: a.now().UTC(), Reason: strings.TrimSpace(reason)}
	if err := a.putJSON(ctx, "use/"+r.ID+"/revocation.json", r.Revocation); err != nil {
		return nil, err
	}
	if err := a.endGrants(r); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeUseRevoked, Actor: who.Person(), Subject: "use/" + r.ID,
		Attrs: map[string]string{"requester": r.Requester, "owner": r.Owner, "reason": r.Revocation.Reason}}); err != nil {
		return nil, err
	}
	a.log.Info("use grant revoked", "request", r.ID, "by", r.Revocation.By)
	return r, nil
}

// endGrants writes the request as it now is and removes its grants (those it still holds:
// a later request's grant for the same package is that request's) and its expiry key.
func (a *Archive) endGrants(r *UseRequest) error {
	recs := []index.Rec{{Bucket: index.UseRequests, Key: r.ID, Value: r},
		{Bucket: index.UseKeys, Key: expiryKey(r.Decision.Until, r.ID)}}
	for _, p := range r.Decision.Packages {
		var g Grant
		if err := a.index.Record(index.Grants, r.Requester+"\x00"+p, &g); err == nil && g.Request == r.ID {
			recs = append(recs, index.Rec{Bucket: index.Grants, Key: r.Requester + "\x00" + p})
		}
	}
	return a.index.PutRecords(recs...)
}

// ExpireGrants ends the grants whose time is up and logs each expiry; it returns how many
// requests it ended. The archive runs it every minute; a read that meets an ended grant is
// refused whether or not it has run.
func (a *Archive) ExpireGrants(ctx context.Context) (int, error) {
	now := a.now().UTC()
	var due []string
	end := "e\x00" + now.Format("20060102T150405Z") + "\x01"
	err := a.index.ForEachRecord(index.UseKeys, "e\x00", "", func(k string, _ []byte) error {
		if k >= end || len(due) == 100 {
			return index.ErrStop
		}
		due = append(due, k[strings.LastIndexByte(k, 0)+1:])
		return nil
	})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		if err := a.expireUse(ctx, id, now); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (a *Archive) expireUse(ctx context.Context, id string, now time.Time) error {
	a.useMu.Lock()
	defer a.useMu.Unlock()
	var r UseRequest
	if err := a.index.Record(index.UseRequests, id, &r); err != nil {
		return err
	}
	if r.Status != UseApproved || r.Decision == nil || r.Decision.Until.After(now) {
		return nil
	}
	r.Status, r.ExpiredAt = UseExpired, now
	if err := a.putJSON(ctx, "use/"+r.ID+"/expired.json", map[string]time.Time{"expired_at": now}); err != nil {
		return err
	}
	if err := a.endGrants(&r); err != nil {
		return err
	}
	a.log.Info("use grant expired", "request", r.ID)
	return a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeGrantExpired, Time: now, Actor: "archive", Subject: "use/" + r.ID,
		Attrs: map[string]string{"requester": r.Requester, "owner": r.Owner, "until": r.Decision.Until.Format(time.RFC3339)}})
}

// granted is the running grant that lets dept read package id, or nil.
func (a *Archive) granted(dept, id string) *Grant {
	var g Grant
	if err := a.index.Record(index.Grants, dept+"\x00"+id, &g); err != nil || !g.Until.After(a.now()) {
		return nil
	}
	return &g
}

// grantedIDs are the packages dept holds running grants for (at most maxGrantedSearch, in
// the order of their ids), for its searches of shared records.
func (a *Archive) grantedIDs(dept string) ([]string, error) {
	now := a.now()
	var ids []string
	prefix := dept + "\x00"
	err := a.index.ForEachRecord(index.Grants, prefix, "", func(k string, data []byte) error {
		var g Grant
		if json.Unmarshal(data, &g) == nil && g.Until.After(now) {
			ids = append(ids, k[len(prefix):])
		}
		if len(ids) == maxGrantedSearch {
			return index.ErrStop
		}
		return nil
	})
	return ids, err
}

// maxGrantedSearch bounds the granted packages one search of shared records looks among.
const maxGrantedSearch = 10000

// runGrantExpiry ends grants as their time comes, once a minute.
func (a *Archive) runGrantExpiry(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := a.ExpireGrants(ctx); err != nil {
				a.log.Warn("grant expiry", "err", err)
			}
		}
	}
}

// useRecs are a request's index records: the request, its lookups, and while it is
// approved its grants and its expiry key.
func useRecs(r *UseRequest) []index.Rec {
	one := json.RawMessage("1")
	recs := []index.Rec{{Bucket: index.UseRequests, Key: r.ID, Value: r},
		{Bucket: index.UseKeys, Key: "r\x00" + r.Requester + "\x00" + r.ID, Value: one},
		{Bucket: index.UseKeys, Key: "o\x00" + r.Owner + "\x00" + r.ID, Value: one}}
	if r.Status == UseApproved && r.Decision != nil {
		g := Grant{Request: r.ID, Until: r.Decision.Until}
		for _, p := range r.Decision.Packages {
			recs = append(recs, index.Rec{Bucket: index.Grants, Key: r.Requester + "\x00" + p, Value: g})
		}
		recs = append(recs, index.Rec{Bucket: index.UseKeys, Key: expiryKey(r.Decision.Until, r.ID), Value: one})
	}
	return recs
}

// restoreUseRequests brings back into the index the use requests it lacks (an index
// rebuilt from storage) from the documents each step stored: the request, its decision,
// and a revocation or expiry; a grant still running is granted again. Requests are
// restored oldest first, so that a later grant for a package is the one kept.
func (a *Archive) restoreUseRequests(ctx context.Context) (int, error) {
	var ids []string
	err := a.store.List(ctx, "use/", func(o storage.ObjectInfo) error {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, "use/"), "/request.json"); ok {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.Sort(ids)
	n := 0
	for _, id := range ids {
		var have json.RawMessage
		if a.index.Record(index.UseRequests, id, &have) == nil {
			continue
		}
		var r UseRequest
		if ok, err := a.getJSON(ctx, "use/"+id+"/request.json", &r); err != nil || !ok {
			return n, err
		}
		var d UseDecision
		if ok, err := a.getJSON(ctx, "use/"+id+"/decision.json", &d); err != nil {
			return n, err
		} else if ok {
			r.Decision, r.Status = &d, UseApproved
			if d.Action == UseRefuse {
				r.Status = UseRefused
			}
		}
		var rv UseRevocation
		if ok, err := a.getJSON(ctx, "use/"+id+"/revocation.json", &rv); err != nil {
			return n, err
		} else if ok {
			r.Revocation, r.Status = &rv, UseRevoked
		}
		var ex map[string]time.Time
		if ok, err := a.getJSON(ctx, "use/"+id+"/expired.json", &ex); err != nil {
			return n, err
		} else if ok {
			r.ExpiredAt, r.Status = ex["expired_at"], UseExpired
		}
		if err := a.index.PutRecords(useRecs(&r)...); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
