package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dangan-archive/dangan/archive"
)

// openingData is 开放鉴定: proposing records past their closed period, the proposals
// waiting for a second archivist, and the records open now, each of which may be closed.
type openingData struct {
	Role    string
	Mine    string // the account's decider id: its own proposals cannot be approved by it
	Pending []archive.OpeningDecision
	Open    *archive.OpenResult
	Done    string
	Problem string
	Results []archive.OpeningResult
}

func (c *console) openingPage(w http.ResponseWriter, r *http.Request, status int, d openingData, msg string) {
	s, _ := current(r)
	d.Role, d.Mine = s.Who.Role, s.Who.TokenID
	var err error
	if d.Pending, _, err = c.a.OpeningDecisions(r.Context(), s.Who, true, "", 0); err != nil {
		c.fail(w, r, err)
		return
	}
	if d.Open, err = c.a.SearchOpen(r.Context(), "", "", 50); err != nil && !errors.Is(err, archive.ErrSearchNotReady) {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "opening", page{Title: "opening", Error: msg, Data: d})
}

func (c *console) opening(w http.ResponseWriter, r *http.Request) {
	c.openingPage(w, r, http.StatusOK, openingData{Done: r.URL.Query().Get("done")}, "")
}

// openingFailed shows the page again with the archive's reason for refusing the form.
func (c *console) openingFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, archive.ErrForbidden):
		c.fail(w, r, err)
	case errors.Is(err, archive.ErrInvalidCase), errors.Is(err, archive.ErrState), errors.Is(err, archive.ErrNotFound):
		c.openingPage(w, r, http.StatusUnprocessableEntity, openingData{Problem: err.Error()}, "openingRefused")
	default:
		c.fail(w, r, err)
	}
}

func (c *console) proposeOpening(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, fmt.Errorf("%w: form: %v", archive.ErrInvalidCase, err))
		return
	}
	req := archive.OpeningRequest{Packages: strings.Fields(r.PostFormValue("packages")), Department: strings.TrimSpace(r.PostFormValue("department")),
		Retention: r.PostFormValue("retention"), Reason: r.PostFormValue("reason")}
	if y := strings.TrimSpace(r.PostFormValue("year")); y != "" {
		n, err := strconv.Atoi(y)
		if err != nil {
			c.openingFailed(w, r, fmt.Errorf("%w: year: %q is not a year", archive.ErrInvalidCase, y))
			return
		}
		req.Year = n
	}
	d, err := c.a.ProposeOpening(r.Context(), s.Who, req)
	if err != nil {
		c.openingFailed(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"opening?done="+url.QueryEscape(fmt.Sprintf("%s %s (%d)", d.ID, d.Status, len(d.Packages))), http.StatusSeeOther)
}

func (c *console) approveOpening(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	d, err := c.a.ApproveOpening(r.Context(), s.Who, r.PathValue("id"), r.PostFormValue("approve") == "1", r.PostFormValue("note"))
	if err != nil {
		c.openingFailed(w, r, err)
		return
	}
	c.openingPage(w, r, http.StatusOK, openingData{Done: d.ID + " " + d.Status, Results: d.Results}, "")
}

func (c *console) closeOpening(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	p, err := c.a.CloseOpening(r.Context(), s.Who, r.PathValue("id"), r.PostFormValue("reason"))
	if err != nil {
		c.openingFailed(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"opening?done="+url.QueryEscape(p.ArchivalCode+" closed"), http.StatusSeeOther)
}
