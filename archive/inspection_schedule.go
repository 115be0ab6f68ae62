package archive

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/dangan-archive/dangan/storage/index"
)

// Inspection on a schedule. A department's archive that reports to a county archive makes
// each department's compliance report once a period: from the end of its last report (or,
// for a department never reported on, one period back) to now, signed and sent as
// MakeInspection does. The check runs hourly and reads the reports kept (a few a year per
// department), never the packages.

// InspectEvery makes the reports that are due every hour until ctx ends.
func (a *Archive) InspectEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := a.InspectDue(ctx, every); err != nil {
			a.log.Warn("scheduled inspection reports failed; retrying within the hour", "made", n, "err", err)
		} else if n > 0 {
			a.log.Info("scheduled inspection reports made", "reports", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// InspectDue makes the report of each department whose last one ended a period ago or more
// and reports how many it made.
func (a *Archive) InspectDue(ctx context.Context, every time.Duration) (int, error) {
	scopes, err := a.index.Scopes()
	if err != nil {
		return 0, err
	}
	last := map[string]time.Time{} // department → the end of its latest report
	err = a.index.ForEachRecord(index.Inspections, "", "", func(_ string, data []byte) error {
		var ins Inspection
		if err := json.Unmarshal(data, &ins); err != nil || ins.Report == nil {
			return err
		}
		var rep InspectionReport
		if err := json.Unmarshal([]byte(ins.Report.Body), &rep); err != nil {
			return err
		}
		if rep.To.After(last[ins.Department]) {
			last[ins.Department] = rep.To
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	now := a.now()
	made := 0
	slices.Sort(scopes)
	for _, dept := range scopes {
		if dept == index.AllDepartments || dept == "" {
			continue
		}
		from, ok := last[dept]
		if !ok {
			from = now.Add(-every)
		}
		if now.Sub(from) < every {
			continue
		}
		if _, err := a.MakeInspection(ctx, Principal{Role: RoleArchive, Name: "schedule"}, InspectionInput{Department: dept, From: from, To: now}); err != nil {
			return made, err
		}
		made++
	}
	return made, nil
}
