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

// useData is 利用申请: a department's own requests and those made for its records, a form
// for a new one, and the decisions the owner (or the archive) makes on them.
type useData struct {
	Role     string
	Org      string
	Mine     []archive.UseRequest // as requester (a department)
	ForUs    []archive.UseRequest // for its records (a department), or every request (the archive, auditors)
	Done     string
	Form     archive.UseRequestInput
	Packages string // the form's packages, one a line
	Until    string
	Problem  string // why the archive refused the form
}

func (c *console) usePage(w http.ResponseWriter, r *http.Request, status int, d useData, msg string) {
	s, _ := current(r)
	d.Role, d.Org = s.Who.Role, s.Who.Org
	ctx := r.Context()
	var err error
	if s.Who.Role == archive.RoleDepartment {
		if d.Mine, _, err = c.a.UseRequests(ctx, s.Who, archive.UseFilter{As: "requester", Limit: 200}); err == nil {
			d.ForUs, _, err = c.a.UseRequests(ctx, s.Who, archive.UseFilter{As: "owner", Limit: 200})
		}
	} else {
		d.ForUs, _, err = c.a.UseRequests(ctx, s.Who, archive.UseFilter{Limit: 200})
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "use", page{Title: "use", Error: msg, Data: d})
}

func (c *console) use(w http.ResponseWriter, r *http.Request) {
	c.usePage(w, r, http.StatusOK, useData{Done: r.URL.Query().Get("done")}, "")
}

// formDate reads a yyyy-mm-dd field as the end of that day, local time.
func formDate(v string) (time.Time, error) {
	t, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(v), time.Local)
	return t.Add(24*time.Hour - time.Second), err
}

// useFailed shows the page again with the archive's reason for refusing the form.
func (c *console) useFailed(w http.ResponseWriter, r *http.Request, d useData, err error) {
	switch {
	case errors.Is(err, archive.ErrForbidden), errors.Is(err, archive.ErrNotFound):
		c.fail(w, r, err)
	case errors.Is(err, archive.ErrInvalidCase), errors.Is(err, archive.ErrState):
		d.Problem = err.Error()
		c.usePage(w, r, http.StatusUnprocessableEntity, d, "useRefused")
	default:
		c.fail(w, r, err)
	}
}

func (c *console) requestUse(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, fmt.Errorf("%w: form: %v", archive.ErrInvalidCase, err))
		return
	}
	d := useData{Packages: r.PostFormValue("packages"), Until: r.PostFormValue("until")}
	d.Form = archive.UseRequestInput{Owner: strings.TrimSpace(r.PostFormValue("owner")), Words: r.PostFormValue("words"),
		Purpose: r.PostFormValue("purpose"), Packages: strings.Fields(d.Packages)}
	until, err := formDate(d.Until)
	if err != nil {
		c.usePage(w, r, http.StatusUnprocessableEntity, d, "badUntil")
		return
	}
	d.Form.Until = until
	u, err := c.a.RequestUse(r.Context(), s.Who, d.Form)
	if err != nil {
		c.useFailed(w, r, d, err)
		return
	}
	http.Redirect(w, r, Prefix+"use?done="+url.QueryEscape(u.ID+" "+u.Status), http.StatusSeeOther)
}

func (c *console) decideUse(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, fmt.Errorf("%w: form: %v", archive.ErrInvalidCase, err))
		return
	}
	in := archive.UseDecisionInput{Action: r.PostFormValue("action"), Reason: r.PostFormValue("reason"), Packages: r.PostForm["keep"]}
	if v := r.PostFormValue("until"); v != "" {
		t, err := formDate(v)
		if err != nil {
			c.usePage(w, r, http.StatusUnprocessableEntity, useData{}, "badUntil")
			return
		}
		in.Until = t
	}
	if in.Action != archive.UseNarrow {
		in.Packages, in.Until = nil, time.Time{}
	}
	u, err := c.a.DecideUse(r.Context(), s.Who, r.PathValue("id"), in)
	if err != nil {
		c.useFailed(w, r, useData{}, err)
		return
	}
	http.Redirect(w, r, Prefix+"use?done="+url.QueryEscape(u.ID+" "+u.Status), http.StatusSeeOther)
}

func (c *console) revokeUse(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	u, err := c.a.RevokeUse(r.Context(), s.Who, r.PathValue("id"), r.PostFormValue("reason"))
	if err != nil {
		c.useFailed(w, r, useData{}, err)
		return
	}
	http.Redirect(w, r, Prefix+"use?done="+url.QueryEscape(u.ID+" "+u.Status), http.StatusSeeOther)
}
