package archive

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Version is written into packages (信息系统描述).
var Version = "0.1.0"

// Upload is one file part of an ingest.
type Upload struct {
	Part     string // the multipart part name, listed in Case.Documents[].File
	FileName string
	Body     io.Reader
}

// FieldErr attaches the failing request field to an error.
type FieldErr struct {
	Field string
	Err   error
}

func (e *FieldErr) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldErr) Unwrap() error { return e.Err }

func fieldErr(field string, err error) error { return &FieldErr{Field: field, Err: err} }

// IngestResult is the outcome of an ingest.
type IngestResult struct {
	Created bool // false when an identical earlier submission's package is returned
	Package *index.Package
}

// Signature rules (签名规则) of dangan's profile.
const (
	RuleDepartment = "dangan-1：SM2/SM3 数字签名（GB/T 32918，用户标识 1234567812345678），签名对象为被签名对象元素的 C14N 1.0（不含注释）UTF-8 字节，即文件中自 <被签名对象 至 </被签名对象> 的全部字节；签名结果为 DER 编码的 SEQUENCE{r,s}；证书块含签名证书及其证书链。"
	RuleLock       = "dangan-1：档案馆锁定签名，SM2/SM3（用户标识 1234567812345678），签名对象为电子签名块元素的 C14N 1.0（不含注释）UTF-8 字节，即文件中自 <电子签名块 至 </电子签名块> 的全部字节；签名结果为 DER 编码的 SEQUENCE{r,s}。"
	deptSigID      = "部门签名1"
)

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

type spooled struct {
	buf  *spoolBuf
	name string
	sum  []byte
}

// Ingest archives a finished case: who must be the case's department. next yields the file
// parts and io.EOF after the last; an error from it (a truncated body) aborts the ingest.
// Nothing is stored unless the whole case is valid; the index is written last.
func (a *Archive) Ingest(ctx context.Context, who Principal, c *Case, next func() (*Upload, error)) (*IngestResult, error) {
	if who.Role != RoleDepartment {
		return nil, fmt.Errorf("%w: only a department token can ingest cases", ErrForbidden)
	}
	if err := a.storeHealthy(ctx); err != nil {
		return nil, err
	}
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-time.After(a.cfg.IngestWait):
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	now := a.now().Truncate(time.Second) // packages record times in whole seconds
	if err := c.Validate(now); err != nil {
		return nil, err
	}
	if who.Org != c.Department.USCC {
		return nil, fieldErr("department.uscc", fmt.Errorf("%w: the token belongs to department %s, the case to %s", ErrForbidden, who.Org, c.Department.USCC))
	}
	var bufs []*spoolBuf
	defer func() {
		for _, b := range bufs {
			b.Release()
		}
	}()
	newBuf := func() *spoolBuf { b := a.spool.New(); bufs = append(bufs, b); return b }
	newSink := func() (formats.Sink, error) { return newBuf(), nil }

	t0 := time.Now()
	files, err := a.receive(ctx, c, next, newBuf)
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	prepared := make([]*formats.Prepared, len(c.Documents))
	for i, d := range c.Documents {
		p, err := formats.Prepare(ctx, files[i].buf, files[i].sum, files[i].name,
			formats.PrepareOptions{NewSink: newSink, NewHash: sm3.New, Tools: &a.tools, Title: d.Title})
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("documents[%d].file", i), fmt.Errorf("part %q (%s): %w", d.File, files[i].name, err))
		}
		prepared[i] = p
	}
	t2 := time.Now()
	digest := contentDigest(c, files)
	if existing, err := a.index.PackageByCase(c.Department.USCC, c.CaseNo); err == nil {
		return a.resend(existing, digest)
	} else if !errors.Is(err, index.ErrNotFound) {
		return nil, err
	}
	res, err := a.store1(ctx, c, prepared, digest, now)
	a.log.Debug("ingest timings", "case_no", c.CaseNo, "receive", t1.Sub(t0), "prepare", t2.Sub(t1), "package", time.Since(t2))
	return res, err
}

// resend answers a second submission of an archived case.
func (a *Archive) resend(existing *index.Package, digest string) (*IngestResult, error) {
	if existing.ContentDigest == digest {
		return &IngestResult{Created: false, Package: existing}, nil
	}
	return nil, fieldErr("case_no", fmt.Errorf("%w: case %s is archived as package %s (档号 %s); send changes as an amendment", ErrConflict, existing.CaseNo, existing.ID, existing.ArchivalCode))
}

