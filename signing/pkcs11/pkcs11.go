//go:build cgo

// Package pkcs11 is the key provider for keys kept in a PKCS#11 device (an HSM, a USB key,
// SoftHSM): each identity's private key is the token's private key object whose label is
// the identity's name with a prefix ("dangan-archive", "dangan-tsa", "dangan-root"); the
// certificates stay in pki/. Signing never takes the key out of the device.
//
// Elliptic-curve keys sign with CKM_ECDSA over the digest dangan computes (SM3(Z_A‖M) for
// SM2, a SHA-2 digest for ECDSA). PKCS#11 defines no SM2 mechanism; devices that offer SM2
// name it with a vendor-defined number, which Config.SM2Mechanism gives. SoftHSM2 has no
// SM2, so the package's test runs an ECDSA P-256 key through the same code.
package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
	p11 "github.com/miekg/pkcs11"

	"github.com/dangan-archive/dangan/signing"
)

// Config says which device, token and keys.
type Config struct {
	Module string // the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
	Token  string // the token's label
	PIN    string // the user PIN
	Prefix string // key labels are Prefix+name; default "dangan-"
	// SM2Mechanism is the device's vendor-defined mechanism that signs an SM2 digest
	// (0: SM2 keys are refused).
	SM2Mechanism uint
}

// Provider is an open session pool on one token.
type Provider struct {
	cfg  Config
	ctx  *p11.Ctx
	slot uint

	mu       sync.Mutex
	sessions []p11.SessionHandle
	closed   bool
}

// Open loads the module, finds the token by label and logs in.
func Open(cfg Config) (*Provider, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "dangan-"
	}
	ctx := p11.New(cfg.Module)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s", cfg.Module)
	}
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		ctx.Destroy()
		return nil, fmt.Errorf("pkcs11: initialize %s: %w", cfg.Module, err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		ctx.Destroy()
		return nil, fmt.Errorf("pkcs11: slots: %w", err)
	}
	p := &Provider{cfg: cfg, ctx: ctx}
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && ti.Label == cfg.Token {
			p.slot, found = s, true
			break
		}
	}
	if !found {
		ctx.Finalize()
		ctx.Destroy()
		return nil, fmt.Errorf("pkcs11: no token labelled %q in %s", cfg.Token, cfg.Module)
	}
	sh, err := p.session()
	if err != nil {
		p.Close()
		return nil, err
	}
	if err := ctx.Login(sh, p11.CKU_USER, cfg.PIN); err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		p.put(sh)
		p.Close()
		return nil, fmt.Errorf("pkcs11: log in to token %q: %w", cfg.Token, err)
	}
	p.put(sh)
	return p, nil
}

// Close logs out and unloads the module.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	for _, s := range p.sessions {
		p.ctx.CloseSession(s)
	}
	p.ctx.CloseAllSessions(p.slot)
	p.ctx.Finalize()
	p.ctx.Destroy()
	return nil
}

func (p *Provider) session() (p11.SessionHandle, error) {
	p.mu.Lock()
	if n := len(p.sessions); n > 0 {
		s := p.sessions[n-1]
		p.sessions = p.sessions[:n-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	s, err := p.ctx.OpenSession(p.slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: open session: %w", err)
	}
	return s, nil
}

func (p *Provider) put(s p11.SessionHandle) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.ctx.CloseSession(s)
		return
	}
	p.sessions = append(p.sessions, s)
}

