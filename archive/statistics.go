package archive

import (
	"context"
	"fmt"

	"github.com/dangan-archive/dangan/storage/index"
)

// StatisticsReport is the 统计 of one department or of the whole archive: holdings (packages
// not destroyed) counted with their bytes by year, retention, state and department, files
// by format, and destroyed packages under state "destroyed". The counters move in the
// transactions that change packages, so reading them costs the same at any size.
type StatisticsReport struct {
	Department string                              `json:"department,omitempty"` // empty: the whole archive
	Total      index.Counter                       `json:"total"`
	By         map[string]map[string]index.Counter `json:"by"`
}

// Statistics reports a department's statistics (dept) or the archive's (dept empty): a
// department sees its own; the archive, auditors and admins any.
func (a *Archive) Statistics(ctx context.Context, who Principal, dept string) (*StatisticsReport, error) {
	switch who.Role {
	case RoleArchive, RoleAuditor, RoleAdmin:
	case RoleDepartment:
		if dept != "" && dept != who.Org {
			return nil, fieldErr("department", fmt.Errorf("%w: a department sees only its own statistics", ErrForbidden))
		}
		dept = who.Org
	default:
		return nil, fmt.Errorf("%w: role %s has no statistics", ErrForbidden, who.Role)
	}
	scope := dept
	if scope == "" {
		scope = index.AllDepartments
	}
	st, err := a.index.Statistics(scope)
	if err != nil {
		return nil, err
	}
	rep := &StatisticsReport{Department: dept, Total: st[index.DimTotal][""], By: map[string]map[string]index.Counter{}}
	for _, dim := range []string{index.DimYear, index.DimRetention, index.DimState, index.DimFormat, index.DimDepartment} {
		if dim == index.DimDepartment && dept != "" {
			continue
		}
		rep.By[dim] = st[dim]
		if rep.By[dim] == nil {
			rep.By[dim] = map[string]index.Counter{}
		}
	}
	return rep, nil
}

// StatisticsScopes lists the departments with statistics (for the metrics).
func (a *Archive) StatisticsScopes() ([]string, error) { return a.index.Scopes() }

// RawStatistics are a scope's counters as the index keeps them (for the metrics).
func (a *Archive) RawStatistics(scope string) (index.Statistics, error) {
	return a.index.Statistics(scope)
}
