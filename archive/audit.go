package archive

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/signing/merkle"
	"github.com/dangan-archive/dangan/storage/index"
)

// The periodic audit (长期保存 四性检测): every package is re-read within the audit cycle,
// throttled, and checked:
//
//   - fixity (BC-1-14): the file's SM3 is the one its ingest event records, and that event is
//     in the event log under the latest signed checkpoint;
//   - signatures and timestamps (BC-1-1): the bytes being those verified at ingest, their
//     signatures hold; every signer certificate still chains to a trusted root at the time
//     it signed and was not revoked then (pki/crls.pem);
//   - readability (BC-3-1, BC-3-2): the package parses; each PDF rendition opens with pdfcpu;
//     each OFD passes the structure check;
//   - metadata completeness (BC-2-3, BC-2-4, BC-2-11).
//
// One read of the file does it all: the bytes are hashed as they stream, the document data
// of PDFs and OFDs is collected for the readability checks and the rest (the metadata) is
// parsed on its own. A package whose fixity fails is verified in full, so the report says
// which document or signature changed.

// AuditResult is one package's audit.
type AuditResult struct {
	Package      string        `json:"package"`
	ArchivalCode string        `json:"archival_code"`
	At           time.Time     `json:"at"`
	OK           bool          `json:"ok"`
	Bytes        int64         `json:"bytes"`
	Failed       []string      `json:"failed,omitempty"`
	Checks       []eep.Finding `json:"checks"`
	// Opened is the last successful opening of the documents: now, or (Reopened false) an
	// earlier one by the same reading software of the same bytes.
	Opened   *index.OpenedMark `json:"opened,omitempty"`
	Reopened bool              `json:"reopened"`
}

// readerSoftware names the software that opens documents in an audit: dangan's version and
// build, and its PDF reader's. An audit after it changes opens every document again.
var readerSoftware = sync.OnceValue(func() string {
	s := "dangan " + Version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && len(kv.Value) >= 12 {
				s += " (" + kv.Value[:12] + ")"
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/pdfcpu/pdfcpu" {
				s += ", pdfcpu " + d.Version
			}
		}
	}
	return s
})

// AuditRun is the state of an audit run.
type AuditRun struct {
	Running  bool      `json:"running"`
	All      bool      `json:"all"` // every package, not only those due
	Rate     int64     `json:"rate_bytes_per_s,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitempty"`
	Total    int       `json:"total"`
	Done     int       `json:"done"`
	Bytes    int64     `json:"bytes"`
	Failures int       `json:"failures"`
	After    string    `json:"after,omitempty"` // every package up to this id (in ingest order) is done
	Settled  int       `json:"settled"`         // how many those are
	Error    string    `json:"error,omitempty"`
	MBPerS   float64   `json:"mb_per_s,omitempty"`
}

// AuditStats are counters for metrics.
type AuditStats struct {
	Packages, Failures, Bytes atomic.Uint64
}

const auditRunKey = "audit-run"

// auditCodes maps the archiving-stage findings the audit keeps to their long-term codes.
var auditCodes = map[string]string{eep.CodeXMLReadable: "BC-3-1", eep.CodeMetaComplete: "BC-2-3", eep.CodeMandatory: "BC-2-4", eep.CodeContentCount: "BC-2-11"}

// auditor holds what one run shares between its workers.
type auditor struct {
	a      *Archive
	roots  *smx509.CertPool
	crls   []*smx509.RevocationList
	cpSize uint64
	cpRoot []byte
	cpErr  error
	limit  func(n int)
	mu     sync.Mutex
	bundle map[uint64][][]byte // recently read log bundles by first index (a run reads them in order)
	chains map[string]error    // signer chain checks by certificate and hour
	certs  map[string]*smx509.Certificate
	bufs   sync.Pool // *auditBufs
}

// auditBufs are one worker's scratch buffers, reused from package to package.
type auditBufs struct {
	read, skeleton, b64, decoded []byte
}

