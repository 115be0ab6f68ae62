// Package archive is dangan's domain: cases, packages and their workflows. It validates
// and ingests finished cases into signed, timestamped EEPs, serves them back, and verifies
// packages, on top of formats (documents, EEP), signing (SM2, PKI, timestamps) and storage.
//
//	a, _ := archive.Open(archive.Config{DataDir: "/var/lib/dangan"})
//	defer a.Close()
//	res, err := a.Ingest(ctx, principal, c, nextPart)
//	report, _ := archive.Verify(file, size, archive.VerifyOptions{Roots: a.Trust()})
package archive

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/archive/eventlog"
	"github.com/dangan-archive/dangan/formats"
	"github.com/dangan-archive/dangan/redact"
	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

// Sentinel errors callers decide on (the API maps them to HTTP statuses).
var (
	ErrInvalidCase  = errors.New("invalid case")
	ErrForbidden    = errors.New("not allowed for this caller")
	ErrConflict     = errors.New("case already archived with different content")
	ErrNotFound     = errors.New("not found")
	ErrBadUpload    = errors.New("bad upload")
	ErrUnauthorized = errors.New("unknown or missing token")
	ErrTooLarge     = errors.New("upload too large")
	ErrUnavailable  = errors.New("temporarily unavailable")
	ErrGone         = errors.New("destroyed")
	// ErrState: the request conflicts with the current state of what it names (a closed
	// batch, a package already in a transfer, a decision already approved).
	ErrState = errors.New("not possible in the current state")
	// ErrBusy is back-pressure: every ingest slot stayed taken; retry later. It wraps
	// ErrUnavailable.
	ErrBusy = fmt.Errorf("%w: too many ingests in progress", ErrUnavailable)
)

// Roles a token can carry.
const (
	RoleDepartment = "department"
	RoleArchive    = "archive"
	RoleAuditor    = "auditor"
	RoleAdmin      = "admin"
	// RoleIssuer issues, updates and revokes a department's e-certificates (Org: its USCC);
	// it cannot ingest or read the department's records.
	RoleIssuer = "issuer"
)

// Principal is an authenticated caller.
type Principal struct {
	Role string
	Org  string // the department's USCC for RoleDepartment
	// Purpose is why the caller reads (the API's ?purpose=), recorded with every read.
	Purpose string
	// TokenID tells holders of one role apart (the start of the token's hash); Name is
	// the token's note, normally the person it was issued to.
	TokenID string
	Name    string
}

// Person names the caller as decisions record it: role, name and token.
func (p Principal) Person() string {
	s := p.String()
	if p.Name != "" {
		s += " " + p.Name
	}
	if p.TokenID != "" {
		s += " #" + p.TokenID
	}
	return s
}

func (p Principal) String() string {
	if p.Org != "" {
		return p.Role + ":" + p.Org
	}
	return p.Role
}

