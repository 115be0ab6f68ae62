package console

import (
	"context"
	"io"
	"time"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/formats/eep"
	"github.com/dangan-archive/dangan/storage/index"
)

// Archive is what the console asks of the archive: *archive.Archive has it.
type Archive interface {
	Login(name, password, addr string) (string, archive.Principal, error)
	Session(id string) (archive.Principal, archive.Account, error)
	Logout(id string) error
	Accounts(who archive.Principal) ([]archive.Account, error)
	CreateAccount(who archive.Principal, acc archive.Account, password string) (*archive.Account, error)
	RemoveAccount(who archive.Principal, name string) error
	Tokens(who archive.Principal) ([]archive.TokenInfo, error)
	CreateToken(role, org, note string) (string, error)
	TrustPEM() []byte
	FormatPolicy(who archive.Principal) (*formats.Policy, map[string]string, error)
	Statistics(ctx context.Context, who archive.Principal, dept string) (*archive.StatisticsReport, error)
	Schedule(ctx context.Context, who archive.Principal, q archive.ScheduleQuery) (*archive.Schedule, error)
	AuditRunStatus(who archive.Principal) (*archive.AuditRun, error)
	StartMigration(who archive.Principal, opts archive.MigrationOptions) (*archive.MigrationRun, error)
	MigrationStatus(who archive.Principal) (*archive.MigrationRun, error)
	OpenPriorEEP(ctx context.Context, who archive.Principal, id string, layer int) (io.ReadCloser, *index.PriorForm, error)
	Ready(ctx context.Context) error
	Log() *eventlog.Log
	Package(ctx context.Context, who archive.Principal, id string) (*index.Package, error)
	OpenEncoding(ctx context.Context, who archive.Principal, id string, n, k int) (io.ReadCloser, *index.Encoding, error)
	OpenEEP(ctx context.Context, who archive.Principal, id string) (io.ReadCloser, *index.Package, error)
	ReadLog(ctx context.Context, who archive.Principal, f archive.ReadFilter) ([]archive.Read, string, error)
	Candidates(ctx context.Context, who archive.Principal, dept, cursor string, limit int) (*archive.CandidatePage, error)
	Decide(ctx context.Context, who archive.Principal, req archive.DecisionRequest) (*archive.Decision, error)
	PendingDecisions(ctx context.Context, who archive.Principal, limit int) ([]archive.Decision, error)
	Approve(ctx context.Context, who archive.Principal, id string, approve bool, note string) (*archive.Decision, error)
	Register(ctx context.Context, who archive.Principal) ([]byte, error)
	RegisterPDF(ctx context.Context, who archive.Principal) ([]byte, error)
	StartAudit(ctx context.Context, who archive.Principal, all bool, rate int64) (*archive.AuditRun, error)
	Audits(ctx context.Context, who archive.Principal, f archive.AuditFilter) ([]archive.AuditResult, string, error)
	Certificates(who archive.Principal, f archive.CertificateFilter) ([]*archive.Certificate, error)
	IssueCertificate(ctx context.Context, who archive.Principal, req archive.CertificateRequest) (*archive.Certificate, error)
	UpdateCertificate(ctx context.Context, who archive.Principal, identifier string, req archive.CertificateRequest) (*archive.Certificate, error)
	RevokeCertificate(ctx context.Context, who archive.Principal, identifier, code, reason string) (*archive.Certificate, error)
	CertificateFile(ctx context.Context, who archive.Principal, identifier, format string) (io.ReadCloser, int64, error)
	CreateTransfer(ctx context.Context, who archive.Principal, req archive.TransferRequest) (*archive.Transfer, error)
	Transfers(ctx context.Context, who archive.Principal, cursor string, limit int) ([]*archive.Transfer, string, error)
	TransferStatus(ctx context.Context, who archive.Principal, batch string) (*archive.Transfer, error)
	RetryTransfer(ctx context.Context, who archive.Principal, batch string) (*archive.Transfer, error)
	Accessions(ctx context.Context, who archive.Principal, cursor string, limit int) ([]*archive.Accession, string, error)
	Steps(ctx context.Context, who archive.Principal, id string) (*archive.CaseSteps, error)
	Metadata(ctx context.Context, who archive.Principal, id string) (*index.Package, *eep.Scan, error)
	Evidence(ctx context.Context, who archive.Principal, id string) (*archive.Evidence, error)
	VerifyUpload(ctx context.Context, body io.Reader, ev *archive.Evidence, max int64) (*archive.Report, error)
	Search(ctx context.Context, who archive.Principal, q archive.SearchQuery) (*archive.SearchResult, error)
	Backups(ctx context.Context, who archive.Principal, since, until time.Time, cursor string, limit int) ([]archive.Backup, string, error)
	MakeInspection(ctx context.Context, who archive.Principal, in archive.InspectionInput) (*archive.Inspection, error)
	Inspections(ctx context.Context, who archive.Principal, cursor string, limit int) ([]archive.Inspection, string, error)
	ReceivedReports(ctx context.Context, who archive.Principal, dept, cursor string, limit int) ([]archive.ReceivedReport, string, error)
	RequestDeferral(ctx context.Context, who archive.Principal, in archive.DeferralInput) (*archive.Deferral, error)
	Deferrals(ctx context.Context, who archive.Principal, cursor string, limit int) ([]archive.Deferral, string, error)
	CheckDeferral(ctx context.Context, who archive.Principal, id string) (*archive.Deferral, error)
	DeferralRequests(ctx context.Context, who archive.Principal, cursor string, limit int) ([]archive.DeferralCase, string, error)
	DecideDeferral(ctx context.Context, who archive.Principal, id string, approve bool, until int, reason string) (*archive.DeferralCase, error)
	ProposeOpening(ctx context.Context, who archive.Principal, req archive.OpeningRequest) (*archive.OpeningDecision, error)
	ApproveOpening(ctx context.Context, who archive.Principal, id string, approve bool, note string) (*archive.OpeningDecision, error)
	CloseOpening(ctx context.Context, who archive.Principal, id, reason string) (*index.Package, error)
	OpeningDecisions(ctx context.Context, who archive.Principal, pending bool, cursor string, limit int) ([]archive.OpeningDecision, string, error)
	SearchOpen(ctx context.Context, words, cursor string, limit int) (*archive.OpenResult, error)
	UseRequests(ctx context.Context, who archive.Principal, f archive.UseFilter) ([]archive.UseRequest, string, error)
	RequestUse(ctx context.Context, who archive.Principal, in archive.UseRequestInput) (*archive.UseRequest, error)
	DecideUse(ctx context.Context, who archive.Principal, id string, in archive.UseDecisionInput) (*archive.UseRequest, error)
	RevokeUse(ctx context.Context, who archive.Principal, id, reason string) (*archive.UseRequest, error)
}

var _ Archive = (*archive.Archive)(nil)