func (a *Archive) newAuditor(rate int64) *auditor {
	au := &auditor{a: a, roots: a.Trust(), crls: a.pki.CRLs, bundle: map[uint64][][]byte{}, chains: map[string]error{}, certs: map[string]*smx509.Certificate{}}
	au.bufs.New = func() any { return &auditBufs{read: make([]byte, 256<<10)} }
	if sc := a.elog.Latest(); sc != nil {
		if info, err := eventlog.VerifyCheckpoint(sc, au.roots); err != nil {
			au.cpErr = err
		} else {
			au.cpSize, au.cpRoot = info.Size, info.Root
		}
	}
	au.limit = func(int) {}
	if rate > 0 {
		var mu sync.Mutex
		start, sent := time.Now(), int64(0)
		au.limit = func(n int) {
			mu.Lock()
			sent += int64(n)
			ahead := time.Duration(float64(sent)/float64(rate)*float64(time.Second)) - time.Since(start)
			mu.Unlock()
			if ahead > 0 {
				time.Sleep(ahead)
			}
		}
	}
	return au
}

// event reads the event at index i, from a bundle read once per run.
func (au *auditor) event(ctx context.Context, i uint64) (eventlog.Event, error) {
	au.mu.Lock()
	for start, lines := range au.bundle {
		if i >= start && i < start+uint64(len(lines)) {
			line := lines[i-start]
			au.mu.Unlock()
			return eventlog.ParseEvent(line)
		}
	}
	au.mu.Unlock()
	start, lines, err := au.a.elog.Bundle(ctx, i)
	if err != nil {
		return eventlog.Event{}, fmt.Errorf("event %d: %w", i, err)
	}
	if i-start >= uint64(len(lines)) {
		return eventlog.Event{}, fmt.Errorf("event %d: %w", i, eventlog.ErrNotFound)
	}
	au.mu.Lock()
	if len(au.bundle) >= 16 {
		clear(au.bundle)
	}
	au.bundle[start] = lines
	au.mu.Unlock()
	return eventlog.ParseEvent(lines[i-start])
}

// cert parses a certificate once per run.
func (au *auditor) cert(der []byte) (*smx509.Certificate, error) {
	au.mu.Lock()
	c, ok := au.certs[string(der)]
	au.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	au.mu.Lock()
	if len(au.certs) > 10000 {
		clear(au.certs)
	}
	au.certs[string(der)] = c
	au.mu.Unlock()
	return c, nil
}

// chain checks a signer's chain at a time, remembering the answer for the hour.
func (au *auditor) chain(cert *smx509.Certificate, inter []*smx509.Certificate, at time.Time) error {
	key := string(cert.Raw) + at.Truncate(time.Hour).String()
	au.mu.Lock()
	err, ok := au.chains[key]
	au.mu.Unlock()
	if ok {
		return err
	}
	_, err = signing.VerifyChain(cert, inter, au.roots, at)
	au.mu.Lock()
	au.chains[key] = err
	au.mu.Unlock()
	return err
}