// Config configures an archive.
type Config struct {
	DataDir string
	// PasswordCost are the Argon2id parameters of new password hashes (zero: 2 passes over
	// 19 MiB, OWASP's). LockAfter wrong passwords in a row (default 5) lock an account for LockFor
	// (default 15 minutes). A session ends SessionIdle after its last use (default 30
	// minutes) and SessionMax after its login (default 12 hours).
	PasswordCost PasswordCost
	LockAfter    int
	// AuthFailures is how many failed logins or token checks an address may make at once
	// before it is throttled (default 10; then that many a minute).
	AuthFailures            int
	LockFor                 time.Duration
	SessionIdle, SessionMax time.Duration
	ArchiveName             string // the archive's name, in packages and certificates
	// FormatPolicy is a format policy file whose rules go before the shipped ones; empty:
	// the shipped policy (formats/policy.json).
	FormatPolicy string
	// NoConverters leaves LibreOffice and Ghostscript unused even when installed (each
	// policy rule then falls back or refuses).
	NoConverters bool
	// OfficeWorkers bounds concurrent LibreOffice conversions (default: the CPUs);
	// ConvertTimeout bounds each (default 60 s).
	OfficeWorkers  int
	ConvertTimeout time.Duration
	// VerifyURL is the public verification page (…/verify) printed in certificates' QR
	// codes with ?id=; empty: the QR code carries the identifier alone.
	VerifyURL   string
	Fonds       map[string]string // department USCC → fonds code (全宗号); default: the USCC
	TSAURL      string            // an external RFC 3161 TSA; empty: the built-in one
	KeyPassword []byte            // decrypts PKCS#8 keys in DataDir/pki
	// MaxIngests bounds concurrent ingests (default 16); one more waits up to IngestWait
	// (default 10 s) for a slot, then fails with ErrBusy.
	MaxIngests int
	IngestWait time.Duration
	// TransferYears is how long after the year of formation a permanent (Y) record goes
	// to the county archive, KeepYears how long the department keeps its copy after that;
	// together they are a Y package's retention here (defaults 5 and 5).
	TransferYears int
	KeepYears     int
	// OpenAfterYears is the closed period: a record may be opened to the public (开放鉴定)
	// once this many years have passed since its case finished (default 25). RedactionPolicy
	// is the file that says what a public copy leaves out; empty: the shipped one
	// (redact/policy.json).
	OpenAfterYears  int
	RedactionPolicy string
	// ArchiveBy is the archiving deadline in the year after a case finished, as MM-DD
	// (default "06-30": 30 June, the county regulation's).
	ArchiveBy string
	// AuditCycle is how often every package is re-checked (default 90 days); AuditRate
	// throttles the auditor in bytes per second (0: as fast as the machine goes).
	AuditCycle time.Duration
	AuditRate  int64
	// NoBackgroundAudit leaves auditing to explicit runs (commands that open the archive
	// briefly, tests).
	NoBackgroundAudit bool
	// SearchPatience is how long the search indexer leaves its queue alone while ingests
	// run without a gap (default 5 minutes; see runSearchIndexer).
	SearchPatience time.Duration
	// LogOrigin names this archive's event log in its checkpoints; default "dangan/" and
	// the start of the SM3 fingerprint of the root certificate.
	LogOrigin string
	// CheckpointInterval is how often the event log is checkpointed when it grew (default
	// 1 s; negative: only on demand, for commands that open the archive briefly).
	CheckpointInterval time.Duration
	// County is the county archive: transfers go to it and it witnesses this archive's log.
	County *Peer
	// TrustDir holds further trust anchors for documents signed elsewhere (the provincial
	// certificate root, the tax authority's, a bank's): a PEM bundle, or a directory of PEM
	// or DER certificates (.pem, .crt, .cer). They are trusted for verifying files, not for
	// the archive's own packages and transfers.
	TrustDir string
	// SkipReconcile leaves start-up reconciliation to the caller (dangan index rebuild).
	SkipReconcile bool
	Store         storage.ObjectStore
	Logger        *slog.Logger
	Now           func() time.Time
	// Keys is a device holding some of the archive's signing keys (signing/pkcs11), tried
	// before the files in pki/; nil: the files only.
	Keys signing.KeyProvider
	// Wallclock is the real world's clock, which credentials live by (tokens' lifetimes and
	// last use): time.Now unless a test pins it. Now may be shifted for drills; a token is
	// not expired by a drill.
	Wallclock func() time.Time
}

