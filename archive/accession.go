package archive

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// The receiving side of a transfer (the county archive): accessions (接收).

// Accession is a batch as the receiving archive records it.
type Accession struct {
	Batch          string                    `json:"batch"`
	From           string                    `json:"from"`
	Department     string                    `json:"department"`
	DepartmentName string                    `json:"department_name"`
	Opened         time.Time                 `json:"opened"`
	Manifest       Signed                    `json:"manifest"`
	ManifestSM3    string                    `json:"manifest_sm3"`
	Count          int                       `json:"count"`
	Bytes          int64                     `json:"bytes"`
	Items          map[string]*AccessionItem `json:"items"` // package id → outcome, once received
	Receipt        *Signed                   `json:"receipt,omitempty"`
	Status         string                    `json:"status"` // open, closed (receipt issued)
}

// AccessionItem is the outcome for one received package.
type AccessionItem struct {
	Accepted bool          `json:"accepted"`
	Reasons  []string      `json:"reasons,omitempty"`
	Checks   []eep.Finding `json:"checks,omitempty"`
	At       time.Time     `json:"at"`
	LogIndex uint64        `json:"log_index,omitempty"` // the transfer-received event
}

// ReceiveReport is the answer to one package sent.
type ReceiveReport struct {
	Batch   string `json:"batch"`
	Package string `json:"package"`
	AccessionItem
	AlreadyHeld bool `json:"already_held,omitempty"`
}

// mayAccession says whether who may deal with a department's accessions here: that
// department's token (issued by this archive) or the archive.
func mayAccession(who Principal, dept string) error {
	if who.Role == RoleArchive || who.Role == RoleDepartment && who.Org == dept {
		return nil
	}
	return fmt.Errorf("%w: accessions of department %s are sent with its own token", ErrForbidden, dept)
}

// OpenAccession receives a signed manifest: it checks the signature (the department's key,
// chaining to a trusted root, naming the manifest's department), the manifest's totals,
// and records the batch. Offering the same manifest again returns the batch as it stands;
// another manifest under the same batch id is a conflict.
func (a *Archive) OpenAccession(ctx context.Context, who Principal, sm *Signed) (*Accession, bool, error) {
	if who.Role != RoleDepartment && who.Role != RoleArchive {
		return nil, false, fmt.Errorf("%w: transfers are received from a department's archive, with its token", ErrForbidden)
	}
	var m Manifest
	cert, err := sm.Verify(a.Trust(), a.now(), &m)
	if err != nil {
		return nil, false, fieldErr("manifest", fmt.Errorf("%w: %v", ErrInvalidCase, err))
	}
	if err := checkManifest(&m); err != nil {
		return nil, false, err
	}
	if err := mayAccession(who, m.Department); err != nil {
		return nil, false, err
	}
	if cert.Subject.SerialNumber != m.Department {
		return nil, false, fieldErr("manifest", fmt.Errorf("%w: the manifest of department %s is signed by %q (%s), not by that department",
			ErrInvalidCase, m.Department, cert.Subject.CommonName, cert.Subject.SerialNumber))
	}
	acc := &Accession{Batch: m.Batch, From: m.From, Department: m.Department, DepartmentName: m.DepartmentName, Opened: a.now().UTC(),
		Manifest: *sm, ManifestSM3: sm.SM3(), Count: m.Count, Bytes: m.Bytes, Items: map[string]*AccessionItem{}, Status: "open"}
	acc, created, err := keepOnce(a.index, index.Accessions, m.Batch, acc, func(acc *Accession) *Signed { return &acc.Manifest })
	if err != nil {
		return nil, false, fmt.Errorf("batch %s: %w", m.Batch, err)
	}
	if err := a.putJSON(ctx, "accessions/"+m.Batch+"/manifest.json", &acc.Manifest); err != nil {
		return nil, false, err
	}
	if created {
		a.log.Info("accession opened", "batch", m.Batch, "from", m.From, "department", m.Department, "packages", m.Count, "bytes", m.Bytes)
	}
	return acc, created, nil
}

func (a *Archive) putJSON(ctx context.Context, key string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	_, err = a.store.Put(ctx, key, strings.NewReader(string(b)), int64(len(b)), storage.PutOptions{RetainUntil: a.now().AddDate(logRetainYears, 0, 0)})
	if errors.Is(err, storage.ErrExists) {
		return nil // written before a crash; the content is the same document
	}
	return err
}

// maxStoredJSON bounds a JSON document getJSON reads back.
const maxStoredJSON = 16 << 20

// getJSON reads a JSON document putJSON stored into v; false when there is none.
func (a *Archive) getJSON(ctx context.Context, key string, v any) (bool, error) {
	rc, _, err := a.store.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	defer rc.Close()
	if err := json.NewDecoder(io.LimitReader(rc, maxStoredJSON)).Decode(v); err != nil {
		return true, fmt.Errorf("%s: %w", key, err)
	}
	return true, nil
}