// receive buffers every file part (in memory while small, else in a scratch file), hashing
// it, and checks the parts against the list.
func (a *Archive) receive(ctx context.Context, c *Case, next func() (*Upload, error), newBuf func() *spoolBuf) ([]spooled, error) {
	want := map[string]int{}
	for i, d := range c.Documents {
		want[d.File] = i
	}
	files := make([]spooled, len(c.Documents))
	got := make([]bool, len(c.Documents))
	for {
		up, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the request: %w", ErrBadUpload, err)
		}
		i, ok := want[up.Part]
		if !ok {
			return nil, fieldErr("documents", fmt.Errorf("%w: part %q is not listed in documents[].file", ErrBadUpload, up.Part))
		}
		field := fmt.Sprintf("documents[%d].file", i)
		if got[i] {
			return nil, fieldErr(field, fmt.Errorf("%w: part %q is sent twice", ErrBadUpload, up.Part))
		}
		if err := CheckFileName(up.FileName); err != nil {
			return nil, fieldErr(field, fmt.Errorf("%w: %v", ErrBadUpload, err))
		}
		f := newBuf()
		tee := newHashTee(sm3.New())
		buf := copyBufs.Get().(*[]byte)
		n, err := copyFull(io.MultiWriter(f, tee), up.Body, *buf)
		copyBufs.Put(buf)
		sum := tee.Sums()[0]
		if err != nil {
			return nil, fmt.Errorf("%w: part %q: %w", ErrBadUpload, up.Part, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fieldErr(field, fmt.Errorf("%w: part %q (%s) is empty", ErrBadUpload, up.Part, up.FileName))
		}
		files[i] = spooled{buf: f, name: up.FileName, sum: sum}
		got[i] = true
	}
	for i, d := range c.Documents {
		if !got[i] {
			return nil, fieldErr(fmt.Sprintf("documents[%d].file", i), fmt.Errorf("%w: part %q is listed but was not sent", ErrBadUpload, d.File))
		}
	}
	return files, nil
}

