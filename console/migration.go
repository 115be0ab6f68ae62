package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/dangan-archive/dangan/archive"
)

// migrationData is 日常迁移: the current or last migration run with its progress and the
// packages it left as they were, and a form to start one (the archive). While a run goes
// on the page refreshes itself.
type migrationData struct {
	Run      *archive.MigrationRun
	Percent  int
	CanStart bool
}

func (c *console) migrationPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s, _ := current(r)
	run, err := c.a.MigrationStatus(s.Who)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := migrationData{Run: run, CanStart: s.Who.Role == archive.RoleArchive || s.Who.Role == archive.RoleAdmin}
	if run.Total > 0 {
		d.Percent = run.Done * 100 / run.Total
	}
	p := page{Title: "migration", Error: msg, Data: d}
	if run.Running {
		p.Refresh = 5
	}
	c.render(w, r, status, "migration", p)
}

func (c *console) migration(w http.ResponseWriter, r *http.Request) {
	c.migrationPage(w, r, http.StatusOK, "")
}

// startMigration starts a run, throttled to the packages a second the form gives.
func (c *console) startMigration(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	var rate float64
	if v := strings.TrimSpace(r.PostFormValue("rate")); v != "" {
		var err error
		if rate, err = strconv.ParseFloat(v, 64); err != nil || rate < 0 {
			c.migrationPage(w, r, http.StatusUnprocessableEntity, "migrationRate")
			return
		}
	}
	if _, err := c.a.StartMigration(s.Who, archive.MigrationOptions{Rate: rate}); err != nil {
		if errors.Is(err, archive.ErrState) {
			c.migrationPage(w, r, http.StatusConflict, "migrationBusy")
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"migration", http.StatusSeeOther)
}
