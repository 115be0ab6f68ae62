package console

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/storage/index"
)

// homeData is 首页: the holdings, what is due, the last audit, the log's latest checkpoint
// and whether storage answers. A part the account's role may not see is left out.
type homeData struct {
	Stats       *archive.StatisticsReport
	TotalBytes  string
	Retentions  []countRow
	States      []countRow
	Due         []archive.ScheduleItem
	Audit       *archive.AuditRun
	Checkpoint  *eventlog.Checkpoint
	Witnesses   int
	StorageOK   bool
	StorageWhat string
}

type countRow struct {
	Key   string
	Count int64
	Bytes string
}

func rows(m map[string]map[string]index.Counter, dim string) []countRow {
	var out []countRow
	for k, c := range m[dim] {
		out = append(out, countRow{Key: k, Count: c.Count, Bytes: humanBytes(c.Bytes)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func (c *console) home(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	d := homeData{}
	if st, err := c.a.Statistics(ctx, s.Who, ""); err == nil {
		d.Stats, d.TotalBytes = st, humanBytes(st.Total.Bytes)
		d.Retentions, d.States = rows(st.By, "retention"), rows(st.By, "state")
	}
	if sch, err := c.a.Schedule(ctx, s.Who, archive.ScheduleQuery{Limit: 5}); err == nil {
		d.Due = sch.Items
	}
	if run, err := c.a.AuditRunStatus(s.Who); err == nil && run != nil && !run.Started.IsZero() {
		d.Audit = run
	}
	if sc := c.a.Log().Latest(); sc != nil {
		if cp, err := eventlog.ParseCheckpoint(sc.Body); err == nil {
			d.Checkpoint, d.Witnesses = &cp, len(sc.Cosignatures)
		}
	}
	if err := c.a.Ready(ctx); err != nil {
		d.StorageWhat = err.Error()
	} else {
		d.StorageOK = true
	}
	c.render(w, r, http.StatusOK, "home", page{Title: "home", Data: d})
}