// auditPackage checks one package in one read.
func (au *auditor) auditPackage(ctx context.Context, p *index.Package) *AuditResult {
	a := au.a
	res := &AuditResult{Package: p.ID, ArchivalCode: p.ArchivalCode, At: a.now().UTC()}
	add := func(code, item string, ok bool, where, expected, found, detail string) {
		st := eep.Pass
		if !ok {
			st = eep.Fail
			res.Failed = append(res.Failed, fmt.Sprintf("%s %s %s: expected %s, found %s %s", code, item, where, expected, found, detail))
		}
		res.Checks = append(res.Checks, eep.Finding{Code: code, Item: item, Status: st, Where: where, Expected: expected, Found: found, Detail: detail})
	}
	defer func() { res.OK = len(res.Failed) == 0 }()

	// What the log says was archived, and that the log still says it.
	want, signedAt := p.PackageSM3, time.Time{}
	if ev, err := au.event(ctx, p.LogIndex); err != nil {
		add("BC-1-14", "固化信息有效性", false, "事件日志", "the package's ingest event", err.Error(), "")
	} else if ev.Subject != p.ID && ev.Subject != migrationSubject(p.ID, p.Layer) || ev.Digest != p.PackageSM3 {
		add("BC-1-14", "固化信息有效性", false, "事件日志", "the ingest event of "+p.ID+" with SM3 "+p.PackageSM3, fmt.Sprintf("%s of %s with SM3 %s", ev.Type, ev.Subject, ev.Digest), "the index and the log disagree")
	} else {
		signedAt = ev.Time
		switch {
		case au.cpErr != nil:
			add("BC-1-14", "固化信息有效性", false, "事件日志", "a valid latest checkpoint", au.cpErr.Error(), "")
		case p.LogIndex < au.cpSize:
			line, _ := ev.Encode()
			proof, err := a.elog.InclusionProof(p.LogIndex, au.cpSize)
			if err == nil {
				err = merkle.SM3.VerifyInclusion(p.LogIndex, au.cpSize, merkle.SM3.LeafHash(line), proof, au.cpRoot)
			}
			if err != nil {
				add("BC-1-14", "固化信息有效性", false, "事件日志", fmt.Sprintf("event %d in the signed checkpoint of %d", p.LogIndex, au.cpSize), err.Error(), "")
			}
		}
	}

	// Nothing stands over the archived version: no newer version, no delete marker.
	a.backfillVersion(ctx, p)
	if found, err := a.versionFindings(ctx, p.Key, p.Version); err != nil {
		add("BC-1-14", "归档前后封装包一致", false, "存储版本", "the versions of "+p.Key, err.Error(), "")
	} else if found != "" {
		add("BC-1-14", "归档前后封装包一致", false, "存储版本", "only the archived version "+p.Version+" of "+p.Key, found,
			"written behind dangan's back: the archived version is still the one read")
	}
	// One read: hash everything, keep the metadata, collect PDF and OFD data.
	rc, _, err := a.getPinned(ctx, p.Key, p.Version)
	if err != nil {
		add("BC-1-14", "归档前后封装包一致", false, "封装包", "the stored object "+p.Key, err.Error(), "")
		return res
	}
	defer rc.Close()
	bufs := au.bufs.Get().(*auditBufs)
	defer au.bufs.Put(bufs)
	type docData struct {
		n      int
		family string
		off    int64
		end    int64
		b64len int // base64 characters collected, line breaks left out
	}
	var docs []*docData
	var ranges [][2]int64
	// Memoised readability: the documents of a package whose bytes and reading software
	// are those of its last successful opening are not opened again (fixity, the log
	// proof, trust and revocation are checked every time).
	memo := p.Audit != nil && p.Audit.Opened != nil && p.Audit.Opened.SM3 == want && p.Audit.Opened.Software == readerSoftware()
	for _, d := range p.Documents {
		for j, e := range d.Encoded {
			ranges = append(ranges, [2]int64{e.DataOffset, e.DataOffset + e.DataLength})
			if j == 0 && !memo {
				fam := formats.Identification{PUID: e.Format, MIME: e.MIME}.Family()
				if fam == "pdf" || fam == "ofd" {
					docs = append(docs, &docData{n: d.N, family: fam, off: e.DataOffset, end: e.DataOffset + e.DataLength})
				}
			}
		}
	}
	sort.Slice(ranges, func(i, j int) bool { return ranges[i][0] < ranges[j][0] })
	skeleton := bufs.skeleton[:0]
	b64 := bufs.b64[:0] // the PDF and OFD data, one after the other
	h := sm3.New()
	buf := bufs.read
	var pos int64
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			au.limit(n)
			chunk := buf[:n]
			h.Write(chunk)
			// Split the chunk at the data ranges.
			for cs, ce := pos, pos+int64(n); cs < ce; {
				next := ce
				inData := false
				for _, r := range ranges {
					if cs >= r[0] && cs < r[1] {
						inData, next = true, min(ce, r[1])
						break
					}
					if r[0] > cs && r[0] < next {
						next = r[0]
					}
				}
				part := chunk[cs-pos : next-pos]
				if inData {
					for _, d := range docs {
						if cs >= d.off && cs < d.end {
							before := len(b64)
							b64 = appendNoNewlines(b64, part)
							d.b64len += len(b64) - before
						}
					}
				} else {
					skeleton = append(skeleton, part...)
				}
				cs = next
			}
			pos += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			add("BC-1-14", "归档前后封装包一致", false, "封装包", "a readable object", rerr.Error(), "")
			return res
		}
	}
	bufs.skeleton, bufs.b64 = skeleton, b64
	res.Bytes = pos
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != want || pos != p.Size {
		add("BC-1-14", "归档前后封装包一致", false, "封装包", fmt.Sprintf("%d bytes, SM3 %s", p.Size, want), fmt.Sprintf("%d bytes, SM3 %s", pos, sum), "the stored package changed")
		au.explain(ctx, p, res)
		return res
	}
	add("BC-1-14", "归档前后封装包一致", true, "封装包", "SM3 "+want, "SM3 "+sum, "")
	for _, f := range p.Prior { // the forms before a migration, kept as they were
		where := fmt.Sprintf("原封装包 修改%d", f.Layer)
		got, n, err := au.digestObject(ctx, f.Key, f.Version)
		switch {
		case err != nil:
			add("BC-1-14", "归档前后封装包一致", false, where, "the stored object "+f.Key, err.Error(), "")
		case got != f.PackageSM3 || n != f.Size:
			add("BC-1-14", "归档前后封装包一致", false, where, fmt.Sprintf("%d bytes, SM3 %s", f.Size, f.PackageSM3), fmt.Sprintf("%d bytes, SM3 %s", n, got), "a form kept from before a migration changed")
		default:
			add("BC-1-14", "归档前后封装包一致", true, where, "SM3 "+f.PackageSM3, "SM3 "+got, "")
		}
		res.Bytes += n
	}

	// The metadata: the package without its document data.
	scan, err := eep.Read(bytes.NewReader(skeleton), int64(len(skeleton)), eep.ScanOptions{NewHash: sm3.New})
	if err != nil {
		add("BC-3-1", "封装包元数据可读", false, "封装包", "a readable EEP", err.Error(), "")
		return res
	}
	for _, f := range scan.Findings {
		if code, ok := auditCodes[f.Code]; ok {
			f.Code = code
			if f.Status == eep.Fail {
				res.Failed = append(res.Failed, fmt.Sprintf("%s %s %s: expected %s, found %s", f.Code, f.Item, f.Where, f.Expected, f.Found))
			}
			res.Checks = append(res.Checks, f)
		}
	}
	// Signers: chains at the time of signing, no revocation before it.
	sigs := append([]*eep.ScannedSignature{}, scan.Signatures...)
	if scan.Lock != nil {
		sigs = append(sigs, scan.Lock)
	}
	current := len(sigs)
	for _, l := range scan.Layers { // an amended package's previous forms, signed before it
		sigs = append(sigs, l.Signatures...)
	}
	logged := signedAt
	if t := a.elog.CoveredAt(p.LogIndex); !t.IsZero() {
		logged = t
	}
	for i, s := range sigs {
		at, where := logged, "电子签名 "+s.ID
		if i >= current {
			where = "原封装包 电子签名 " + s.ID
			if !s.Time.IsZero() && s.Time.Before(at) {
				at = s.Time // checked when it signed, as the migration that wrapped it checked it
			}
		}
		if len(s.Certs) == 0 {
			add("BC-1-1", "固化信息有效性", false, where, "a signer certificate", "none", "")
			continue
		}
		cert, err := au.cert(s.Certs[0])
		if err != nil {
			add("BC-1-1", "固化信息有效性", false, where, "a signer certificate", err.Error(), "")
			continue
		}
		var inter []*smx509.Certificate
		for _, der := range s.Certs[1:] {
			if c, err := au.cert(der); err == nil {
				inter = append(inter, c)
			}
		}
		if err := au.chain(cert, inter, at); err != nil {
			add("BC-1-1", "固化信息有效性", false, where, fmt.Sprintf("a certificate trusted at %s", at.Format(time.RFC3339)), err.Error(), "")
		} else if rt, revoked := signing.RevokedBefore(au.crls, cert, at); revoked {
			add("BC-1-1", "固化信息有效性", false, where, "a certificate not revoked when it signed", fmt.Sprintf("%q revoked on %s, before %s", cert.Subject.CommonName, rt.Format(time.RFC3339), at.Format(time.RFC3339)), "")
		} else {
			add("BC-1-1", "固化信息有效性", true, where, "", "", fmt.Sprintf("the signed bytes are those verified at ingest; %q chains to a trusted root and was not revoked at %s", cert.Subject.CommonName, at.Format(time.RFC3339)))
		}
	}
	if memo {
		res.Opened = p.Audit.Opened
		add("BC-3-2", "内容数据可读", true, "文档", "", "", fmt.Sprintf("opened on %s by %s; the package's bytes are unchanged (SM3 %s), so its documents were not opened again",
			p.Audit.Opened.At.Format(time.DateOnly), p.Audit.Opened.Software, want))
		return res
	}
	// Readability of each PDF and OFD rendition. Their base64 was collected in order,
	// without line breaks, so the decoder runs its fast path.
	res.Reopened = true
	opened := true
	defer func() {
		if opened {
			res.Opened = &index.OpenedMark{At: res.At, SM3: want, Software: readerSoftware()}
		}
	}()
	var from int
	for _, d := range docs {
		text := b64[from : from+d.b64len]
		from += d.b64len
		if need := base64.StdEncoding.DecodedLen(len(text)); cap(bufs.decoded) < need {
			bufs.decoded = make([]byte, need)
		}
		data := bufs.decoded[:base64.StdEncoding.DecodedLen(len(text))]
		n, err := base64.StdEncoding.Decode(data, text)
		where := fmt.Sprintf("文档 %d", d.n)
		if err == nil {
			r := bytes.NewReader(data[:n])
			if d.family == "pdf" {
				err = formats.OpenPDF(r, int64(n))
			} else {
				_, err = formats.CheckOFD(r, int64(n))
			}
		}
		if err != nil {
			opened = false
			add("BC-3-2", "内容数据可读", false, where, "a "+d.family+" that opens", err.Error(), "")
		} else {
			add("BC-3-2", "内容数据可读", true, where, "", "", fmt.Sprintf("the %s opens (%d bytes)", d.family, n))
		}
	}
	return res
}

