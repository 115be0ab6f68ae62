// Package api is dangan's HTTP interface: the REST API of DESIGN.md, the built-in TSA,
// health, readiness and Prometheus metrics. Errors are RFC 9457 problem+json.
//
//	a, _ := archive.Open(archive.Config{DataDir: dir})
//	srv := &http.Server{Addr: ":8480", Handler: api.New(a, api.Options{})}
//	srv.ListenAndServe()
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dangan-archive/dangan/archive"
	"github.com/dangan-archive/dangan/console"
	"github.com/dangan-archive/dangan/signing/tlsconf"
)

// Options configure the HTTP interface.
type Options struct {
	MaxBody   int64 // largest request body; default 2 GiB
	MaxVerify int64 // largest package accepted by the public verifier; default 256 MiB
	Logger    *slog.Logger
	// PublicRate limits each client address on the public endpoints to this many requests
	// a second (default 20), in bursts of PublicBurst (default 2 × PublicRate); a
	// negative rate turns the limit off.
	PublicRate  float64
	PublicBurst int
	// ClientIPHeader names the header a trusted reverse proxy puts the client's address in
	// (X-Real-IP, say); empty: the peer address, so behind a proxy all clients share one.
	ClientIPHeader string
}

type server struct {
	a       *archive.Archive
	opts    Options
	log     *slog.Logger
	metrics *metrics
	limiter *limiter // nil: no rate limit
	// verifySlots bounds concurrent file verifications held in memory
	verifySlots chan struct{}
}

type ctxKey int

const principalKey ctxKey = 1

