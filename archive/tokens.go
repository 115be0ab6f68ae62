package archive

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"github.com/dangan-archive/dangan/signing"
	"github.com/dangan-archive/dangan/storage/index"
)

// API tokens are for machines, as accounts are for people. A token is 32 random bytes
// ("dg_" and base64url); the index keeps only its HMAC-SM3 under a secret kept in
// pki/token-secret, so a copy of the index alone does not let anyone test guesses. A token
// has an end (DefaultTokenTTL unless told otherwise), can be revoked, records when it was
// last used (to the minute), and can be bound to a client certificate: then it is
// accepted only over a TLS connection that presented a certificate with that public key.

// DefaultTokenTTL is how long a token is valid unless its maker says otherwise.
const DefaultTokenTTL = 365 * 24 * time.Hour

// ErrTokenExpired and ErrTokenRevoked are tokens that were valid once.
var (
	ErrTokenExpired = fmt.Errorf("%w: the token has expired", ErrUnauthorized)
	ErrTokenRevoked = fmt.Errorf("%w: the token was revoked", ErrUnauthorized)
	ErrTokenBinding = fmt.Errorf("%w: the token is bound to a client certificate this connection did not present", ErrUnauthorized)
)

// TokenSpec is what a new token grants.
type TokenSpec struct {
	Role, Org, Note string
	TTL             time.Duration // 0: DefaultTokenTTL
	Pin             string        // the client certificate it is bound to (tlsconf.Pin), or ""
}

// TokenInfo is an API token as the admin lists it: never the token, only its ID, which the
// logs and decisions name it by.
type TokenInfo struct {
	ID       string    `json:"id"`
	Role     string    `json:"role"`
	Org      string    `json:"org,omitempty"`
	Created  time.Time `json:"created"`
	Note     string    `json:"note,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
	Revoked  time.Time `json:"revoked,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
	Bound    bool      `json:"bound_to_certificate,omitempty"`
	State    string    `json:"state"` // valid, expired or revoked
}

func tokenInfo(t index.Token, now time.Time) TokenInfo {
	ti := TokenInfo{ID: t.ID, Role: t.Role, Org: t.Org, Created: t.Created, Note: t.Note, Expires: t.Expires,
		Revoked: t.Revoked, LastUsed: t.LastUsed, Bound: t.Pin != "", State: "valid"}
	switch {
	case !t.Revoked.IsZero():
		ti.State = "revoked"
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		ti.State = "expired"
	}
	return ti
}

// loadTokenSecret reads the token secret, making it on first use.
func loadTokenSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("token secret: %w", err)
		}
		if err := signing.WriteFileAtomic(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write the token secret: %w", err)
		}
		return key, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the token secret: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("%s: not a token secret (hex, at least 16 bytes)", path)
	}
	return key, nil
}

// tokenHash is the key a token or session id is stored under: HMAC-SM3 under the secret.
func (a *Archive) tokenHash(tok string) string {
	m := hmac.New(sm3.New, a.tokenKey)
	m.Write([]byte(tok))
	return hex.EncodeToString(m.Sum(nil))
}

// legacyTokenHash is how tokens were stored before the secret: plain SM3.
func legacyTokenHash(tok string) string {
	h := sm3.Sum([]byte(tok))
	return hex.EncodeToString(h[:])
}

// CreateToken makes a token with the default lifetime (see IssueToken).
func (a *Archive) CreateToken(role, org, note string) (string, error) {
	tok, _, err := a.IssueToken(TokenSpec{Role: role, Org: org, Note: note})
	return tok, err
}

// IssueToken makes a new API token and stores only its keyed hash.
func (a *Archive) IssueToken(spec TokenSpec) (string, TokenInfo, error) {
	switch spec.Role {
	case RoleDepartment, RoleIssuer:
		if err := CheckUSCC(spec.Org); err != nil {
			return "", TokenInfo{}, fieldErr("org", fmt.Errorf("%w: org: %v", ErrInvalidCase, err))
		}
	case RoleArchive, RoleAuditor, RoleAdmin:
		if spec.Org != "" {
			return "", TokenInfo{}, fieldErr("org", fmt.Errorf("%w: org is only for the department and issuer roles", ErrInvalidCase))
		}
	default:
		return "", TokenInfo{}, fieldErr("role", fmt.Errorf("%w: role must be department, issuer, archive, auditor or admin", ErrInvalidCase))
	}
	if spec.TTL < 0 || spec.TTL > 10*DefaultTokenTTL {
		return "", TokenInfo{}, fieldErr("ttl", fmt.Errorf("%w: a token lives from a minute to ten years", ErrInvalidCase))
	}
	if spec.TTL == 0 {
		spec.TTL = DefaultTokenTTL
	}
	if spec.TTL < time.Minute {
		return "", TokenInfo{}, fieldErr("ttl", fmt.Errorf("%w: a token lives from a minute to ten years", ErrInvalidCase))
	}
	if spec.Pin != "" {
		if b, err := hex.DecodeString(spec.Pin); err != nil || len(b) != 32 {
			return "", TokenInfo{}, fieldErr("client_cert", fmt.Errorf("%w: the pin is the SHA-256 of a certificate's public key, in hex", ErrInvalidCase))
		}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", TokenInfo{}, fmt.Errorf("token randomness: %w", err)
	}
	tok := "dg_" + base64.RawURLEncoding.EncodeToString(raw)
	h := a.tokenHash(tok)
	now := a.cfg.Wallclock().UTC()
	t := index.Token{ID: h[:12], Role: spec.Role, Org: spec.Org, Created: now, Note: spec.Note, Expires: now.Add(spec.TTL), Pin: spec.Pin}
	if err := a.index.PutToken(h, t); err != nil {
		return "", TokenInfo{}, fmt.Errorf("store token: %w", err)
	}
	return tok, tokenInfo(t, now), nil
}

