package archive

import (
	"context"
	"fmt"
	"slices"

	"github.com/dangan-archive/dangan/storage/index"
)

// StatisticsReport is the 统计 of one department or of the whole archive: holdings (packages
// not destroyed) counted with their bytes (every form stored: a migrated package counts its
// current form and the forms kept before it) by year, retention, state and department, files
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
	dept, err := departmentScope(who, dept, "statistics", RoleArchive, RoleAuditor, RoleAdmin)
	if err != nil {
		return nil, err
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

// departmentScope is the department a request is about: a department's own, whatever it
// asked (another's is forbidden); for the roles in wide, the one asked for, or "" for all.
func departmentScope(who Principal, asked, what string, wide ...string) (string, error) {
	if who.Role == RoleDepartment {
		if asked != "" && asked != who.Org {
			return "", fieldErr("department", fmt.Errorf("%w: a department sees only its own %s", ErrForbidden, what))
		}
		return who.Org, nil
	}
	if slices.Contains(wide, who.Role) {
		return asked, nil
	}
	return "", fmt.Errorf("%w: role %s has no %s", ErrForbidden, who.Role, what)
}
