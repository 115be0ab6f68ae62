package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// The algorithms verification knows, as registries: a digest by its OID, a signature
// algorithm by its OID. Foreign files bring RSA (PKCS #1 v1.5 and PSS), ECDSA (NIST and
// Brainpool curves, DER or plain r‖s), Ed25519 and SM2 with SHA-1, SHA-2, SHA-3 or SM3.

// ErrUnsupportedAlgorithm is returned (wrapped) for an algorithm verification does not
// implement: the report says exactly which.
var ErrUnsupportedAlgorithm = errors.New("unsupported algorithm")

// Digest is a hash algorithm a signature may use.
type Digest struct {
	Name string
	OID  asn1.ObjectIdentifier
	New  func() hash.Hash
	Hash crypto.Hash // 0 for SM3
	Weak bool        // collisions are practical (SHA-1): accepted with a warning
}

var (
	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA224 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 4}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidMD5    = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}
)

var digests = []Digest{
	{"SHA-1", oidSHA1, sha1.New, crypto.SHA1, true},
	{"SHA-224", oidSHA224, sha256.New224, crypto.SHA224, false},
	{"SHA-256", oidSHA256, sha256.New, crypto.SHA256, false},
	{"SHA-384", oidSHA384, sha512.New384, crypto.SHA384, false},
	{"SHA-512", oidSHA512, sha512.New, crypto.SHA512, false},
	{"SHA-512/224", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 5}, sha512.New512_224, crypto.SHA512_224, false},
	{"SHA-512/256", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 6}, sha512.New512_256, crypto.SHA512_256, false},
	{"SHA3-224", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 7}, func() hash.Hash { return sha3.New224() }, crypto.SHA3_224, false},
	{"SHA3-256", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 8}, func() hash.Hash { return sha3.New256() }, crypto.SHA3_256, false},
	{"SHA3-384", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 9}, func() hash.Hash { return sha3.New384() }, crypto.SHA3_384, false},
	{"SHA3-512", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 10}, func() hash.Hash { return sha3.New512() }, crypto.SHA3_512, false},
	{"SM3", OIDSM3, sm3.New, 0, false},
	// RFC 8419: CMS with Ed448 digests its content with SHAKE256, 512 bits of output.
	{"SHAKE256", asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 12}, func() hash.Hash { return &shake512{sha3.NewSHAKE256()} }, 0, false},
}

// shake512 is SHAKE256 read out to 64 bytes, as a hash.Hash.
type shake512 struct{ *sha3.SHAKE }

func (s *shake512) Sum(b []byte) []byte {
	out := make([]byte, 64)
	state, err := s.SHAKE.MarshalBinary() // reading must not disturb further writes
	if err != nil {
		panic(err)
	}
	c := sha3.NewSHAKE256()
	if err := c.UnmarshalBinary(state); err != nil {
		panic(err)
	}
	c.Read(out)
	return append(b, out...)
}
func (s *shake512) Size() int      { return 64 }
func (s *shake512) BlockSize() int { return s.SHAKE.BlockSize() }
func (s *shake512) Reset()         { s.SHAKE.Reset() }

// DigestByOID finds a digest algorithm. Some writers put a signature algorithm's OID
// where the digest belongs (sha256WithRSAEncryption): its digest is returned then.
func DigestByOID(oid asn1.ObjectIdentifier) (*Digest, error) {
	for i := range digests {
		if digests[i].OID.Equal(oid) {
			return &digests[i], nil
		}
	}
	if a := sigAlgByOID(oid); a != nil && a.digest != nil {
		return DigestByOID(a.digest)
	}
	if oid.Equal(oidMD5) {
		return nil, fmt.Errorf("%w: digest MD5 is broken and not accepted", ErrUnsupportedAlgorithm)
	}
	return nil, fmt.Errorf("%w: digest %v", ErrUnsupportedAlgorithm, oid)
}

func digestByHash(h crypto.Hash) *Digest {
	for i := range digests {
		if digests[i].Hash == h && h != 0 {
			return &digests[i]
		}
	}
	return nil
}

// Signature algorithm families.
const (
	famRSA = iota + 1
	famRSAPSS
	famECDSA
	famECDSAPlain // r‖s, BSI TR-03111
	famEd25519
	famEd448
	famSM2
)

