package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Inspection (检查评估). A department's archive makes a compliance report for a period:
// per article of the county regulation, the figures that show its records are kept, each
// with the API query that gives the same figure when run by hand (counting what its pages
// list). The department signs it, and the county archive, which inspects and evaluates
// the departments' work, receives it, verifies it and keeps it.

// InspectionFormat names the report's layout.
const InspectionFormat = "dangan-inspection-report/1"

// Figure keys: what each figure counts.
const (
	FigureLate             = "late-archiving"    // Art. 23: holdings archived after their deadline
	FigureTransferOverdue  = "transfer-overdue"  // Art. 26: permanent holdings due at the county archive by the period's end
	FigureTransferDeferred = "transfer-deferred" // Art. 26: permanent holdings with an approved later transfer
	FigureAuditOverdue     = "audit-overdue"     // Art. 18: holdings not checked within the audit cycle at the period's end
	FigureAuditFailed      = "audit-failed"      // Art. 18: failed audits of the department's holdings in the period
	FigureDestroyed        = "destroyed"         // Art. 18: holdings destroyed in the period, each on two archivists' decision
	FigureGrants           = "grants"            // Art. 20–21: use requests for its records granted in the period
	FigureSharedReads      = "shared-reads"      // Art. 20–21: reads of its records by other departments in the period
	FigureBackups          = "backups"           // Art. 17: backups made in the period
)

// Figure is one figure of a report.
type Figure struct {
	Key     string `json:"key"`
	Article string `json:"article"`
	Name    string `json:"name"`
	Value   int    `json:"value"`
	Query   string `json:"query"` // the API query that lists what is counted
	Count   string `json:"count"` // how the query's answer is counted
}

// InspectionReport is what the department signs.
type InspectionReport struct {
	Format         string    `json:"format"`
	ID             string    `json:"id"`
	Department     string    `json:"department"`
	DepartmentName string    `json:"department_name"`
	Archive        string    `json:"archive"`
	From           time.Time `json:"from"`
	To             time.Time `json:"to"`
	Made           time.Time `json:"made"`
	Figures        []Figure  `json:"figures"`
}

// Inspection is a report as the department's archive keeps it.
type Inspection struct {
	ID         string  `json:"id"`
	Department string  `json:"department"`
	Report     *Signed `json:"report"`
	Sent       bool    `json:"sent"`
	Error      string  `json:"error,omitempty"`
}

// ReceivedReport is a report as the county archive keeps it, with its verification.
type ReceivedReport struct {
	ID         string            `json:"id"`
	Department string            `json:"department"`
	Received   time.Time         `json:"received"`
	Report     *Signed           `json:"report"`
	Verified   bool              `json:"verified"`
	Signer     string            `json:"signer,omitempty"`
	Problem    string            `json:"problem,omitempty"`
	Content    *InspectionReport `json:"content,omitempty"`
}

// InspectionInput asks for a report.
type InspectionInput struct {
	Department string    `json:"department,omitempty"` // the archive role names it
	From       time.Time `json:"from"`
	To         time.Time `json:"to,omitzero"` // default now
}

// Backup is a backup as the index remembers it (Art. 17).
type Backup struct {
	At time.Time `json:"at"`
	BackupReport
}

// MakeInspection makes, signs and keeps a department's report for a period, and sends it
// to the county archive when one is configured.
func (a *Archive) MakeInspection(ctx context.Context, who Principal, in InspectionInput) (*Inspection, error) {
	dept, err := departmentScope(who, in.Department, "records", RoleArchive)
	if err != nil {
		return nil, err
	}
	if dept == "" {
		return nil, fieldErr("department", fmt.Errorf("%w: name the department", ErrInvalidCase))
	}
	now := a.now()
	if in.To.IsZero() || in.To.After(now) {
		in.To = now
	}
	if in.From.IsZero() || !in.From.Before(in.To) {
		return nil, fieldErr("from", fmt.Errorf("%w: from is the start of the period, before its end", ErrInvalidCase))
	}
	rep, err := a.inspectionReport(ctx, dept, in.From.UTC(), in.To.UTC())
	if err != nil {
		return nil, err
	}
	id, err := a.pki.Department(dept, rep.DepartmentName)
	if err != nil {
		return nil, fmt.Errorf("department signing identity: %w", err)
	}
	signed, err := sign(id, rep)
	if err != nil {
		return nil, err
	}
	ins := &Inspection{ID: rep.ID, Department: dept, Report: signed}
	if a.cfg.County != nil {
		var got ReceivedReport
		if err := a.cfg.County.call(ctx, http.MethodPost, "/api/v1/inspection-reports", "application/json", jsonBody(signed), &got); err != nil {
			ins.Error = err.Error()
		} else {
			ins.Sent = true
		}
	}
	if err := a.index.PutRecord(index.Inspections, ins.ID, ins); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeInspection, Actor: who.Person(), Subject: "inspection/" + ins.ID, Digest: signed.SM3(),
		Attrs: map[string]string{"role": "department", "department": dept, "from": rep.From.Format(time.RFC3339), "to": rep.To.Format(time.RFC3339),
			"sent": fmt.Sprint(ins.Sent)}}); err != nil {
		return nil, err
	}
	a.log.Info("inspection report made", "report", ins.ID, "department", dept, "sent", ins.Sent, "err", ins.Error)
	return ins, nil
}