// Archive is an open archive.
type Archive struct {
	cfg    Config
	search *searcher
	log    *slog.Logger
	store  storage.ObjectStore
	index  *index.DB
	pki    *signing.PKI
	// tokenKey is the secret tokens and session ids are stored under (pki/token-secret).
	tokenKey []byte
	throttle *authThrottle
	// personal seals the index's personal fields; blindKey makes the blind index of ID numbers.
	personal cipher.AEAD
	blindKey []byte
	tsa      *signing.TSA
	stamper  signing.Timestamper
	tmp      string
	spool    *spoolPool
	slots    chan struct{}
	now      func() time.Time
	// store health, checked at most once a second before an ingest
	healthMu  sync.Mutex
	healthAt  time.Time
	healthErr error
	elog      *eventlog.Log
	// transfers (transfer_send.go)
	transferMu sync.Mutex
	disposalMu sync.Mutex
	openingMu  sync.Mutex
	redaction  *redact.Policy // what a public copy leaves out (opening.go)
	// use requests (use.go): decisions, revocations and expiries one at a time
	useMu      sync.Mutex
	expiryStop context.CancelFunc
	expiryDone chan struct{}
	// the auditor (audit.go)
	auditMu      sync.Mutex
	migration    migrationState // the migration run in the background (migrate_bg.go)
	auditCancel  context.CancelFunc
	auditDone    chan struct{}
	auditorStop  context.CancelFunc
	auditorDone  chan struct{}
	auditEvery   time.Duration
	auditStats   AuditStats
	transferKick chan struct{}
	transferStop context.CancelFunc
	transferDone chan struct{}
	// the committer (commit.go)
	commits       chan *commitReq
	committerDone chan struct{}
	tools         formats.Tools // the format policy and converters (convert.go)
	// the certificate library (certificates.go)
	certMu      sync.Mutex
	sealMu      sync.Mutex
	revocations atomic.Pointer[Signed]
	// anchors are Config.TrustDir's certificates; anchorPool them with the archive's roots.
	anchors    []*smx509.Certificate
	anchorPool *smx509.CertPool
	// Created reports whether Open made a new development PKI.
	Created bool
}