type sigAlg struct {
	name   string
	oid    asn1.ObjectIdentifier
	family int
	digest asn1.ObjectIdentifier // fixed by the algorithm; nil: the SignerInfo's digest
}

func oid(parts ...int) asn1.ObjectIdentifier { return asn1.ObjectIdentifier(parts) }

var (
	oidRSAEncryption = oid(1, 2, 840, 113549, 1, 1, 1)
	oidRSAPSS        = oid(1, 2, 840, 113549, 1, 1, 10)
	oidMGF1          = oid(1, 2, 840, 113549, 1, 1, 8)
	oidECPublicKey   = oid(1, 2, 840, 10045, 2, 1)
	oidEd25519       = oid(1, 3, 101, 112)
	oidEd448         = oid(1, 3, 101, 113)
)

var sigAlgs = []sigAlg{
	{"RSA", oidRSAEncryption, famRSA, nil},
	{"RSA with MD5", oid(1, 2, 840, 113549, 1, 1, 4), 0, oidMD5},
	{"RSA with SHA-1", oid(1, 2, 840, 113549, 1, 1, 5), famRSA, oidSHA1},
	{"RSA with SHA-224", oid(1, 2, 840, 113549, 1, 1, 14), famRSA, oidSHA224},
	{"RSA with SHA-256", oid(1, 2, 840, 113549, 1, 1, 11), famRSA, oidSHA256},
	{"RSA with SHA-384", oid(1, 2, 840, 113549, 1, 1, 12), famRSA, oidSHA384},
	{"RSA with SHA-512", oid(1, 2, 840, 113549, 1, 1, 13), famRSA, oidSHA512},
	{"RSA with SHA3-256", oid(2, 16, 840, 1, 101, 3, 4, 3, 14), famRSA, oid(2, 16, 840, 1, 101, 3, 4, 2, 8)},
	{"RSA with SHA3-384", oid(2, 16, 840, 1, 101, 3, 4, 3, 15), famRSA, oid(2, 16, 840, 1, 101, 3, 4, 2, 9)},
	{"RSA with SHA3-512", oid(2, 16, 840, 1, 101, 3, 4, 3, 16), famRSA, oid(2, 16, 840, 1, 101, 3, 4, 2, 10)},
	{"RSASSA-PSS", oidRSAPSS, famRSAPSS, nil},
	{"ECDSA", oidECPublicKey, famECDSA, nil},
	{"ECDSA with SHA-1", oid(1, 2, 840, 10045, 4, 1), famECDSA, oidSHA1},
	{"ECDSA with SHA-224", oid(1, 2, 840, 10045, 4, 3, 1), famECDSA, oidSHA224},
	{"ECDSA with SHA-256", oid(1, 2, 840, 10045, 4, 3, 2), famECDSA, oidSHA256},
	{"ECDSA with SHA-384", oid(1, 2, 840, 10045, 4, 3, 3), famECDSA, oidSHA384},
	{"ECDSA with SHA-512", oid(1, 2, 840, 10045, 4, 3, 4), famECDSA, oidSHA512},
	{"ECDSA with SHA3-256", oid(2, 16, 840, 1, 101, 3, 4, 3, 10), famECDSA, oid(2, 16, 840, 1, 101, 3, 4, 2, 8)},
	{"ECDSA with SHA3-384", oid(2, 16, 840, 1, 101, 3, 4, 3, 11), famECDSA, oid(2, 16, 840, 1, 101, 3, 4, 2, 9)},
	{"ECDSA with SHA3-512", oid(2, 16, 840, 1, 101, 3, 4, 3, 12), famECDSA, oid(2, 16, 840, 1, 101, 3, 4, 2, 10)},
	{"plain ECDSA with SHA-1", oid(0, 4, 0, 127, 0, 7, 1, 1, 4, 1, 1), famECDSAPlain, oidSHA1},
	{"plain ECDSA with SHA-224", oid(0, 4, 0, 127, 0, 7, 1, 1, 4, 1, 2), famECDSAPlain, oidSHA224},
	{"plain ECDSA with SHA-256", oid(0, 4, 0, 127, 0, 7, 1, 1, 4, 1, 3), famECDSAPlain, oidSHA256},
	{"plain ECDSA with SHA-384", oid(0, 4, 0, 127, 0, 7, 1, 1, 4, 1, 4), famECDSAPlain, oidSHA384},
	{"plain ECDSA with SHA-512", oid(0, 4, 0, 127, 0, 7, 1, 1, 4, 1, 5), famECDSAPlain, oidSHA512},
	{"Ed25519", oidEd25519, famEd25519, nil},
	{"Ed448", oidEd448, famEd448, nil},
	{"SM2 with SM3", OIDSM2WithSM3, famSM2, OIDSM3},
	{"SM2", OIDSM2Sign, famSM2, nil},
	{"SM2", OIDSM2Curve, famSM2, nil},
}

