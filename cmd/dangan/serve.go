package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
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
	"github.com/dangan-archive/dangan/signing/pkcs11"
	"github.com/dangan-archive/dangan/signing/tlsconf"
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
	countyRoot  string // the county archive's TLS root (PEM): its server certificate must chain to it
	countyCert  string // this archive's client certificate to the county archive, and its key
	countyKey   string
	county      *archive.Peer
	// quietReconcile skips the start-up reconciliation (the caller runs its own).
	quietReconcile  bool
	s3              storage.S3Config
	s3CredFile      string
	pkcs11          pkcs11.Config
	pkcs11PIN       string
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
	fs.StringVar(&c.countyRoot, "county-tls-root", "", "with an https --county-url: the county archive's TLS root (PEM, its pki/tls-root.pem); the system's roots are not used")
	fs.StringVar(&c.countyCert, "county-client-cert", "", "client certificate (PEM) presented to the county archive (default: pki/tls-client.pem when the county's URL is https)")
	fs.StringVar(&c.countyKey, "county-client-key", "", "key of --county-client-cert (default: pki/tls-client.key)")
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
	fs.StringVar(&c.pkcs11.Module, "pkcs11-module", "", "a PKCS#11 library holding signing keys (labels dangan-archive, dangan-tsa, dangan-root); the others stay in pki/")
	fs.StringVar(&c.pkcs11.Token, "pkcs11-token", "", "the PKCS#11 token's label")
	fs.StringVar(&c.pkcs11PIN, "pkcs11-pin-file", "", "file holding the token's user PIN (default: DANGAN_PKCS11_PIN)")
	fs.UintVar(&c.pkcs11.SM2Mechanism, "pkcs11-sm2-mechanism", 0, "the device's vendor-defined mechanism number that signs an SM2 digest (SM2 keys need it)")
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
		if strings.HasPrefix(c.countyURL, "https://") {
			client, err := c.countyClient()
			if err != nil {
				return nil, err
			}
			c.county.Client = client
		}
		cfg.County = c.county
	}
	if c.pkcs11.Module != "" {
		pc := c.pkcs11
		pc.PIN = os.Getenv("DANGAN_PKCS11_PIN")
		if c.pkcs11PIN != "" {
			pin, err := os.ReadFile(c.pkcs11PIN)
			if err != nil {
				return nil, fmt.Errorf("--pkcs11-pin-file: %w", err)
			}
			pc.PIN = strings.TrimSpace(string(pin))
		}
		keys, err := pkcs11.Open(pc)
		if err != nil {
			return nil, err
		}
		cfg.Keys = keys
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

// countyClient is the HTTPS client to the county archive: its server certificate is
// checked against --county-tls-root only, and this archive's client certificate is
// presented (re-read on SIGHUP with the server's own).
func (c *commonFlags) countyClient() (*http.Client, error) {
	if c.countyRoot == "" {
		return nil, errors.New("an https --county-url needs --county-tls-root: the county archive's TLS root (its pki/tls-root.pem)")
	}
	roots, _, err := tlsconf.LoadPool(c.countyRoot)
	if err != nil {
		return nil, fmt.Errorf("--county-tls-root: %w", err)
	}
	dev := tlsconf.DevFiles(filepath.Join(c.data, "pki"))
	certPath, keyPath := c.countyCert, c.countyKey
	if certPath == "" {
		certPath, keyPath = dev.ClientCert, dev.ClientKey
	}
	var cert *tlsconf.Reloader
	if statOK(certPath) {
		if cert, err = tlsconf.NewReloader(certPath, keyPath); err != nil {
			return nil, fmt.Errorf("--county-client-cert: %w", err)
		}
		reloaders = append(reloaders, cert)
	} else if c.countyCert != "" {
		return nil, fmt.Errorf("--county-client-cert %s: %w", certPath, os.ErrNotExist)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsconf.Client(roots, cert)
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Timeout: time.Hour, Transport: tr}, nil
}

// reloaders are the certificates SIGHUP reads again.
var reloaders []*tlsconf.Reloader

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
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate (PEM, the chain after it); read again on SIGHUP")
	tlsKey := fs.String("tls-key", "", "the key of --tls-cert (PEM)")
	clientAuth := fs.String("tls-client-auth", "none", "client certificates: none, optional (verified when presented) or require (mutual TLS: departments' archives)")
	clientRoots := fs.String("tls-client-roots", "", "PEM roots client certificates must chain to (default: pki/tls-root.pem and the RSA/ECDSA roots of pki/extra-roots.pem)")
	insecure := fs.Bool("insecure-http", false, "allow plain HTTP on an address other than loopback (behind a TLS-terminating proxy)")
	fs.Parse(args)
	auth, err := tlsconf.ParseClientAuth(*clientAuth)
	if err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if *debugAddr != "" && !loopback(*debugAddr) {
		return fmt.Errorf("--debug-addr %s: the profiling listener speaks plain HTTP and serves the process's memory: keep it on loopback", *debugAddr)
	}
	if *tlsCert == "" {
		if auth != tlsconf.ClientAuthNone {
			return errors.New("--tls-client-auth needs TLS: give --tls-cert and --tls-key")
		}
		if !loopback(*addr) && !*insecure {
			return fmt.Errorf("refusing to serve plain HTTP on %s: tokens, passwords and records would cross the network in the clear. "+
				"Give --tls-cert and --tls-key ('dangan init --tls-hosts NAME,…' makes a development certificate in %s), "+
				"listen on 127.0.0.1, or say --insecure-http when a TLS proxy is in front", *addr, filepath.Join(c.data, "pki"))
		}
	}
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
	if a.Created {
		if _, err := tlsconf.EnsureDev(filepath.Join(c.data, "pki"), c.archiveName, nil); err != nil {
			return err
		}
	}
	srv := &http.Server{Handler: api.New(a, api.Options{MaxBody: *maxBody, Logger: log,
		PublicRate: *publicRate, PublicBurst: *publicBurst, ClientIPHeader: *clientIPHeader}), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if *tlsCert != "" {
		cert, err := tlsconf.NewReloader(*tlsCert, *tlsKey)
		if err != nil {
			return err
		}
		reloaders = append(reloaders, cert)
		var pool *x509.CertPool
		if auth != tlsconf.ClientAuthNone {
			if pool, err = clientRootPool(*clientRoots, filepath.Join(c.data, "pki")); err != nil {
				return err
			}
		}
		if srv.TLSConfig, err = tlsconf.Server(cert, auth, pool); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go reloadOnHangup(ctx, log)
	errc := make(chan error, 1)
	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("dangan serving", "addr", ln.Addr().String(), "scheme", scheme, "client_auth", string(auth), "data", c.data, "log_origin", a.Log().Origin())
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

// loopback reports whether addr listens on the loopback interface only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// clientRootPool is what client certificates are verified against: the file given, or the
// archive's own TLS root and the RSA/ECDSA roots of pki/extra-roots.pem.
func clientRootPool(file, pkiDir string) (*x509.CertPool, error) {
	if file != "" {
		pool, _, err := tlsconf.LoadPool(file)
		if err != nil {
			return nil, fmt.Errorf("--tls-client-roots: %w", err)
		}
		return pool, nil
	}
	files := []string{}
	for _, f := range []string{tlsconf.DevFiles(pkiDir).Root, filepath.Join(pkiDir, "extra-roots.pem")} {
		if statOK(f) {
			files = append(files, f)
		}
	}
	pool, n, err := tlsconf.LoadPool(files...)
	if err == nil && n == 0 {
		err = fmt.Errorf("no TLS roots in %s (tls-root.pem, extra-roots.pem) to verify client certificates against", pkiDir)
	}
	return pool, err
}

// reloadOnHangup reads the TLS certificates again on SIGHUP.
func reloadOnHangup(ctx context.Context, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		for _, r := range reloaders {
			if err := r.Reload(); err != nil {
				log.Error("TLS certificate not reloaded: the one loaded before is kept", "err", err)
				continue
			}
			log.Info("TLS certificate reloaded", "subject", r.Leaf().Subject.String(), "not_after", r.Leaf().NotAfter)
		}
	}
}

func cmdInit(args []string) error {
	fs := flag.NewFlagSet("init", flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	hosts := fs.String("tls-hosts", "", "host names and addresses (comma-separated) for the development TLS server certificate (default: localhost, 127.0.0.1, ::1); given again, the certificate is made anew")
	fs.Parse(args)
	var names []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	pkiDir := filepath.Join(c.data, "pki")
	// On an archive already made only the TLS files are made, which a running server takes
	// on SIGHUP: the archive is not opened.
	p := ""
	if !statOK(filepath.Join(pkiDir, "root.pem")) || !statOK(filepath.Join(c.data, "index.db")) {
		a, err := c.open()
		if err != nil {
			return err
		}
		p, err = ensureAdminToken(a, c.data)
		a.Close()
		if err != nil {
			return err
		}
	}
	if p == "" && len(names) == 0 && tlsconf.HasDev(pkiDir) {
		fmt.Printf("%s already holds an archive; nothing changed\n", c.data)
		return nil
	}
	dev, err := tlsconf.EnsureDev(pkiDir, c.archiveName, names)
	if err != nil {
		return err
	}
	if p != "" {
		fmt.Printf("created archive in %s\n  development PKI: %s\n  admin token:     %s\n", c.data, pkiDir, p)
	}
	fmt.Printf("  TLS root:        %s\n  TLS server:      %s (%s), key %s\n  TLS client:      %s, key %s\n",
		dev.Root, dev.ServerCert, strings.Join(dev.Hosts, ", "), dev.ServerKey, dev.ClientCert, dev.ClientKey)
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
	usage := errors.New("usage: dangan token create --role ROLE [--org USCC] [--note N] [--ttl 8760h] [--client-cert PEM] | list [--json] | revoke [--data DIR] ID")
	if len(args) == 0 {
		return usage
	}
	fs := flag.NewFlagSet("token "+args[0], flag.ExitOnError)
	var c commonFlags
	c.register(fs)
	var run func(a *archive.Archive) error
	admin := archive.Principal{Role: archive.RoleAdmin, TokenID: "cli", Name: "dangan token"}
	switch args[0] {
	case "create":
		role := fs.String("role", "", "department, issuer, archive, auditor or admin")
		org := fs.String("org", "", "the department's USCC (roles department and issuer)")
		note := fs.String("note", "", "who the token is for (archivists: their name, recorded with their decisions)")
		ttl := fs.Duration("ttl", archive.DefaultTokenTTL, "how long the token is valid")
		cert := fs.String("client-cert", "", "bind the token to this client certificate (PEM): it is then accepted only over mutual TLS with that certificate's key")
		run = func(a *archive.Archive) error {
			spec := archive.TokenSpec{Role: *role, Org: *org, Note: *note, TTL: *ttl}
			if *cert != "" {
				pin, err := tlsconf.PinOfFile(*cert)
				if err != nil {
					return fmt.Errorf("--client-cert: %w", err)
				}
				spec.Pin = pin
			}
			tok, info, err := a.IssueToken(spec)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "token %s (%s), valid until %s\n", info.ID, info.Role, info.Expires.Format(time.RFC3339))
			fmt.Println(tok)
			return nil
		}
	case "list":
		asJSON := fs.Bool("json", false, "print JSON")
		run = func(a *archive.Archive) error {
			list, err := a.Tokens(admin)
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(os.Stdout).Encode(list)
			}
			fmt.Printf("%-12s  %-8s  %-10s  %-18s  %-20s  %-20s  %s\n", "ID", "STATE", "ROLE", "ORG", "EXPIRES", "LAST USED", "NOTE")
			for _, t := range list {
				last := "never"
				if !t.LastUsed.IsZero() {
					last = t.LastUsed.Format(time.RFC3339)
				}
				exp := "never"
				if !t.Expires.IsZero() {
					exp = t.Expires.Format(time.RFC3339)
				}
				note := t.Note
				if t.Bound {
					note = "[mTLS] " + note
				}
				fmt.Printf("%-12s  %-8s  %-10s  %-18s  %-20s  %-20s  %s\n", t.ID, t.State, t.Role, t.Org, exp, last, note)
			}
			return nil
		}
	case "revoke":
		run = func(a *archive.Archive) error {
			if fs.NArg() != 1 {
				return usage
			}
			t, err := a.RevokeToken(admin, fs.Arg(0))
			if err != nil {
				return err
			}
			fmt.Printf("revoked token %s (%s %s) at %s\n", t.ID, t.Role, t.Org, t.Revoked.Format(time.RFC3339))
			return nil
		}
	default:
		return usage
	}
	fs.Parse(args[1:])
	c.quietReconcile = true
	a, err := c.open()
	if err != nil {
		return fmt.Errorf("%w (is 'dangan serve' running on %s? stop it, or use the API's /api/v1/tokens)", err, c.data)
	}
	defer a.Close()
	return run(a)
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
