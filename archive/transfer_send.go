package archive

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage/index"
)

// The sending side of a transfer (a department's archive).

// Transfer states.
const (
	TransferSending = "sending" // manifest made; packages going out (resumed after a restart)
	TransferDone    = "done"    // the receipt was verified and applied
	TransferFailed  = "failed"  // the county archive refused the batch itself; see Error
)

// Transfer is a batch as the sending archive records it.
type Transfer struct {
	Batch          string              `json:"batch"`
	Department     string              `json:"department"`
	DepartmentName string              `json:"department_name"`
	To             string              `json:"to"`
	CreatedBy      string              `json:"created_by"`
	Created        time.Time           `json:"created"`
	Updated        time.Time           `json:"updated"`
	Status         string              `json:"status"`
	Manifest       Signed              `json:"manifest"`
	Total          int                 `json:"total"`
	Bytes          int64               `json:"bytes"`
	Sent           map[string]bool     `json:"sent"` // acknowledged by the county archive (accepted or not)
	Accepted       []string            `json:"accepted,omitempty"`
	Rejected       map[string][]string `json:"rejected,omitempty"` // package → the receiver's reasons
	Receipt        *Signed             `json:"receipt,omitempty"`
	Error          string              `json:"error,omitempty"` // why it failed, or the last retry's error
	Attempts       int                 `json:"attempts"`
}

// TransferRequest says what to transfer: the due permanent packages of a department, or
// an explicit list.
type TransferRequest struct {
	Department string   `json:"department"` // USCC; a department token's own by default
	Due        bool     `json:"due"`        // every Y package whose transfer is due now
	Packages   []string `json:"packages"`   // or these
}