// Open opens (creating when empty) the archive in cfg.DataDir.
func Open(cfg Config) (*Archive, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("archive: DataDir is required")
	}
	if cfg.ArchiveName == "" {
		cfg.ArchiveName = "dangan 档案馆"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxIngests <= 0 {
		cfg.MaxIngests = 16
	}
	if cfg.IngestWait <= 0 {
		cfg.IngestWait = 10 * time.Second
	}
	if cfg.TransferYears <= 0 {
		cfg.TransferYears = 5
	}
	if cfg.KeepYears <= 0 {
		cfg.KeepYears = 5
	}
	if cfg.OpenAfterYears <= 0 {
		cfg.OpenAfterYears = 25
	}
	if cfg.ArchiveBy == "" {
		cfg.ArchiveBy = "06-30"
	}
	if _, err := time.Parse("01-02", cfg.ArchiveBy); err != nil {
		return nil, fmt.Errorf("archive: ArchiveBy %q is not MM-DD", cfg.ArchiveBy)
	}
	if cfg.AuditCycle <= 0 {
		cfg.AuditCycle = 90 * 24 * time.Hour
	}
	if cfg.Wallclock == nil {
		cfg.Wallclock = time.Now
	}
	a := &Archive{cfg: cfg, log: cfg.Logger, now: cfg.Now, tmp: filepath.Join(cfg.DataDir, "tmp"), slots: make(chan struct{}, cfg.MaxIngests)}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if err := os.RemoveAll(a.tmp); err != nil {
		return nil, fmt.Errorf("clear temporary directory: %w", err)
	}
	if err := os.MkdirAll(a.tmp, 0o700); err != nil {
		return nil, fmt.Errorf("create temporary directory: %w", err)
	}
	// Uploads up to 1 MiB stay in memory, within 64 MiB for all ingests together.
	a.spool = newSpoolPool(a.tmp, 1<<20, 64<<20)
	var err error
	if a.redaction, err = redact.Load(cfg.RedactionPolicy); err != nil {
		return nil, err
	}
	if err := a.openConverters(); err != nil {
		return nil, err
	}
	if a.pki, a.Created, err = signing.OpenPKI(filepath.Join(cfg.DataDir, "pki"), cfg.KeyPassword, cfg.ArchiveName, cfg.Now, cfg.Keys); err != nil {
		return nil, fmt.Errorf("open PKI: %w", err)
	}
	a.throttle = newAuthThrottle(cfg.AuthFailures)
	if err := a.openPersonal(filepath.Join(cfg.DataDir, "pki"), cfg.KeyPassword); err != nil {
		return nil, err
	}
	if a.tokenKey, err = loadTokenSecret(filepath.Join(cfg.DataDir, "pki", "token-secret")); err != nil {
		return nil, err
	}
	if cfg.TrustDir != "" {
		if a.anchors, err = signing.LoadAnchors(cfg.TrustDir); err != nil {
			return nil, fmt.Errorf("trust anchors: %w", err)
		}
		a.anchorPool = signing.NewPool(append(a.pki.Roots(), a.anchors...)...)
	}
	if a.store = cfg.Store; a.store == nil {
		if a.store, err = storage.OpenFS(filepath.Join(cfg.DataDir, "objects")); err != nil {
			return nil, err
		}
	}
	if a.index, err = index.OpenWith(filepath.Join(cfg.DataDir, "index.db"), index.Options{
		Derive: func(p *index.Package) { p.ArchivedLate = a.archivedLate(p) },
		Progress: func(done, total int) {
			a.log.Info("migrating the index to layout "+fmt.Sprint(index.Version), "done", done, "total", total)
		},
	}); err != nil {
		return nil, err
	}
	if err := a.indexPendingDecisions(); err != nil {
		a.index.Close()
		return nil, fmt.Errorf("index the pending disposal decisions: %w", err)
	}
	if err := a.indexRecordKeys(); err != nil {
		a.index.Close()
		return nil, fmt.Errorf("index the reads and audit results: %w", err)
	}
	if err := a.openSearch(searchDir(cfg)); err != nil {
		a.index.Close()
		return nil, err
	}
	if err := a.sealOldCaseTexts(); err != nil {
		return nil, err
	}
	a.tsa = signing.NewTSA(a.pki.TSA)
	a.tsa.Now = a.now
	a.stamper = a.tsa
	if cfg.TSAURL != "" {
		a.stamper = &signing.HTTPTimestamper{URL: cfg.TSAURL}
	}
	origin := cfg.LogOrigin
	if origin == "" {
		fp := sm3.Sum(a.pki.Root.Cert.Raw)
		origin = "dangan/" + hex.EncodeToString(fp[:8])
	}
	a.elog, err = eventlog.Open(eventlog.Config{Dir: cfg.DataDir, Store: a.store, Origin: origin, Signer: a.pki.Archive,
		Stamper: a.stamper, Roots: a.Trust, Interval: cfg.CheckpointInterval, Logger: a.log, Now: a.now,
		RetainUntil: func() time.Time { return a.now().AddDate(logRetainYears, 0, 0) }})
	if err != nil {
		a.search.ix.Close()
		a.index.Close()
		return nil, fmt.Errorf("open the event log: %w", err)
	}
	a.startCommitter()
	// Object first, index second: a crash between them leaves objects the index does not
	// know, adopted here when they are complete, valid packages.
	if !cfg.SkipReconcile {
		if _, err := a.ReconcileAtStart(context.Background()); err != nil {
			a.log.Error("start-up reconciliation did not run: is the object store reachable?", "err", err)
		}
	}
	if err := a.logKeys(context.Background()); err != nil {
		a.Close()
		return nil, err
	}
	a.startBackground()
	return a, nil
}

// Close finishes the commits in flight and closes the event log and the index.
func (a *Archive) Close() error {
	a.stopBackground()
	a.stopCommitter()
	markErr := a.markClean()
	if a.tools.Office != nil {
		a.tools.Office.Close()
	}
	a.spool.close()
	return errors.Join(markErr, a.stopSearch(), a.elog.Close(), a.index.Close())
}

// logRetainYears is how long the event log's objects are locked (WORM) where the store can:
// the log is kept as long as the archive.
const logRetainYears = 100

// Log is the archive's event log.
func (a *Archive) Log() *eventlog.Log { return a.elog }

