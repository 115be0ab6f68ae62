package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// Identity is a private key with its certificate and the issuing chain above it (the root
// last). It is what signs an EEP, a timestamp or a receipt.
type Identity struct {
	Key   crypto.Signer // an *sm2.PrivateKey from a file, or a key in a device (KeyProvider)
	Cert  *smx509.Certificate
	Chain []*smx509.Certificate // issuers, nearest first, root last; empty for a root
}

// PublicKey is the certificate's key.
func (id *Identity) PublicKey() *ecdsa.PublicKey {
	pub, _ := id.Cert.PublicKey.(*ecdsa.PublicKey)
	return pub
}

// Certificates returns the leaf followed by its chain: what goes into a 证书块.
func (id *Identity) Certificates() []*smx509.Certificate {
	return append([]*smx509.Certificate{id.Cert}, id.Chain...)
}

// Usage says what a certificate is for.
type Usage int

const (
	UsageCA           Usage = iota // a certification authority
	UsageSigning                   // documents and packages (digitalSignature, nonRepudiation)
	UsageTimestamping              // a TSA: critical EKU timeStamping only (RFC 3161 §2.3)
)

// CertSpec describes a certificate to issue.
type CertSpec struct {
	CommonName   string
	Organization string
	OrgID        string // the organisation's USCC, stored as the subject serialNumber
	Usage        Usage
	NotBefore    time.Time
	NotAfter     time.Time
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}
var oidKPTimeStamping = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

// NewRoot makes a self-signed SM2 root certification authority.
func NewRoot(spec CertSpec) (*Identity, error) {
	spec.Usage = UsageCA
	return issue(spec, nil)
}

// Issue makes a new key and a certificate for it signed by ca.
func (ca *Identity) Issue(spec CertSpec) (*Identity, error) { return issue(spec, ca) }

// issue makes a key and a certificate signed by ca, or self-signed when ca is nil.
func issue(spec CertSpec, ca *Identity) (*Identity, error) {
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	tmpl, err := template(spec)
	if err != nil {
		return nil, err
	}
	parent, signer, chain := tmpl, crypto.Signer(key), []*smx509.Certificate(nil)
	if ca != nil {
		parent, signer, chain = ca.Cert, ca.Key, ca.Certificates()
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, fmt.Errorf("issue certificate for %q: %w", spec.CommonName, err)
	}
	cert, err := smx509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse issued certificate: %w", err)
	}
	return &Identity{Key: key, Cert: cert, Chain: chain}, nil
}

func template(spec CertSpec) (*smx509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("certificate serial: %w", err)
	}
	if spec.NotBefore.IsZero() {
		spec.NotBefore = time.Now().Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = spec.NotBefore.AddDate(10, 0, 0)
	}
	t := &smx509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   spec.CommonName,
			Organization: nonEmpty(spec.Organization),
			Country:      []string{"CN"},
			SerialNumber: spec.OrgID,
		},
		NotBefore:             spec.NotBefore.UTC(),
		NotAfter:              spec.NotAfter.UTC(),
		BasicConstraintsValid: true,
	}
	switch spec.Usage {
	case UsageCA:
		t.IsCA = true
		t.KeyUsage = smx509.KeyUsageCertSign | smx509.KeyUsageCRLSign | smx509.KeyUsageDigitalSignature
	case UsageSigning:
		t.KeyUsage = smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
	case UsageTimestamping:
		t.KeyUsage = smx509.KeyUsageDigitalSignature | smx509.KeyUsageContentCommitment
		eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
		if err != nil {
			return nil, fmt.Errorf("marshal EKU: %w", err)
		}
		t.ExtraExtensions = append(t.ExtraExtensions, pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: eku})
	default:
		return nil, fmt.Errorf("unknown certificate usage %d", spec.Usage)
	}
	return t, nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// ErrUntrusted is returned (wrapped) when a certificate does not chain to a trusted root, or
// was not valid at the time asked about.
var ErrUntrusted = errors.New("certificate not trusted")