func sigAlgByOID(o asn1.ObjectIdentifier) *sigAlg {
	for i := range sigAlgs {
		if sigAlgs[i].oid.Equal(o) {
			return &sigAlgs[i]
		}
	}
	return nil
}

// Verified says how a signature was checked.
type Verified struct {
	Algorithm string   // e.g. "RSA with SHA-256", "SM2 with SM3"
	Warnings  []string // laxities that still verified: weak digests, odd encodings
	// ContentDigest is the digest of the content (with ContentDigestAlg) that a signature
	// with signed attributes covers, so a caller need not hash the content again.
	ContentDigest    []byte
	ContentDigestAlg string
}

// VerifyMessage checks sig, made by pub with the signature algorithm alg over the message
// that write produces (it may be called more than once). digestOID is the digest the
// SignerInfo names, used when alg does not fix one. It returns an error wrapping
// ErrBadSignature when the signature does not match, or ErrUnsupportedAlgorithm.
func VerifyMessage(pub any, alg pkix.AlgorithmIdentifier, digestOID asn1.ObjectIdentifier, write func(io.Writer), sig []byte) (*Verified, error) {
	a := sigAlgByOID(alg.Algorithm)
	if a == nil {
		return nil, fmt.Errorf("%w: signature algorithm %v", ErrUnsupportedAlgorithm, alg.Algorithm)
	}
	if a.family == 0 {
		return nil, fmt.Errorf("%w: %s is broken and not accepted", ErrUnsupportedAlgorithm, a.name)
	}
	v := &Verified{Algorithm: a.name}
	dOID := digestOID
	if a.digest != nil {
		if digestOID != nil && !a.digest.Equal(digestOID) && !sameDigest(a.digest, digestOID) {
			v.Warnings = append(v.Warnings, fmt.Sprintf("the signature algorithm %s names another digest than the SignerInfo (%v)", a.name, digestOID))
		}
		dOID = a.digest
	}
	switch a.family {
	case famSM2:
		key, ok := pub.(*ecdsa.PublicKey)
		if !ok || !IsSM2(key) {
			return nil, fmt.Errorf("%w: %s signature with a %T key", ErrBadSignature, a.name, pub)
		}
		if dOID != nil && !dOID.Equal(OIDSM3) {
			return nil, fmt.Errorf("%w: SM2 with digest %v", ErrUnsupportedAlgorithm, dOID)
		}
		v.Algorithm = "SM2 with SM3"
		h := NewSignatureHash(key)
		write(h)
		der, warn, err := lenientRS(sig, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: SM2 value: %v", ErrBadSignature, err)
		}
		v.Warnings = append(v.Warnings, warn...)
		if !sm2.VerifyASN1(key, h.Sum(nil), der) {
			return nil, fmt.Errorf("%w: SM2", ErrBadSignature)
		}
		return v, nil
	case famEd25519:
		key, ok := pub.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: Ed25519 signature with a %T key", ErrBadSignature, pub)
		}
		var buf bytesBuffer
		write(&buf)
		if !ed25519.Verify(key, buf.b, sig) {
			return nil, fmt.Errorf("%w: Ed25519", ErrBadSignature)
		}
		return v, nil
	case famEd448: // Cloudflare's circl, a maintained implementation (RFC 8032, pure Ed448)
		key, ok := pub.(ed448.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: Ed448 signature with a %T key", ErrBadSignature, pub)
		}
		var buf bytesBuffer
		write(&buf)
		if !ed448.Verify(key, buf.b, sig, "") {
			return nil, fmt.Errorf("%w: Ed448", ErrBadSignature)
		}
		return v, nil
	}
	var pssHash crypto.Hash
	var pssSalt int
	if a.family == famRSAPSS {
		h, salt, err := pssParams(alg.Parameters.FullBytes)
		if err != nil {
			return nil, err
		}
		pssHash, pssSalt = h, salt
		if d := digestByHash(h); d != nil {
			dOID = d.OID
		}
	}
	d, err := DigestByOID(dOID)
	if err != nil {
		return nil, err
	}
	if d.Hash == 0 {
		return nil, fmt.Errorf("%w: %s with %s", ErrUnsupportedAlgorithm, a.name, d.Name)
	}
	if a.name == "RSA" || a.name == "ECDSA" || a.name == "RSASSA-PSS" {
		v.Algorithm = a.name + " with " + d.Name
	}
	if d.Weak {
		v.Warnings = append(v.Warnings, "weak algorithm: "+d.Name+" (collisions are practical)")
	}
	if a.oid.Equal(oidECPublicKey) {
		v.Warnings = append(v.Warnings, "the signature algorithm is given as the key type id-ecPublicKey, not an ECDSA signature algorithm")
	}
	h := d.New()
	write(h)
	digest := h.Sum(nil)
	switch a.family {
	case famRSA, famRSAPSS:
		key, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: %s signature with a %T key", ErrBadSignature, a.name, pub)
		}
		if a.family == famRSAPSS {
			err = rsa.VerifyPSS(key, pssHash, digest, sig, &rsa.PSSOptions{SaltLength: pssSalt, Hash: pssHash})
		} else {
			err = rsa.VerifyPKCS1v15(key, d.Hash, digest, sig)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadSignature, v.Algorithm, err)
		}
		return v, nil
	case famECDSA, famECDSAPlain:
		size := 0
		switch key := pub.(type) {
		case *ecdsa.PublicKey:
			if IsSM2(key) {
				return nil, fmt.Errorf("%w: an ECDSA signature with an SM2 key", ErrBadSignature)
			}
			size = (key.Curve.Params().BitSize + 7) / 8
			der, warn, err := lenientRS(sig, size)
			if err != nil {
				return nil, fmt.Errorf("%w: ECDSA value: %v", ErrBadSignature, err)
			}
			v.Warnings = append(v.Warnings, warn...)
			if !ecdsa.VerifyASN1(key, digest, der) {
				return nil, fmt.Errorf("%w: %s", ErrBadSignature, v.Algorithm)
			}
			return v, nil
		case *ECKey:
			v.Algorithm += " (" + key.Curve.Name + ")"
			der, warn, err := lenientRS(sig, key.Curve.byteLen)
			if err != nil {
				return nil, fmt.Errorf("%w: ECDSA value: %v", ErrBadSignature, err)
			}
			v.Warnings = append(v.Warnings, warn...)
			var rs struct{ R, S *big.Int }
			if _, err := asn1.Unmarshal(der, &rs); err != nil || !key.verifyECDSA(digest, rs.R, rs.S) {
				return nil, fmt.Errorf("%w: %s", ErrBadSignature, v.Algorithm)
			}
			return v, nil
		}
		return nil, fmt.Errorf("%w: %s signature with a %T key", ErrBadSignature, a.name, pub)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedAlgorithm, a.name)
}

