package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// disposalData is 鉴定与销毁: the candidates with one form to decide on many at once, the
// destructions waiting for a second archivist, and the register.
type disposalData struct {
	Candidates []archive.Candidate
	Next       string
	Pending    []archive.Decision
	Results    []decideResult // of the decisions just made
	Mine       string         // the account's decider id: its own decisions cannot be approved by it
	Approved   string
}

type decideResult struct {
	Package, ArchivalCode, Decision, Error string
}

func (c *console) disposalPage(w http.ResponseWriter, r *http.Request, status int, d disposalData, msg string) {
	s, _ := current(r)
	page1, err := c.a.Candidates(r.Context(), s.Who, "", r.URL.Query().Get("cursor"), 50)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Candidates = page1.Candidates
	if page1.Next != "" {
		d.Next = Prefix + "disposal?cursor=" + url.QueryEscape(page1.Next)
	}
	if pending, err := c.a.PendingDecisions(r.Context(), s.Who, 200); err == nil {
		d.Pending = pending
	}
	d.Mine = s.Who.TokenID
	c.render(w, r, status, "disposal", page{Title: "disposal", Error: msg, Data: d})
}

func (c *console) disposal(w http.ResponseWriter, r *http.Request) {
	c.disposalPage(w, r, http.StatusOK, disposalData{Approved: r.URL.Query().Get("done")}, "")
}

// decide makes the same decision for every package ticked; each is made or refused on its
// own, and the page lists what became of each.
func (c *console) decide(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, fmt.Errorf("%w: form: %v", archive.ErrInvalidCase, err))
		return
	}
	req := archive.DecisionRequest{Action: r.PostFormValue("action"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if u := r.PostFormValue("until"); u != "" {
		t, err := time.ParseInLocation("2006-01-02", u, time.Local)
		if err != nil {
			c.disposalPage(w, r, http.StatusUnprocessableEntity, disposalData{}, "badUntil")
			return
		}
		req.Until = t
	}
	pkgs := r.PostForm["package"]
	if len(pkgs) == 0 {
		c.disposalPage(w, r, http.StatusUnprocessableEntity, disposalData{}, "noneTicked")
		return
	}
	var d disposalData
	status := http.StatusOK
	for _, id := range pkgs {
		req.Package = id
		dec, err := c.a.Decide(r.Context(), s.Who, req)
		res := decideResult{Package: id}
		if err != nil {
			res.Error = err.Error()
			status = http.StatusUnprocessableEntity
			if errors.Is(err, archive.ErrForbidden) {
				c.fail(w, r, err)
				return
			}
		} else {
			res.ArchivalCode, res.Decision = dec.ArchivalCode, dec.Status
		}
		d.Results = append(d.Results, res)
	}
	c.disposalPage(w, r, status, d, "")
}

// approve answers a destruction waiting for approval: approve or refuse. The account that
// decided it is refused.
func (c *console) approve(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	yes := r.PostFormValue("approve") == "1"
	dec, err := c.a.Approve(r.Context(), s.Who, r.PathValue("id"), yes, strings.TrimSpace(r.PostFormValue("note")))
	if err != nil {
		msg, status := "approveFailed", http.StatusConflict
		if errors.Is(err, archive.ErrForbidden) {
			msg, status = "approveOwn", http.StatusForbidden
		}
		if errors.Is(err, archive.ErrNotFound) {
			c.fail(w, r, err)
			return
		}
		c.disposalPage(w, r, status, disposalData{}, msg)
		return
	}
	http.Redirect(w, r, Prefix+"disposal?done="+url.QueryEscape(dec.ArchivalCode+" "+dec.Status), http.StatusSeeOther)
}

// register serves the destruction register, as XML or as PDF.
func (c *console) register(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	var b []byte
	var err error
	ctype, name := "application/xml", "register.xml"
	if r.PathValue("format") == "pdf" {
		ctype, name = "application/pdf", "register.pdf"
		b, err = c.a.RegisterPDF(r.Context(), s.Who)
	} else {
		b, err = c.a.Register(r.Context(), s.Who)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Write(b)
}
