package archive

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/dangan-archive/dangan/storage/index"
)

// Accounts are for people, as tokens are for machines: a user name, a display name, one of
// the tokens' roles, a department where the role has one, and a password kept as an
// Argon2id hash. A login opens a session kept in the index, so that logout and removing the
// account end it; a session ends after SessionIdle without use and SessionMax after login.
// Wrong passwords slow the answer and, LockAfter in a row, lock the account for LockFor.
// A session's principal names its account (TokenID "@name"), so decisions, reads and
// approvals record the person, and one person cannot approve their own decision from
// another session.

// ErrLocked is a login refused because the account is locked for a while.
var ErrLocked = fmt.Errorf("%w: the account is locked after repeated wrong passwords; try again later", ErrUnauthorized)

// Account is a person's account as callers see it (never with its password hash).
type Account struct {
	Name       string    `json:"name"`
	Display    string    `json:"display"`
	Role       string    `json:"role"`
	Department string    `json:"department,omitempty"` // USCC, for the department and issuer roles
	Created    time.Time `json:"created"`
}

type accountRecord struct {
	Account
	Hash        string    `json:"hash"` // $argon2id$v=19$m=…,t=…,p=…$salt$key
	Failures    int       `json:"failures,omitempty"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

type sessionRecord struct {
	Account string    `json:"account"`
	Created time.Time `json:"created"`
	Seen    time.Time `json:"seen"`
}

// PasswordCost are the Argon2id parameters new hashes get (by default OWASP's: 2 passes over
// 19 MiB, one lane); a hash keeps the parameters it was made with. At most two hashes are
// computed at once, so logins cannot hold more than twice that memory.
type PasswordCost struct {
	Time, MemoryKiB uint32
	Threads         uint8
}

var defaultPasswordCost = PasswordCost{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

// hashing bounds the Argon2id computations running at once.
var hashing = make(chan struct{}, 2)

func argon2id(password, salt []byte, c PasswordCost, n uint32) []byte {
	hashing <- struct{}{}
	defer func() { <-hashing }()
	return argon2.IDKey(password, salt, c.Time, c.MemoryKiB, c.Threads, n)
}

var userName = regexp.MustCompile(`^[a-z][a-z0-9._-]{1,31}$`)

func (a *Archive) passwordCost() PasswordCost {
	if a.cfg.PasswordCost.Time == 0 {
		return defaultPasswordCost
	}
	return a.cfg.PasswordCost
}

func hashPassword(password string, c PasswordCost) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2id([]byte(password), salt, c, 32)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, c.MemoryKiB, c.Time, c.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

func checkPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var c PasswordCost
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &c.MemoryKiB, &c.Time, &c.Threads); err != nil {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	if c.MemoryKiB > 1<<20 || c.Time > 16 || c.Threads == 0 {
		return false // not a cost dangan makes: refused rather than computed
	}
	got := argon2id([]byte(password), salt, c, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

func checkAccount(acc Account, password string) error {
	if !userName.MatchString(acc.Name) {
		return fieldErr("name", fmt.Errorf("%w: 2 to 32 of a-z, 0-9, '.', '_', '-', starting with a letter", ErrInvalidCase))
	}
	if strings.TrimSpace(acc.Display) == "" {
		return fieldErr("display", fmt.Errorf("%w: a display name is needed", ErrInvalidCase))
	}
	switch acc.Role {
	case RoleDepartment, RoleIssuer:
		if err := CheckUSCC(acc.Department); err != nil {
			return fieldErr("department", fmt.Errorf("%w: %v", ErrInvalidCase, err))
		}
	case RoleArchive, RoleAuditor, RoleAdmin:
		if acc.Department != "" {
			return fieldErr("department", fmt.Errorf("%w: only for the department and issuer roles", ErrInvalidCase))
		}
	default:
		return fieldErr("role", fmt.Errorf("%w: department, issuer, archive, auditor or admin", ErrInvalidCase))
	}
	if n := len([]rune(password)); n < 12 || n > 256 {
		return fieldErr("password", fmt.Errorf("%w: 12 to 256 characters", ErrInvalidCase))
	}
	return nil
}

// CreateAccount makes a person's account (admin only). A name already taken is ErrState.
func (a *Archive) CreateAccount(who Principal, acc Account, password string) (*Account, error) {
	if who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: accounts are made by the admin", ErrForbidden)
	}
	if err := checkAccount(acc, password); err != nil {
		return nil, err
	}
	hash, err := hashPassword(password, a.passwordCost())
	if err != nil {
		return nil, err
	}
	acc.Created = a.now().UTC()
	rec := accountRecord{Account: acc, Hash: hash}
	err = a.index.UpdateRecord(index.Accounts, acc.Name, func(old []byte) (any, error) {
		if old != nil {
			return nil, fieldErr("name", fmt.Errorf("%w: the account %s exists", ErrState, acc.Name))
		}
		return rec, nil
	})
	if err != nil {
		return nil, err
	}
	a.log.Info("account created", "account", acc.Name, "role", acc.Role, "department", acc.Department, "by", who.Person())
	return &acc, nil
}

// Accounts lists the accounts (admin only).
func (a *Archive) Accounts(who Principal) ([]Account, error) {
	if who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: accounts are listed for the admin", ErrForbidden)
	}
	var out []Account
	err := a.index.ForEachRecord(index.Accounts, "", "", func(_ string, data []byte) error {
		var r accountRecord
		if err := json.Unmarshal(data, &r); err != nil {
			return err
		}
		out = append(out, r.Account)
		return nil
	})
	return out, err
}

// RemoveAccount deletes an account and ends its sessions (admin only; not one's own).
func (a *Archive) RemoveAccount(who Principal, name string) error {
	if who.Role != RoleAdmin {
		return fmt.Errorf("%w: accounts are removed by the admin", ErrForbidden)
	}
	if who.TokenID == "@"+name {
		return fmt.Errorf("%w: an admin cannot remove their own account", ErrState)
	}
	var acc accountRecord
	if err := a.index.Record(index.Accounts, name, &acc); err != nil {
		return fmt.Errorf("account %s: %w", name, ErrNotFound)
	}
	recs := []index.Rec{{Bucket: index.Accounts, Key: name}}
	err := a.index.ForEachRecord(index.Sessions, "", "", func(key string, data []byte) error {
		var s sessionRecord
		if json.Unmarshal(data, &s) == nil && s.Account == name {
			recs = append(recs, index.Rec{Bucket: index.Sessions, Key: key})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.index.PutRecords(recs...); err != nil {
		return fmt.Errorf("remove account %s: %w", name, err)
	}
	a.log.Info("account removed", "account", name, "sessions_ended", len(recs)-1, "by", who.Person())
	return nil
}

// Login checks a password and opens a session; the session id goes to the person (in a
// cookie) and only its hash is kept. A wrong password is answered after a delay that grows
// with the failures in a row, and the LockAfter-th locks the account for LockFor. Every
// outcome is logged with the client's address, never with the password.
func (a *Archive) Login(name, password, addr string) (string, Principal, error) {
	if err := a.throttle.check(addr); err != nil {
		a.log.Warn("login refused", "account", name, "address", addr, "reason", "throttled")
		return "", Principal{}, err
	}
	id, p, err := a.login(name, password, addr)
	if errors.Is(err, ErrUnauthorized) {
		a.throttle.failed(addr)
	}
	return id, p, err
}

func (a *Archive) login(name, password, addr string) (string, Principal, error) {
	now := a.now().UTC()
	var rec accountRecord
	if err := a.index.Record(index.Accounts, name, &rec); err != nil {
		if !errors.Is(err, index.ErrNotFound) {
			return "", Principal{}, fmt.Errorf("%w: read account %s: %v", ErrUnavailable, name, err)
		}
		// The same work as a real check, so that a missing account answers as slowly.
		checkPassword(dummyHash(), password)
		a.log.Warn("login failed", "account", name, "address", addr, "reason", "no such account")
		return "", Principal{}, ErrUnauthorized
	}
	if now.Before(rec.LockedUntil) {
		a.log.Warn("login refused", "account", name, "address", addr, "reason", "locked", "until", rec.LockedUntil)
		return "", Principal{}, ErrLocked
	}
	if !checkPassword(rec.Hash, password) {
		var failures int
		var locked bool
		err := a.index.UpdateRecord(index.Accounts, name, func(old []byte) (any, error) {
			var r accountRecord
			if old == nil || json.Unmarshal(old, &r) != nil {
				return nil, nil
			}
			r.Failures++
			if r.Failures >= a.lockAfter() {
				r.LockedUntil, r.Failures, locked = now.Add(a.lockFor()), 0, true
			}
			failures = r.Failures
			return r, nil
		})
		if err != nil {
			// A failure that cannot be counted would escape the lock: refused as unavailable.
			a.log.Error("login failed and was not counted", "account", name, "address", addr, "err", err)
			return "", Principal{}, fmt.Errorf("%w: count the failed login: %v", ErrUnavailable, err)
		}
		a.log.Warn("login failed", "account", name, "address", addr, "reason", "wrong password", "failures", failures, "locked", locked)
		time.Sleep(min(time.Duration(failures)*250*time.Millisecond, 2*time.Second))
		if locked {
			return "", Principal{}, ErrLocked
		}
		return "", Principal{}, ErrUnauthorized
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Principal{}, fmt.Errorf("session randomness: %w", err)
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	rec.Failures, rec.LockedUntil = 0, time.Time{}
	if err := a.index.PutRecords(
		index.Rec{Bucket: index.Sessions, Key: a.tokenHash(id), Value: sessionRecord{Account: name, Created: now, Seen: now}},
		index.Rec{Bucket: index.Accounts, Key: name, Value: rec}); err != nil {
		return "", Principal{}, fmt.Errorf("open session: %w", err)
	}
	a.log.Info("login", "account", name, "role", rec.Role, "address", addr)
	return id, rec.principal(), nil
}

// dummyHash is checked against when the account does not exist.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword("not a password of anyone", defaultPasswordCost)
	return h
})

func (r accountRecord) principal() Principal {
	return Principal{Role: r.Role, Org: r.Department, TokenID: "@" + r.Name, Name: r.Display}
}

func (a *Archive) lockAfter() int {
	if a.cfg.LockAfter > 0 {
		return a.cfg.LockAfter
	}
	return 5
}

func (a *Archive) lockFor() time.Duration {
	if a.cfg.LockFor > 0 {
		return a.cfg.LockFor
	}
	return 15 * time.Minute
}

// Session maps a session id to its principal and account, and marks it used. An ended,
// idle or too old session is ErrUnauthorized (and is deleted).
func (a *Archive) Session(id string) (Principal, Account, error) {
	if id == "" {
		return Principal{}, Account{}, ErrUnauthorized
	}
	now := a.now().UTC()
	key := a.tokenHash(id)
	var s sessionRecord
	if err := a.index.Record(index.Sessions, key, &s); err != nil {
		return Principal{}, Account{}, ErrUnauthorized
	}
	idle, most := a.cfg.SessionIdle, a.cfg.SessionMax
	if idle <= 0 {
		idle = 30 * time.Minute
	}
	if most <= 0 {
		most = 12 * time.Hour
	}
	if now.Sub(s.Seen) > idle || now.Sub(s.Created) > most {
		if err := a.index.PutRecords(index.Rec{Bucket: index.Sessions, Key: key}); err != nil {
			a.log.Warn("an expired session was not deleted", "account", s.Account, "err", err)
		}
		a.log.Info("session expired", "account", s.Account)
		return Principal{}, Account{}, ErrUnauthorized
	}
	var rec accountRecord
	if err := a.index.Record(index.Accounts, s.Account, &rec); err != nil {
		return Principal{}, Account{}, ErrUnauthorized
	}
	if now.Sub(s.Seen) > time.Minute { // marked at most once a minute: no write per page
		s.Seen = now
		if err := a.index.BatchRecords(index.Rec{Bucket: index.Sessions, Key: key, Value: s}); err != nil {
			a.log.Warn("a session's last use was not recorded", "account", s.Account, "err", err)
		}
	}
	return rec.principal(), rec.Account, nil
}

// Logout ends a session.
func (a *Archive) Logout(id string) error {
	var s sessionRecord
	key := a.tokenHash(id)
	if err := a.index.Record(index.Sessions, key, &s); err != nil {
		return nil
	}
	if err := a.index.PutRecords(index.Rec{Bucket: index.Sessions, Key: key}); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	a.log.Info("logout", "account", s.Account)
	return nil
}

// EnsureAdminAccount makes the account admin with a random password written to
// DIR/admin-password (0600) when there is no account yet, and reports the file it wrote
// ("" when accounts exist).
func (a *Archive) EnsureAdminAccount() (string, error) {
	some := false
	err := a.index.ForEachRecord(index.Accounts, "", "", func(string, []byte) error {
		some = true
		return index.ErrStop
	})
	if err != nil || some {
		return "", err
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("password randomness: %w", err)
	}
	password := base64.RawURLEncoding.EncodeToString(raw)
	path := filepath.Join(a.cfg.DataDir, "admin-password")
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin password: %w", err)
	}
	if _, err := a.CreateAccount(Principal{Role: RoleAdmin}, Account{Name: "admin", Display: "管理员 (admin)", Role: RoleAdmin}, password); err != nil {
		if errors.Is(err, ErrState) {
			return "", nil
		}
		return "", err
	}
	return path, nil
}