func newBatchID(now time.Time) (string, error) {
	r := make([]byte, 4)
	if _, err := rand.Read(r); err != nil {
		return "", err
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(r), nil
}

// CreateTransfer makes a batch and its signed manifest and starts sending it. Packages
// already transferred, destroyed, received from elsewhere or in another open batch are
// refused.
func (a *Archive) CreateTransfer(ctx context.Context, who Principal, req TransferRequest) (*Transfer, error) {
	switch who.Role {
	case RoleDepartment:
		if req.Department != "" && req.Department != who.Org {
			return nil, fieldErr("department", fmt.Errorf("%w: a department transfers its own records", ErrForbidden))
		}
		req.Department = who.Org
	case RoleArchive:
		if err := CheckUSCC(req.Department); err != nil {
			return nil, fieldErr("department", fmt.Errorf("%w: department: %v", ErrInvalidCase, err))
		}
	default:
		return nil, fmt.Errorf("%w: transfers are made by a department or the archive", ErrForbidden)
	}
	if a.cfg.County == nil {
		return nil, fmt.Errorf("%w: no county archive is configured (serve --county-url)", ErrState)
	}
	if req.Due == (len(req.Packages) > 0) {
		return nil, fieldErr("packages", fmt.Errorf("%w: give either due:true or a list of packages", ErrInvalidCase))
	}
	a.transferMu.Lock() // one batch is made at a time, so no package lands in two
	defer a.transferMu.Unlock()
	busy := map[string]string{}
	if err := a.index.ForEachRecord(index.Transfers, "", "", func(_ string, data []byte) error {
		var t Transfer
		if err := json.Unmarshal(data, &t); err != nil {
			return err
		}
		if t.Status == TransferSending {
			var m Manifest
			if err := json.Unmarshal([]byte(t.Manifest.Body), &m); err != nil {
				return fmt.Errorf("the manifest of batch %s: %w", t.Batch, err)
			}
			for _, it := range m.Items {
				busy[it.Package] = t.Batch
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	now := a.now()
	var pkgs []*index.Package
	eligible := func(p *index.Package) error {
		switch {
		case p.Department != req.Department:
			return fmt.Errorf("package %s belongs to department %s", p.ID, p.Department)
		case p.Tombstone != nil:
			return fmt.Errorf("package %s was destroyed", p.ID)
		case p.Transfer != nil:
			return fmt.Errorf("package %s was transferred in batch %s", p.ID, p.Transfer.Batch)
		case p.Source != "":
			return fmt.Errorf("package %s was received from elsewhere (%s)", p.ID, p.Source)
		case busy[p.ID] != "":
			return fmt.Errorf("package %s is in batch %s, still being sent", p.ID, busy[p.ID])
		}
		return nil
	}
	if req.Due {
		// The department's permanent records not transferred, formed in a year whose
		// transfer is due by now: one range of the index.
		span := index.TransferDueBy(req.Department, now.In(eep.CST()).Year()-1-a.cfg.TransferYears)
		for cursor := ""; ; {
			page, err := a.index.List(span, cursor, 1000)
			if err != nil {
				return nil, err
			}
			for _, p := range page.Packages {
				if eligible(p) == nil {
					pkgs = append(pkgs, p)
				}
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		if len(pkgs) == 0 {
			return nil, fmt.Errorf("%w: no permanent package of department %s is due for transfer on %s", ErrNotFound, req.Department, now.Format(time.DateOnly))
		}
	} else {
		for _, id := range req.Packages {
			p, err := a.index.Package(id)
			if errors.Is(err, index.ErrNotFound) {
				return nil, fieldErr("packages", fmt.Errorf("package %s: %w", id, ErrNotFound))
			} else if err != nil {
				return nil, err
			}
			if err := eligible(p); err != nil {
				return nil, fieldErr("packages", fmt.Errorf("%w: %v", ErrState, err))
			}
			pkgs = append(pkgs, p)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ArchivalCode < pkgs[j].ArchivalCode })
	batch, err := newBatchID(now)
	if err != nil {
		return nil, err
	}
	m := Manifest{Format: ManifestFormat, Batch: batch, From: a.elog.Origin(), Department: req.Department,
		DepartmentName: pkgs[0].DepartmentName, Created: now.UTC(), Count: len(pkgs)}
	for _, p := range pkgs {
		m.Items = append(m.Items, ManifestItem{Package: p.ID, ArchivalCode: p.ArchivalCode, Retention: p.Retention, SM3: p.PackageSM3, Size: p.Size})
		m.Bytes += p.Size
	}
	deptID, err := a.pki.Department(req.Department, m.DepartmentName)
	if err != nil {
		return nil, fmt.Errorf("the department's signing key: %w", err)
	}
	signed, err := sign(deptID, m)
	if err != nil {
		return nil, err
	}
	t := &Transfer{Batch: batch, Department: req.Department, DepartmentName: m.DepartmentName, To: a.cfg.County.URL, CreatedBy: who.String(),
		Created: now.UTC(), Updated: now.UTC(), Status: TransferSending, Manifest: *signed, Total: m.Count, Bytes: m.Bytes, Sent: map[string]bool{}}
	if err := a.putJSON(ctx, "transfers/"+batch+"/manifest.json", signed); err != nil {
		return nil, err
	}
	if err := a.index.PutRecord(index.Transfers, batch, t); err != nil {
		return nil, err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeTransferSent, Actor: who.String(), Subject: "transfer/" + batch, Digest: signed.SM3(),
		Attrs: map[string]string{"department": req.Department, "packages": strconv.Itoa(m.Count), "bytes": strconv.FormatInt(m.Bytes, 10), "to": a.cfg.County.URL}}); err != nil {
		return nil, err
	}
	a.log.Info("transfer created", "batch", batch, "department", req.Department, "packages", m.Count, "bytes", m.Bytes)
	a.kickTransfers()
	return t, nil
}

// TransferStatus returns a batch made here.
func (a *Archive) TransferStatus(ctx context.Context, who Principal, batch string) (*Transfer, error) {
	var t Transfer
	if err := a.index.Record(index.Transfers, batch, &t); errors.Is(err, index.ErrNotFound) {
		return nil, fmt.Errorf("transfer %s: %w", batch, ErrNotFound)
	} else if err != nil {
		return nil, err
	}
	switch {
	case who.Role == RoleArchive, who.Role == RoleAuditor, who.Role == RoleAdmin, who.Role == RoleDepartment && who.Org == t.Department:
		return &t, nil
	}
	return nil, fmt.Errorf("transfer %s: %w", batch, ErrNotFound)
}

// Transfers lists the batches made here that who may see (a summary: no manifests), oldest
// first, a page after cursor (limit 1–1,000, default 100), with the cursor of the next page.
func (a *Archive) Transfers(ctx context.Context, who Principal, cursor string, limit int) ([]*Transfer, string, error) {
	return listTimed(a.index, index.Transfers, "", "", time.Time{}, time.Time{}, cursor, limit, func(t *Transfer) (time.Time, bool) {
		if who.Role == RoleDepartment && who.Org != t.Department {
			return time.Time{}, false
		}
		t.Manifest, t.Receipt, t.Sent = Signed{}, nil, nil
		return time.Time{}, true
	})
}

// RetryTransfer starts a failed batch again.
func (a *Archive) RetryTransfer(ctx context.Context, who Principal, batch string) (*Transfer, error) {
	t, err := a.TransferStatus(ctx, who, batch)
	if err != nil {
		return nil, err
	}
	if who.Role == RoleAuditor || who.Role == RoleAdmin {
		return nil, fmt.Errorf("%w: transfers are run by a department or the archive", ErrForbidden)
	}
	if t.Status == TransferDone {
		return t, nil
	}
	if err := a.updateTransfer(batch, func(t *Transfer) { t.Status, t.Error = TransferSending, "" }); err != nil {
		return nil, err
	}
	a.kickTransfers()
	return a.TransferStatus(ctx, who, batch)
}

func (a *Archive) updateTransfer(batch string, fn func(*Transfer)) error {
	return a.index.UpdateRecord(index.Transfers, batch, func(data []byte) (any, error) {
		var t Transfer
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, err
		}
		fn(&t)
		t.Updated = a.now().UTC()
		return &t, nil
	})
}

// kickTransfers wakes the sender.
func (a *Archive) kickTransfers() {
	select {
	case a.transferKick <- struct{}{}:
	default:
	}
}

// runTransfers sends open batches one after another until ctx ends; a batch that fails for
// a reason that may pass (the county archive unreachable, a restart) is retried with
// growing pauses.
func (a *Archive) runTransfers(ctx context.Context) {
	defer close(a.transferDone)
	backoff := time.Second
	for {
		var open []string
		if err := a.index.ForEachRecord(index.Transfers, "", "", func(key string, data []byte) error {
			var t Transfer
			if json.Unmarshal(data, &t) == nil && t.Status == TransferSending {
				open = append(open, key)
			}
			return nil
		}); err != nil {
			a.log.Error("list open transfers", "err", err)
		}
		failed := false
		for _, batch := range open {
			if err := a.sendTransfer(ctx, batch); err != nil {
				if ctx.Err() != nil {
					return
				}
				failed = true
				// A refusal of the batch itself (a bad manifest, a wrong token, an untrusted
				// receipt) needs a person; anything else is tried again.
				var pe *PeerError
				permanent := errors.Is(err, ErrBadSignature) ||
					errors.As(err, &pe) && !pe.Temporary() && pe.Status != http.StatusNotFound && pe.Status != http.StatusConflict
				if uerr := a.updateTransfer(batch, func(t *Transfer) {
					t.Error, t.Attempts = err.Error(), t.Attempts+1
					if permanent {
						t.Status = TransferFailed
					}
				}); uerr != nil {
					a.log.Error("record the transfer's failure", "batch", batch, "err", uerr)
				}
				a.log.Error("transfer interrupted", "batch", batch, "permanent", permanent, "err", err)
			}
		}
		wait := time.Hour
		if failed {
			wait, backoff = backoff, min(backoff*2, time.Minute)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-a.transferKick:
		case <-time.After(wait):
		}
	}
}

// sendTransfer runs one batch from where it stands: offer the manifest, send each package
// not yet acknowledged, get the receipt, verify and apply it.
func (a *Archive) sendTransfer(ctx context.Context, batch string) error {
	t, err := a.TransferStatus(ctx, Principal{Role: RoleArchive}, batch)
	if err != nil || t.Status != TransferSending {
		return err
	}
	peer := a.cfg.County
	var acc struct {
		Items map[string]*AccessionItem `json:"items"`
	}
	if err := peer.call(ctx, http.MethodPost, "/api/v1/accessions", "application/json", jsonBody(t.Manifest), &acc); err != nil {
		return fmt.Errorf("offer the manifest: %w", err)
	}
	var m Manifest
	if err := jsonUnmarshalStrict([]byte(t.Manifest.Body), &m); err != nil {
		return err
	}
	for _, it := range m.Items {
		if t.Sent[it.Package] {
			continue
		}
		if got := acc.Items[it.Package]; got != nil && got.Accepted {
			// Accepted before an interruption kept the answer from us.
		} else if err := a.pushPackage(ctx, peer, batch, it); err != nil {
			return fmt.Errorf("send package %s: %w", it.Package, err)
		}
		if err := a.updateTransfer(batch, func(t *Transfer) { t.Sent[it.Package] = true }); err != nil {
			return err
		}
	}
	var receipt Signed
	if err := peer.call(ctx, http.MethodPost, "/api/v1/accessions/"+url.PathEscape(batch)+"/receipt", "", nil, &receipt); err != nil {
		return fmt.Errorf("request the receipt: %w", err)
	}
	return a.applyReceipt(ctx, t, &m, &receipt)
}

// pushPackage sends one package with its evidence as multipart: the evidence first, then
// the EEP streamed from storage.
func (a *Archive) pushPackage(ctx context.Context, peer *Peer, batch string, it ManifestItem) error {
	p, err := a.index.Package(it.Package)
	if err != nil {
		return err
	}
	ev, err := a.Evidence(ctx, Principal{Role: RoleArchive, Purpose: "transfer " + batch}, it.Package)
	if err != nil {
		return err
	}
	evJSON, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	rc, _, err := a.getPinned(ctx, p.Key, p.Version)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		defer rc.Close()
		err := func() error {
			w, err := mw.CreateFormFile("evidence", it.Package+".evidence")
			if err != nil {
				return err
			}
			if _, err := w.Write(evJSON); err != nil {
				return err
			}
			if w, err = mw.CreateFormFile("file", it.Package+".eep"); err != nil {
				return err
			}
			if _, err := io.Copy(w, rc); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	defer pr.Close() // ends the writer if the request stops early
	var rep ReceiveReport
	path := "/api/v1/accessions/" + url.PathEscape(batch) + "/packages/" + url.PathEscape(it.Package)
	if err := peer.call(ctx, http.MethodPut, path, mw.FormDataContentType(), func() (io.Reader, error) { return pr, nil }, &rep); err != nil {
		return err
	}
	if !rep.Accepted {
		a.log.Warn("the county archive rejected a package", "batch", batch, "package", it.Package, "archival_code", it.ArchivalCode, "reasons", rep.Reasons)
	}
	return nil
}

// applyReceipt verifies the county archive's receipt against the manifest and marks the
// accepted packages transferred; the rejected ones stay, with the reasons.
func (a *Archive) applyReceipt(ctx context.Context, t *Transfer, m *Manifest, signed *Signed) error {
	// Signed by the county archive: an archive's key under another root than this one's,
	// so that this archive (or a department under its root) cannot sign its own receipt.
	var r Receipt
	cert, err := signed.Verify(a.othersTrust(), a.now(), &r)
	if err != nil {
		return fmt.Errorf("the receipt: %w", err)
	}
	if cert.Subject.SerialNumber != "" {
		return fmt.Errorf("%w: the receipt is signed by %q, a department, not an archive", ErrBadSignature, cert.Subject.CommonName)
	}
	if r.Format != ReceiptFormat || r.Batch != t.Batch || r.ManifestSM3 != t.Manifest.SM3() {
		return fmt.Errorf("%w: the receipt (batch %s, manifest %s) is not for batch %s (manifest %s)", ErrBadSignature, r.Batch, r.ManifestSM3, t.Batch, t.Manifest.SM3())
	}
	inManifest := map[string]ManifestItem{}
	for _, it := range m.Items {
		inManifest[it.Package] = it
	}
	if len(r.Items) != len(m.Items) {
		return fmt.Errorf("%w: the receipt lists %d packages, the manifest %d", ErrBadSignature, len(r.Items), len(m.Items))
	}
	keep := a.now().AddDate(a.cfg.KeepYears, 0, 0)
	var accepted []string
	rejected := map[string][]string{}
	for _, it := range r.Items {
		mi, ok := inManifest[it.Package]
		if !ok || it.SM3 != mi.SM3 {
			return fmt.Errorf("%w: the receipt lists package %s that the manifest does not", ErrBadSignature, it.Package)
		}
		if !it.Accepted {
			rejected[it.Package] = it.Reasons
			continue
		}
		accepted = append(accepted, it.Package)
	}
	// One transaction for the batch's packages.
	err = a.index.UpdatePackages(accepted, func(p *index.Package) error {
		if p.Transfer == nil {
			p.Transfer = &index.TransferMark{Batch: t.Batch, At: r.Issued, KeepUntil: keep, Receiver: r.Receiver + " (" + cert.Subject.CommonName + ")", ReceiptSM3: signed.SM3()}
			p.State = "transferred"
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.putJSON(ctx, "transfers/"+t.Batch+"/receipt.json", signed); err != nil {
		return err
	}
	if err := a.logEvent(ctx, eventlog.Event{Type: eventlog.TypeReceipt, Actor: RoleArchive, Subject: "transfer/" + t.Batch, Digest: signed.SM3(),
		Attrs: map[string]string{"role": "sender", "accepted": strconv.Itoa(len(accepted)), "rejected": strconv.Itoa(len(rejected)), "receiver": r.Receiver}}); err != nil {
		return err
	}
	if err := a.updateTransfer(t.Batch, func(t *Transfer) {
		t.Status, t.Receipt, t.Accepted, t.Rejected, t.Error = TransferDone, signed, accepted, rejected, ""
	}); err != nil {
		return err
	}
	a.log.Info("transfer done", "batch", t.Batch, "accepted", len(accepted), "rejected", len(rejected), "receiver", r.Receiver)
	// The county archive witnesses the log at every transfer, too.
	if _, err := a.Witness(ctx, a.cfg.County); err != nil {
		a.log.Warn("witnessing after the transfer failed; the scheduled witnessing tries again", "err", err)
	}
	return nil
}