// New returns the HTTP handler.
func New(a *archive.Archive, opts Options) http.Handler {
	if opts.MaxBody == 0 {
		opts.MaxBody = 2 << 30
	}
	if opts.MaxVerify == 0 {
		opts.MaxVerify = 256 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PublicRate == 0 {
		opts.PublicRate = 20
	}
	if opts.PublicBurst == 0 {
		opts.PublicBurst = int(2 * opts.PublicRate)
	}
	s := &server{a: a, opts: opts, log: opts.Logger, metrics: newMetrics(), verifySlots: make(chan struct{}, 32)}
	if opts.PublicRate > 0 {
		s.limiter = newLimiter(opts.PublicRate, opts.PublicBurst, opts.ClientIPHeader)
	}
	s.metrics.reg.MustRegister(logMetrics(a)...)
	s.metrics.reg.MustRegister(auditMetrics(a)...)
	s.metrics.reg.MustRegister(newStatisticsCollector(a),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "dangan_object_tamperings_total",
			Help: "Reads that found a newer version or a delete marker over an archived object (the archived version was served)."},
			func() float64 { return float64(archive.Tamperings()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dangan_search_queued", Help: "Packages waiting for the search indexer."},
			func() float64 { _, q, _ := a.SearchStatus(); return float64(q) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dangan_search_ready", Help: "1 when the search index answers, 0 while it is rebuilt."},
			func() float64 {
				if ready, _, _ := a.SearchStatus(); ready {
					return 1
				}
				return 0
			}))
	return s.routes()
}

func (s *server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.instrument, hsts)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	r.With(s.limit).Post("/tsa", s.tsa)
	cons := console.New(s.a, console.Options{Logger: s.log, ClientIPHeader: s.opts.ClientIPHeader})
	r.Handle(console.Prefix+"*", cons)
	r.Get("/console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, console.Prefix, http.StatusMovedPermanently)
	})
	r.With(s.limit).Get("/verify", s.verifyPage)
	r.With(s.limit).Post("/verify", s.verifyPage)
	r.With(s.limit).Get("/open", s.openPages)
	r.With(s.limit).Get("/open/{id}", s.openPages)
	r.Route("/api/v1", func(r chi.Router) {
		r.Get("/openapi.json", s.openapi)
		r.Group(func(r chi.Router) {
			r.Use(s.limit)
			r.Get("/trust", s.trust)
			r.Post("/verify", s.verify)
			r.Get("/log/checkpoint", s.logCheckpoint)
			r.Get("/log/proof/inclusion", s.logInclusion)
			r.Get("/log/proof/consistency", s.logConsistency)
			r.Get("/certificates/revocations", s.certRevocations)
			r.Get("/certificates/{identifier}", s.certStatus)
			r.Get("/open", s.searchOpen)
			r.Get("/open/{id}", s.publicCopy)
		})
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.Post("/tokens", s.createToken)
			r.Get("/tokens", s.listTokens)
			r.Post("/tokens/{id}/revoke", s.revokeToken)
			r.Post("/cases", s.ingest)
			r.Get("/packages", s.listPackages)
			r.Get("/packages/{id}", s.getPackage)
			r.Get("/packages/{id}/eep", s.getEEP)
			r.Get("/packages/{id}/documents/{n}", s.getDocument)
			r.Get("/packages/{id}/evidence", s.getEvidence)
			r.Put("/packages/{id}/retention", s.putRetention)
			r.Put("/packages/{id}/legal-hold", s.putLegalHold)
			r.Delete("/packages/{id}", s.deletePackage)
			r.Get("/reads", s.reads)
			r.Get("/schedule", s.schedule)
			r.Get("/statistics", s.statistics)
			r.Get("/search", s.searchGET)
			r.Post("/search", s.searchPOST)
			r.Post("/transfers", s.createTransfer)
			r.Get("/transfers", s.listTransfers)
			r.Get("/transfers/{batch}", s.getTransfer)
			r.Post("/transfers/{batch}/retry", s.retryTransfer)
			r.Post("/accessions", s.openAccession)
			r.Get("/accessions", s.listAccessions)
			r.Get("/accessions/{batch}", s.getAccession)
			r.Put("/accessions/{batch}/packages/{id}", s.receivePackage)
			r.Post("/accessions/{batch}/receipt", s.issueReceipt)
			r.Get("/disposals/candidates", s.disposalCandidates)
			r.Get("/disposals", s.listDisposals)
			r.Post("/disposals", s.decide)
			r.Post("/disposals/{id}/approve", s.approveDisposal)
			r.Get("/disposals/register", s.register)
			r.Post("/inspections", s.makeInspection)
			r.Get("/inspections", s.listInspections)
			r.Post("/inspection-reports", s.receiveInspection)
			r.Get("/inspection-reports", s.listReceivedReports)
			r.Get("/inspection-reports/{id}", s.getReceivedReport)
			r.Get("/backups", s.listBackups)
			r.Post("/deferrals", s.requestDeferral)
			r.Get("/deferrals", s.listDeferrals)
			r.Get("/deferrals/{id}", s.getDeferral)
			r.Post("/deferrals/{id}/check", s.checkDeferral)
			r.Post("/deferrals/{id}/decision", s.applyDeferral)
			r.Post("/deferral-requests", s.receiveDeferral)
			r.Get("/deferral-requests", s.listDeferralRequests)
			r.Get("/deferral-requests/{id}", s.getDeferralRequest)
			r.Post("/deferral-requests/{id}/decision", s.decideDeferral)
			r.Post("/openings", s.proposeOpening)
			r.Get("/openings", s.listOpenings)
			r.Post("/openings/{id}/approve", s.approveOpening)
			r.Post("/openings/close", s.closeOpening)
			r.Post("/use-requests", s.requestUse)
			r.Get("/use-requests", s.listUseRequests)
			r.Get("/use-requests/{id}", s.getUseRequest)
			r.Post("/use-requests/{id}/decision", s.decideUse)
			r.Post("/use-requests/{id}/revoke", s.revokeUse)
			r.Get("/audits", s.audits)
			r.Post("/audits/run", s.startAudit)
			r.Get("/audits/run", s.auditRun)
			r.Post("/migrations", s.startMigration)
			r.Get("/migrations/current", s.migrationRun)
			r.Get("/log/entries", s.logEntries)
			r.Post("/log/witness", s.logWitness)
			r.Get("/log/witnessed", s.logWitnessed)
			r.Post("/log/renew", s.logRenew)
			r.Post("/certificates", s.issueCert)
			r.Get("/certificates", s.listCerts)
			r.Put("/certificates/{identifier}", s.updateCert)
			r.Post("/certificates/{identifier}/revoke", s.revokeCert)
			r.Get("/certificates/{identifier}/entry", s.getCert)
			r.Get("/certificates/{identifier}/pdf", s.getCertFile("pdf"))
			r.Get("/certificates/{identifier}/ofd", s.getCertFile("ofd"))
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem(http.StatusNotFound, "not-found", "Not found", "no such endpoint: see /api/v1/openapi.json"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed", r.Method+" is not allowed here"))
	})
	return r
}

func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFor(r.Context(), s.log, err)
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dangan"`)
	}
	if te := (*archive.ThrottledError)(nil); errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfter()))
	}
	writeProblem(w, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			s.fail(w, r, archive.ErrUnauthorized)
			return
		}
		p, err := s.a.AuthenticateFrom(strings.TrimSpace(tok), clientPin(r), s.clientAddr(r))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p.Purpose = r.URL.Query().Get("purpose")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// hsts tells browsers that reached dangan over TLS to keep to it (a year).
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// clientPin is the pin of the verified client certificate the connection presented, or "".
func clientPin(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return tlsconf.Pin(r.TLS.PeerCertificates[0])
}

