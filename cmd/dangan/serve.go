package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dangan-archive/dangan/api"
	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/storage"
	"github.com/dangan-archive/dangan/storage/index"
)

type commonFlags struct {
	data        string
	archiveName string
	tsaURL      string
	logFormat   string
	logLevel    string
	maxIngests  int
	transferYrs int
	keepYrs     int
	logOrigin   string
	clockOffset time.Duration
	archiveBy   string
	auditCycle  time.Duration
	auditRate   float64
	countyURL   string
	countyTok   string
	county      *archive.Peer
	// quietReconcile skips the start-up reconciliation (the caller runs its own).
	quietReconcile  bool
	s3              storage.S3Config
	s3CredFile      string
	verifyURL       string
	trustDir        string
	converters      string
	formatPolicy    string
	redactionPolicy string
	openAfterYrs    int
	officeWorkers   int
	convertTimeout  time.Duration
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", "data", "data directory (objects, index, PKI)")
	fs.StringVar(&c.archiveName, "archive-name", "dangan 档案馆", "the archive's name, written into packages and certificates")
	fs.StringVar(&c.tsaURL, "tsa-url", "", "an external RFC 3161 TSA (default: the built-in one)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.IntVar(&c.maxIngests, "max-ingests", 16, "concurrent ingests; more wait up to 10 s, then get 503 busy")
	fs.IntVar(&c.transferYrs, "transfer-years", 5, "years after formation within which permanent (Y) records go to the county archive")
	fs.IntVar(&c.keepYrs, "keep-years", 5, "years the department keeps its copy of a transferred Y record")
	fs.DurationVar(&c.clockOffset, "clock-offset", 0, "shift the archive's clock (drills and tests: e.g. 43800h is five years ahead)")
	fs.StringVar(&c.archiveBy, "archive-by", "06-30", "archiving deadline (MM-DD) in the year after a case finished")
	fs.DurationVar(&c.auditCycle, "audit-cycle", 90*24*time.Hour, "every package is re-checked within this cycle")
	fs.Float64Var(&c.auditRate, "audit-mbps", 0, "throttle the background auditor to this many MiB/s (0: unthrottled)")
	fs.StringVar(&c.countyURL, "county-url", "", "the county archive (another dangan): transfers go there and it cosigns this archive's checkpoints")
	fs.StringVar(&c.countyTok, "county-token-file", "", "file holding the token the county archive issued to this archive")
	fs.StringVar(&c.logOrigin, "log-origin", "", "name of this archive's event log in its checkpoints (default: dangan/ and the root certificate's fingerprint)")
	fs.StringVar(&c.s3.Endpoint, "s3-endpoint", "", "MinIO (S3) endpoint host:port; empty: objects on the local disk under --data")
	fs.StringVar(&c.s3.Bucket, "s3-bucket", "dangan", "bucket (created with object lock when missing)")
	fs.BoolVar(&c.s3.TLS, "s3-tls", false, "use HTTPS to reach the S3 endpoint")
	fs.StringVar(&c.converters, "converters", "auto", "auto: use LibreOffice and Ghostscript when installed; off: never (the format policy then falls back or refuses)")
	fs.StringVar(&c.formatPolicy, "format-policy", "", "a format policy file (JSON, as printed by 'dangan formats --json') whose rules go before the shipped ones")
	fs.StringVar(&c.redactionPolicy, "redaction-policy", "", "a redaction policy file (JSON, like redact/policy.json): what copies opened to the public leave out")
	fs.IntVar(&c.openAfterYrs, "open-after-years", 25, "the closed period: years after a case finished before its record may be opened to the public")
	fs.IntVar(&c.officeWorkers, "office-workers", 0, "concurrent LibreOffice conversions (default: the CPUs)")
	fs.DurationVar(&c.convertTimeout, "convert-timeout", 60*time.Second, "longest one Office conversion may take; Ghostscript gets twice that")
	fs.StringVar(&c.trustDir, "trust-dir", "", "further trust anchors for documents signed elsewhere (a provincial CA, the tax authority, a bank): a PEM bundle, or a directory of .pem/.crt/.cer files")
	fs.StringVar(&c.verifyURL, "verify-url", "", "the public verification page (https://…/verify) printed in certificates' QR codes; empty: the QR code holds the identifier")
	fs.StringVar(&c.s3CredFile, "s3-credentials", "", "file with access_key=... and secret_key=... lines (default: DANGAN_S3_ACCESS_KEY and DANGAN_S3_SECRET_KEY)")
}

func (c *commonFlags) open() (*archive.Archive, error) {
	if c.converters != "auto" && c.converters != "off" {
		return nil, fmt.Errorf("--converters %q: auto or off", c.converters)
	}
	cfg := archive.Config{DataDir: c.data, ArchiveName: c.archiveName, TSAURL: c.tsaURL, VerifyURL: c.verifyURL, TrustDir: c.trustDir,
		NoConverters: c.converters == "off", FormatPolicy: c.formatPolicy, RedactionPolicy: c.redactionPolicy, OpenAfterYears: c.openAfterYrs, OfficeWorkers: c.officeWorkers, ConvertTimeout: c.convertTimeout,
		KeyPassword: []byte(os.Getenv("DANGAN_KEY_PASSWORD")), Logger: logger(c.logFormat, c.logLevel), MaxIngests: c.maxIngests,
		SkipReconcile: c.quietReconcile, TransferYears: c.transferYrs, KeepYears: c.keepYrs, LogOrigin: c.logOrigin,
		ArchiveBy: c.archiveBy, AuditCycle: c.auditCycle, AuditRate: int64(c.auditRate * (1 << 20))}
	if c.countyURL != "" {
		tok, err := os.ReadFile(c.countyTok)
		if err != nil {
			return nil, fmt.Errorf("--county-url needs --county-token-file: %w", err)
		}
		c.county = &archive.Peer{URL: c.countyURL, Token: strings.TrimSpace(string(tok))}
		cfg.County = c.county
	}
	if off := c.clockOffset; off != 0 {
		cfg.Now = func() time.Time { return time.Now().Add(off) }
	}
	if c.s3.Endpoint != "" {
		st, err := c.openS3()
		if err != nil {
			return nil, err
		}
		cfg.Store = st
	}
	return archive.Open(cfg)
}

// openS3 connects to the configured MinIO, reading credentials from the file or environment.
func (c *commonFlags) openS3() (*storage.S3, error) {
	cfg := c.s3
	cfg.AccessKey, cfg.SecretKey = os.Getenv("DANGAN_S3_ACCESS_KEY"), os.Getenv("DANGAN_S3_SECRET_KEY")
	if c.s3CredFile != "" {
		data, err := os.ReadFile(c.s3CredFile)
		if err != nil {
			return nil, fmt.Errorf("S3 credentials: %w", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
			switch strings.TrimSpace(k) {
			case "access_key":
				cfg.AccessKey = strings.TrimSpace(v)
			case "secret_key":
				cfg.SecretKey = strings.TrimSpace(v)
			}
		}
	}
	if cfg.AccessKey == "" || cfg.SecretKey == "" {
		return nil, errors.New("S3 credentials missing: set DANGAN_S3_ACCESS_KEY and DANGAN_S3_SECRET_KEY or --s3-credentials FILE")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return storage.OpenS3(ctx, cfg)
}

// ensureAdminToken writes an admin token to DIR/admin-token when the archive is new.
func ensureAdminToken(a *archive.Archive, dir string) (string, error) {
	path := filepath.Join(dir, "admin-token")
	if !a.Created {
		return "", nil
	}
	tok, err := a.CreateToken(archive.RoleAdmin, "", "created on first start")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return path, nil
}

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	addr := fs.String("addr", "127.0.0.1:8480", "listen address")
	maxBody := fs.Int64("max-body", 2<<30, "largest request body in bytes")
	debugAddr := fs.String("debug-addr", "", "serve Go profiling (/debug/pprof/) on this address; keep it on loopback")
	witnessEvery := fs.Duration("witness-interval", 10*time.Minute, "how often checkpoints are offered to the county archive for cosigning")
	inspectEvery := fs.Duration("inspection-every", 0, "with --county-url: make each department's compliance report (检查评估) and send it to the county archive once in this period, e.g. 8760h (0: only when asked)")
	publicRate := fs.Float64("public-rate", 20, "requests a second each client address may make to the public endpoints (verification, certificate status, TSA, log proofs); negative: no limit")
	publicBurst := fs.Int("public-burst", 0, "burst of public requests per address (default: twice --public-rate)")
	clientIPHeader := fs.String("client-ip-header", "", "header a trusted reverse proxy sets to the client's address (e.g. X-Real-IP), for the rate limit")
	fs.Parse(args)
	if *inspectEvery > 0 && c.countyURL == "" {
		return errors.New("--inspection-every sends the reports to the county archive: it needs --county-url")
	}
	log := logger(c.logFormat, c.logLevel)
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	if p, err := ensureAdminToken(a, c.data); err != nil {
		return err
	} else if p != "" {
		log.Info("new archive: created a development PKI and an admin token", "admin_token_file", p, "trust_roots", "GET /api/v1/trust")
	}
	if p, err := a.EnsureAdminAccount(); err != nil {
		return err
	} else if p != "" {
		log.Info("created the console account admin; its password is in the file", "admin_password_file", p, "console", "/console/")
	}
	if *debugAddr != "" {
		go func() {
			log.Info("profiling enabled", "addr", *debugAddr)
			if err := http.ListenAndServe(*debugAddr, nil); err != nil { // net/http/pprof registers on the default mux
				log.Error("profiling listener", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: api.New(a, api.Options{MaxBody: *maxBody, Logger: log,
		PublicRate: *publicRate, PublicBurst: *publicBurst, ClientIPHeader: *clientIPHeader}), ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("dangan serving", "addr", ln.Addr().String(), "data", c.data, "log_origin", a.Log().Origin())
	if c.county != nil {
		go a.WitnessEvery(ctx, c.county, *witnessEvery)
		if *inspectEvery > 0 {
			go a.InspectEvery(ctx, *inspectEvery)
		}
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdInit(args []string) error {
	fs := flag.NewFlagSet("init", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	fs.Parse(args)
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	p, err := ensureAdminToken(a, c.data)
	if err != nil {
		return err
	}
	if p == "" {
		fmt.Printf("%s already holds an archive; nothing changed\n", c.data)
		return nil
	}
	fmt.Printf("created archive in %s\n  development PKI: %s\n  admin token:     %s\n", c.data, filepath.Join(c.data, "pki"), p)
	return nil
}

// cmdIndex is "dangan index rebuild": it moves the index aside and rebuilds it from the
// object store alone, keeping the API tokens of the old index when it can still be read.
func cmdIndex(args []string) error {
	usage := errors.New("usage: dangan index rebuild | reconcile [--full] | search  --data DIR [--s3-endpoint ...]")
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "reconcile":
		return cmdIndexReconcile(args[1:])
	case "search":
		return cmdIndexSearch(args[1:])
	case "rebuild":
	default:
		return usage
	}
	fs := flag.NewFlagSet("index rebuild", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	fs.Parse(args[1:])
	// The search index is derived from the index: it is rebuilt with it.
	if dir := filepath.Join(c.data, "search"); statOK(dir) {
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove the search index: %w", err)
		}
	}
	path := filepath.Join(c.data, "index.db")
	old := path + ".before-rebuild-" + time.Now().UTC().Format("20060102T150405")
	tokens := map[string]index.Token{}
	if _, err := os.Stat(path); err == nil {
		if err := os.Rename(path, old); err != nil {
			return fmt.Errorf("move the index aside (is 'dangan serve' running?): %w", err)
		}
		if db, err := index.Open(old); err == nil {
			db.ForEachToken(func(h string, t index.Token) error { tokens[h] = t; return nil })
			db.Close()
		} else {
			fmt.Fprintf(os.Stderr, "the old index does not open (%v): API tokens must be created again\n", err)
		}
		fmt.Fprintf(os.Stderr, "the old index is kept as %s\n", old)
	}
	// The event log's database is rebuilt too: it replays every bundle from storage.
	if logDB := filepath.Join(c.data, "log.db"); statOK(logDB) {
		if err := os.Rename(logDB, logDB+".before-rebuild-"+time.Now().UTC().Format("20060102T150405")); err != nil {
			return fmt.Errorf("move the event log database aside: %w", err)
		}
	}
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return err
	}
	defer a.Close()
	start := time.Now()
	rep, err := a.Reconcile(context.Background(), func(done, total int) {
		if done%100 == 0 || done == total {
			fmt.Fprintf(os.Stderr, "\rrebuild: %d/%d packages", done, total)
		}
	})
	if err != nil {
		return err
	}
	for h, t := range tokens {
		if err := a.Index().PutToken(h, t); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "\n")
	fmt.Printf("rebuilt the index from %d package objects and %d events in %.1fs: %d indexed, %d not adoptable, %d tokens kept\n",
		rep.ObjectCount, a.Log().Size(), time.Since(start).Seconds(), len(rep.Adopted), len(rep.MovedAside), len(tokens))
	if err := waitSearch(a); err != nil {
		return err
	}
	if len(rep.MovedAside) > 0 {
		return fmt.Errorf("%d objects could not be adopted (see the log; they are under orphans/)", len(rep.MovedAside))
	}
	return nil
}

func cmdToken(args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: dangan token create [--data DIR] --role ROLE [--org USCC]")
	}
	fs := flag.NewFlagSet("token create", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	role := fs.String("role", "", "department, issuer, archive, auditor or admin")
	org := fs.String("org", "", "the department's USCC (roles department and issuer)")
	note := fs.String("note", "", "who the token is for (archivists: their name, recorded with their decisions)")
	fs.Parse(args[1:])
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (is 'dangan serve' running on %s? stop it, or use POST /api/v1/tokens)", err, c.data)
	}
	defer a.Close()
	tok, err := a.CreateToken(*role, *org, *note)
	if err != nil {
		return err
	}
	fmt.Println(tok)
	return nil
}

// cmdIndexReconcile is "dangan index reconcile [--full]": the objects written since the
// last start-up (or, with --full, every object and every index entry) against the index.
func cmdIndexReconcile(args []string) error {
	fs := flag.NewFlagSet("index reconcile", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	full := fs.Bool("full", false, "compare every object with the index, and every index entry with its object (data loss), and restore tombstones and certificates")
	fs.Parse(args)
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (is 'dangan serve' running on %s?)", err, c.data)
	}
	defer a.Close()
	progress := func(done, total int) {
		fmt.Fprintf(os.Stderr, "\rreconcile: %d/%d objects adopted or set aside", done, total)
	}
	start := time.Now()
	var rep *archive.ReconcileReport
	if *full {
		rep, err = a.Reconcile(context.Background(), progress)
	} else {
		rep, err = a.ReconcileAtStart(context.Background())
	}
	if err != nil {
		return err
	}
	fmt.Printf("reconciled in %.1fs: %d objects looked at, %d adopted, %d set aside, %d index entries without their object\n",
		time.Since(start).Seconds(), rep.ObjectCount, len(rep.Adopted), len(rep.MovedAside), len(rep.DataLoss))
	if len(rep.DataLoss) > 0 {
		return fmt.Errorf("DATA LOSS: %d packages' objects are missing (see the log)", len(rep.DataLoss))
	}
	return nil
}

// cmdIndexSearch is "dangan index search": it rebuilds the full-text search index from the
// index, with progress.
func cmdIndexSearch(args []string) error {
	fs := flag.NewFlagSet("index search", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	fs.Parse(args)
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (is 'dangan serve' running on %s?)", err, c.data)
	}
	defer a.Close()
	n, err := a.RebuildSearch(context.Background())
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "search index: %d packages queued\n", n)
	return waitSearch(a)
}

// waitSearch waits, with progress, until the search index has indexed the queue.
func waitSearch(a *archive.Archive) error {
	start, last := time.Now(), time.Time{}
	for ; ; time.Sleep(200 * time.Millisecond) {
		ready, queued, indexed := a.SearchStatus()
		if ready && queued == 0 {
			fmt.Fprintf(os.Stderr, "\rsearch index: %d cases indexed in %.1fs\n", indexed, time.Since(start).Seconds())
			return nil
		}
		if time.Since(last) > time.Second {
			fmt.Fprintf(os.Stderr, "\rsearch index: %d indexed, %d to go", indexed, queued)
			last = time.Now()
		}
	}
}

func statOK(path string) bool { _, err := os.Stat(path); return err == nil }
