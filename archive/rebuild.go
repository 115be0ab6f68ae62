package archive

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Everything the index knows about a package can be read back from the object store: the
// EEP (metadata, documents, signatures, and 附注 for what DA/T 48 has no element for) and
// its ingest event in the event log. Start-up reconciliation uses this to adopt packages whose index entry
// was never written (a crash between the object and the index), and an index rebuild is the
// same adoption over an empty index.

// ReconcileReport says what a reconciliation found.
type ReconcileReport struct {
	Indexed     int      // packages in the index before
	Adopted     []string // objects that were complete, valid packages and are now indexed
	MovedAside  []string // objects that were not, moved under orphans/ (or left, when retained)
	DataLoss    []string // index entries whose package object is missing
	ObjectCount int
}

// logRef is a package's ingest event in the event log.
type logRef struct {
	index uint64
	event eventlog.Event
}

// ingestRef finds the event that brought a package here: its ingest, or its receipt from a
// department's transfer.
func (a *Archive) ingestRef(ctx context.Context, id string) (*logRef, error) {
	i, err := a.elog.Find(eventlog.TypeIngest, id)
	if errors.Is(err, eventlog.ErrNotFound) {
		i, err = a.elog.Find(eventlog.TypeTransferReceived, id)
	}
	if err != nil {
		return nil, err
	}
	es, err := a.elog.Entries(ctx, i, 1)
	if err != nil {
		return nil, err
	}
	if len(es) != 1 {
		return nil, fmt.Errorf("ingest event %d of %s: %w", i, id, eventlog.ErrNotFound)
	}
	ev, err := eventlog.ParseEvent([]byte(es[0].Event))
	if err != nil {
		return nil, err
	}
	return &logRef{index: i, event: ev}, nil
}