func sameDigest(a, b asn1.ObjectIdentifier) bool {
	da, err1 := DigestByOID(a)
	db, err2 := DigestByOID(b)
	return err1 == nil && err2 == nil && da.Name == db.Name
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) {
	if len(w.b)+len(p) > 64<<20 {
		return 0, errors.New("message too large to verify in memory")
	}
	w.b = append(w.b, p...)
	return len(p), nil
}

// pssParams reads RSASSA-PSS-params (RFC 4055): the hash (default SHA-1), MGF1 with the
// same hash, and the salt length (default 20).
func pssParams(der []byte) (crypto.Hash, int, error) {
	var p struct {
		Hash    pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
		MGF     pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
		Salt    int                      `asn1:"optional,explicit,tag:2,default:20"`
		Trailer int                      `asn1:"optional,explicit,tag:3,default:1"`
	}
	p.Salt, p.Trailer = 20, 1
	if len(der) > 0 {
		if _, err := asn1.Unmarshal(der, &p); err != nil {
			return 0, 0, fmt.Errorf("%w: RSASSA-PSS parameters: %v", ErrBadSignature, err)
		}
	}
	h := crypto.SHA1
	if p.Hash.Algorithm != nil {
		d, err := DigestByOID(p.Hash.Algorithm)
		if err != nil || d.Hash == 0 {
			return 0, 0, fmt.Errorf("%w: RSASSA-PSS with digest %v", ErrUnsupportedAlgorithm, p.Hash.Algorithm)
		}
		h = d.Hash
	}
	if p.MGF.Algorithm != nil {
		if !p.MGF.Algorithm.Equal(oidMGF1) {
			return 0, 0, fmt.Errorf("%w: RSASSA-PSS mask generation %v", ErrUnsupportedAlgorithm, p.MGF.Algorithm)
		}
		var mh pkix.AlgorithmIdentifier
		if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mh); err == nil {
			if d, err := DigestByOID(mh.Algorithm); err != nil || d.Hash != h {
				return 0, 0, fmt.Errorf("%w: RSASSA-PSS with MGF1 over another digest than the message's", ErrUnsupportedAlgorithm)
			}
		}
	}
	if p.Trailer != 1 {
		return 0, 0, fmt.Errorf("%w: RSASSA-PSS trailer field %d", ErrUnsupportedAlgorithm, p.Trailer)
	}
	return h, p.Salt, nil
}

