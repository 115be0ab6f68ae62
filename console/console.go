// Package console is the web workplace of dangan's people: archivists and clerks of the
// departments, the county archive's staff, issuers, auditors and the admin. Its pages are
// server-rendered html/template files embedded in the binary, in Chinese first (English
// with ?lang=en), usable without JavaScript, under /console/.
//
// People log in to accounts (archive.Login) and hold a session in an HttpOnly,
// SameSite=Strict cookie; every page sees what the account's role and department may see,
// as the API does. Requests from other origins that change anything are refused
// (net/http's CrossOriginProtection), and every page carries a strict
// Content-Security-Policy with no inline script.
//
//	mux.Handle("/console/", console.New(a, console.Options{}))
package console

import (
	"embed"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS // the styles, the viewer's script, and pdf.js (scripts/vendor-pdfjs.sh)

// Options configure the console.
type Options struct {
	Logger *slog.Logger
	// ClientIPHeader names the header a trusted reverse proxy puts the client's address in
	// (as in api.Options); empty: the peer address.
	ClientIPHeader string
}

// Prefix is where the console is served.
const Prefix = "/console/"

type console struct {
	a     Archive
	opts  Options
	log   *slog.Logger
	pages map[string]map[string]*template.Template // language → page
}

// New returns the console's handler for the paths under Prefix.
func New(a Archive, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &console{a: a, opts: opts, log: opts.Logger, pages: parsePages()}
	mux := http.NewServeMux()
	mux.Handle("GET "+Prefix+"static/", http.StripPrefix(Prefix, http.FileServerFS(staticFiles)))
	mux.HandleFunc("GET "+Prefix+"login", c.loginPage)
	mux.HandleFunc("POST "+Prefix+"login", c.login)
	mux.HandleFunc("POST "+Prefix+"logout", c.logout)
	mux.Handle("GET "+Prefix+"{$}", c.signedIn(c.home))
	mux.Handle("GET "+Prefix+"search", c.signedIn(c.search))
	mux.Handle("GET "+Prefix+"packages/{id}", c.signedIn(c.record))
	mux.Handle("GET "+Prefix+"packages/{id}/documents/{n}/{k}", c.signedIn(c.document))
	mux.Handle("GET "+Prefix+"packages/{id}/eep", c.signedIn(c.eep))
	mux.Handle("GET "+Prefix+"packages/{id}/metadata", c.signedIn(c.metadata))
	mux.Handle("GET "+Prefix+"packages/{id}/view/{n}/{k}", c.signedIn(c.viewer))
	mux.Handle("POST "+Prefix+"packages/{id}/verify", c.signedIn(c.verifyNow))
	mux.Handle("GET "+Prefix+"disposal", c.signedIn(c.disposal))
	mux.Handle("POST "+Prefix+"disposal/decide", c.signedIn(c.decide))
	mux.Handle("POST "+Prefix+"disposal/{id}/approve", c.signedIn(c.approve))
	mux.Handle("GET "+Prefix+"disposal/register/{format}", c.signedIn(c.register))
	mux.Handle("GET "+Prefix+"inspection", c.signedIn(c.inspection))
	mux.Handle("POST "+Prefix+"inspection", c.signedIn(c.makeInspection))
	mux.Handle("GET "+Prefix+"opening", c.signedIn(c.opening))
	mux.Handle("POST "+Prefix+"opening", c.signedIn(c.proposeOpening))
	mux.Handle("POST "+Prefix+"opening/{id}/approve", c.signedIn(c.approveOpening))
	mux.Handle("POST "+Prefix+"opening/{id}/close", c.signedIn(c.closeOpening))
	mux.Handle("GET "+Prefix+"use", c.signedIn(c.use))
	mux.Handle("POST "+Prefix+"use", c.signedIn(c.requestUse))
	mux.Handle("POST "+Prefix+"use/{id}/decide", c.signedIn(c.decideUse))
	mux.Handle("POST "+Prefix+"use/{id}/revoke", c.signedIn(c.revokeUse))
	mux.Handle("GET "+Prefix+"audit", c.signedIn(c.audit))
	mux.Handle("POST "+Prefix+"audit/start", c.signedIn(c.startAudit))
	mux.Handle("GET "+Prefix+"migration", c.signedIn(c.migration))
	mux.Handle("POST "+Prefix+"migration/start", c.signedIn(c.startMigration))
	mux.Handle("GET "+Prefix+"log", c.signedIn(c.logPage))
	mux.Handle("GET "+Prefix+"transfers", c.signedIn(c.transfers))
	mux.Handle("POST "+Prefix+"transfers", c.signedIn(c.createTransfer))
	mux.Handle("POST "+Prefix+"transfers/{batch}/retry", c.signedIn(c.retryTransfer))
	mux.Handle("POST "+Prefix+"transfers/deferrals", c.signedIn(c.requestDeferral))
	mux.Handle("POST "+Prefix+"transfers/deferrals/{id}/check", c.signedIn(c.checkDeferral))
	mux.Handle("POST "+Prefix+"deferral-requests/{id}/decide", c.signedIn(c.decideDeferral))
	mux.Handle("GET "+Prefix+"certificates", c.signedIn(c.certificates))
	mux.Handle("POST "+Prefix+"certificates", c.signedIn(c.issueCertificate))
	mux.Handle("POST "+Prefix+"certificates/{id}/revoke", c.signedIn(c.revokeCertificate))
	mux.Handle("GET "+Prefix+"certificates/{id}/{format}", c.signedIn(c.certificateFile))
	mux.Handle("GET "+Prefix+"admin/tokens", c.signedIn(c.tokens))
	mux.Handle("POST "+Prefix+"admin/tokens", c.signedIn(c.createToken))
	mux.Handle("GET "+Prefix+"admin/accounts", c.signedIn(c.accounts))
	mux.Handle("GET "+Prefix+"admin/formats", c.signedIn(c.formats))
	mux.Handle("POST "+Prefix+"admin/accounts", c.signedIn(c.createAccount))
	mux.Handle("POST "+Prefix+"admin/accounts/{name}/remove", c.signedIn(c.removeAccount))
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", page{Title: "notFound", Data: "notFound"})
	})
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders are on every console answer: scripts, styles and images only from the
// console itself, no framing, no sniffing, no referrer to other sites.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"font-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the caller's address, for the login log.
func (c *console) clientAddr(r *http.Request) string {
	if c.opts.ClientIPHeader != "" {
		if v := strings.TrimSpace(r.Header.Get(c.opts.ClientIPHeader)); v != "" {
			return v
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