// digestObject is the SM3 and size of a stored object, read at the audit's rate.
func (au *auditor) digestObject(ctx context.Context, key, version string) (string, int64, error) {
	rc, _, err := au.a.getPinned(ctx, key, version)
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sm3.New()
	buf := make([]byte, 256<<10)
	var n int64
	for {
		m, err := rc.Read(buf)
		if m > 0 {
			au.limit(m)
			h.Write(buf[:m])
			n += int64(m)
		}
		if err == io.EOF {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
		if err != nil {
			return "", n, err
		}
	}
}

// explain verifies a package whose fixity failed in full, to say what changed.
func (au *auditor) explain(ctx context.Context, p *index.Package, res *AuditResult) {
	rc, info, err := au.a.getPinned(ctx, p.Key, p.Version)
	if err != nil {
		return
	}
	defer rc.Close()
	buf := au.a.spool.New()
	defer buf.Release()
	if _, err := io.Copy(buf, rc); err != nil {
		return
	}
	rep, _, err := verify(buf, info.Size, VerifyOptions{Roots: au.roots, Now: au.a.now})
	if err != nil {
		return
	}
	for _, f := range rep.Findings {
		if f.Status == eep.Fail {
			f.Code = "BC-" + f.Code[len("GD-"):]
			res.Checks = append(res.Checks, f)
			res.Failed = append(res.Failed, fmt.Sprintf("%s %s %s: expected %s, found %s %s", f.Code, f.Item, f.Where, f.Expected, f.Found, f.Detail))
		}
	}
}

// recordAudits stores results, marks their packages, logs them as events and counts them:
// one index transaction and one event bundle for a group.
func (a *Archive) recordAudits(ctx context.Context, results []*AuditResult) error {
	entries := make([]index.AuditEntry, len(results))
	events := make([]eventlog.Event, len(results))
	for i, res := range results {
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		entries[i] = index.AuditEntry{Key: fmt.Sprintf("%020d-%s", res.At.UnixNano(), res.Package), Record: b, Package: res.Package,
			Mark: index.AuditMark{At: res.At, OK: res.OK, Failed: res.Failed, Opened: res.Opened}}
		attrs := map[string]string{"ok": strconv.FormatBool(res.OK), "bytes": strconv.FormatInt(res.Bytes, 10)}
		if !res.OK {
			attrs["failed"] = strconv.Itoa(len(res.Failed))
		}
		events[i] = eventlog.Event{Type: eventlog.TypeAudit, Actor: "auditor", Subject: res.Package, Time: res.At, Attrs: attrs}
	}
	if err := a.index.RecordAudits(entries); err != nil {
		return err
	}
	if _, err := a.elog.Append(ctx, events...); err != nil {
		return fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
	}
	for _, res := range results {
		a.auditStats.Packages.Add(1)
		a.auditStats.Bytes.Add(uint64(res.Bytes))
		if !res.OK {
			a.auditStats.Failures.Add(1)
			a.log.Error("AUDIT FAILED: a stored package no longer passes its checks", "package", res.Package, "archival_code", res.ArchivalCode, "failed", res.Failed)
		}
	}
	return nil
}

// AuditStats are the auditor's counters.
func (a *Archive) AuditStats() *AuditStats { return &a.auditStats }

// StartAudit starts an audit run (all: every package; else those due) unless one runs.
func (a *Archive) StartAudit(ctx context.Context, who Principal, all bool, rate int64) (*AuditRun, error) {
	if who.Role != RoleArchive && who.Role != RoleAdmin && who.Role != RoleAuditor {
		return nil, fmt.Errorf("%w: audits are run by the archive, an auditor or an admin", ErrForbidden)
	}
	a.auditMu.Lock()
	defer a.auditMu.Unlock()
	if a.auditCancel != nil {
		run, _ := a.AuditRunStatus(who)
		return run, fmt.Errorf("%w: an audit run is in progress (%d/%d)", ErrState, run.Done, run.Total)
	}
	run := &AuditRun{Running: true, All: all, Rate: rate, Started: a.now().UTC()}
	if err := a.index.PutRecord(index.State, auditRunKey, run); err != nil {
		return nil, err
	}
	started := *run // the run goes on changing in the background: the caller gets its start
	a.launchAudit(run)
	return &started, nil
}

// AuditRunStatus reports the current or last audit run.
func (a *Archive) AuditRunStatus(who Principal) (*AuditRun, error) {
	if err := a.CanAudit(who); err != nil {
		return nil, err
	}
	var run AuditRun
	if err := a.index.Record(index.State, auditRunKey, &run); errors.Is(err, index.ErrNotFound) {
		return &AuditRun{}, nil
	} else if err != nil {
		return nil, err
	}
	return &run, nil
}

// launchAudit runs (or resumes) a run in the background. Call with auditMu held.
func (a *Archive) launchAudit(run *AuditRun) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.auditCancel, a.auditDone = cancel, done
	go func() {
		defer close(done)
		defer cancel()
		err := a.runAudit(ctx, run)
		a.auditMu.Lock()
		if a.auditDone == done {
			a.auditCancel = nil
		}
		a.auditMu.Unlock()
		if err != nil && ctx.Err() == nil {
			a.log.Error("audit run failed", "err", err)
		}
	}()
}