// lenientRS returns an (EC)DSA signature value as strict DER SEQUENCE{r, s}. It accepts
// strict DER; raw r‖s of twice size bytes; and DER whose INTEGERs are negative (a missing
// 0x00 pad) or not minimal, which field encoders write: read as unsigned, with a warning.
func lenientRS(sig []byte, size int) ([]byte, []string, error) {
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err == nil && len(rest) == 0 && rs.R.Sign() > 0 && rs.S.Sign() > 0 {
		return sig, nil, nil
	}
	if size > 0 && len(sig) == 2*size {
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		der, _ := asn1.Marshal(struct{ R, S *big.Int }{r, s})
		return der, []string{"the signature value is raw r‖s, not a DER SEQUENCE"}, nil
	}
	// SEQUENCE { INTEGER, INTEGER } read by hand.
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(sig, &seq); err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
		return nil, nil, errors.New("neither DER SEQUENCE{r, s} nor raw r‖s")
	}
	var ints []*big.Int
	var warn []string
	for body := seq.Bytes; len(body) > 0; {
		if len(body) < 2 || body[0] != 0x02 {
			return nil, nil, errors.New("the SEQUENCE does not hold two INTEGERs")
		}
		n := int(body[1])
		off := 2
		if n&0x80 != 0 {
			k := n & 0x7f
			if k == 0 || k > 2 || len(body) < 2+k {
				return nil, nil, errors.New("bad INTEGER length")
			}
			n = 0
			for _, c := range body[2 : 2+k] {
				n = n<<8 | int(c)
			}
			off += k
		}
		if n == 0 || len(body) < off+n {
			return nil, nil, errors.New("truncated INTEGER")
		}
		v := body[off : off+n]
		if v[0]&0x80 != 0 {
			warn = append(warn, "an INTEGER of the signature value is negative in DER (its 0x00 pad is missing): read as unsigned")
		} else if len(v) > 1 && v[0] == 0 && v[1]&0x80 == 0 {
			warn = append(warn, "an INTEGER of the signature value is not minimally encoded")
		}
		ints = append(ints, new(big.Int).SetBytes(v))
		body = body[off+n:]
	}
	if len(ints) != 2 {
		return nil, nil, errors.New("the SEQUENCE does not hold two INTEGERs")
	}
	der, _ := asn1.Marshal(struct{ R, S *big.Int }{ints[0], ints[1]})
	return der, warn, nil
}