// clientAddr is the caller's address: a trusted proxy's header when configured, else the peer.
func (s *server) clientAddr(r *http.Request) string {
	if h := s.opts.ClientIPHeader; h != "" {
		if v := strings.TrimSpace(r.Header.Get(h)); v != "" {
			return v
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func principal(r *http.Request) archive.Principal {
	p, _ := r.Context().Value(principalKey).(archive.Principal)
	return p
}

func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeProblem(w, problem(http.StatusInternalServerError, "internal", "Internal error", "the error was logged"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(p []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	n, err := sw.ResponseWriter.Write(p)
	sw.bytes += int64(n)
	return n, err
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

func (s *server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(r.Method, route, strconv.Itoa(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(r.Method, route).Observe(d.Seconds())
		s.log.Info("http", "method", r.Method, "route", route, "status", sw.status, "bytes", sw.bytes, "ms", d.Milliseconds())
	})
}

type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	ingested  prometheus.Counter
	ingestedB prometheus.Counter
	verified  *prometheus.CounterVec
	limited   prometheus.Counter
	certs     *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dangan_http_requests_total", Help: "HTTP requests by method, route and status."}, []string{"method", "route", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dangan_http_request_duration_seconds", Help: "HTTP request latency.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"method", "route"})
	m.ingested = prometheus.NewCounter(prometheus.CounterOpts{Name: "dangan_packages_ingested_total", Help: "Packages created by ingest."})
	m.ingestedB = prometheus.NewCounter(prometheus.CounterOpts{Name: "dangan_package_bytes_ingested_total", Help: "Bytes of packages created by ingest."})
	m.verified = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dangan_verifications_total", Help: "Public verifications by what was verified (eep, pdf, ofd, identifier) and outcome."}, []string{"kind", "valid"})
	m.limited = prometheus.NewCounter(prometheus.CounterOpts{Name: "dangan_rate_limited_total", Help: "Public requests refused with 429."})
	m.certs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dangan_certificates_total", Help: "Certificate library changes by action (issued, updated, revoked) and status lookups."}, []string{"action"})
	m.reg.MustRegister(m.requests, m.duration, m.ingested, m.ingestedB, m.verified, m.limited, m.certs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.a.Ready(ctx); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