// inspectionReport counts each figure with the same archive calls its query makes.
func (a *Archive) inspectionReport(ctx context.Context, dept string, from, to time.Time) (*InspectionReport, error) {
	arch := Principal{Role: RoleArchive, Name: "检查评估报告"}
	rep := &InspectionReport{Format: InspectionFormat, ID: newUseID(a.now()), Department: dept, Archive: a.cfg.ArchiveName, From: from, To: to, Made: a.now().UTC()}
	q := url.QueryEscape
	period := "since=" + q(from.Format(time.RFC3339Nano)) + "&until=" + q(to.Format(time.RFC3339Nano))
	add := func(key, article, name, query, count string, value int) {
		rep.Figures = append(rep.Figures, Figure{Key: key, Article: article, Name: name, Value: value, Query: query, Count: count})
	}
	for _, f := range []struct{ key, kind, article, name string }{
		{FigureLate, DueLateArchiving, "第二十三条", "逾期归档的办件"},
		{FigureTransferOverdue, DueTransfer, "第二十六条", "到期未移交的永久档案"},
		{FigureAuditOverdue, DueAuditOverdue, "第十八条", "逾期未检测的档案"},
	} {
		n, err := countPages(func(cursor string) ([]ScheduleItem, string, error) {
			s, err := a.Schedule(ctx, arch, ScheduleQuery{Department: dept, Kind: f.kind, At: to, Cursor: cursor, Limit: maxPage})
			if err != nil {
				return nil, "", err
			}
			return s.Items, s.Next[f.kind], nil
		}, func(ScheduleItem) int { return 1 })
		if err != nil {
			return nil, err
		}
		add(f.key, f.article, f.name, "GET /api/v1/schedule?kind="+f.kind+"&department="+dept+"&at="+q(to.Format(time.RFC3339Nano))+"&horizon_days=0",
			"items of every page", n)
	}
	deferred, err := countPages(func(cursor string) ([]Deferral, string, error) { return a.Deferrals(ctx, arch, cursor, maxPage) }, func(d Deferral) int {
		if d.Department != dept || d.Status != DeferralApproved {
			return 0
		}
		var dec DeferralDecision
		json.Unmarshal([]byte(d.Decision.Body), &dec)
		return len(dec.Packages)
	})
	if err != nil {
		return nil, err
	}
	add(FigureTransferDeferred, "第二十六条", "经县档案馆批准延期移交的永久档案", "GET /api/v1/deferrals", "packages of the approved decisions of department "+dept, deferred)

	// Failed audits, destructions and reads in the period, of the department's holdings.
	owner := map[string]string{}
	deptOf := func(id string) string {
		if d, ok := owner[id]; ok {
			return d
		}
		d := ""
		if p, err := a.index.PackageRecord(id); err == nil {
			d = p.Department
		}
		owner[id] = d
		return d
	}
	one := func(ok bool) int {
		if ok {
			return 1
		}
		return 0
	}
	failed, err := countPages(func(cursor string) ([]AuditResult, string, error) {
		return a.Audits(ctx, arch, AuditFilter{FailedOnly: true, Since: from, Cursor: cursor, Limit: maxPage})
	}, func(r AuditResult) int { return one(r.At.Before(to) && deptOf(r.Package) == dept) })
	if err != nil {
		return nil, err
	}
	add(FigureAuditFailed, "第十八条", "检测未通过的档案", "GET /api/v1/audits?failed=1&since="+q(from.Format(time.RFC3339Nano)),
		"results before "+to.Format(time.RFC3339Nano)+" of department "+dept+"'s packages", failed)
	destroyed, err := countPages(func(cursor string) ([]Decision, string, error) { return a.Decisions(ctx, arch, cursor, maxPage) }, func(d Decision) int {
		return one(d.Status == DisposalDestroyed && d.ApprovedBy != "" && !d.ApprovedAt.Before(from) && d.ApprovedAt.Before(to) && deptOf(d.Package) == dept)
	})
	if err != nil {
		return nil, err
	}
	add(FigureDestroyed, "第十八条", "经两名档案员鉴定审批后销毁的档案", "GET /api/v1/disposals",
		"decisions destroyed, approved in the period, of department "+dept+"'s packages", destroyed)
	grants, err := countPages(func(cursor string) ([]UseRequest, string, error) {
		return a.UseRequests(ctx, arch, UseFilter{As: "owner", Department: dept, Cursor: cursor, Limit: maxPage})
	}, func(u UseRequest) int {
		return one(u.Decision != nil && u.Decision.Action != UseRefuse && !u.Decision.At.Before(from) && u.Decision.At.Before(to))
	})
	if err != nil {
		return nil, err
	}
	add(FigureGrants, "第二十条、第二十一条", "批准的利用申请（共享授权）", "GET /api/v1/use-requests?as=owner&department="+dept,
		"requests whose decision, made in the period, approved or narrowed", grants)
	reads, err := countPages(func(cursor string) ([]Read, string, error) {
		return a.ReadLog(ctx, arch, ReadFilter{Since: from, Until: to, Cursor: cursor, Limit: maxPage})
	}, func(r Read) int {
		reader, ok := strings.CutPrefix(r.Who, RoleDepartment+":")
		return one(ok && reader != dept && deptOf(r.Package) == dept)
	})
	if err != nil {
		return nil, err
	}
	add(FigureSharedReads, "第二十条、第二十一条", "其他部门对本部门档案的共享利用", "GET /api/v1/reads?"+period,
		"reads by another department of department "+dept+"'s packages", reads)
	backups, err := countPages(func(cursor string) ([]Backup, string, error) { return a.Backups(ctx, arch, from, to, cursor, maxPage) },
		func(Backup) int { return 1 })
	if err != nil {
		return nil, err
	}
	add(FigureBackups, "第十七条", "备份", "GET /api/v1/backups?"+period, "backups listed", backups)
	if p, err := a.index.List(index.Ingested(dept), "", 1); err == nil && len(p.Packages) > 0 {
		rep.DepartmentName = p.Packages[0].DepartmentName
	}
	return rep, nil
}

