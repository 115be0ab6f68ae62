package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// inspectionData is 检查评估: a department makes and sends its compliance report; the
// county archive reads the reports it received, by department, verified again.
type inspectionData struct {
	Role     string
	Made     []madeReport
	Received []archive.ReceivedReport
	Backups  []archive.Backup // the latest first
	Problem  string
}

// madeReport is a report this archive made, with what it says.
type madeReport struct {
	archive.Inspection
	Content archive.InspectionReport
}

func (c *console) inspectionPage(w http.ResponseWriter, r *http.Request, status int, d inspectionData, msg string) {
	s, _ := current(r)
	d.Role = s.Who.Role
	if s.Who.Role == archive.RoleDepartment || s.Who.Role == archive.RoleArchive {
		ins, _, err := c.a.Inspections(r.Context(), s.Who, "", 50)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := len(ins) - 1; i >= 0; i-- { // newest first
			m := madeReport{Inspection: ins[i]}
			json.Unmarshal([]byte(ins[i].Report.Body), &m.Content)
			d.Made = append(d.Made, m)
		}
	}
	if s.Who.Role == archive.RoleArchive || s.Who.Role == archive.RoleAuditor {
		rs, _, err := c.a.ReceivedReports(r.Context(), s.Who, strings.TrimSpace(r.URL.Query().Get("department")), "", 100)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		d.Received = rs
		bs, _, err := c.a.Backups(r.Context(), s.Who, time.Now().AddDate(-1, 0, 0), time.Time{}, "", 50)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for i := len(bs) - 1; i >= 0; i-- {
			d.Backups = append(d.Backups, bs[i])
		}
	}
	c.render(w, r, status, "inspection", page{Title: "inspection", Error: msg, Data: d})
}

func (c *console) inspection(w http.ResponseWriter, r *http.Request) {
	c.inspectionPage(w, r, http.StatusOK, inspectionData{}, "")
}

// makeInspection makes the report of the period from the date given to now, and sends it.
func (c *console) makeInspection(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	from, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(r.PostFormValue("from")), time.Local)
	if err != nil {
		c.inspectionPage(w, r, http.StatusUnprocessableEntity, inspectionData{Problem: "from: a date"}, "inspectionRefused")
		return
	}
	_, err = c.a.MakeInspection(r.Context(), s.Who, archive.InspectionInput{Department: strings.TrimSpace(r.PostFormValue("department")), From: from})
	switch {
	case err == nil:
		http.Redirect(w, r, Prefix+"inspection", http.StatusSeeOther)
	case errors.Is(err, archive.ErrInvalidCase):
		c.inspectionPage(w, r, http.StatusUnprocessableEntity, inspectionData{Problem: err.Error()}, "inspectionRefused")
	default:
		c.fail(w, r, fmt.Errorf("inspection report: %w", err))
	}
}
