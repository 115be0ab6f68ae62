package archive

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Migration (日常迁移). For each package with documents the policy would now make
// differently, a run makes an amended package (DA/T 48 修改型): the current form's signed
// object and signatures unchanged under 原封装包, the new renditions and a record of the
// migration in 修订内容, signed and locked by the archive. It is stored beside the forms
// before it (packages/<fonds>/<year>/<id>.m<n>.eep), logged (a migration event) and
// indexed as the package's current form; the forms before it stay as they are.
//
// A run resumes: a package already migrated under the policy is not chosen again, and an
// amended object an interrupted run stored (before its event or its index entry) is
// checked and completed, not made twice. A document whose new rendition cannot be made
// leaves its package as it was, reported.

// RuleMigration is the 签名规则 of an amendment's signature.
const RuleMigration = "dangan-1：档案馆迁移签名，SM2/SM3（用户标识 1234567812345678），签名对象为修改型封装包被签名对象元素的 C14N 1.0（不含注释）UTF-8 字节，即文件中自 <被签名对象 至 </被签名对象> 的全部字节；原封装包中的被签名对象与电子签名块原样保留，各层签名分别核验。"

// MigrationOptions control a run.
type MigrationOptions struct {
	Rate     float64 // packages a second at most; 0: no limit
	Limit    int     // stop after migrating this many packages; 0: every one
	Progress func(*MigrationRun)
}

// MigrationRun is a run's progress and outcome.
type MigrationRun struct {
	Running   bool               `json:"running"`
	By        string             `json:"by"`
	Started   time.Time          `json:"started"`
	Finished  time.Time          `json:"finished,omitzero"`
	Total     int                `json:"total"`     // packages with documents to make
	Done      int                `json:"done"`      // of those, looked at
	Migrated  int                `json:"migrated"`  // given a new current form
	Resumed   int                `json:"resumed"`   // of those, completed from what an interrupted run stored
	Documents int                `json:"documents"` // documents given a new rendition
	Bytes     int64              `json:"bytes"`     // of the amended packages
	Failed    []MigrationFailure `json:"failed"`
	Error     string             `json:"error,omitempty"`
}

// MigrationFailure is a package a run left as it was, and why.
type MigrationFailure struct {
	Package      string `json:"package"`
	ArchivalCode string `json:"archival_code"`
	Document     int    `json:"document,omitempty"`
	Reason       string `json:"reason"`
}

// toMake is a document the policy would now make differently, with a rendition to make.
func (a *Archive) toMake(d index.Document) (src index.Encoding, ok bool) {
	src, now, differs := a.migrationOf(d)
	return src, differs && (now.Action == formats.ActionPDFA || now.Action == formats.ActionXML)
}

// migrationOf says what a document's archival copy is made from (the original), what the
// policy would make of it now and whether that differs from what the package holds.
func (a *Archive) migrationOf(d index.Document) (src index.Encoding, now formats.Outcome, differs bool) {
	if len(d.Encoded) == 0 {
		return src, now, false
	}
	archival := d.Encoded[0]
	src = archival
	for _, e := range d.Encoded {
		if e.Original {
			src = e
		}
	}
	if archival.Original && len(d.Encoded) > 1 {
		return src, now, false // a signed original is its own archival copy, with a rendition beside
	}
	made := ""
	if !archival.Original {
		made = madeTarget(d)
	}
	now = a.tools.Outcome(formats.Identification{PUID: src.Format, Name: src.FormatName, MIME: src.MIME})
	if now.Action != formats.ActionRefuse && now.Target == made && (d.Tool == "" || d.Tool == now.Tool) {
		return src, now, false // made as the policy would make it now (or its tool is not known)
	}
	if now.Target == "XML" && made == "" && (src.MIME == "application/xml" || src.MIME == "text/xml") {
		return src, now, false // XML already canonical is kept as one copy
	}
	return src, now, true
}