// VerifyChain checks that leaf chains to one of roots through intermediates at time at, with
// the extended key usage given (none: any usage). It returns the chain, leaf first.
//
// A chain that verified is remembered (per leaf, pool and usage) with the window in which
// every certificate of it is valid; a later check at a time inside that window returns it
// without repeating the signature checks. Revocation is not part of this check.
func VerifyChain(leaf *smx509.Certificate, intermediates []*smx509.Certificate, roots *smx509.CertPool, at time.Time, usage ...smx509.ExtKeyUsage) ([]*smx509.Certificate, error) {
	if roots == nil {
		return nil, fmt.Errorf("%w: no trust roots configured", ErrUntrusted)
	}
	if len(usage) == 0 {
		usage = []smx509.ExtKeyUsage{smx509.ExtKeyUsageAny}
	}
	key := chainKey{leaf: sm3.Sum(leaf.Raw), roots: roots, usage: fmt.Sprint(usage)}
	if c, ok := chains.get(key, at); ok {
		return c, nil
	}
	inter := smx509.NewCertPool()
	for _, c := range intermediates {
		if !c.Equal(leaf) {
			inter.AddCert(c)
		}
	}
	found, err := leaf.Verify(smx509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: usage})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUntrusted, err)
	}
	chains.put(key, found[0])
	return found[0], nil
}

type chainKey struct {
	leaf  [32]byte
	roots *smx509.CertPool
	usage string
}

type verifiedChain struct {
	chain     []*smx509.Certificate
	from, til time.Time // every certificate of the chain is valid in [from, til]
}

// chainCache holds chains that verified; it is emptied when it reaches 4096 entries.
type chainCache struct {
	mu sync.Mutex
	m  map[chainKey]verifiedChain
}

var chains = &chainCache{m: map[chainKey]verifiedChain{}}

func (c *chainCache) get(k chainKey, at time.Time) ([]*smx509.Certificate, bool) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if !ok || at.Before(v.from) || at.After(v.til) {
		return nil, false
	}
	return v.chain, true
}