// Authenticate maps a bearer token to its principal (a connection without a client
// certificate).
func (a *Archive) Authenticate(tok string) (Principal, error) { return a.AuthenticateFrom(tok, "", "") }

// AuthenticateFrom maps a bearer token to its principal; pin is the client certificate
// the connection presented (tlsconf.Pin; "" for none), addr the client's address. An
// unknown, expired or revoked token, or one bound to another certificate, is
// ErrUnauthorized; an address that failed too often is *ThrottledError.
func (a *Archive) AuthenticateFrom(tok, pin, addr string) (Principal, error) {
	if err := a.throttle.check(addr); err != nil {
		return Principal{}, err
	}
	p, err := a.authenticate(tok, pin)
	if errors.Is(err, ErrUnauthorized) {
		a.throttle.failed(addr)
	}
	return p, err
}

func (a *Archive) authenticate(tok, pin string) (Principal, error) {
	if tok == "" {
		return Principal{}, ErrUnauthorized
	}
	h := a.tokenHash(tok)
	t, err := a.index.Token(h)
	if errors.Is(err, index.ErrNotFound) {
		if t, err = a.upgradeToken(tok, h); err != nil {
			return Principal{}, err
		}
	} else if err != nil {
		return Principal{}, fmt.Errorf("look up token: %w", err)
	}
	now := a.cfg.Wallclock().UTC()
	switch {
	case !t.Revoked.IsZero():
		return Principal{}, ErrTokenRevoked
	case !t.Expires.IsZero() && !now.Before(t.Expires):
		return Principal{}, ErrTokenExpired
	case t.Pin != "" && !hmac.Equal([]byte(t.Pin), []byte(pin)):
		return Principal{}, ErrTokenBinding
	}
	if now.Sub(t.LastUsed) > time.Minute { // at most one write a minute a token
		t.LastUsed = now
		if err := a.index.PutToken(h, *t); err != nil {
			a.log.Warn("a token's last use was not recorded", "token", t.ID, "err", err)
		}
	}
	id := t.ID
	if id == "" {
		id = h[:12]
	}
	return Principal{Role: t.Role, Org: t.Org, TokenID: id, Name: t.Note}, nil
}

// upgradeToken finds a token stored the old way (plain SM3) and moves it under its keyed
// hash, keeping its ID; tokens made before the secret keep working.
func (a *Archive) upgradeToken(tok, h string) (*index.Token, error) {
	old := legacyTokenHash(tok)
	t, err := a.index.Token(old)
	if errors.Is(err, index.ErrNotFound) {
		return nil, ErrUnauthorized
	} else if err != nil {
		return nil, fmt.Errorf("look up token: %w", err)
	}
	if t.ID == "" {
		t.ID = old[:12]
	}
	if err := a.index.PutToken(h, *t); err != nil {
		return nil, fmt.Errorf("store token: %w", err)
	}
	if err := a.index.DeleteToken(old); err != nil {
		return nil, fmt.Errorf("store token: %w", err)
	}
	a.log.Info("a token is now kept under the token secret", "token", t.ID)
	return t, nil
}

// Tokens lists the API tokens (admin only), newest first.
func (a *Archive) Tokens(who Principal) ([]TokenInfo, error) {
	if who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: tokens are listed for the admin", ErrForbidden)
	}
	now := a.cfg.Wallclock().UTC()
	out := []TokenInfo{}
	err := a.index.ForEachToken(func(hash string, t index.Token) error {
		if t.ID == "" {
			t.ID = hash[:min(12, len(hash))]
		}
		out = append(out, tokenInfo(t, now))
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// RevokeToken ends a token for good (admin only); id is what Tokens lists.
func (a *Archive) RevokeToken(who Principal, id string) (*TokenInfo, error) {
	if who.Role != RoleAdmin {
		return nil, fmt.Errorf("%w: tokens are revoked by the admin", ErrForbidden)
	}
	if len(id) < 8 {
		return nil, fieldErr("id", fmt.Errorf("%w: a token id as listed", ErrInvalidCase))
	}
	var hash string
	var found index.Token
	err := a.index.ForEachToken(func(h string, t index.Token) error {
		if t.ID == id || t.ID == "" && strings.HasPrefix(h, id) {
			hash, found = h, t
			return index.ErrStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, index.ErrStop) {
		return nil, err
	}
	if hash == "" {
		return nil, fieldErr("id", fmt.Errorf("token %s: %w", id, ErrNotFound))
	}
	now := a.cfg.Wallclock().UTC()
	if found.Revoked.IsZero() {
		found.Revoked = now
		if found.ID == "" {
			found.ID = hash[:12]
		}
		if err := a.index.PutToken(hash, found); err != nil {
			return nil, fmt.Errorf("revoke token: %w", err)
		}
		a.log.Info("token revoked", "token", found.ID, "role", found.Role, "org", found.Org, "by", who.String())
	}
	ti := tokenInfo(found, now)
	return &ti, nil
}