// countPages walks every page a list gives (fetch: a page after cursor, and the next
// cursor, "" at the end) and sums what count makes of each item: a figure as its query,
// run by hand over all its pages, gives it.
func countPages[T any](fetch func(cursor string) ([]T, string, error), count func(T) int) (int, error) {
	n := 0
	for cursor := ""; ; {
		items, next, err := fetch(cursor)
		if err != nil {
			return 0, err
		}
		for _, it := range items {
			n += count(it)
		}
		if cursor = next; cursor == "" {
			return n, nil
		}
	}
}

// Inspections lists the reports this archive made (a department its own; the archive).
func (a *Archive) Inspections(ctx context.Context, who Principal, cursor string, limit int) ([]Inspection, string, error) {
	dept, err := departmentScope(who, "", "records", RoleArchive, RoleAuditor)
	if err != nil {
		return nil, "", err
	}
	return listTimed(a.index, index.Inspections, "", "", time.Time{}, time.Time{}, cursor, limit, func(i Inspection) (time.Time, bool) {
		return time.Time{}, dept == "" || i.Department == dept
	})
}

// ReceiveInspection keeps a department's signed report at the county archive: signed by
// that department's key chaining to a trusted root, and sent with its own token.
func (a *Archive) ReceiveInspection(ctx context.Context, who Principal, signed *Signed) (*ReceivedReport, error) {
	if who.Role != RoleDepartment && who.Role != RoleArchive {
		return nil, fmt.Errorf("%w: reports come from a department's archive, with its token", ErrForbidden)
	}
	rr, err := a.verifyInspection(signed)
	if err != nil {
		return nil, fieldErr("report", fmt.Errorf("%w: %v", ErrInvalidCase, err))
	}
	if who.Role == RoleDepartment && who.Org != rr.Department {
		return nil, fmt.Errorf("%w: reports of department %s are sent with its own token", ErrForbidden, rr.Department)
	}
	rr.Received = a.now().UTC()
	rr, created, err := keepOnce(a.index, index.ReceivedReports, rr.ID, rr, func(r *ReceivedReport) *Signed { return r.Report })
	if err != nil {
		return nil, err
	}
	if err := a.putJSON(ctx, "inspection-reports/"+rr.ID+".json", signed); err != nil {
		return nil, err
	}
	if created {
		if err := a.index.PutRecord(index.ReportKeys, reportKey(rr), json.RawMessage("1")); err != nil {
			return nil, err
		}
		if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeInspection, Actor: who.Person(), Subject: "inspection/" + rr.ID, Digest: signed.SM3(),
			Attrs: map[string]string{"role": "county", "department": rr.Department}}); err != nil {
			return nil, err
		}
		a.log.Info("inspection report received", "report", rr.ID, "department", rr.Department)
	}
	return rr, nil
}