func (c *chainCache) put(k chainKey, chain []*smx509.Certificate) {
	v := verifiedChain{chain: chain, from: chain[0].NotBefore, til: chain[0].NotAfter}
	for _, cert := range chain[1:] {
		if cert.NotBefore.After(v.from) {
			v.from = cert.NotBefore
		}
		if cert.NotAfter.Before(v.til) {
			v.til = cert.NotAfter
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= 4096 {
		c.m = map[chainKey]verifiedChain{}
	}
	c.m[k] = v
}

// PKI is a directory of keys and certificates: a county root, the archive's own signing
// identity, the TSA, and one signing identity per department (by USCC).
//
// OpenDevPKI creates a development PKI on first use. In production the same files are
// imported (PEM certificates, PKCS#8 keys, encrypted with DANGAN_KEY_PASSWORD when set).
type PKI struct {
	dir      string
	password []byte
	Root     *Identity // Root.Key is nil when the root key is kept off-line
	Archive  *Identity
	TSA      *Identity
	// Extra are further trusted roots from extra-roots.pem: an external TSA's root, or
	// another archive's, whose signatures this archive must accept.
	Extra []*smx509.Certificate
	// Keys is where signing keys come from before pki/NAME.key (nil: the files only).
	Keys KeyProvider
	// CRLs are revocation lists from crls.pem, each checked against its issuer when loaded.
	CRLs []*smx509.RevocationList

	now func() time.Time // the clock certificates are issued at

	mu        sync.Mutex
	depts     map[string]*Identity
	sealMaker *Identity
	trustOnce sync.Once
	trust     *smx509.CertPool
}

// Roots returns the trusted roots: the PKI's own root first, then the extra ones.
func (p *PKI) Roots() []*smx509.Certificate {
	return append([]*smx509.Certificate{p.Root.Cert}, p.Extra...)
}

// Trust returns the pool of trusted roots (made once: the roots do not change while the
// PKI is open).
func (p *PKI) Trust() *smx509.CertPool {
	p.trustOnce.Do(func() { p.trust = NewPool(p.Roots()...) })
	return p.trust
}

// NewPool is a pool of the given trusted certificates.
func NewPool(certs ...*smx509.Certificate) *smx509.CertPool {
	pool := smx509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// LoadPool reads a PEM file of trusted roots into a pool.
func LoadPool(path string) (*smx509.CertPool, error) {
	certs, err := LoadCerts(path)
	if err != nil {
		return nil, err
	}
	return NewPool(certs...), nil
}

// OpenDevPKI loads the PKI in dir, creating a development root, archive and TSA identity
// when dir has none. created reports whether it made them. Certificates it issues (now
// and later, for departments and the seal maker) are valid from the clock now (time.Now
// when nil), so an archive running on a shifted clock trusts its own PKI.
func OpenDevPKI(dir string, password []byte, archiveName string, now func() time.Time) (pki *PKI, created bool, err error) {
	return OpenPKI(dir, password, archiveName, now, nil)
}

// OpenPKI is OpenDevPKI with the keys the device behind keys holds (by the names
// "root", "archive", "tsa") taken from it instead of pki/NAME.key; nil: files only.
func OpenPKI(dir string, password []byte, archiveName string, now func() time.Time, keys KeyProvider) (pki *PKI, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create PKI directory: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	p := &PKI{dir: dir, password: password, depts: map[string]*Identity{}, now: now, Keys: keys}
	if _, err := os.Stat(filepath.Join(dir, "root.pem")); errors.Is(err, os.ErrNotExist) {
		if err := p.create(archiveName); err != nil {
			return nil, false, err
		}
		created = true
	}
	if p.Root, err = p.load("root", true); err != nil {
		return nil, false, err
	}
	if p.Archive, err = p.load("archive", false); err != nil {
		return nil, false, err
	}
	if p.TSA, err = p.load("tsa", false); err != nil {
		return nil, false, err
	}
	if extra := filepath.Join(dir, "extra-roots.pem"); fileExists(extra) {
		if p.Extra, err = LoadCerts(extra); err != nil {
			return nil, false, err
		}
	}
	if crls := filepath.Join(dir, "crls.pem"); fileExists(crls) {
		if p.CRLs, err = LoadCRLs(crls, p.Roots()); err != nil {
			return nil, false, err
		}
	}
	return p, created, nil
}

func (p *PKI) create(archiveName string) error {
	now := p.now()
	root, err := NewRoot(CertSpec{CommonName: archiveName + " 根证书 (development)", Organization: archiveName,
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(30, 0, 0)})
	if err != nil {
		return err
	}
	archive, err := root.Issue(CertSpec{CommonName: archiveName, Organization: archiveName, Usage: UsageSigning,
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0)})
	if err != nil {
		return err
	}
	tsa, err := root.Issue(CertSpec{CommonName: archiveName + " 时间戳服务", Organization: archiveName, Usage: UsageTimestamping,
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0)})
	if err != nil {
		return err
	}
	for name, id := range map[string]*Identity{"root": root, "archive": archive, "tsa": tsa} {
		if err := p.save(name, id); err != nil {
			return err
		}
	}
	return nil
}

func (p *PKI) save(name string, id *Identity) error {
	key, ok := id.Key.(*sm2.PrivateKey)
	if !ok {
		return fmt.Errorf("%s: a key kept in a device is not saved to a file", name)
	}
	if err := SaveKey(filepath.Join(p.dir, name+".key"), key, p.password); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(p.dir, name+".pem"), CertPEM(id.Certificates()...), 0o644)
}

func (p *PKI) load(name string, keyOptional bool) (*Identity, error) {
	certs, err := LoadCerts(filepath.Join(p.dir, name+".pem"))
	if err != nil {
		return nil, err
	}
	id := &Identity{Cert: certs[0], Chain: certs[1:]}
	files := FileKeys{Dir: p.dir, Password: p.password}
	var key crypto.Signer
	if p.Keys != nil {
		key, err = p.Keys.Signer(name, id.Cert) // a key the device holds comes from it
	}
	if p.Keys == nil || errors.Is(err, ErrNoKey) {
		key, err = files.Signer(name, id.Cert)
	}
	if errors.Is(err, ErrNoKey) && keyOptional {
		return id, nil
	} else if err != nil {
		return nil, err
	}
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(id.Cert.PublicKey) {
		return nil, fmt.Errorf("%s: key does not match certificate", name)
	}
	id.Key = key
	return id, nil
}

var usccShape = regexp.MustCompile(`^[0-9A-HJ-NPQRTUWXY]{18}$`)