// Accession returns a batch received here.
func (a *Archive) Accession(ctx context.Context, who Principal, batch string) (*Accession, error) {
	var acc Accession
	if err := a.index.Record(index.Accessions, batch, &acc); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("accession %s: %w", batch, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	if mayAccession(who, acc.Department) != nil && who.Role != RoleAuditor {
		return nil, fmt.Errorf("accession %s: %w", batch, ErrNotFound)
	}
	return &acc, nil
}

// Accessions lists the batches received here that who may see, oldest first, a page after
// cursor (limit 1–1,000, default 100), with the cursor of the next page.
func (a *Archive) Accessions(ctx context.Context, who Principal, cursor string, limit int) ([]*Accession, string, error) {
	return listTimed(a.index, index.Accessions, "", "", time.Time{}, time.Time{}, cursor, limit, func(acc *Accession) (time.Time, bool) {
		if mayAccession(who, acc.Department) != nil && who.Role != RoleAuditor {
			return time.Time{}, false
		}
		acc.Manifest, acc.Items = Signed{}, nil // the list is a summary
		return time.Time{}, true
	})
}

// yjCode is the transfer-stage code of an archiving-stage finding (DA/T 70: YJ- items
// mirror GD- items).
func yjCode(gd string) string { return "YJ-" + strings.TrimPrefix(gd, "GD-") }

// ReceivePackage receives one package of an open batch with its evidence, streamed: it runs
// the YJ checks and stores the package in this archive when every one passes. A package
// already accepted is not read again.
func (a *Archive) ReceivePackage(ctx context.Context, who Principal, batch, id string, ev *Evidence, body io.Reader) (*ReceiveReport, error) {
	acc, err := a.Accession(ctx, who, batch)
	if err != nil {
		return nil, err
	}
	if err := mayAccession(who, acc.Department); err != nil {
		return nil, err
	}
	var m Manifest
	if err := jsonUnmarshalStrict([]byte(acc.Manifest.Body), &m); err != nil {
		return nil, err
	}
	var item *ManifestItem
	for i := range m.Items {
		if m.Items[i].Package == id {
			item = &m.Items[i]
		}
	}
	if item == nil {
		return nil, fmt.Errorf("package %s is not in the manifest of batch %s: %w", id, batch, ErrNotFound)
	}
	if got := acc.Items[id]; got != nil && got.Accepted {
		return &ReceiveReport{Batch: batch, Package: id, AccessionItem: *got, AlreadyHeld: true}, nil
	}
	if acc.Status != "open" {
		return nil, fmt.Errorf("%w: batch %s is closed: its receipt was issued", ErrState, batch)
	}

	// Spool the package (bounded memory), hashing it, never more than the manifest declares.
	buf := a.spool.New()
	defer buf.Release()
	h := sm3.New()
	n, err := io.Copy(io.MultiWriter(buf, h), io.LimitReader(body, item.Size+1))
	if err != nil {
		return nil, fmt.Errorf("%w: receiving package %s: %w", ErrBadUpload, id, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	res := &AccessionItem{At: a.now().UTC()}
	fail := func(code, item, where, expected, found string) {
		res.Checks = append(res.Checks, eep.Finding{Code: code, Item: item, Status: eep.Fail, Where: where, Expected: expected, Found: found})
		res.Reasons = append(res.Reasons, fmt.Sprintf("%s %s: expected %s, found %s", code, item, expected, found))
	}
	if n != item.Size || sum != item.SM3 {
		fail("YJ-1-14", "移交前后封装包一致", "封装包", fmt.Sprintf("%d bytes, SM3 %s (the manifest)", item.Size, item.SM3),
			fmt.Sprintf("%d bytes, SM3 %s: the package changed at rest or in transit", n, sum))
	}
	var scan *eep.Scan
	if n <= item.Size {
		if ev == nil || ev.PackageID != id {
			fail("YJ-1-1", itemFixity, "时间戳", "the package's evidence (its ingest event, checkpoint and timestamp)", "none sent")
		}
		rep, sc, err := verify(buf, n, VerifyOptions{Roots: a.Trust(), Evidence: ev, Now: a.now})
		if err != nil {
			fail("YJ-3-1", "封装包元数据可读", "封装包", "a readable EEP", err.Error())
		} else {
			scan = sc
			for _, f := range rep.Findings {
				f.Code = yjCode(f.Code)
				switch {
				case f.Status == eep.Fail:
					res.Checks = append(res.Checks, f)
					res.Reasons = append(res.Reasons, fmt.Sprintf("%s %s [%s]: expected %s, found %s %s", f.Code, f.Item, f.Where, f.Expected, f.Found, f.Detail))
				case f.Status == eep.Pass:
					res.Checks = append(res.Checks, f)
				}
			}
			archival := true
			for i, vs := range scan.Versions() { // as each document now stands
				d := vs[0]
				if len(d.Encodings) == 0 {
					continue
				}
				fi, _ := parseFormatInfo(d.Encodings[0].Format)
				if !fi.Archival() {
					archival = false
					fail("YJ-3-3", "归档格式", fmt.Sprintf("文档 %d", i+1), "PDF, OFD or XML", fi.Name+" "+fi.PUID)
				}
			}
			if archival {
				res.Checks = append(res.Checks, eep.Finding{Code: "YJ-3-3", Item: "归档格式", Status: eep.Pass, Detail: "every archival rendition is PDF, OFD or XML"})
			}
		}
	}
	if len(res.Reasons) == 0 {
		if err := a.accept(ctx, acc, item, buf, n, scan, res); err != nil {
			var rej *rejection
			if !errors.As(err, &rej) {
				return nil, err
			}
			res.Reasons = append(res.Reasons, rej.reason)
		} else {
			res.Accepted = true
		}
	}
	if !res.Accepted {
		a.log.Warn("transferred package rejected", "batch", batch, "package", id, "archival_code", item.ArchivalCode, "reasons", strings.Join(res.Reasons, "; "))
	}
	err = a.index.UpdateRecord(index.Accessions, batch, func(data []byte) (any, error) {
		var cur Accession
		if err := json.Unmarshal(data, &cur); err != nil {
			return nil, err
		}
		if got := cur.Items[id]; got != nil && got.Accepted {
			return nil, nil
		}
		cur.Items[id] = res
		return &cur, nil
	})
	if err != nil {
		return nil, err
	}
	return &ReceiveReport{Batch: batch, Package: id, AccessionItem: *res}, nil
}

// rejection is a check that failed while storing.
type rejection struct{ reason string }

func (r *rejection) Error() string { return r.reason }

// accept stores a package that passed every check: the object (exactly once: an object
// already stored by an interrupted attempt is kept when it is the same package), a
// transfer-received event, then the index entry.
func (a *Archive) accept(ctx context.Context, acc *Accession, item *ManifestItem, buf *spoolBuf, size int64, scan *eep.Scan, res *AccessionItem) error {
	// Indexed already (an interruption came after the index, before the accession
	// record): nothing to store or log again.
	if p, err := a.index.Package(item.Package); err == nil && p.PackageSM3 == item.SM3 && p.Source == "transfer:"+acc.Batch {
		res.LogIndex = p.LogIndex
		return nil
	}
	ent := scan.EntityPath()
	fonds, year := scan.Fields[ent+"档号/全宗号"], scan.Fields[ent+"档号/年度"]
	y, err := strconv.Atoi(year)
	if err != nil {
		return &rejection{fmt.Sprintf("YJ-2-4 必填元数据项: 档号/年度 %q is not a year", year)}
	}
	key := fmt.Sprintf("packages/%s/%d/%s.eep", fonds, y, item.Package)
	if err := storage.CheckKey(key); err != nil {
		return &rejection{fmt.Sprintf("YJ-1-7 档号: 全宗号 %q cannot name a package", fonds)}
	}
	ret := scan.Fields[ent+"档号/保管期限"]
	retain := a.RetentionEnd(ret, y)
	if ret == "Y" {
		retain = time.Date(y+1+logRetainYears, time.January, 1, 0, 0, 0, 0, eep.CST()) // permanent here
	}
	_, err = a.store.Put(ctx, key, io.NewSectionReader(buf, 0, size), size, storage.PutOptions{RetainUntil: retain})
	if errors.Is(err, storage.ErrExists) {
		same, cerr := a.sameObject(ctx, key, item.SM3)
		if cerr != nil {
			return cerr
		}
		if !same {
			return &rejection{fmt.Sprintf("YJ-1-8 重复检测: another package is held under %s", key)}
		}
	} else if err != nil {
		return fmt.Errorf("store package %s: %w", item.Package, err)
	}
	idx, err := a.elog.Append(ctx, eventlog.Event{Type: eventlog.TypeTransferReceived, Time: a.now(), Actor: RoleDepartment + ":" + acc.Department,
		Subject: item.Package, Digest: item.SM3, Attrs: map[string]string{"batch": acc.Batch, "from": acc.From,
			"archival_code": item.ArchivalCode, "department": acc.Department, "key": key, "size": strconv.FormatInt(size, 10)}})
	if err != nil {
		return fmt.Errorf("%w: event log: %v", ErrUnavailable, err)
	}
	rec, err := a.recordFromScan(ctx, key, item.Package, size, scan, &logRef{index: idx})
	if err != nil {
		return &rejection{"YJ-2-4 必填元数据项: " + err.Error()}
	}
	rec.Source, rec.RetainUntil = "transfer:"+acc.Batch, retain
	results, err := a.index.CommitPackages([]*index.Package{rec})
	if err != nil {
		return err
	}
	if r := results[0]; r.Err != nil && r.Existing.ID != item.Package {
		return &rejection{fmt.Sprintf("YJ-1-8 重复检测: case %s of department %s is held here as package %s", rec.CaseNo, rec.Department, r.Existing.ID)}
	}
	res.LogIndex = idx
	a.log.Info("transferred package accepted", "batch", acc.Batch, "package", item.Package, "archival_code", item.ArchivalCode, "bytes", size)
	return nil
}

// sameObject reports whether the stored object has the SM3 digest.
func (a *Archive) sameObject(ctx context.Context, key, sum string) (bool, error) {
	rc, _, err := a.store.Get(ctx, key)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	h := sm3.New()
	if _, err := io.Copy(h, rc); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == sum, nil
}

// IssueReceipt closes a batch with a signed receipt: each manifest package accepted or
// rejected with its reasons (a package never received is rejected, YJ-2-1), and the batch's
// count and bytes. Asking again returns the same receipt.
func (a *Archive) IssueReceipt(ctx context.Context, who Principal, batch string) (*Signed, error) {
	acc, err := a.Accession(ctx, who, batch)
	if err != nil {
		return nil, err
	}
	if err := mayAccession(who, acc.Department); err != nil {
		return nil, err
	}
	if acc.Receipt != nil {
		// Stored here after the index, so that a crash in between is mended on the retry.
		return acc.Receipt, a.putJSON(ctx, "accessions/"+batch+"/receipt.json", acc.Receipt)
	}
	var m Manifest
	if err := jsonUnmarshalStrict([]byte(acc.Manifest.Body), &m); err != nil {
		return nil, err
	}
	r := Receipt{Format: ReceiptFormat, Batch: batch, ManifestSM3: acc.ManifestSM3, Receiver: a.elog.Origin(), Issued: a.now().UTC()}
	var received int
	var receivedBytes int64
	for _, it := range m.Items {
		ri := ReceiptItem{Package: it.Package, ArchivalCode: it.ArchivalCode, SM3: it.SM3}
		switch got := acc.Items[it.Package]; {
		case got == nil:
			ri.Reasons = []string{"YJ-2-1 总件数相符: the package was never received"}
		case got.Accepted:
			ri.Accepted = true
			r.Accepted++
			r.AcceptedBytes += it.Size
		default:
			ri.Reasons = got.Reasons
		}
		if acc.Items[it.Package] != nil {
			received++
			receivedBytes += it.Size
		}
		if !ri.Accepted {
			r.Rejected++
		}
		r.Items = append(r.Items, ri)
	}
	sort.Slice(r.Items, func(i, j int) bool { return r.Items[i].ArchivalCode < r.Items[j].ArchivalCode })
	check := func(code, item string, want, got int64) {
		f := eep.Finding{Code: code, Item: item, Status: eep.Pass, Expected: strconv.FormatInt(want, 10), Found: strconv.FormatInt(got, 10)}
		if want != got {
			f.Status = eep.Fail
		}
		r.Checks = append(r.Checks, f)
	}
	check("YJ-2-1", "总件数相符", int64(m.Count), int64(received))
	check("YJ-2-2", "总字节数相符", m.Bytes, receivedBytes)
	signed, err := sign(a.pki.Archive, r)
	if err != nil {
		return nil, err
	}
	issued := true
	err = a.index.UpdateRecord(index.Accessions, batch, func(data []byte) (any, error) {
		var cur Accession
		if err := json.Unmarshal(data, &cur); err != nil {
			return nil, err
		}
		if cur.Receipt != nil {
			signed, issued = cur.Receipt, false // issued concurrently: that one stands
			return nil, nil
		}
		cur.Receipt, cur.Status = signed, "closed"
		return &cur, nil
	})
	if err != nil {
		return nil, err
	}
	if err := a.putJSON(ctx, "accessions/"+batch+"/receipt.json", signed); err != nil {
		return nil, err
	}
	if !issued {
		return signed, nil
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeReceipt, Actor: RoleArchive, Subject: "transfer/" + batch, Digest: signed.SM3(),
		Attrs: map[string]string{"role": "receiver", "accepted": strconv.Itoa(r.Accepted), "rejected": strconv.Itoa(r.Rejected), "department": acc.Department}}); err != nil {
		return nil, err
	}
	a.log.Info("transfer receipt issued", "batch", batch, "accepted", r.Accepted, "rejected", r.Rejected)
	return signed, nil
}
