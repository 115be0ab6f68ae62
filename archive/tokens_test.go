package archive

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/storage/index"
)

// A token works until it expires or is revoked; the index holds neither the token nor its
// plain SM3 (only the keyed hash); one stored the old way keeps working and is moved.
func TestTokensExpireAndAreRevoked(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2031, 3, 1, 9, 0, 0, 0, time.UTC)}
	a, err := Open(Config{DataDir: dir, Logger: quiet(), NoBackgroundAudit: true, Wallclock: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	short, info, err := a.IssueToken(TokenSpec{Role: RoleAuditor, Note: "审计", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !info.Expires.Equal(c.Now().Add(time.Hour)) || info.State != "valid" {
		t.Fatalf("issued: %+v", info)
	}
	long, err := a.CreateToken(RoleDepartment, "91350100M000100Y43", "")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(short); err != nil || p.Role != RoleAuditor || p.TokenID != info.ID {
		t.Fatalf("a fresh token: %+v %v", p, err)
	}
	c.Add(time.Hour)
	if _, err := a.Authenticate(short); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("after its hour: %v", err)
	}
	if _, err := a.Authenticate(long); err != nil {
		t.Fatalf("the default lifetime is a year: %v", err)
	}
	c.Add(DefaultTokenTTL)
	if _, err := a.Authenticate(long); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("after a year: %v", err)
	}

	tok, info, err := a.IssueToken(TokenSpec{Role: RoleArchive, Note: "王档案"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RevokeToken(Principal{Role: RoleArchive}, info.ID); !errors.Is(err, ErrForbidden) {
		t.Fatalf("an archivist revoked a token: %v", err)
	}
	if r, err := a.RevokeToken(Principal{Role: RoleAdmin}, info.ID); err != nil || r.State != "revoked" {
		t.Fatalf("revoke: %+v %v", r, err)
	}
	if _, err := a.Authenticate(tok); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("a revoked token: %v", err)
	}
	list, err := a.Tokens(Principal{Role: RoleAdmin})
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %+v %v", list, err)
	}
	states := map[string]string{}
	for _, ti := range list {
		states[ti.Note] = ti.State
	}
	if states["王档案"] != "revoked" || states["审计"] != "expired" || list[0].LastUsed.IsZero() {
		t.Fatalf("list: %+v", list)
	}

	// Tokens of an index written before the secret: found by their plain SM3, moved.
	legacy := "dg_a-token-from-before-the-token-secret-existed"
	old := sm3.Sum([]byte(legacy))
	oldHash := hex.EncodeToString(old[:])
	if err := a.index.PutToken(oldHash, index.Token{Role: RoleAuditor, Created: c.Now()}); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Authenticate(legacy); err != nil || p.TokenID != oldHash[:12] {
		t.Fatalf("a legacy token: %+v %v", p, err)
	}
	if _, err := a.index.Token(oldHash); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("the legacy entry stays: %v", err)
	}
	if _, err := a.Authenticate(legacy); err != nil {
		t.Fatalf("a legacy token after its move: %v", err)
	}

	// Neither the tokens nor their plain SM3 are in the index file (the legacy one's SM3
	// was written there by the test, and freed pages may keep it).
	a.Close()
	db, err := os.ReadFile(filepath.Join(dir, "index.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{short, long, tok} {
		sum := sm3.Sum([]byte(s))
		if bytes.Contains(db, []byte(s)) || bytes.Contains(db, []byte(hex.EncodeToString(sum[:]))) {
			t.Fatalf("the index holds token %s or its SM3", s[:8])
		}
	}
	if bytes.Contains(db, []byte(legacy)) {
		t.Fatal("the index holds the legacy token")
	}
	if st, err := os.Stat(filepath.Join(dir, "pki", "token-secret")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token secret: %v %v", st, err)
	}
}

// A token bound to a client certificate is refused without it or with another one.
func TestTokenBoundToACertificate(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pin := hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tok, _, err := a.IssueToken(TokenSpec{Role: RoleDepartment, Org: "91350100M000100Y43", Pin: pin})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AuthenticateFrom(tok, "", ""); !errors.Is(err, ErrTokenBinding) {
		t.Fatalf("without a certificate: %v", err)
	}
	if _, err := a.AuthenticateFrom(tok, hex.EncodeToString(bytes.Repeat([]byte{8}, 32)), ""); !errors.Is(err, ErrTokenBinding) {
		t.Fatalf("with another certificate: %v", err)
	}
	if p, err := a.AuthenticateFrom(tok, pin, ""); err != nil || p.Org != "91350100M000100Y43" {
		t.Fatalf("with its certificate: %+v %v", p, err)
	}
	for _, bad := range []TokenSpec{{Role: RoleAuditor, Pin: "abc"}, {Role: RoleAuditor, TTL: time.Second}, {Role: "root"}} {
		if _, _, err := a.IssueToken(bad); !errors.Is(err, ErrInvalidCase) {
			t.Fatalf("%+v: %v", bad, err)
		}
	}
}

// An address that fails too often is refused for a while, even with a right token or
// password; another address is not.
func TestFailuresAreThrottledPerAddress(t *testing.T) {
	a, err := Open(Config{DataDir: t.TempDir(), Logger: quiet(), NoBackgroundAudit: true, AuthFailures: 3,
		PasswordCost: PasswordCost{Time: 1, MemoryKiB: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	tok, err := a.CreateToken(RoleAuditor, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := a.AuthenticateFrom("dg_wrong", "", "192.0.2.7"); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	var te *ThrottledError
	if _, err := a.AuthenticateFrom(tok, "", "192.0.2.7"); !errors.As(err, &te) || te.RetryAfter() < 1 || te.RetryAfter() > 20 {
		t.Fatalf("the right token from a throttled address: %v", err)
	}
	if _, _, err := a.Login("nobody", "a wrong password", "192.0.2.7"); !errors.Is(err, ErrThrottled) {
		t.Fatalf("a login from a throttled address: %v", err)
	}
	if _, err := a.AuthenticateFrom(tok, "", "192.0.2.8"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// BenchmarkAuthenticate is the cost a request pays for its token: one HMAC-SM3 and one
// index read (the last-use write happens once a minute a token).
func BenchmarkAuthenticate(b *testing.B) {
	a, err := Open(Config{DataDir: b.TempDir(), Logger: quiet(), NoBackgroundAudit: true})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	tok, err := a.CreateToken(RoleDepartment, "91350100M000100Y43", "")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.AuthenticateFrom(tok, "", "192.0.2.1"); err != nil {
			b.Fatal(err)
		}
	}
}