// runAudit audits the run's packages in ingest order with one worker per core, recording
// the low-water mark so that a restart resumes after it.
func (a *Archive) runAudit(ctx context.Context, run *AuditRun) error {
	now := a.now()
	// The packages due are one range of the index: a resumed run finds there only those it
	// had not done (a check moves a package out of it). A run of everything walks the
	// ingest order and resumes after its low-water mark.
	var todo []string
	span := index.CheckedBy(index.AllDepartments, now.Add(-a.cfg.AuditCycle))
	past := true
	if run.All {
		span, past = index.Ingested(index.AllDepartments), run.After == ""
	}
	for cursor := ""; ; {
		page, err := a.index.List(span, cursor, 1000)
		if err != nil {
			return err
		}
		for _, p := range page.Packages {
			if !past {
				past = p.ID == run.After
				continue
			}
			if p.Tombstone == nil {
				todo = append(todo, p.ID)
			}
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	// A resumed run starts again after the last package before which all are done.
	base := run.Settled
	run.Done, run.Total = base, base+len(todo)
	au := a.newAuditor(run.Rate)
	workers := runtime.NumCPU() + 1 // one more, to use the cores while one waits on the disk
	start := time.Now()
	save := func() {
		run.MBPerS = float64(run.Bytes) / (1 << 20) / time.Since(start).Seconds()
		if err := a.index.PutRecord(index.State, auditRunKey, run); err != nil {
			a.log.Error("record the audit run's progress", "err", err)
		}
	}
	// Workers audit; one recorder commits their results in groups, in order of
	// completion, and moves the low-water mark.
	type done struct {
		i   int
		res *AuditResult
	}
	out := make(chan done, 64)
	next := atomic.Int64{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) || ctx.Err() != nil {
					return
				}
				p, err := a.index.Package(todo[i])
				if err != nil {
					p = &index.Package{ID: todo[i]} // gone meanwhile: the audit says what it finds
				}
				res := au.auditPackage(ctx, p)
				if ctx.Err() != nil {
					return
				}
				out <- done{i, res}
			}
		}()
	}
	go func() { wg.Wait(); close(out) }()
	finished := make([]bool, len(todo))
	doneUpTo := -1
	var firstErr error
	var group []done
	flush := func() {
		if len(group) == 0 || firstErr != nil {
			group = group[:0]
			return
		}
		rs := make([]*AuditResult, len(group))
		for k, d := range group {
			rs[k] = d.res
		}
		if err := a.recordAudits(context.WithoutCancel(ctx), rs); err != nil {
			firstErr = err
			return
		}
		for _, d := range group {
			finished[d.i] = true
			run.Done++
			run.Bytes += d.res.Bytes
			if !d.res.OK {
				run.Failures++
			}
		}
		for doneUpTo+1 < len(todo) && finished[doneUpTo+1] {
			doneUpTo++
			run.After, run.Settled = todo[doneUpTo], base+doneUpTo+1
		}
		save()
		group = group[:0]
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case d, ok := <-out:
			if !ok {
				break loop
			}
			group = append(group, d)
			if len(group) >= 128 {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
	flush()
	if ctx.Err() != nil {
		return ctx.Err() // the saved low-water mark resumes it at the next start
	}
	// The run is over when its record says so: a new one can start from then on.
	a.auditMu.Lock()
	run.Running, run.Finished = false, a.now().UTC()
	if firstErr != nil {
		run.Error = firstErr.Error()
	}
	save()
	a.auditCancel = nil
	a.auditMu.Unlock()
	a.log.Info("audit run finished", "packages", run.Done, "failures", run.Failures, "mb", run.Bytes>>20, "mb_per_s", fmt.Sprintf("%.0f", run.MBPerS))
	return firstErr
}

// AuditFilter selects stored audit results.
type AuditFilter struct {
	Package    string
	FailedOnly bool
	Since      time.Time
	Cursor     string
	Limit      int
}

// Audits lists stored audit results, oldest first from Since, a page after f.Cursor; the
// cursor of the next page is returned when one may follow.
func (a *Archive) Audits(ctx context.Context, who Principal, f AuditFilter) ([]AuditResult, string, error) {
	if err := a.CanAudit(who); err != nil {
		return nil, "", err
	}
	via := ""
	switch {
	case f.Package != "":
		via = "p\x00" + f.Package + "\x00"
	case f.FailedOnly:
		via = "f\x00"
	}
	return listTimed(a.index, index.Audits, index.AuditKeys, via, f.Since, time.Time{}, f.Cursor, f.Limit, func(r AuditResult) (time.Time, bool) {
		return r.At, (f.Package == "" || r.Package == f.Package) && (!f.FailedOnly || !r.OK)
	})
}

// runAuditor is the background auditor: it resumes an interrupted run, then looks every
// few minutes for packages due (the cycle spreads them out) and audits them at the
// configured rate.
func (a *Archive) runAuditor(ctx context.Context) {
	defer close(a.auditorDone)
	var run AuditRun
	if a.index.Record(index.State, auditRunKey, &run) == nil && run.Running {
		a.log.Info("resuming the interrupted audit run", "done", run.Done, "total", run.Total)
		a.auditMu.Lock()
		a.launchAudit(&run)
		a.auditMu.Unlock()
	}
	t := time.NewTicker(a.auditEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.auditMu.Lock()
		busy := a.auditCancel != nil
		a.auditMu.Unlock()
		if !busy && a.auditsDue() {
			if _, err := a.StartAudit(ctx, Principal{Role: RoleArchive}, false, a.cfg.AuditRate); err != nil && !errors.Is(err, ErrState) {
				a.log.Error("scheduled audit", "err", err)
			}
		}
	}
}

// auditsDue reports whether any package's audit is due (one key read).
func (a *Archive) auditsDue() bool {
	due, err := a.index.First(index.CheckedBy(index.AllDepartments, a.now().Add(-a.cfg.AuditCycle)))
	if err != nil {
		a.log.Error("look for audits due", "err", err)
	}
	return due
}

// appendNoNewlines appends src to dst without its CR and LF bytes.
func appendNoNewlines(dst, src []byte) []byte {
	for len(src) > 0 {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			i = len(src)
		}
		seg := src[:i]
		if len(seg) > 0 && seg[len(seg)-1] == '\r' {
			seg = seg[:len(seg)-1]
		}
		dst = append(dst, seg...)
		src = src[min(i+1, len(src)):]
	}
	return dst
}