// Department returns the signing identity of the department with the given USCC, issuing
// one from the root when the PKI has none yet and the root key is present.
func (p *PKI) Department(uscc, name string) (*Identity, error) {
	if !usccShape.MatchString(uscc) {
		return nil, fmt.Errorf("department identity: %q is not a USCC", uscc)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.depts[uscc]; ok {
		return id, nil
	}
	file := "dept-" + uscc
	if _, err := os.Stat(filepath.Join(p.dir, file+".pem")); err == nil {
		id, err := p.load(file, false)
		if err != nil {
			return nil, err
		}
		p.depts[uscc] = id
		return id, nil
	}
	if p.Root.Key == nil {
		return nil, fmt.Errorf("department %s has no signing certificate and the root key is off-line: import dept-%s.pem and .key", uscc, uscc)
	}
	if name == "" {
		name = uscc
	}
	now := p.now()
	id, err := p.Root.Issue(CertSpec{CommonName: name, Organization: name, OrgID: uscc, Usage: UsageSigning,
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0)})
	if err != nil {
		return nil, err
	}
	if err := p.save(file, id); err != nil {
		return nil, err
	}
	p.depts[uscc] = id
	return id, nil
}

// SealMaker returns the seal maker's identity (制章人, GB/T 38540), which signs the
// electronic seals of departments; the development PKI issues one from the root on first
// use. In production import sealmaker.pem and sealmaker.key.
func (p *PKI) SealMaker() (*Identity, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sealMaker != nil {
		return p.sealMaker, nil
	}
	if fileExists(filepath.Join(p.dir, "sealmaker.pem")) {
		id, err := p.load("sealmaker", false)
		if err != nil {
			return nil, err
		}
		p.sealMaker = id
		return id, nil
	}
	if p.Root.Key == nil {
		return nil, errors.New("no seal maker certificate and the root key is off-line: import sealmaker.pem and .key")
	}
	now := p.now()
	id, err := p.Root.Issue(CertSpec{CommonName: p.Root.Cert.Subject.CommonName + " 制章人", Organization: firstOr(p.Root.Cert.Subject.Organization),
		Usage: UsageSigning, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0)})
	if err != nil {
		return nil, err
	}
	if err := p.save("sealmaker", id); err != nil {
		return nil, err
	}
	p.sealMaker = id
	return id, nil
}

// Dir is the directory the PKI lives in.
func (p *PKI) Dir() string { return p.dir }

func firstOr(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// LoadCRLs reads X.509 revocation lists (PEM "X509 CRL") and keeps those signed by one of
// issuers; a list no issuer signed is an error, not ignored.
func LoadCRLs(path string, issuers []*smx509.Certificate) ([]*smx509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CRLs: %w", err)
	}
	var out []*smx509.RevocationList
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		crl, err := smx509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		signed := false
		for _, is := range issuers {
			if crl.CheckSignatureFrom(is) == nil {
				signed = true
				break
			}
		}
		if !signed {
			return nil, fmt.Errorf("%s: a CRL from %q is not signed by a trusted root", path, crl.Issuer.CommonName)
		}
		out = append(out, crl)
	}
	return out, nil
}

// RevokedBefore reports whether cert was revoked at or before t by a CRL of its issuer, and
// when.
func RevokedBefore(crls []*smx509.RevocationList, cert *smx509.Certificate, t time.Time) (time.Time, bool) {
	for _, crl := range crls {
		if !bytes.Equal(crl.RawIssuer, cert.RawIssuer) {
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(cert.SerialNumber) == 0 && !e.RevocationTime.After(t) {
				return e.RevocationTime, true
			}
		}
	}
	return time.Time{}, false
}

// CreateCRL has a CA revoke certificates (by serial, at the given times): for drills and
// tests of the development PKI.
func (ca *Identity) CreateCRL(revoked map[*big.Int]time.Time, now time.Time) ([]byte, error) {
	var entries []smx509.RevocationListEntry
	for serial, at := range revoked {
		entries = append(entries, smx509.RevocationListEntry{SerialNumber: serial, RevocationTime: at})
	}
	der, err := smx509.CreateRevocationList(rand.Reader, &smx509.RevocationList{Number: big.NewInt(now.Unix()), ThisUpdate: now,
		NextUpdate: now.AddDate(0, 0, 7), RevokedCertificateEntries: entries}, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}