// TSA is the built-in time-stamping authority (served at POST /tsa).
func (a *Archive) TSA() *signing.TSA { return a.tsa }

// Trust is the pool of trusted roots.
func (a *Archive) Trust() *smx509.CertPool { return a.pki.Trust() }

// docTrust is the pool documents made elsewhere are verified against: the archive's roots
// and the trust anchors of Config.TrustDir.
func (a *Archive) docTrust() *smx509.CertPool {
	if a.anchorPool == nil {
		return a.Trust()
	}
	return a.anchorPool
}

// TrustPEM is the PEM bundle of trusted roots, as GET /api/v1/trust serves it.
func (a *Archive) TrustPEM() []byte { return signing.CertPEM(a.pki.Roots()...) }

// Ready reports whether the archive can take work: the object store answers.
func (a *Archive) Ready(ctx context.Context) error {
	if err := a.store.Ping(ctx); err != nil {
		return fmt.Errorf("%w: object store: %v", ErrUnavailable, err)
	}
	return nil
}

// storeHealthy is Ready, remembered for a second, so an outage turns ingests away at once
// and a busy archive does not ask the store before every case.
func (a *Archive) storeHealthy(ctx context.Context) error {
	a.healthMu.Lock()
	defer a.healthMu.Unlock()
	if time.Since(a.healthAt) > time.Second {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		a.healthErr = a.Ready(pctx)
		cancel()
		a.healthAt = time.Now()
	}
	return a.healthErr
}

// Index exposes the index for commands (token creation, statistics).
func (a *Archive) Index() *index.DB { return a.index }

// Store exposes the object store.
func (a *Archive) Store() storage.ObjectStore { return a.store }

// fondsOf returns the fonds code (全宗号) of a department.
func (a *Archive) fondsOf(uscc string) string {
	if f, ok := a.cfg.Fonds[uscc]; ok {
		return f
	}
	return uscc
}

// newID returns a time-ordered package id: 13 hex digits of milliseconds, 12 random.
func newID(now time.Time) (string, error) {
	r := make([]byte, 6)
	if _, err := rand.Read(r); err != nil {
		return "", fmt.Errorf("package id randomness: %w", err)
	}
	return fmt.Sprintf("%013x%s", now.UnixMilli(), hex.EncodeToString(r)), nil
}

// startBackground starts the workers that run beside the API: the transfer sender (when a
// county archive is configured).
func (a *Archive) startBackground() {
	a.transferKick = make(chan struct{}, 1)
	a.startSearchIndexer()
	if a.auditEvery == 0 {
		a.auditEvery = 5 * time.Minute
	}
	if !a.cfg.NoBackgroundAudit {
		ctx, cancel := context.WithCancel(context.Background())
		a.auditorStop, a.auditorDone = cancel, make(chan struct{})
		go a.runAuditor(ctx)
	}
	if a.cfg.County != nil {
		ctx, cancel := context.WithCancel(context.Background())
		a.transferStop, a.transferDone = cancel, make(chan struct{})
		go a.runTransfers(ctx)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.expiryStop, a.expiryDone = cancel, make(chan struct{})
	go func() {
		defer close(a.expiryDone)
		a.runGrantExpiry(ctx)
	}()
}

func (a *Archive) stopBackground() {
	if a.auditorStop != nil {
		a.auditorStop()
		<-a.auditorDone
		a.auditorStop = nil
	}
	a.auditMu.Lock()
	cancel, done := a.auditCancel, a.auditDone
	a.auditMu.Unlock()
	if cancel != nil {
		cancel()
	}
	if done != nil {
		<-done // a run that has saved its end may still be on its way out
	}
	a.migration.stop()
	if a.transferStop != nil {
		a.transferStop()
		<-a.transferDone
		a.transferStop = nil
	}
	if a.expiryStop != nil {
		a.expiryStop()
		<-a.expiryDone
		a.expiryStop = nil
	}
}
