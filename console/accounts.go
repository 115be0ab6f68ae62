package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/dangan-archive/dangan/archive"
)

// accountsData is 系统管理 · 账户: the accounts, and the form that makes one.
type accountsData struct {
	Accounts []archive.Account
	Roles    []string
	Form     archive.Account
	Field    string // the form field an error is about
	Made     string // the account just made
}

var roles = []string{archive.RoleDepartment, archive.RoleArchive, archive.RoleAuditor, archive.RoleIssuer, archive.RoleAdmin}

func (c *console) accountsPage(w http.ResponseWriter, r *http.Request, status int, d accountsData, msg string) {
	s, _ := current(r)
	list, err := c.a.Accounts(s.Who)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Accounts, d.Roles = list, roles
	c.render(w, r, status, "accounts", page{Title: "accounts", Error: msg, Data: d})
}

func (c *console) accounts(w http.ResponseWriter, r *http.Request) {
	c.accountsPage(w, r, http.StatusOK, accountsData{Made: r.URL.Query().Get("made")}, "")
}

// createAccount makes an account from the form; a refused one shows the form again with
// what was wrong, and nothing is made.
func (c *console) createAccount(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	acc := archive.Account{Name: strings.TrimSpace(r.PostFormValue("name")), Display: strings.TrimSpace(r.PostFormValue("display")),
		Role: r.PostFormValue("role"), Department: strings.TrimSpace(r.PostFormValue("department"))}
	_, err := c.a.CreateAccount(s.Who, acc, r.PostFormValue("password"))
	if err != nil {
		d := accountsData{Form: acc}
		switch {
		case errors.Is(err, archive.ErrInvalidCase):
			d.Field = fieldOf(err)
			c.accountsPage(w, r, http.StatusUnprocessableEntity, d, "accountBad."+d.Field)
		case errors.Is(err, archive.ErrState):
			d.Field = "name"
			c.accountsPage(w, r, http.StatusConflict, d, "accountExists")
		default:
			c.fail(w, r, err)
		}
		return
	}
	http.Redirect(w, r, Prefix+"admin/accounts?made="+url.QueryEscape(acc.Name), http.StatusSeeOther)
}

func (c *console) removeAccount(w http.ResponseWriter, r *http.Request) {
	s, _ := current(r)
	if err := c.a.RemoveAccount(s.Who, r.PathValue("name")); err != nil {
		if errors.Is(err, archive.ErrState) {
			c.accountsPage(w, r, http.StatusConflict, accountsData{}, "accountSelf")
			return
		}
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"admin/accounts", http.StatusSeeOther)
}
