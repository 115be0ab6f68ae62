package console

import (
	"context"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
)

// Archive is what the console asks of the archive: *archive.Archive has it.
type Archive interface {
	Login(name, password, addr string) (string, archive.Principal, error)
	Session(id string) (archive.Principal, archive.Account, error)
	Logout(id string) error
	Statistics(ctx context.Context, who archive.Principal, dept string) (*archive.StatisticsReport, error)
	Schedule(ctx context.Context, who archive.Principal, q archive.ScheduleQuery) (*archive.Schedule, error)
	AuditRunStatus(who archive.Principal) (*archive.AuditRun, error)
	Ready(ctx context.Context) error
	Log() *eventlog.Log
	Search(ctx context.Context, who archive.Principal, q archive.SearchQuery) (*archive.SearchResult, error)
}

var _ Archive = (*archive.Archive)(nil)
