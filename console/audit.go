package console

import (
	"errors"
	"net/http"

	"github.com/dangan-archive/dangan/archive"
)

// auditData is 四性检测: the current or last run with its progress, a form to start one, and
// the latest failures with the checks that failed. While a run goes on the page refreshes
// itself (a meta refresh: no script needed).
type auditData struct {
	Run      *archive.AuditRun
	Percent  int
	Failures []archive.AuditResult
}

func (c *console) auditPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, _ := current(r)
	run, err := c.a.AuditRunStatus(s.Who)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := auditData{Run: run}
	if run.Total > 0 {
		d.Percent = run.Done * 100 / run.Total
	}
	if fails, _, err := c.a.Audits(r.Context(), s.Who, archive.AuditFilter{FailedOnly: true, Limit: 50}); err == nil {
		d.Failures = fails
	}
	p := page{Title: "audit", Error: msg, Data: d}
	if run.Running {
		p.Refresh = 5
	}
	c.render(w, r, status, "audit", p)
}

func (c *console) audit(w http.ResponseWriter, r *http.Request) { c.auditPage(w, r, http.StatusOK, "") }

// startAudit starts a run of the packages due, or of every package.
func (c *console) startAudit(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	if _, err := c.a.StartAudit(r.Context(), s.Who, r.PostFormValue("all") == "1", 0); err != nil {
		if errors.Is(err, archive.ErrState) {
			c.auditPage(w, r, http.StatusConflict, "auditBusy")
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"audit", http.StatusSeeOther)
}