// Reconcile compares the index with the object store: objects without an index entry are
// adopted when they are complete, valid packages whose ingest event is in the event log,
// otherwise moved aside; index
// entries without their objects are reported as data loss. progress, when set, is called
// as packages are adopted.
func (a *Archive) Reconcile(ctx context.Context, progress func(done, total int)) (*ReconcileReport, error) {
	rep := &ReconcileReport{}
	indexed := map[string]bool{}
	var entries []*index.Package
	if err := a.index.ForEachPackage(func(p *index.Package) error {
		for _, k := range p.Keys() {
			indexed[k] = true
		}
		entries = append(entries, p)
		return nil
	}); err != nil {
		return nil, err
	}
	rep.Indexed = len(entries)
	objects := map[string]bool{}
	var orphans []string
	err := a.store.List(ctx, "packages/", func(o storage.ObjectInfo) error {
		objects[o.Key] = true
		rep.ObjectCount++
		if strings.HasSuffix(o.Key, ".eep") && !indexed[o.Key] && !a.index.Orphan(o.Key) {
			orphans = append(orphans, o.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list packages/: %w", err)
	}
	if n, err := a.restoreTombstones(ctx); err != nil {
		return nil, fmt.Errorf("restore tombstones: %w", err)
	} else if n > 0 {
		a.log.Info("tombstones restored into the index", "count", n)
	}
	if n, err := a.restoreCertificates(ctx); err != nil {
		return nil, fmt.Errorf("restore certificates: %w", err)
	} else if n > 0 {
		a.log.Info("certificates restored into the index", "count", n)
	}
	for _, p := range entries {
		for _, k := range p.Keys() {
			if !objects[k] && p.Tombstone == nil {
				a.log.Error("DATA LOSS: an index entry's object is missing", "package", p.ID, "archival_code", p.ArchivalCode, "key", k)
				rep.DataLoss = append(rep.DataLoss, k)
			}
		}
	}
	if err := a.adopt(ctx, orphans, rep, progress); err != nil {
		return nil, err
	}
	if n, err := a.restoreReports(ctx); err != nil {
		return nil, fmt.Errorf("restore inspection reports: %w", err)
	} else if n > 0 {
		a.log.Info("inspection reports restored into the index", "count", n)
	}
	if n, err := a.restoreUseRequests(ctx); err != nil {
		return nil, fmt.Errorf("restore use requests: %w", err)
	} else if n > 0 {
		a.log.Info("use requests restored into the index", "count", n)
	}
	if n, err := a.restoreDeferrals(ctx); err != nil {
		return nil, fmt.Errorf("restore later transfers: %w", err)
	} else if n > 0 {
		a.log.Info("later transfers restored into the index", "count", n)
	}
	if n, err := a.restoreOpenings(ctx); err != nil {
		return nil, fmt.Errorf("restore openings: %w", err)
	} else if n > 0 {
		a.log.Info("openings restored into the index", "count", n)
	}
	a.log.Info("reconciled the index with the object store", "indexed_before", rep.Indexed, "adopted", len(rep.Adopted),
		"moved_aside", len(rep.MovedAside), "data_loss", len(rep.DataLoss))
	return rep, nil
}

// reconcileMarkKey names the State record of when start-up reconciliation last ran.
const reconcileMarkKey = "reconcile-mark"

// reconcileMark is when reconciliation last ran, or the archive was last closed cleanly:
// a package object written since has an id from then on (ids begin with their ingest
// time). Wall is the machine's clock then, which directory times are compared with (the
// archive's clock may be pinned).
type reconcileMark struct {
	At   time.Time `json:"at"`
	Wall time.Time `json:"wall,omitzero"`
	// Clean is set by a clean shutdown: every ingest before it committed or cleaned up.
	Clean bool `json:"clean,omitempty"`
}

// markMargin covers clock steps between runs and ingests that took their id just before
// the mark was taken. A clean shutdown's mark has no ingest before it left to finish, so it
// needs only cleanMarkMargin: otherwise a start after a busy ten minutes looked at every
// package they wrote (14,000 in a bench turn: 2.4 s of the start).
const (
	markMargin      = 10 * time.Minute
	cleanMarkMargin = time.Second
)

// ReconcileAtStart reconciles from where the last start-up left off: the package objects
// written since (a listing after the mark in each fonds and year), not all of them. An index
// without a mark (new, rebuilt, or older) and a store that cannot list after a key get the
// full reconciliation.
func (a *Archive) ReconcileAtStart(ctx context.Context) (*ReconcileReport, error) {
	started := reconcileMark{At: a.now(), Wall: time.Now()}
	var m reconcileMark
	var rep *ReconcileReport
	var err error
	if a.index.Record(index.State, reconcileMarkKey, &m) == nil {
		margin := markMargin
		if m.Clean {
			margin = cleanMarkMargin
		}
		var wall time.Time
		if !m.Wall.IsZero() {
			wall = m.Wall.Add(-margin)
		}
		rep, err = a.reconcileSince(ctx, m.At.Add(-margin), wall, nil)
	} else {
		rep, err = a.Reconcile(ctx, nil)
	}
	if err != nil {
		return nil, err
	}
	return rep, a.index.PutRecord(index.State, reconcileMarkKey, started)
}

// markClean moves the mark to a clean shutdown: every ingest has committed or cleaned up
// after itself, so the next start looks only at what is written after now.
func (a *Archive) markClean() error {
	return a.index.PutRecord(index.State, reconcileMarkKey, reconcileMark{At: a.now(), Wall: time.Now(), Clean: true})
}

// reconcileSince adopts (or moves aside) the package objects without an index entry whose
// ids are from since on: those a crash can have left since the last reconciliation. It
// reads the names of the objects written since, not the archive's. With a wall time it also
// passes over the directories unchanged since then (on stores that know, the local disk)
// without reading their names.
func (a *Archive) reconcileSince(ctx context.Context, since, wall time.Time, progress func(done, total int)) (*ReconcileReport, error) {
	w, ok := a.store.(storage.Walker)
	if !ok {
		return a.Reconcile(ctx, progress)
	}
	rep := &ReconcileReport{}
	after := fmt.Sprintf("%013x", max(since.UnixMilli(), 0))
	var orphans []string
	fonds, err := w.Dirs(ctx, "packages/")
	if err != nil {
		return nil, fmt.Errorf("list packages/: %w", err)
	}
	for _, f := range fonds {
		years, err := w.Dirs(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", f, err)
		}
		for _, y := range years {
			if ct, ok := a.store.(storage.ChangeTimer); ok && !wall.IsZero() {
				if changed, err := ct.ChangedSince(ctx, y, wall); err != nil {
					return nil, err
				} else if !changed {
					continue // nothing added since the mark: its names are not read
				}
			}
			err := w.ListAfter(ctx, y, y+after, func(o storage.ObjectInfo) error {
				rep.ObjectCount++
				if !strings.HasSuffix(o.Key, ".eep") || a.index.Orphan(o.Key) {
					return nil
				}
				id, _ := splitKey(o.Key)
				if p, err := a.index.PackageRecord(id); err == nil && slices.Contains(p.Keys(), o.Key) {
					return nil
				}
				orphans = append(orphans, o.Key)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("list %s: %w", y, err)
			}
		}
	}
	if err := a.adopt(ctx, orphans, rep, progress); err != nil {
		return nil, err
	}
	if len(orphans) > 0 || rep.ObjectCount > 0 {
		a.log.Info("reconciled the objects written since the last start", "since", since, "looked_at", rep.ObjectCount,
			"adopted", len(rep.Adopted), "moved_aside", len(rep.MovedAside))
	}
	return rep, nil
}

// adopt indexes the orphans that are complete, valid packages with their ingest event and
// moves the others aside.
func (a *Archive) adopt(ctx context.Context, orphans []string, rep *ReconcileReport, progress func(done, total int)) error {
	if len(orphans) == 0 {
		return nil
	}
	var batch []*index.Package
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		results, err := a.index.CommitPackages(batch)
		if err != nil {
			return err
		}
		for i, r := range results {
			if r.Err != nil {
				a.moveAside(ctx, batch[i].Key, "its case is indexed as package "+r.Existing.ID, rep)
			} else {
				rep.Adopted = append(rep.Adopted, batch[i].Key)
			}
		}
		batch = batch[:0]
		return nil
	}
	var amended []string
	for i, key := range orphans {
		if _, layer := splitKey(key); layer > 0 {
			amended = append(amended, key) // after the packages they amend
			continue
		}
		ref, err := a.ingestRef(ctx, strings.TrimSuffix(path.Base(key), ".eep"))
		if errors.Is(err, eventlog.ErrNotFound) {
			a.moveAside(ctx, key, "the event log has no ingest event for it: the ingest stopped before its commit", rep)
			continue
		} else if err != nil {
			return err
		}
		rec, err := a.recordFromObject(ctx, key, ref)
		if err != nil {
			a.moveAside(ctx, key, err.Error(), rep)
			continue
		}
		batch = append(batch, rec)
		if len(batch) == 200 {
			if err := flush(); err != nil {
				return err
			}
		}
		if progress != nil {
			progress(i+1, len(orphans))
		}
	}
	if err := flush(); err != nil {
		return err
	}
	slices.SortFunc(amended, func(x, y string) int { _, lx := splitKey(x); _, ly := splitKey(y); return lx - ly })
	for _, key := range amended {
		if err := a.adoptAmended(ctx, key, rep); err != nil {
			return err
		}
	}
	return nil
}

// adoptAmended makes an amended package that the index does not point at its package's
// current form, when its migration event is in the log and it verifies as the next form of
// the one indexed. One without its event is left where it is: the migration run that
// stored it completes it when it runs again.
func (a *Archive) adoptAmended(ctx context.Context, key string, rep *ReconcileReport) error {
	id, layer := splitKey(key)
	p, err := a.index.Package(id)
	if errors.Is(err, index.ErrNotFound) {
		a.moveAside(ctx, key, "the package it amends is not indexed", rep)
		return nil
	} else if err != nil {
		return err
	}
	if p.Layer >= layer {
		return nil
	}
	idx, err := a.elog.Find(eventlog.TypeMigrated, migrationSubject(id, layer))
	if errors.Is(err, eventlog.ErrNotFound) || p.Layer != layer-1 {
		a.log.Warn("amended package left for the migration run to complete", "key", key, "indexed_layer", p.Layer)
		return nil
	} else if err != nil {
		return err
	}
	es, err := a.elog.Entries(ctx, idx, 1)
	if err != nil || len(es) != 1 {
		return fmt.Errorf("migration event %d of %s: %v", idx, key, err)
	}
	ev, err := eventlog.ParseEvent([]byte(es[0].Event))
	if err != nil {
		return err
	}
	if ev.Attrs["previous_sm3"] != p.PackageSM3 {
		a.log.Error("amended package wraps another form than the one indexed", "key", key, "wraps", ev.Attrs["previous_sm3"], "indexed", p.PackageSM3)
		return nil
	}
	v, err := a.openVerified(ctx, key, ev.Digest)
	var failed *migrationFailed
	if errors.As(err, &failed) {
		a.log.Error("amended package does not verify: not adopted", "key", key, "reason", failed.reason)
		return nil
	} else if err != nil {
		return err
	}
	defer v.close()
	version := a.pinVersion(ctx, key)
	if _, err := a.index.UpdatePackage(id, func(q *index.Package) error {
		if q.Layer == layer-1 {
			becomeCurrent(q, key, v.size, v.scan, idx, layer)
			q.Version = version
		}
		return nil
	}); err != nil {
		return err
	}
	rep.Adopted = append(rep.Adopted, key)
	return nil
}

// moveAside copies an unadoptable object under orphans/ and removes it; a retained object
// (WORM) cannot be removed and stays where it is, reported.
func (a *Archive) moveAside(ctx context.Context, key, why string, rep *ReconcileReport) {
	rep.MovedAside = append(rep.MovedAside, key)
	a.log.Warn("object without an index entry is not adoptable", "key", key, "why", why)
	rc, info, err := a.store.Get(ctx, key)
	if err != nil {
		a.log.Error("move aside", "key", key, "err", err)
		return
	}
	_, err = a.store.Put(ctx, "orphans/"+key, rc, info.Size, storage.PutOptions{})
	rc.Close()
	if err != nil && !errors.Is(err, storage.ErrExists) {
		a.log.Error("move aside", "key", key, "err", err)
		return
	}
	if err := a.store.Delete(ctx, key); err != nil {
		a.log.Warn("the original stays (retained)", "key", key, "err", err)
		if err := a.index.RecordOrphan(key, why); err != nil {
			a.log.Error("record orphan", "key", key, "err", err)
		}
	}
}

// recordFromObject verifies a package object against its ingest event and rebuilds its
// index record.
func (a *Archive) recordFromObject(ctx context.Context, key string, ref *logRef) (*index.Package, error) {
	rc, info, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ra, ok := rc.(io.ReaderAt)
	if !ok {
		buf := a.spool.New()
		defer buf.Release()
		if _, err := io.Copy(buf, rc); err != nil {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		ra = buf
	}
	id := strings.TrimSuffix(path.Base(key), ".eep")
	rep, scan, err := verify(ra, info.Size, VerifyOptions{Roots: a.Trust(), Now: a.now})
	if err != nil {
		return nil, err
	}
	if rep.PackageSM3 != ref.event.Digest {
		return nil, fmt.Errorf("the object's SM3 %s differs from the %s its ingest event %d records", rep.PackageSM3, ref.event.Digest, ref.index)
	}
	if !rep.Valid {
		for _, f := range rep.Findings {
			if f.Status == eep.Fail {
				return nil, fmt.Errorf("not a valid package: %s %s %s: expected %s, found %s", f.Code, f.Item, f.Where, f.Expected, f.Found)
			}
		}
	}
	return a.recordFromScan(ctx, key, id, info.Size, scan, ref)
}

func (a *Archive) recordFromScan(ctx context.Context, key, id string, size int64, scan *eep.Scan, ref *logRef) (*index.Package, error) {
	ent := scan.EntityPath()
	f := scan.Fields
	notes := map[string][]string{}
	for _, n := range scan.Notes {
		if k, v, ok := strings.Cut(n, "："); ok {
			notes[k] = append(notes[k], v)
		}
	}
	note := func(k string) string {
		if v := notes[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	year, err1 := strconv.Atoi(f[ent+"档号/年度"])
	item, err2 := strconv.Atoi(f[ent+"档号/室编件号"])
	archived := f["封装包创建时间"]
	if n := len(scan.Layers); n > 0 {
		archived = scan.Layers[n-1].Created // an amended package: when the original was made
	}
	created, err3 := eep.ParseTime(archived)
	finished, err4 := time.ParseInLocation("2006-01-02 15:04:05", note("办结时间"), eep.CST())
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("package %s metadata: %w", id, err)
	}
	fonds, ret := f[ent+"档号/全宗号"], f[ent+"档号/保管期限"]
	var dept string
	for _, ag := range scan.Agents {
		if ag.ID == "机构-部门" {
			dept = ag.OrgCode
		}
	}
	if len(scan.Signatures) == 0 {
		return nil, fmt.Errorf("package %s has no signature", id)
	}
	sig := scan.Signatures[0]
	signer := signerName(sig)
	rec := &index.Package{
		ID: id, Key: key, Fonds: fonds, Department: dept, DepartmentName: f[ent+"来源/立档单位名称"], CaseNo: f[ent+"电子文件号"],
		ArchivalCode: archivalCode(fonds, year, ret, item), Series: seriesOf(fonds, year, ret),
		ItemNo: item, Year: year, Retention: ret, ItemCode: note("事项编码"), ItemName: note("事项名称"), Title: f[ent+"内容描述/题名"],
		FinishedAt: finished, IngestedAt: created.UTC(), Size: size, PackageSM3: hex.EncodeToString(scan.PackageSM3),
		ContentDigest: note(noteDigest), SignatureB64: base64.StdEncoding.EncodeToString(sig.Value), Signer: signer,
		LogIndex: ref.index, State: "archived", RetainUntil: a.RetentionEnd(ret, year),
		Sharing: SharingClass(note("共享范围")), SharingConditions: note("共享条件"),
	}
	if ref.event.Type == eventlog.TypeTransferReceived {
		rec.Source = "transfer:" + ref.event.Attrs["batch"]
	}
	rec.ArchivedLate = a.archivedLate(rec)
	// What the search keeps of the case (caseText at ingest): the result from the notes,
	// the steps from the business entities done by a person (the department's and the
	// archive's own entries are not steps of the case).
	rec.CaseText = &index.CaseText{Decision: note("办理结果"), Applicant: note("申请人"), ApplicantID: note("申请人证件号码")}
	if o := note("办结意见"); o != "" {
		rec.CaseText.Opinions = []string{o}
	}
	people := map[string]string{}
	for _, ag := range scan.Agents {
		if ag.Kind == "个人" {
			people[ag.ID] = ag.Name
		}
	}
	for _, st := range scan.Businesses {
		name, ok := people[st.AgentID]
		if !ok {
			continue
		}
		rec.CaseText.Steps = append(rec.CaseText.Steps, strings.TrimSpace(st.Action+" "+name))
		if st.Description != "" {
			rec.CaseText.Opinions = append(rec.CaseText.Opinions, st.Description)
		}
	}
	if err := a.sealCaseText(rec.CaseText); err != nil {
		return nil, err
	}
	if r, ok := a.store.(storage.Retainer); ok {
		if until, hold, err := r.Retention(ctx, key); err == nil {
			if until.After(rec.RetainUntil) {
				rec.RetainUntil = until.In(rec.RetainUntil.Location())
			}
			rec.LegalHold = hold
		}
	}
	rec.Layer = len(scan.Layers)
	rec.Documents = currentDocuments(scan, func(n int, d eep.ScannedDocument) index.Document {
		return index.Document{Title: d.Title, Main: d.Role == "主文档", Kind: note(fmt.Sprintf(noteDocKind, n)),
			Part: note(fmt.Sprintf(noteDocPart, n)), Warnings: notes[fmt.Sprintf(noteDocWarning, n)]}
	})
	rec.Version = a.pinVersion(ctx, key)
	return rec, nil
}
