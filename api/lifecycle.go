package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// queryTime reads an RFC 3339 time or a YYYY-MM-DD date from the query.
func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fieldErr(name, fmt.Errorf("%w: %s must be an RFC 3339 time or YYYY-MM-DD", archive.ErrInvalidCase, name))
}

func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, fieldErr("limit", fmt.Errorf("%w: limit must be 1..1000", archive.ErrInvalidCase))
	}
	return n, nil
}

func (s *server) reads(w http.ResponseWriter, r *http.Request) {
	f := archive.ReadFilter{Package: r.URL.Query().Get("package"), Who: r.URL.Query().Get("who"), Cursor: r.URL.Query().Get("cursor")}
	var err error
	if f.Since, err = queryTime(r, "since"); err == nil {
		if f.Until, err = queryTime(r, "until"); err == nil {
			f.Limit, err = queryLimit(r)
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, next, err := s.a.ReadLog(r.Context(), principal(r), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf("reads", out, next))
}

func (s *server) schedule(w http.ResponseWriter, r *http.Request) {
	at, err := queryTime(r, "at")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	days := 365
	if v := r.URL.Query().Get("horizon_days"); v != "" {
		if days, err = strconv.Atoi(v); err != nil || days < 0 || days > 36500 {
			s.fail(w, r, fieldErr("horizon_days", fmt.Errorf("%w: horizon_days must be 0..36500", archive.ErrInvalidCase)))
			return
		}
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	sch, err := s.a.Schedule(r.Context(), principal(r), archive.ScheduleQuery{At: at, Horizon: time.Duration(days) * 24 * time.Hour,
		Department: q.Get("department"), Kind: q.Get("kind"), Cursor: q.Get("cursor"), Limit: limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sch)
}

func (s *server) startAudit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		All  bool    `json:"all"`
		MBPS float64 `json:"mb_per_s"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, "all", &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if req.MBPS < 0 {
		s.fail(w, r, fieldErr("mb_per_s", fmt.Errorf("%w: mb_per_s must not be negative", archive.ErrInvalidCase)))
		return
	}
	run, err := s.a.StartAudit(r.Context(), principal(r), req.All, int64(req.MBPS*(1<<20)))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

func (s *server) auditRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.a.AuditRunStatus(principal(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *server) startMigration(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Rate  float64 `json:"rate"`  // packages a second at most; 0: no limit
		Limit int     `json:"limit"` // packages to migrate at most; 0: every one
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, "rate", &req); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	run, err := s.a.StartMigration(principal(r), archive.MigrationOptions{Rate: req.Rate, Limit: req.Limit})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, run)
}

func (s *server) migrationRun(w http.ResponseWriter, r *http.Request) {
	run, err := s.a.MigrationStatus(principal(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

func (s *server) audits(w http.ResponseWriter, r *http.Request) {
	f := archive.AuditFilter{Package: r.URL.Query().Get("package"), FailedOnly: r.URL.Query().Get("failed") == "1", Cursor: r.URL.Query().Get("cursor")}
	var err error
	if f.Since, err = queryTime(r, "since"); err == nil {
		f.Limit, err = queryLimit(r)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, next, err := s.a.Audits(r.Context(), principal(r), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pageOf("audits", out, next))
}

// pageOf is a page of a list: the items under name, and next when another page may follow.
func pageOf(name string, items any, next string) map[string]any {
	out := map[string]any{name: items}
	if next != "" {
		out["next"] = next
	}
	return out
}