// verifyInspection checks a report's signature (the department it names, under a trusted
// root) and decodes it.
func (a *Archive) verifyInspection(signed *Signed) (*ReceivedReport, error) {
	var rep InspectionReport
	cert, err := signed.Verify(a.Trust(), a.now(), &rep)
	if err != nil {
		return nil, err
	}
	switch {
	case rep.Format != InspectionFormat || !recordIDRe.MatchString(rep.ID) || len(rep.Figures) == 0:
		return nil, fmt.Errorf("%w: not an inspection report", ErrBadSignature)
	case cert.Subject.SerialNumber != rep.Department:
		return nil, fmt.Errorf("%w: the report of department %s is signed by %q", ErrBadSignature, rep.Department, cert.Subject.CommonName)
	}
	return &ReceivedReport{ID: rep.ID, Department: rep.Department, Report: signed, Verified: true, Signer: cert.Subject.CommonName, Content: &rep}, nil
}

// ReceivedReports lists the reports the county archive received, a department's (or all),
// oldest first, each verified again now (archive, auditor).
func (a *Archive) ReceivedReports(ctx context.Context, who Principal, dept, cursor string, limit int) ([]ReceivedReport, string, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, "", err
	}
	via := ""
	if dept != "" {
		via = "i\x00" + dept + "\x00"
	}
	out, next, err := listTimed(a.index, index.ReceivedReports, index.ReportKeys, via, time.Time{}, time.Time{}, cursor, limit, func(r ReceivedReport) (time.Time, bool) {
		return r.Received, true
	})
	for i := range out {
		if rr, err := a.verifyInspection(out[i].Report); err != nil {
			out[i].Verified, out[i].Problem = false, err.Error()
		} else {
			out[i].Verified, out[i].Signer, out[i].Content = true, rr.Signer, rr.Content
		}
	}
	return out, next, err
}

// ReceivedReport returns one received report, verified again now.
func (a *Archive) ReceivedReport(ctx context.Context, who Principal, id string) (*ReceivedReport, error) {
	if err := a.archivistOrAuditor(who); err != nil {
		return nil, err
	}
	var r ReceivedReport
	if err := a.index.Record(index.ReceivedReports, id, &r); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("report %s: %w", id, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if rr, err := a.verifyInspection(r.Report); err != nil {
		r.Verified, r.Problem, r.Content = false, err.Error(), nil
	} else {
		r.Verified, r.Signer, r.Content = true, rr.Signer, rr.Content
	}
	return &r, nil
}

// recordBackup remembers a backup (Art. 17), keyed by its time.
func (a *Archive) recordBackup(rep *BackupReport) error {
	now := a.now().UTC()
	return a.index.PutRecord(index.Backups, fmt.Sprintf("%020d", now.UnixNano()), Backup{At: now, BackupReport: *rep})
}

// Backups lists the backups made from since to until (archive, auditor, admin).
func (a *Archive) Backups(ctx context.Context, who Principal, since, until time.Time, cursor string, limit int) ([]Backup, string, error) {
	if err := a.CanAudit(who); err != nil {
		return nil, "", err
	}
	return listTimed(a.index, index.Backups, "", "", since, until, cursor, limit, func(b Backup) (time.Time, bool) { return b.At, true })
}

func reportKey(rr *ReceivedReport) string { return "i\x00" + rr.Department + "\x00" + rr.ID }

// restoreReports brings back into the index the reports the county archive received that
// it lacks (an index rebuilt from storage), each verified again.
func (a *Archive) restoreReports(ctx context.Context) (int, error) {
	n := 0
	err := a.store.List(ctx, "inspection-reports/", func(o storage.ObjectInfo) error {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, "inspection-reports/"), ".json")
		var have json.RawMessage
		if !ok || a.index.Record(index.ReceivedReports, id, &have) == nil {
			return nil
		}
		var signed Signed
		if _, err := a.getJSON(ctx, o.Key, &signed); err != nil {
			return err
		}
		rr, err := a.verifyInspection(&signed)
		if err != nil {
			a.log.Error("a stored report does not verify", "key", o.Key, "err", err)
			return nil
		}
		rr.Received = o.Modified.UTC()
		rr.Content = nil
		n++
		return a.index.PutRecords(index.Rec{Bucket: index.ReceivedReports, Key: rr.ID, Value: rr},
			index.Rec{Bucket: index.ReportKeys, Key: reportKey(rr), Value: json.RawMessage("1")})
	})
	return n, err
}