// Signer finds the key labelled Prefix+name: signing.ErrNoKey when the token has none.
// Its public key is read from the token's public key object of the same label.
func (p *Provider) Signer(name string, _ *smx509.Certificate) (crypto.Signer, error) {
	label := p.cfg.Prefix + name
	sh, err := p.session()
	if err != nil {
		return nil, err
	}
	defer p.put(sh)
	priv, err := p.find(sh, p11.CKO_PRIVATE_KEY, label)
	if err != nil {
		return nil, err
	}
	pubObj, err := p.find(sh, p11.CKO_PUBLIC_KEY, label)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: the public key of %q: %w", label, err)
	}
	attrs, err := p.ctx.GetAttributeValue(sh, pubObj, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_EC_PARAMS, nil), p11.NewAttribute(p11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("pkcs11: read the public key of %q: %w", label, err)
	}
	pub, err := ecPublicKey(attrs[0].Value, attrs[1].Value)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: the public key of %q: %w", label, err)
	}
	s := &Signer{p: p, key: priv, pub: pub, label: label}
	if pub.Curve == sm2.P256() {
		if p.cfg.SM2Mechanism == 0 {
			return nil, fmt.Errorf("pkcs11: %q is an SM2 key: give the device's SM2 signing mechanism (vendor-defined)", label)
		}
		s.mech = p.cfg.SM2Mechanism
	} else {
		s.mech = p11.CKM_ECDSA
	}
	return s, nil
}

func (p *Provider) find(sh p11.SessionHandle, class uint, label string) (p11.ObjectHandle, error) {
	if err := p.ctx.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, class), p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		return 0, fmt.Errorf("pkcs11: find %q: %w", label, err)
	}
	objs, _, err := p.ctx.FindObjects(sh, 2)
	p.ctx.FindObjectsFinal(sh)
	if err != nil {
		return 0, fmt.Errorf("pkcs11: find %q: %w", label, err)
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("pkcs11: token %q has no key %q: %w", p.cfg.Token, label, signing.ErrNoKey)
	case 1:
		return objs[0], nil
	}
	return 0, fmt.Errorf("pkcs11: token %q has more than one key %q", p.cfg.Token, label)
}

var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
	oidSM2  = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
)

// ecPublicKey reads CKA_EC_PARAMS (a named curve) and CKA_EC_POINT (a DER OCTET STRING
// holding the uncompressed point, or the bare point as some devices give it).
func ecPublicKey(params, point []byte) (*ecdsa.PublicKey, error) {
	var oid asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(params, &oid); err != nil {
		return nil, fmt.Errorf("EC parameters: %w", err)
	}
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) > 0 {
		raw = point
	}
	var pub *ecdsa.PublicKey
	var err error
	switch {
	case oid.Equal(oidP256):
		pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	case oid.Equal(oidP384):
		pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P384(), raw)
	case oid.Equal(oidSM2):
		pub, err = sm2.NewPublicKey(raw)
	default:
		return nil, fmt.Errorf("curve %v is not supported", oid)
	}
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pub, nil
}

// Signer is a key in the device.
type Signer struct {
	p     *Provider
	key   p11.ObjectHandle
	pub   *ecdsa.PublicKey
	mech  uint
	label string
}

// Public is the key's public half.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs digest in the device and returns DER SEQUENCE{r, s}. For an SM2 key given
// sm2.DefaultSM2SignerOpts (as smx509 does when it issues certificates and CRLs), digest is
// the message and SM3(Z_A‖M) with the default user ID is computed first.
func (s *Signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*sm2.SM2SignerOption); ok && o == sm2.DefaultSM2SignerOpts && s.pub.Curve == sm2.P256() {
		h := signing.NewSignatureHash(s.pub)
		h.Write(digest)
		digest = h.Sum(nil)
	}
	return s.sign(digest)
}

func (s *Signer) sign(digest []byte) ([]byte, error) {
	sh, err := s.p.session()
	if err != nil {
		return nil, err
	}
	defer s.p.put(sh)
	if err := s.p.ctx.SignInit(sh, []*p11.Mechanism{p11.NewMechanism(s.mech, nil)}, s.key); err != nil {
		return nil, fmt.Errorf("pkcs11: sign with %q: %w", s.label, err)
	}
	raw, err := s.p.ctx.Sign(sh, digest)
	if err != nil {
		return nil, fmt.Errorf("pkcs11: sign with %q: %w", s.label, err)
	}
	if len(raw)%2 != 0 || len(raw) == 0 {
		return nil, fmt.Errorf("pkcs11: %q gave a signature of %d bytes", s.label, len(raw))
	}
	r, ss := new(big.Int).SetBytes(raw[:len(raw)/2]), new(big.Int).SetBytes(raw[len(raw)/2:])
	return asn1.Marshal(struct{ R, S *big.Int }{r, ss})
}
