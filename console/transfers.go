package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
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
	Deferrals  []deferralView // 延期移交 asked for here
	Received   []deferralView // on the county archive: those received, to decide
	Problem    string
}

// deferralView is a request for a later transfer with what its signed request says.
type deferralView struct {
	ID, Department, Status, Error string
	Req                           archive.DeferralRequest
}

func deferralViewOf(id, dept, status, errText string, req *archive.Signed) deferralView {
	v := deferralView{ID: id, Department: dept, Status: status, Error: errText}
	if req != nil {
		json.Unmarshal([]byte(req.Body), &v.Req)
	}
	return v
}

type batchView struct {
	*archive.Transfer
	SentCount int
	Percent   int
	Signed    bool // the receipt is verified and applied
}

func (c *console) transfersPage(w http.ResponseWriter, r *http.Request, status int, msg string, problem ...string) {
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
		if cs, _, err := c.a.DeferralRequests(r.Context(), s.Who, "", 50); err == nil {
			for _, x := range cs {
				d.Received = append(d.Received, deferralViewOf(x.ID, x.Department, x.Status, "", x.Request))
			}
		}
	}
	if ds, _, err := c.a.Deferrals(r.Context(), s.Who, "", 50); err == nil {
		for _, x := range ds {
			d.Deferrals = append(d.Deferrals, deferralViewOf(x.ID, x.Department, x.Status, x.Error, x.Request))
		}
	}
	if len(problem) > 0 {
		d.Problem = problem[0]
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

// requestDeferral asks the county archive for a later transfer of the records listed.
func (c *console) requestDeferral(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	until, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("until")))
	if err != nil {
		c.transfersPage(w, r, http.StatusUnprocessableEntity, "deferralRefused", "until: a year")
		return
	}
	_, err = c.a.RequestDeferral(r.Context(), s.Who, archive.DeferralInput{Department: strings.TrimSpace(r.PostFormValue("department")),
		Packages: strings.Fields(r.PostFormValue("packages")), Until: until, Reason: r.PostFormValue("reason")})
	c.deferralDone(w, r, err)
}

// checkDeferral sends a request again, or takes the county archive's decision.
func (c *console) checkDeferral(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	_, err := c.a.CheckDeferral(r.Context(), s.Who, r.PathValue("id"))
	c.deferralDone(w, r, err)
}

// decideDeferral is the county archive's decision on a request it received.
func (c *console) decideDeferral(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	until := 0
	if v := strings.TrimSpace(r.PostFormValue("until")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			c.transfersPage(w, r, http.StatusUnprocessableEntity, "deferralRefused", "until: a year")
			return
		}
		until = n
	}
	_, err := c.a.DecideDeferral(r.Context(), s.Who, r.PathValue("id"), r.PostFormValue("approve") == "1", until, r.PostFormValue("reason"))
	c.deferralDone(w, r, err)
}

func (c *console) deferralDone(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case err == nil:
		http.Redirect(w, r, Prefix+"transfers", http.StatusSeeOther)
	case errors.Is(err, archive.ErrForbidden):
		c.fail(w, r, err)
	case errors.Is(err, archive.ErrInvalidCase), errors.Is(err, archive.ErrState), errors.Is(err, archive.ErrNotFound),
		errors.Is(err, archive.ErrBadSignature), errors.Is(err, archive.ErrUnavailable):
		c.transfersPage(w, r, http.StatusUnprocessableEntity, "deferralRefused", err.Error())
	default:
		c.fail(w, r, err)
	}
}
