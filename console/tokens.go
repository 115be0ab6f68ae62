package console

import (
	"errors"
	"net/http"
	"strings"

	"github.com/dangan-archive/dangan/archive"
)

// tokensData is 系统管理 · 令牌与信任根: the API tokens (never the tokens themselves), the form
// that makes one (shown once, on the answer to the form, never in a URL), and the trust
// roots that packages and certificates are checked against.
type tokensData struct {
	Tokens []archive.TokenInfo
	Roles  []string
	New    string // the token just made, shown this once
	Trust  string
}

func (c *console) tokensPage(w http.ResponseWriter, r *http.Request, status int, d tokensData, msg string) {
	s, _ := current(r)
	list, err := c.a.Tokens(s.Who)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Tokens, d.Roles, d.Trust = list, roles, string(c.a.TrustPEM())
	c.render(w, r, status, "tokens", page{Title: "tokens", Error: msg, Data: d})
}

func (c *console) tokens(w http.ResponseWriter, r *http.Request) {
	c.tokensPage(w, r, http.StatusOK, tokensData{}, "")
}

func (c *console) createToken(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	if s.Who.Role != archive.RoleAdmin {
		c.fail(w, r, archive.ErrForbidden)
		return
	}
	tok, err := c.a.CreateToken(r.PostFormValue("role"), strings.TrimSpace(r.PostFormValue("org")), strings.TrimSpace(r.PostFormValue("note")))
	if err != nil {
		if errors.Is(err, archive.ErrInvalidCase) {
			c.tokensPage(w, r, http.StatusUnprocessableEntity, tokensData{}, "tokenBad")
			return
		}
		c.fail(w, r, err)
		return
	}
	c.log.Info("token created in the console", "role", r.PostFormValue("role"), "by", s.Who.Person())
	c.tokensPage(w, r, http.StatusOK, tokensData{New: tok}, "")
}
