package archive

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dangan-archive/dangan/storage/index"
)

var cheapPasswords = PasswordCost{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

// The encoded hash of the Argon2 reference implementation (phc-winner-argon2, src/test.c)
// verifies, and one character off does not: dangan's hashes are the standard's.
func TestPasswordHashReferenceVector(t *testing.T) {
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	if !checkPassword(ref, "password") {
		t.Fatal("the reference hash does not verify")
	}
	for _, bad := range []struct{ hash, password string }{
		{ref, "passwore"},
		{strings.Replace(ref, "t=2", "t=3", 1), "password"},
		{strings.Replace(ref, "argon2id", "argon2i", 1), "password"},
		{strings.Replace(ref, "m=65536", "m=4194304", 1), "password"}, // 4 GiB: refused, not computed
		{"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$", "password"},
		{"", "password"},
	} {
		if checkPassword(bad.hash, bad.password) {
			t.Errorf("%q verifies %q", bad.hash, bad.password)
		}
	}
	h, err := hashPassword("correct horse battery", cheapPasswords)
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=8192,t=1,p=1$") || !checkPassword(h, "correct horse battery") {
		t.Fatalf("a new hash %q (%v)", h, err)
	}
}

func openAccounts(t *testing.T, clk *clock) *Archive {
	t.Helper()
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), Now: clk.Now, NoBackgroundAudit: true, PasswordCost: cheapPasswords,
		LockFor: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

var admin = Principal{Role: RoleAdmin, TokenID: "@admin"}

// Bad accounts are refused with the failing field and nothing is stored; only the admin
// makes accounts; a name is taken once.
func TestAccountsAreChecked(t *testing.T) {
	a := openAccounts(t, &clock{t: time.Now()})
	good := Account{Name: "li.si", Display: "李四", Role: RoleDepartment, Department: dept.Org}
	for _, c := range []struct {
		acc      Account
		password string
		field    string
	}{
		{Account{Name: "Li", Display: "李四", Role: RoleArchive}, "long enough password", "name"},
		{Account{Name: "li", Display: " ", Role: RoleArchive}, "long enough password", "display"},
		{Account{Name: "li", Display: "李四", Role: "clerk"}, "long enough password", "role"},
		{Account{Name: "li", Display: "李四", Role: RoleDepartment}, "long enough password", "department"},
		{Account{Name: "li", Display: "李四", Role: RoleArchive, Department: dept.Org}, "long enough password", "department"},
		{good, "short", "password"},
	} {
		if _, err := a.CreateAccount(admin, c.acc, c.password); !errors.Is(err, ErrInvalidCase) || !strings.Contains(err.Error(), c.field+":") {
			t.Errorf("%+v: %v, want an invalid %s", c.acc, err, c.field)
		}
	}
	if list, _ := a.Accounts(admin); len(list) != 0 {
		t.Fatalf("refused accounts were stored: %+v", list)
	}
	if _, err := a.CreateAccount(Principal{Role: RoleArchive}, good, "long enough password"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an archivist made an account: %v", err)
	}
	if _, err := a.CreateAccount(admin, good, "long enough password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateAccount(admin, good, "another long password"); !errors.Is(err, ErrState) {
		t.Fatalf("the same name twice: %v", err)
	}
	var rec accountRecord
	a.index.Record(index.Accounts, "li.si", &rec)
	if !strings.HasPrefix(rec.Hash, "$argon2id$") || strings.Contains(rec.Hash, "long enough") {
		t.Fatalf("stored hash %q", rec.Hash)
	}
}

// A login opens a session with the account's principal; logout ends it; a session ends
// after 30 minutes unused and 12 hours after its login however it is used.
func TestSessionsEnd(t *testing.T) {
	clk := &clock{t: time.Now()}
	a := openAccounts(t, clk)
	if _, err := a.CreateAccount(admin, Account{Name: "wang", Display: "王五", Role: RoleArchive}, "long enough password"); err != nil {
		t.Fatal(err)
	}
	id, who, err := a.Login("wang", "long enough password", "192.0.2.1")
	if err != nil || who.Role != RoleArchive || who.TokenID != "@wang" || who.Name != "王五" {
		t.Fatalf("login: %+v %v", who, err)
	}
	if p, acc, err := a.Session(id); err != nil || p != who || acc.Name != "wang" {
		t.Fatalf("session: %+v %+v %v", p, acc, err)
	}
	if err := a.Logout(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Session(id); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a session after logout: %v", err)
	}
	// Idle.
	id, _, _ = a.Login("wang", "long enough password", "192.0.2.1")
	clk.Add(29 * time.Minute)
	if _, _, err := a.Session(id); err != nil {
		t.Fatalf("after 29 minutes: %v", err)
	}
	clk.Add(31 * time.Minute)
	if _, _, err := a.Session(id); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("after 31 idle minutes: %v", err)
	}
	// Absolute: used every 20 minutes, it still ends at 12 hours.
	id, _, _ = a.Login("wang", "long enough password", "192.0.2.1")
	for used := time.Duration(0); used < 12*time.Hour-20*time.Minute; used += 20 * time.Minute {
		clk.Add(20 * time.Minute)
		if _, _, err := a.Session(id); err != nil {
			t.Fatalf("in use after %v: %v", used+20*time.Minute, err)
		}
	}
	clk.Add(40 * time.Minute)
	if _, _, err := a.Session(id); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a session over 12 hours old: %v", err)
	}
	// Removing the account ends its sessions.
	id, _, _ = a.Login("wang", "long enough password", "192.0.2.1")
	if err := a.RemoveAccount(admin, "wang"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Session(id); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a session of a removed account: %v", err)
	}
	if _, _, err := a.Login("wang", "long enough password", "192.0.2.1"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("login to a removed account: %v", err)
	}
}

// Five wrong passwords lock the account: the right one is refused until the lock ends.
func TestWrongPasswordsLock(t *testing.T) {
	clk := &clock{t: time.Now()}
	a := openAccounts(t, clk)
	if _, err := a.CreateAccount(admin, Account{Name: "zhao", Display: "赵六", Role: RoleAuditor}, "long enough password"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		_, _, err := a.Login("zhao", "wrong password!!", "192.0.2.9")
		if want := ErrUnauthorized; i == 5 {
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("the fifth wrong password: %v", err)
			}
		} else if !errors.Is(err, want) || errors.Is(err, ErrLocked) {
			t.Fatalf("wrong password %d: %v", i, err)
		}
	}
	if _, _, err := a.Login("zhao", "long enough password", "192.0.2.9"); !errors.Is(err, ErrLocked) {
		t.Fatalf("the right password while locked: %v", err)
	}
	clk.Add(11 * time.Minute)
	if _, _, err := a.Login("zhao", "long enough password", "192.0.2.9"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}

// A new archive gets the account admin with its password in a 0600 file; a second call
// makes nothing.
func TestAdminAccountOnFirstStart(t *testing.T) {
	a := openAccounts(t, &clock{t: time.Now()})
	path, err := a.EnsureAdminAccount()
	if err != nil || path != filepath.Join(a.cfg.DataDir, "admin-password") {
		t.Fatalf("%q %v", path, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin-password mode %v", fi.Mode())
	}
	b, _ := os.ReadFile(path)
	if _, who, err := a.Login("admin", strings.TrimSpace(string(b)), "127.0.0.1"); err != nil || who.Role != RoleAdmin {
		t.Fatalf("admin login: %+v %v", who, err)
	}
	if again, err := a.EnsureAdminAccount(); again != "" || err != nil {
		t.Fatalf("second start: %q %v", again, err)
	}
}