// copyFull copies in whole buffers: a multipart part yields a few KiB per Read, and writing
// each piece as it comes would cost a syscall per few KiB of a large upload. Only io.EOF
// ends the copy cleanly: a truncated part's io.ErrUnexpectedEOF is an error.
func copyFull(dst io.Writer, src io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m := 0
		var err error
		for m < len(buf) && err == nil {
			var k int
			k, err = src.Read(buf[m:])
			m += k
		}
		if m > 0 {
			if _, werr := dst.Write(buf[:m]); werr != nil {
				return n, werr
			}
			n += int64(m)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// contentDigest identifies a submission: the case metadata and every original's digest.
func contentDigest(c *Case, files []spooled) string {
	h := sm3.New()
	meta, _ := json.Marshal(c)
	h.Write(meta)
	for i, f := range files {
		fmt.Fprintf(h, "\x00%s\x00%s\x00%d\x00%x", c.Documents[i].File, f.name, f.buf.Size(), f.sum)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// store1 packages, signs, stores and indexes a validated case.
func (a *Archive) store1(ctx context.Context, c *Case, docs []*formats.Prepared, digest string, now time.Time) (*IngestResult, error) {
	dept, err := a.pki.Department(c.Department.USCC, c.Department.Name)
	if err != nil {
		return nil, fmt.Errorf("department signing identity: %w", err)
	}
	fonds := a.fondsOf(c.Department.USCC)
	year := c.FinishedAt.In(eep.CST()).Year()
	series := seriesOf(fonds, year, c.Retention)
	itemNo, err := a.index.ReserveItemNo(series)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			if err := a.index.ReleaseItemNo(series, itemNo); err != nil {
				a.log.Error("release item number", "series", series, "item", itemNo, "err", err)
			}
		}
	}()
	// The id's milliseconds come from the clock, not from now (whole seconds): lists and
	// searches order cases of the same second by id, newest first.
	id, err := newID(a.now())
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("packages/%s/%d/%s.eep", fonds, year, id)
	retainUntil := a.RetentionEnd(c.Retention, year)
	code := archivalCode(fonds, year, c.Retention, itemNo)
	pkg := a.buildPackage(c, docs, fonds, year, itemNo, key, now, digest)

	// The department's signature hash and the whole-file digest each run in a goroutine of
	// their own, beside the base64 encoding and the writing.
	deptHash := newHashTee(signing.NewSignatureHash(dept.PublicKey()))
	defer deptHash.Close()
	fileHash := newHashTee(sm3.New())
	defer fileHash.Close()
	lockHash := signing.NewSignatureHash(a.pki.Archive.PublicKey())
	hooks := eep.Hooks{
		Signed: deptHash,
		Sign: func() ([]eep.Signature, error) {
			v, err := signing.SignDigest(dept.Key, deptHash.Sums()[0])
			if err != nil {
				return nil, err
			}
			return []eep.Signature{{ID: deptSigID, Rule: RuleDepartment, Time: now, Signer: c.Department.Name,
				Value: v, Certs: certsDER(dept), Algorithm: signing.OIDSM2WithSM3.String()}}, nil
		},
		Locked: lockHash,
		Lock: func() (*eep.Signature, error) {
			v, err := signing.SignDigest(a.pki.Archive.Key, lockHash.Sum(nil))
			if err != nil {
				return nil, err
			}
			return &eep.Signature{LockedID: deptSigID, Rule: RuleLock, Time: now, Signer: a.cfg.ArchiveName,
				Value: v, Certs: certsDER(a.pki.Archive), Algorithm: signing.OIDSM2WithSM3.String()}, nil
		},
	}
	src := &eepSource{write: func(w io.Writer) (*eep.Result, error) {
		return eep.Write(io.MultiWriter(w, fileHash), pkg, hooks)
	}}
	tPut := time.Now()
	putCtx, storeDown := a.whileStoreUp(ctx)
	info, err := a.store.Put(putCtx, key, src, -1, storage.PutOptions{RetainUntil: retainUntil})
	src.Close()
	putTook := time.Since(tPut)
	if down := storeDown(); down != nil && err != nil {
		return nil, fmt.Errorf("store package: %w", down)
	}
	if err != nil { // when the writer failed, Put's error carries the writer's
		return nil, fmt.Errorf("store package: %w", err)
	}
	res := src.res
	sig := res.Signatures[0].Value
	rec := &index.Package{
		ID: id, Key: key, Fonds: fonds, Department: c.Department.USCC, DepartmentName: c.Department.Name,
		CaseNo: c.CaseNo, ArchivalCode: code, Series: series, ItemNo: itemNo, Year: year, Retention: c.Retention,
		ItemCode: c.Item.Code, ItemName: c.Item.Name, Title: pkg.Entity.Title,
		FinishedAt: c.FinishedAt.Truncate(time.Second).In(eep.CST()), IngestedAt: now.UTC(),
		Size: info.Size, Version: info.Version, PackageSM3: hex.EncodeToString(fileHash.Sums()[0]),
		ContentDigest: digest, SignatureB64: base64.StdEncoding.EncodeToString(sig), Signer: dept.Cert.Subject.CommonName,
		State: "archived", RetainUntil: retainUntil, Sharing: SharingClass(c.Sharing.Scope), SharingConditions: c.Sharing.Conditions,
	}
	rec.Documents = indexDocs(c, docs, res)
	rec.ArchivedLate = a.archivedLate(rec)
	rec.CaseText = caseText(c)
	if err := a.sealCaseText(rec.CaseText); err != nil {
		return nil, err
	}
	// Timestamp, evidence and index entry, in a group with concurrent ingests.
	tCommit := time.Now()
	cr := a.commit(ctx, rec, sig)
	a.log.Debug("ingest store timings", "case_no", c.CaseNo, "write_and_put", putTook, "commit_wait", time.Since(tCommit))
	if errors.Is(cr.err, index.ErrCaseExists) {
		// A concurrent submission of the same case won the race.
		a.discard(ctx, key)
		return a.resend(cr.existing, digest)
	}
	if cr.err != nil {
		a.discard(ctx, key)
		return nil, cr.err
	}
	committed = true
	a.log.Info("ingest", "package", id, "archival_code", code, "department", c.Department.USCC, "case_no", c.CaseNo,
		"documents", len(docs), "bytes", info.Size, "package_sm3", rec.PackageSM3)
	return &IngestResult{Created: true, Package: rec}, nil
}

// seriesOf names the series item numbers run in without gaps: fonds, year and retention.
func seriesOf(fonds string, year int, retention string) string {
	return fmt.Sprintf("%s/%d/%s", fonds, year, retention)
}

// archivalCode is the 档号 <全宗号>-<年度>-<保管期限>-<件号>.
func archivalCode(fonds string, year int, retention string, item int) string {
	return fmt.Sprintf("%s-%d-%s-%04d", fonds, year, retention, item)
}

// eepSource streams a package into the object store. Stores that copy with io.Copy get
// WriteTo: the package is written straight into their file, with no pipe between. Other
// readers get a pipe fed by a goroutine.
type eepSource struct {
	write func(io.Writer) (*eep.Result, error)
	res   *eep.Result
	pr    *io.PipeReader
	done  chan struct{}
}

func (s *eepSource) WriteTo(w io.Writer) (int64, error) {
	res, err := s.write(w)
	s.res = res
	if err != nil {
		return 0, err
	}
	return res.Size, nil
}

func (s *eepSource) Read(p []byte) (int, error) {
	if s.pr == nil {
		pr, pw := io.Pipe()
		s.pr, s.done = pr, make(chan struct{})
		go func() {
			defer close(s.done)
			res, err := s.write(pw)
			s.res = res
			pw.CloseWithError(err)
		}()
	}
	return s.pr.Read(p)
}

// Close stops a pipe writer the store did not read to the end.
func (s *eepSource) Close() {
	if s.pr != nil {
		s.pr.CloseWithError(errors.New("the object store stopped reading"))
		<-s.done
	}
}

// discard removes objects of an ingest that will not be committed.
func (a *Archive) discard(ctx context.Context, keys ...string) {
	for _, k := range keys {
		if err := a.store.Delete(context.WithoutCancel(ctx), k); err != nil {
			a.log.Error("remove object of a failed ingest", "key", k, "err", err)
		}
	}
}

func certsDER(id *signing.Identity) [][]byte {
	var out [][]byte
	for _, c := range id.Certificates() {
		out = append(out, c.Raw)
	}
	return out
}

func indexDocs(c *Case, docs []*formats.Prepared, res *eep.Result) []index.Document {
	var out []index.Document
	k := 0
	for i, p := range docs {
		d := index.Document{N: i + 1, Title: c.Documents[i].Title, Kind: c.Documents[i].Kind, Main: c.Documents[i].Main,
			Part: c.Documents[i].File, Warnings: p.Warnings}
		if p.Original != nil && p.Conversion != nil { // a rendition is the archival copy
			d.Tool, d.Target = p.Tool, p.Conversion.Target
		}
		for j, f := range encodedFiles(p) {
			place := res.Encodings[k]
			k++
			d.Encoded = append(d.Encoded, index.Encoding{ID: place.ID, FileName: f.Name, Format: f.ID.PUID, FormatName: f.ID.Name,
				MIME: f.ID.MIME, Size: f.Size, SM3: hex.EncodeToString(f.SM3), Original: p.Original == nil && j == 0 || p.Original != nil && j == 1,
				DataOffset: place.DataOffset, DataLength: place.DataLength})
		}
		out = append(out, d)
	}
	return out
}

// encodedFiles are a document's encodings in package order: the archival copy, the
// original when a rendition is the archival copy, a rendition kept beside an original that
// is the archival copy.
func encodedFiles(p *formats.Prepared) []formats.File {
	out := []formats.File{p.Rendition}
	if p.Original != nil {
		out = append(out, *p.Original)
	}
	if p.Beside != nil {
		out = append(out, *p.Beside)
	}
	return out
}

// renditionPrefix begins the 编码描述 of an archival copy converted from the original.
const renditionPrefix = "归档保存版本，由原始文件 "

// conversionOf reads the target and tool back from an archival rendition's 编码描述 (what
// conversionText wrote); "" for a description that is not one.
func conversionOf(desc string) (target, tool string) {
	if !strings.HasPrefix(desc, renditionPrefix) {
		return "", ""
	}
	_, rest, ok := strings.Cut(desc, "→ ")
	if !ok {
		return "", ""
	}
	target, rest, ok = strings.Cut(rest, "；工具 ")
	if !ok {
		return "", ""
	}
	tool, _, _ = strings.Cut(rest, "；转换时间 ")
	return target, tool
}

// conversionText describes a conversion for an encoding's 编码描述.
func conversionText(c *formats.Conversion) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("源格式 %s（%s）→ %s；工具 %s；转换时间 %s", c.SourcePUID, c.SourceName, c.Target, c.Tool, c.At)
}

func (a *Archive) buildPackage(c *Case, docs []*formats.Prepared, fonds string, year, itemNo int, key string, now time.Time, digest string) *eep.Package {
	cst := eep.CST()
	ts := func(t time.Time) string { return t.In(cst).Format("2006-01-02 15:04:05") }
	deptID, archiveID, applicantID := "机构-部门", "机构-档案馆", "人员-申请人"
	e := eep.Entity{
		ArchiveName: a.cfg.ArchiveName, FondsName: c.Department.Name, Creator: c.Department.Name,
		RecordNo: c.CaseNo, Fonds: fonds, Year: year, Retention: c.Retention, ItemNo: itemNo,
		Title:    c.Item.Name + "（办件编号 " + c.CaseNo + "）",
		Abstract: strings.TrimSpace(c.Result.Decision + " " + c.Result.Opinion), DocNo: c.CaseNo,
		Responsible: c.Department.Name, Date: c.FinishedAt.In(cst).Format("2006-01-02"), DocKind: "政务服务办件",
		Classification: "非密", Language: "汉语", Location: key,
		Grants:  []eep.Grant{{To: c.Sharing.Scope, Action: nonEmpty(c.Sharing.Conditions, "共享")}},
		Systems: []string{"dangan " + Version + "：政务服务办件电子归档系统"},
	}
	notes := [][2]string{
		{"办件编号", c.CaseNo}, {"事项编码", c.Item.Code}, {"事项名称", c.Item.Name}, {"事项类别", c.Item.Category},
		{"办件类型", c.CaseType}, {"受理时间", ts(c.AcceptedAt)}, {"办结时间", ts(c.FinishedAt)},
		{"办结状态", c.Result.Status}, {"办理结果", c.Result.Decision}, {"办结意见", c.Result.Opinion},
		{"申请人", c.Applicant.Name}, {"申请人类型", c.Applicant.Kind}, {"申请人证件类型", c.Applicant.IDType},
		{"申请人证件号码", c.Applicant.IDNumber}, {"共享范围", c.Sharing.Scope}, {"共享条件", c.Sharing.Conditions},
		{"保管期限", c.Retention + "（" + retentionCodes[c.Retention] + "）"}, {"说明", c.Description},
		{noteDigest, digest},
	}
	for i, d := range c.Documents {
		notes = append(notes, [2]string{fmt.Sprintf(noteDocKind, i+1), d.Kind}, [2]string{fmt.Sprintf(noteDocPart, i+1), d.File})
		for _, w := range docs[i].Warnings {
			notes = append(notes, [2]string{fmt.Sprintf(noteDocWarning, i+1), w})
		}
	}
	for _, n := range notes {
		if n[1] != "" {
			e.Notes = append(e.Notes, n[0]+"："+n[1])
		}
	}
	for i, p := range docs {
		d := eep.Document{Main: c.Documents[i].Main, Title: c.Documents[i].Title}
		for j, f := range encodedFiles(p) {
			f := f
			desc := "归档保存版本；SM3:" + hex.EncodeToString(f.SM3)
			app := ""
			switch {
			case p.Original != nil && j == 0:
				desc = fmt.Sprintf(renditionPrefix+"%s 转换；%s；SM3:%s", p.Original.Name, conversionText(p.Conversion), hex.EncodeToString(f.SM3))
				app = p.Tool
			case p.Original != nil && j == 1:
				desc = "原始文件；SM3:" + hex.EncodeToString(f.SM3)
			case p.Beside != nil && j == 0:
				desc = "归档保存版本（原始文件，含电子签名，未改写）；SM3:" + hex.EncodeToString(f.SM3)
			case p.Beside != nil:
				desc = fmt.Sprintf("参考版本，由归档保存版本 %s 转换（原件含电子签名，不改写）；%s；SM3:%s", p.Rendition.Name, conversionText(p.Conversion), hex.EncodeToString(f.SM3))
				app = p.Tool
			}
			d.Encodings = append(d.Encodings, eep.Encoding{
				FileName: f.Name, Size: f.Size, FormatInfo: formatInfo(f.ID), CreatorApp: app, Description: desc,
				DecodeKey: strings.TrimPrefix(strings.ToLower(filepath.Ext(f.Name)), "."),
				Open:      func() (io.ReadCloser, error) { return io.NopCloser(f.Open()), nil },
			})
		}
		e.Documents = append(e.Documents, d)
	}
	bs := []eep.Business{}
	agents := []eep.Agent{
		{ID: deptID, Kind: "单位", Name: c.Department.Name, OrgCode: c.Department.USCC},
		{ID: applicantID, Kind: applicantKind(c.Applicant), Name: c.Applicant.Name, OrgCode: orgCode(c.Applicant)},
	}
	actors := map[string]string{}
	for i, s := range c.Steps {
		aid, ok := actors[s.Actor+"\x00"+s.ActorID]
		if !ok {
			aid = fmt.Sprintf("人员-%d", len(actors)+1)
			actors[s.Actor+"\x00"+s.ActorID] = aid
			pos := ""
			if s.ActorID != "" {
				pos = "工号 " + s.ActorID
			}
			agents = append(agents, eep.Agent{ID: aid, Kind: "个人", Name: s.Actor, Position: pos})
		}
		bs = append(bs, eep.Business{ID: fmt.Sprintf("业务-%d", i+1), AgentID: aid, RecordNo: c.CaseNo, State: "历史行为",
			Action: s.Name, Time: s.At, Description: s.Opinion})
	}
	bs = append(bs,
		eep.Business{ID: fmt.Sprintf("业务-%d", len(bs)+1), AgentID: deptID, RecordNo: c.CaseNo, State: "历史行为",
			Action: "办结", Time: c.FinishedAt, Description: strings.TrimSpace(c.Result.Status + " " + c.Result.Decision)},
		eep.Business{ID: fmt.Sprintf("业务-%d", len(bs)+2), AgentID: archiveID, RecordNo: c.CaseNo, State: "历史行为",
			Action: "归档", Time: now, Basis: "电子文件管理暂行办法；DA/T 48-2009", Description: "封装、签名、时间戳并存储"})
	agents = append(agents, eep.Agent{ID: archiveID, Kind: "单位", Name: a.cfg.ArchiveName})
	return &eep.Package{Created: now, Creator: a.cfg.ArchiveName, Entity: e, Businesses: bs, Agents: agents}
}

// formatInfo writes 格式信息 as "name；PRONOM id；version；MIME", which parseFormatInfo reads back.
func formatInfo(id formats.Identification) string {
	return strings.Join([]string{id.Name, id.PUID, id.Version, id.MIME}, "；")
}

func parseFormatInfo(s string) (formats.Identification, bool) {
	f := strings.Split(s, "；")
	if len(f) != 4 {
		return formats.Identification{}, false
	}
	return formats.Identification{Name: f[0], PUID: f[1], Version: f[2], MIME: f[3]}, true
}

// 附注 labels for what DA/T 48 has no element for, read back by the index rebuild.
const (
	noteDigest     = "提交内容摘要（SM3）"
	noteDocKind    = "文档%d类别"
	noteDocPart    = "文档%d上传部件"
	noteDocWarning = "文档%d提示"
)

// caseText is what the full-text search keeps of a case besides its record.
func caseText(c *Case) *index.CaseText {
	ct := &index.CaseText{Decision: c.Result.Decision, Applicant: c.Applicant.Name, ApplicantID: c.Applicant.IDNumber}
	if c.Result.Opinion != "" {
		ct.Opinions = append(ct.Opinions, c.Result.Opinion)
	}
	for _, s := range c.Steps {
		ct.Steps = append(ct.Steps, strings.TrimSpace(s.Name+" "+s.Actor))
		if s.Opinion != "" {
			ct.Opinions = append(ct.Opinions, s.Opinion)
		}
	}
	return ct
}

func applicantKind(a Applicant) string {
	if a.Kind == "个人" || a.IDType == "111" {
		return "个人"
	}
	return "单位"
}

func orgCode(a Applicant) string {
	if a.IDType == "001" {
		return a.IDNumber
	}
	return ""
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