// RunMigration migrates every package the policy would now make differently (the archive
// and the administrator), in ingest order, and reports what it did.
func (a *Archive) RunMigration(ctx context.Context, who Principal, opts MigrationOptions) (*MigrationRun, error) {
	if who.Role != RoleArchive && who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: migration is run by the archive or the administrator", ErrForbidden)
	}
	run := &MigrationRun{Running: true, By: who.Person(), Started: a.now().UTC(), Failed: []MigrationFailure{}}
	err := a.runMigration(ctx, who, opts, run)
	run.Running, run.Finished = false, a.now().UTC()
	if err != nil {
		run.Error = err.Error()
	}
	if opts.Progress != nil {
		opts.Progress(run)
	}
	a.log.Info("migration run", "migrated", run.Migrated, "resumed", run.Resumed, "documents", run.Documents, "failed", len(run.Failed), "bytes", run.Bytes, "err", err)
	return run, err
}

func (a *Archive) runMigration(ctx context.Context, who Principal, opts MigrationOptions, run *MigrationRun) error {
	// The ids first, then each package read again: no transaction stays open over a run.
	var ids []string
	err := a.index.ForEachPackageWithDocuments(func(p *index.Package) error {
		if p.Tombstone != nil || p.Transfer != nil {
			return nil // destroyed, or held by the county archive, which migrates its own
		}
		for _, d := range p.Documents {
			if _, ok := a.toMake(d); ok {
				ids = append(ids, p.ID)
				return nil
			}
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	run.Total = len(ids)
	var next time.Time
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		if opts.Limit > 0 && run.Migrated >= opts.Limit {
			break
		}
		if opts.Rate > 0 {
			if wait := time.Until(next); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			next = time.Now().Add(time.Duration(float64(time.Second) / opts.Rate))
		}
		p, err := a.index.Package(id)
		if err != nil {
			return err
		}
		res, err := a.migratePackage(ctx, who, p)
		run.Done++
		var failed *migrationFailed
		switch {
		case errors.As(err, &failed):
			run.Failed = append(run.Failed, MigrationFailure{Package: p.ID, ArchivalCode: p.ArchivalCode, Document: failed.doc, Reason: failed.reason})
			a.log.Warn("package not migrated: left as it was", "package", p.ID, "archival_code", p.ArchivalCode, "document", failed.doc, "reason", failed.reason)
		case err != nil:
			return fmt.Errorf("migrate package %s: %w", p.ID, err)
		case res != nil:
			run.Migrated++
			run.Documents += res.documents
			run.Bytes += res.size
			if res.resumed {
				run.Resumed++
			}
		}
		if opts.Progress != nil {
			opts.Progress(run)
		}
	}
	return nil
}

// migrationFailed is a package a run leaves as it was.
type migrationFailed struct {
	doc    int
	reason string
}

func (e *migrationFailed) Error() string { return e.reason }

func failMigration(doc int, format string, args ...any) error {
	return &migrationFailed{doc: doc, reason: fmt.Sprintf(format, args...)}
}

type migrated struct {
	documents int
	size      int64
	resumed   bool
}

// amendedKey is where a package's n-th amendment is stored: beside the package as archived.
func amendedKey(p *index.Package, layer int) string {
	first := p.Key
	if len(p.Prior) > 0 {
		first = p.Prior[0].Key
	}
	return fmt.Sprintf("%s/%s.m%d.eep", path.Dir(first), p.ID, layer)
}

// splitKey reads a package object's key: its package id and amendment (0 for the package
// as archived).
func splitKey(key string) (id string, layer int) {
	base := strings.TrimSuffix(path.Base(key), ".eep")
	if i := strings.LastIndex(base, ".m"); i > 0 {
		if n, err := strconv.Atoi(base[i+2:]); err == nil && n > 0 {
			return base[:i], n
		}
	}
	return base, 0
}

// migrationSubject is the subject of the event that made a package's n-th amendment current.
func migrationSubject(id string, layer int) string { return fmt.Sprintf("%s/修改%d", id, layer) }

// migratePackage gives one package its next amended form; nil, nil when nothing is to make.
func (a *Archive) migratePackage(ctx context.Context, who Principal, p *index.Package) (*migrated, error) {
	var docs []int
	for i, d := range p.Documents {
		if _, ok := a.toMake(d); ok {
			docs = append(docs, i)
		}
	}
	if len(docs) == 0 {
		return nil, nil
	}
	layer := p.Layer + 1
	key := amendedKey(p, layer)
	cur, err := a.openVerified(ctx, p.Key, p.PackageSM3)
	if err != nil {
		return nil, err
	}
	defer cur.close()

	var size int64
	var sum string
	resumed := false
	if info, err := a.store.Stat(ctx, key); err == nil {
		// An interrupted run stored it: complete it if it is this package's next form.
		size, resumed = info.Size, true
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, err
	} else {
		size, sum, err = a.writeAmended(ctx, who, p, cur, layer, key, docs)
		if err != nil {
			return nil, err
		}
	}
	next, err := a.openVerified(ctx, key, sum)
	if err != nil {
		return nil, err
	}
	defer next.close()
	if err := checkAmendment(next, cur, layer); err != nil {
		return nil, failMigration(0, "the amended package %s does not verify: %v", key, err)
	}
	sum = hex.EncodeToString(next.scan.PackageSM3)
	subject := migrationSubject(p.ID, layer)
	idx, err := a.elog.Find(eventlog.TypeMigrated, subject)
	if errors.Is(err, eventlog.ErrNotFound) {
		sigSum := sm3.Sum(next.scan.Signatures[0].Value)
		idx, err = a.elog.Append(ctx, eventlog.Event{Type: eventlog.TypeMigrated, Time: a.now(), Actor: who.Person(), Subject: subject, Digest: sum,
			Attrs: map[string]string{"key": key, "size": strconv.FormatInt(size, 10), "layer": strconv.Itoa(layer), "previous_sm3": p.PackageSM3,
				"previous_key": p.Key, "signature_sm3": hex.EncodeToString(sigSum[:]), "documents": strconv.Itoa(len(docs)), "archival_code": p.ArchivalCode}})
		if err != nil {
			return nil, fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
		}
	} else if err != nil {
		return nil, err
	} else {
		// Logged by a run that stopped before its index entry: the event must name this object.
		es, err := a.elog.Entries(ctx, idx, 1)
		if err != nil || len(es) != 1 {
			return nil, fmt.Errorf("migration event %d of %s: %v", idx, p.ID, err)
		}
		ev, err := eventlog.ParseEvent([]byte(es[0].Event))
		if err != nil {
			return nil, err
		}
		if ev.Digest != sum || ev.Attrs["previous_sm3"] != p.PackageSM3 {
			return nil, failMigration(0, "the migration event %d records SM3 %s over %s, the stored amendment is %s over %s", idx, ev.Digest, ev.Attrs["previous_sm3"], sum, p.PackageSM3)
		}
		resumed = true
	}
	version := a.pinVersion(ctx, key)
	if _, err := a.index.UpdatePackage(p.ID, func(q *index.Package) error {
		if q.Layer != p.Layer || q.PackageSM3 != p.PackageSM3 || q.Tombstone != nil {
			return fmt.Errorf("%w: package %s changed during its migration", ErrConflict, p.ID)
		}
		becomeCurrent(q, key, size, next.scan, idx, layer)
		q.Version = version
		return nil
	}); err != nil {
		return nil, err
	}
	a.log.Info("package migrated", "package", p.ID, "archival_code", p.ArchivalCode, "layer", layer, "key", key, "documents", len(docs), "bytes", size, "resumed", resumed)
	return &migrated{documents: len(docs), size: size, resumed: resumed}, nil
}

// verifiedObject is a stored package read and verified.
type verifiedObject struct {
	ra    io.ReaderAt
	size  int64
	scan  *eep.Scan
	rep   *Report
	close func()
}

// openVerified reads a package object and verifies it; want, when set, is the SM3 it must
// have. A package that does not verify is a failure of its migration, not of the run.
func (a *Archive) openVerified(ctx context.Context, key, want string) (*verifiedObject, error) {
	rc, info, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("package object %s: %w", key, err)
	}
	v := &verifiedObject{size: info.Size, close: func() { rc.Close() }}
	ra, ok := rc.(io.ReaderAt)
	if !ok {
		buf := a.spool.New()
		if _, err := io.Copy(buf, rc); err != nil {
			buf.Release()
			rc.Close()
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		ra = buf
		v.close = func() { rc.Close(); buf.Release() }
	}
	v.ra = ra
	v.rep, v.scan, err = verify(ra, info.Size, VerifyOptions{Roots: a.Trust(), Now: a.now})
	if err != nil {
		v.close()
		return nil, err
	}
	if want != "" && v.rep.PackageSM3 != want {
		v.close()
		return nil, failMigration(0, "the object %s has SM3 %s, not the %s recorded", key, v.rep.PackageSM3, want)
	}
	if !v.rep.Valid {
		v.close()
		for _, f := range v.rep.Findings {
			if f.Status == eep.Fail {
				return nil, failMigration(0, "the package %s does not verify: %s %s %s: expected %s, found %s", key, f.Code, f.Item, f.Where, f.Expected, f.Found)
			}
		}
	}
	return v, nil
}

// checkAmendment checks that an amended object is the next form of the current one: its
// layer, and the current form's signed bytes and signatures inside it unchanged.
func checkAmendment(next, cur *verifiedObject, layer int) error {
	s := next.scan
	if s.Type != eep.TypeAmended || s.Fields["修改封装内容/修改标识符"] != "修改"+strconv.Itoa(layer) || len(s.Layers) == 0 {
		return fmt.Errorf("it is not amendment 修改%d (%s %s)", layer, s.Type, s.Fields["修改封装内容/修改标识符"])
	}
	if got, want := hex.EncodeToString(s.Layers[0].SignedSM3), hex.EncodeToString(cur.scan.SignedSM3); got != want {
		return fmt.Errorf("the form it wraps has signed SM3 %s, the current form %s", got, want)
	}
	if len(s.Layers[0].Signatures) != len(cur.scan.Signatures) {
		return fmt.Errorf("the form it wraps has %d signatures, the current form %d", len(s.Layers[0].Signatures), len(cur.scan.Signatures))
	}
	return nil
}

// becomeCurrent makes an amended package the current form of p, keeping the form before.
func becomeCurrent(p *index.Package, key string, size int64, scan *eep.Scan, logIndex uint64, layer int) {
	p.Prior = append(p.Prior, index.PriorForm{Layer: p.Layer, Key: p.Key, Size: p.Size, PackageSM3: p.PackageSM3,
		SignedSM3: hex.EncodeToString(scan.Layers[0].SignedSM3), Signature: p.SignatureB64, LogIndex: p.LogIndex, Version: p.Version})
	p.Version = "" // the caller pins the amended object's
	meta := map[int]index.Document{}
	for _, d := range p.Documents {
		meta[d.N] = d
	}
	p.Documents = currentDocuments(scan, func(n int, _ eep.ScannedDocument) index.Document { return meta[n] })
	sig := scan.Signatures[0]
	p.Key, p.Size, p.PackageSM3, p.LogIndex, p.Layer = key, size, hex.EncodeToString(scan.PackageSM3), logIndex, layer
	p.SignatureB64, p.Signer = base64.StdEncoding.EncodeToString(sig.Value), signerName(sig)
}

// currentDocuments are a package's documents as its scan holds them now: each one's newest
// archival encoding first, then its original file (for a document a revision changed, the
// one in the original package). meta gives what the index keeps beside the encodings.
func currentDocuments(scan *eep.Scan, meta func(n int, original eep.ScannedDocument) index.Document) []index.Document {
	var out []index.Document
	for i, vs := range scan.Versions() {
		n := i + 1
		doc := meta(n, vs[len(vs)-1])
		doc.N = n
		newest, first := vs[0], vs[len(vs)-1]
		encs := newest.Encodings
		if len(vs) > 1 && len(newest.Encodings) > 0 && len(first.Encodings) > 0 {
			encs = []eep.ScannedEncoding{newest.Encodings[0], first.Encodings[min(1, len(first.Encodings)-1)]}
		}
		doc.Target, doc.Tool = "", ""
		if len(encs) > 1 {
			doc.Target, doc.Tool = conversionOf(encs[0].Description)
		}
		doc.Encoded = nil
		for j, e := range encs {
			fi, _ := parseFormatInfo(e.Format)
			doc.Encoded = append(doc.Encoded, index.Encoding{ID: e.ID, FileName: e.FileName, Format: fi.PUID, FormatName: fi.Name,
				MIME: fi.MIME, Size: e.Size, SM3: e.SM3, Original: j == 1 || len(encs) == 1,
				DataOffset: e.DataOffset, DataLength: e.DataLength})
		}
		out = append(out, doc)
	}
	return out
}

// writeAmended makes the new renditions of docs and stores the amended package.
func (a *Archive) writeAmended(ctx context.Context, who Principal, p *index.Package, cur *verifiedObject, layer int, key string, docs []int) (int64, string, error) {
	var bufs []*spoolBuf
	defer func() {
		for _, b := range bufs {
			b.Release()
		}
	}()
	newBuf := func() *spoolBuf { b := a.spool.New(); bufs = append(bufs, b); return b }
	now := a.now().Truncate(time.Second)
	scan := cur.scan
	ent := scan.Entity()
	ent.Location, ent.Documents = key, nil
	var done []string
	for _, i := range docs {
		d := p.Documents[i]
		src, _ := a.toMake(d)
		buf := newBuf()
		h := sm3.New()
		rd := base64.NewDecoder(base64.StdEncoding, newlineStripper{io.NewSectionReader(cur.ra, src.DataOffset, src.DataLength)})
		if _, err := io.Copy(io.MultiWriter(buf, h), rd); err != nil {
			return 0, "", failMigration(d.N, "document %d: decode %s: %v", d.N, src.FileName, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != src.SM3 {
			return 0, "", failMigration(d.N, "document %d: %s has SM3 %s, not the %s recorded", d.N, src.FileName, got, src.SM3)
		}
		prep, err := formats.Prepare(ctx, buf, h.Sum(nil), src.FileName, formats.PrepareOptions{
			NewSink: func() (formats.Sink, error) { return newBuf(), nil }, NewHash: sm3.New, Tools: &a.tools, Title: d.Title})
		if err != nil {
			return 0, "", failMigration(d.N, "document %d: %s: the new rendition cannot be made: %v", d.N, src.FileName, err)
		}
		if prep.Original == nil || prep.Conversion == nil {
			return 0, "", failMigration(d.N, "document %d: %s: the policy made no rendition of it", d.N, src.FileName)
		}
		f := prep.Rendition
		ent.Documents = append(ent.Documents, eep.Document{N: d.N, Main: d.Main, Title: d.Title, Encodings: []eep.Encoding{{
			FileName: f.Name, Size: f.Size, FormatInfo: formatInfo(f.ID), CreatorApp: prep.Tool,
			Description: fmt.Sprintf(renditionPrefix+"%s 转换；%s；迁移（修改%d）；SM3:%s", src.FileName, conversionText(prep.Conversion), layer, hex.EncodeToString(f.SM3)),
			DecodeKey:   strings.TrimPrefix(strings.ToLower(path.Ext(f.Name)), "."),
			Open:        func() (io.ReadCloser, error) { return io.NopCloser(f.Open()), nil },
		}}})
		done = append(done, fmt.Sprintf("文档%d %s：%s（%s）→ %s；工具 %s", d.N, src.FileName, prep.Conversion.SourceName, prep.Conversion.SourcePUID, prep.Conversion.Target, prep.Tool))
	}
	const archiveID, orderID = "机构-档案馆", "人员-迁移下令"
	am := &eep.Amendment{
		Created: now, Creator: a.cfg.ArchiveName, Layer: layer, Entity: ent,
		Signed: io.NewSectionReader(cur.ra, scan.SignedSpan[0], scan.SignedSpan[1]-scan.SignedSpan[0]),
		Block:  io.NewSectionReader(cur.ra, scan.LockedSpan[0], scan.LockedSpan[1]-scan.LockedSpan[0]),
		Businesses: []eep.Business{{ID: fmt.Sprintf("修改%d-业务-1", layer), AgentID: archiveID, RecordNo: p.CaseNo, State: "历史行为", Action: "迁移", Time: now,
			Basis:       "日常迁移：格式策略或转换工具变更；DA/T 48-2009 修改型封装",
			Description: strings.Join(done, "；") + "；下令 " + who.Person() + "；原封装包 SM3 " + p.PackageSM3}},
		Agents: []eep.Agent{{ID: archiveID, Kind: "单位", Name: a.cfg.ArchiveName}, {ID: orderID, Kind: "个人", Name: nonEmpty(who.Name, who.Person()), Position: who.Role}},
	}
	sigID := fmt.Sprintf("修改%d-档案馆签名", layer)
	arch := a.pki.Archive
	signHash := newHashTee(signing.NewSignatureHash(arch.PublicKey()))
	defer signHash.Close()
	lockHash := signing.NewSignatureHash(arch.PublicKey())
	fileHash := newHashTee(sm3.New())
	defer fileHash.Close()
	hooks := eep.Hooks{
		Signed: signHash,
		Sign: func() ([]eep.Signature, error) {
			v, err := signing.SignDigest(arch.Key, signHash.Sums()[0])
			if err != nil {
				return nil, err
			}
			return []eep.Signature{{ID: sigID, Rule: RuleMigration, Time: now, Signer: a.cfg.ArchiveName, Value: v, Certs: certsDER(arch), Algorithm: signing.OIDSM2WithSM3.String()}}, nil
		},
		Locked: lockHash,
		Lock: func() (*eep.Signature, error) {
			v, err := signing.SignDigest(arch.Key, lockHash.Sum(nil))
			if err != nil {
				return nil, err
			}
			return &eep.Signature{LockedID: sigID, Rule: RuleLock, Time: now, Signer: a.cfg.ArchiveName, Value: v, Certs: certsDER(arch), Algorithm: signing.OIDSM2WithSM3.String()}, nil
		},
	}
	var werr error // the writer's own error, told apart from the store's
	src := &eepSource{write: func(w io.Writer) (*eep.Result, error) {
		res, _, err := eep.WriteAmended(io.MultiWriter(w, fileHash), am, hooks)
		werr = err
		return res, err
	}}
	info, err := a.store.Put(ctx, key, src, -1, storage.PutOptions{RetainUntil: p.RetainUntil})
	src.Close()
	if errors.Is(werr, eep.ErrNotCanonical) {
		return 0, "", failMigration(0, "%v", werr)
	}
	if err != nil {
		return 0, "", fmt.Errorf("store amended package %s: %w", key, err)
	}
	return info.Size, hex.EncodeToString(fileHash.Sums()[0]), nil
}

// signerName is the common name of a signature's signer certificate.
func signerName(s *eep.ScannedSignature) string {
	if len(s.Certs) == 0 {
		return ""
	}
	if c, err := smx509.ParseCertificate(s.Certs[0]); err == nil {
		return c.Subject.CommonName
	}
	if c, err := x509.ParseCertificate(s.Certs[0]); err == nil {
		return c.Subject.CommonName
	}
	return ""
}
