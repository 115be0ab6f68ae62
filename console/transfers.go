package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dangan-archive/dangan/archive"
)

// transfersData is 移交与接收: the permanent records due for transfer, the form that makes a
// batch of them, the batches with their progress, receipts and rejections, and on the
// county archive the accessions received. While a batch is being sent the page reloads
// itself.
type transfersData struct {
	Due        []archive.ScheduleItem
	Batches    []batchView
	Accessions []*archive.Accession
	Department string // the archive role names the department to transfer
	AskDept    bool
}

type batchView struct {
	*archive.Transfer
	SentCount int
	Percent   int
	Signed    bool // the receipt is verified and applied
}

func (c *console) transfersPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, _ := current(r)
	d := transfersData{AskDept: s.Who.Role == archive.RoleArchive}
	if sch, err := c.a.Schedule(r.Context(), s.Who, archive.ScheduleQuery{Kind: archive.DueTransfer, Limit: 50}); err == nil {
		d.Due = sch.Items
	}
	list, _, err := c.a.Transfers(r.Context(), s.Who, "", 50)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	sending := false
	for i := len(list) - 1; i >= 0; i-- { // newest first
		t := list[i]
		bv := batchView{Transfer: t, SentCount: len(t.Accepted) + len(t.Rejected), Signed: t.Status == archive.TransferDone}
		if t.Status == archive.TransferSending { // the list leaves out what was sent: ask the batch
			if full, err := c.a.TransferStatus(r.Context(), s.Who, t.Batch); err == nil {
				bv.SentCount = len(full.Sent)
			}
		}
		if t.Total > 0 {
			bv.Percent = bv.SentCount * 100 / t.Total
		}
		sending = sending || t.Status == archive.TransferSending
		d.Batches = append(d.Batches, bv)
	}
	if s.Who.Role == archive.RoleArchive {
		if acc, _, err := c.a.Accessions(r.Context(), s.Who, "", 50); err == nil {
			d.Accessions = acc
		}
	}
	p := page{Title: "transfers", Error: msg, Data: d}
	if sending {
		p.Refresh = 3
	}
	c.render(w, r, status, "transfers", p)
}

func (c *console) transfers(w http.ResponseWriter, r *http.Request) {
	c.transfersPage(w, r, http.StatusOK, "")
}

// createTransfer makes a batch of every permanent record due (of the department named,
// for the archive role) and starts sending it.
func (c *console) createTransfer(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	_, err := c.a.CreateTransfer(r.Context(), s.Who, archive.TransferRequest{Due: true, Department: strings.TrimSpace(r.PostFormValue("department"))})
	if err != nil {
		switch {
		case errors.Is(err, archive.ErrInvalidCase), errors.Is(err, archive.ErrState), errors.Is(err, archive.ErrUnavailable):
			c.transfersPage(w, r, http.StatusUnprocessableEntity, "transferRefused")
		default:
			c.fail(w, r, err)
		}
		return
	}
	http.Redirect(w, r, Prefix+"transfers", http.StatusSeeOther)
}

func (c *console) retryTransfer(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	if _, err := c.a.RetryTransfer(r.Context(), s.Who, r.PathValue("batch")); err != nil {
		if errors.Is(err, archive.ErrState) {
			c.transfersPage(w, r, http.StatusConflict, "transferRefused")
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"transfers", http.StatusSeeOther)
}
