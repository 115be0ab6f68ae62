package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dangan-archive/dangan/archive"
)

// sessionCookie holds the session id; only its hash is kept on the server.
const sessionCookie = "dangan_session"

type whoKey struct{}

type signedInAs struct {
	Who     archive.Principal
	Account archive.Account
}

// signedIn runs next for a request with a live session; others go to the login page.
func (c *console) signedIn(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		if err != nil {
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		who, acc, err := c.a.Session(ck.Value)
		if err != nil {
			clearSession(w, r)
			http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, signedInAs{Who: who, Account: acc})))
	})
}

func current(r *http.Request) (signedInAs, bool) {
	s, ok := r.Context().Value(whoKey{}).(signedInAs)
	return s, ok
}

func setSession(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: int((12 * time.Hour).Seconds())})
}

func clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Prefix, HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", page{Title: "login"})
}

// login checks the form's user name and password; the answer to a wrong one says only
// that the two do not match, or that the account is locked for a while.
func (c *console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	name, password := r.PostFormValue("name"), r.PostFormValue("password")
	id, _, err := c.a.Login(name, password, c.clientAddr(r))
	if err != nil {
		msg, status := "loginFailed", http.StatusUnauthorized
		var te *archive.ThrottledError
		switch {
		case errors.As(err, &te):
			msg, status = "loginThrottled", http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfter()))
		case errors.Is(err, archive.ErrLocked):
			msg, status = "loginLocked", http.StatusTooManyRequests
		case !errors.Is(err, archive.ErrUnauthorized):
			msg, status = "unavailable", http.StatusServiceUnavailable
			c.log.Error("console login", "err", err)
		}
		c.render(w, r, status, "login", page{Title: "login", Error: msg, Data: name})
		return
	}
	setSession(w, r, id)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		if err := c.a.Logout(ck.Value); err != nil {
			c.log.Error("console logout", "err", err)
		}
	}
	clearSession(w, r)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
