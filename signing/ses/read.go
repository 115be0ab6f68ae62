package ses

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
)

// Reading seals and seal signatures as issuers make them. GB/T 38540-2020 (SES v4) is the
// standard; GM/T 0031-2014 (v1 to v3) is what many issuers still produce:
//
//	SES_Signature v4 ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgID OID,
//	                                signature BIT STRING, timeStamp [0] EXPLICIT BIT STRING OPTIONAL }
//	SES_Signature v1 ::= SEQUENCE { toSign TBS_Sign, signature BIT STRING }
//	TBS_Sign v1      ::= SEQUENCE { version, eseal, timeInfo BIT STRING, dataHash BIT STRING,
//	                                propertyInfo IA5String, cert OCTET STRING, signatureAlgorithm OID }
//	SESeal v4        ::= SEQUENCE { eSealInfo, cert OCTET STRING, signAlgID OID, signedValue BIT STRING }
//	SESeal v1        ::= SEQUENCE { esealInfo, signInfo SEQUENCE { cert, signatureAlgorithm, signData } }
//
// The reader goes by shape, not by the version numbers (issuers mix them), and accepts
// what the field writes and a strict DER reader refuses: BIT STRINGs whose "unused bits"
// octet is not zero (the bytes are verified as stored), SM2 values with negative or
// non-minimal INTEGERs, raw r‖s values, times written as text in a BIT STRING, BER. Each
// is a warning: such a file is never called well-formed.

// ErrFormat is returned (wrapped) for bytes that are not an SES seal or seal signature.
var ErrFormat = errors.New("not an SES seal or seal signature")

// Layouts.
const (
	LayoutV4 = "GB/T 38540-2020 (SES v4)"
	LayoutV1 = "GM/T 0031-2014"
)

// node is one TLV of a DER (or DER-like) structure.
type node struct {
	class, tag int
	compound   bool
	full, body []byte
	kids       []*node
}

const maxNodeDepth = 32

func parseNode(b []byte, depth int) (*node, []byte, error) {
	if depth > maxNodeDepth {
		return nil, nil, errors.New("nested too deep")
	}
	var raw asn1.RawValue
	rest, err := asn1.Unmarshal(b, &raw)
	if err != nil {
		return nil, nil, err
	}
	n := &node{class: raw.Class, tag: raw.Tag, compound: raw.IsCompound, full: raw.FullBytes, body: raw.Bytes}
	if n.compound {
		for c := n.body; len(c) > 0; {
			var k *node
			if k, c, err = parseNode(c, depth+1); err != nil {
				return nil, nil, err
			}
			n.kids = append(n.kids, k)
		}
	}
	return n, rest, nil
}

func (n *node) is(tag int) bool { return n != nil && n.class == asn1.ClassUniversal && n.tag == tag }

func (n *node) kid(i int) *node {
	if n == nil || i >= len(n.kids) {
		return nil
	}
	return n.kids[i]
}

// reader collects warnings while it interprets nodes.
type reader struct{ warn []string }

func (r *reader) warnf(format string, a ...any) {
	r.warn = appendOnce(r.warn, fmt.Sprintf(format, a...))
}

// appendOnce adds the warnings not yet in list.
func appendOnce(list []string, ws ...string) []string {
	for _, w := range ws {
		if !slices.Contains(list, w) {
			list = append(list, w)
		}
	}
	return list
}

// bits returns a BIT STRING's bytes as stored, warning when its unused-bits octet is not 0.
func (r *reader) bits(n *node, what string) ([]byte, error) {
	if !n.is(asn1.TagBitString) || len(n.body) == 0 {
		return nil, fmt.Errorf("%w: %s is not a BIT STRING", ErrFormat, what)
	}
	if n.body[0] != 0 {
		r.warnf("the BIT STRING of %s declares %d unused bits (the bytes are taken as stored)", what, n.body[0])
	}
	return n.body[1:], nil
}

func (r *reader) integer(n *node, what string) (int, error) {
	if !n.is(asn1.TagInteger) || len(n.body) == 0 || len(n.body) > 4 {
		return 0, fmt.Errorf("%w: %s is not a small INTEGER", ErrFormat, what)
	}
	return int(new(big.Int).SetBytes(n.body).Int64()), nil
}

func (r *reader) oid(n *node, what string) (asn1.ObjectIdentifier, error) {
	var o asn1.ObjectIdentifier
	if !n.is(asn1.TagOID) {
		return nil, fmt.Errorf("%w: %s is not an OBJECT IDENTIFIER", ErrFormat, what)
	}
	if _, err := asn1.Unmarshal(n.full, &o); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, what, err)
	}
	return o, nil
}

// text reads any string type (IA5, UTF8, Printable, Visual, OCTET) as text.
func (r *reader) text(n *node) string {
	if n == nil || n.compound {
		return ""
	}
	return string(n.body)
}

func (r *reader) octets(n *node, what string) ([]byte, error) {
	if !n.is(asn1.TagOctetString) {
		return nil, fmt.Errorf("%w: %s is not an OCTET STRING", ErrFormat, what)
	}
	return n.body, nil
}

var textTimes = []string{"20060102150405.000Z", "20060102150405Z", "060102150405Z", "2006-01-02 15:04:05", "2006-01-02T15:04:05Z07:00", "20060102150405"}

// time reads a time as issuers write it: GeneralizedTime or UTCTime, or text (or epoch
// seconds) in a BIT STRING or a string.
func (r *reader) time(n *node, what string) time.Time {
	switch {
	case n.is(asn1.TagGeneralizedTime), n.is(asn1.TagUTCTime):
		var t time.Time
		if _, err := asn1.Unmarshal(n.full, &t); err == nil {
			return t
		}
		// Go refuses fractions it does not expect; read the text.
	case n == nil:
		return time.Time{}
	}
	s := string(n.body)
	if n.is(asn1.TagBitString) && len(n.body) > 0 {
		s = string(n.body[1:])
		r.warnf("%s is text in a BIT STRING (GM/T 0031-2014), not a GeneralizedTime", what)
	}
	s = strings.TrimSpace(strings.TrimRight(s, "\x00"))
	for _, f := range textTimes {
		if t, err := time.Parse(f, s); err == nil {
			return t
		}
	}
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil && secs > 0 && len(s) <= 11 {
		r.warnf("%s is seconds since 1970 (%s)", what, s)
		return time.Unix(secs, 0).UTC()
	}
	r.warnf("%s %q is not a time this reader knows", what, s)
	return time.Time{}
}

func (r *reader) cert(der []byte, what string) (*smx509.Certificate, error) {
	c, warn, err := signing.ParseCertificateLenient(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrFormat, what, err)
	}
	for _, w := range warn {
		r.warnf("%s: %s", what, w)
	}
	return c, nil
}

// Seal is a parsed SESeal.
type Seal struct {
	Layout      string
	Version     int
	ID          string
	VID         string
	Type        int
	Name        string
	HolderCerts []*smx509.Certificate
	Created     time.Time
	ValidFrom   time.Time
	ValidTo     time.Time
	PictureType string
	Picture     []byte
	WidthMM     int
	HeightMM    int
	Maker       *smx509.Certificate
	Raw         []byte
	Warnings    []string

	signedBy [][]byte // what the maker may have signed, in order of preference
	alg      asn1.ObjectIdentifier
	sig      []byte
}

// ParseSeal reads a SESeal (Seal.esl).
func ParseSeal(der []byte) (*Seal, error) {
	n, rest, err := parseNode(der, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: SESeal: %v", ErrFormat, err)
	}
	r := &reader{}
	if len(bytes.TrimRight(rest, "\x00")) > 0 {
		return nil, fmt.Errorf("%w: SESeal: %d bytes after it", ErrFormat, len(rest))
	}
	s, err := r.seal(n)
	if err != nil {
		return nil, err
	}
	s.Warnings = r.warn
	return s, nil
}

func (r *reader) seal(n *node) (*Seal, error) {
	if !n.is(asn1.TagSequence) {
		return nil, fmt.Errorf("%w: SESeal is not a SEQUENCE", ErrFormat)
	}
	s := &Seal{Raw: n.full}
	info := n.kid(0)
	var certDER []byte
	var algNode, sigNode *node
	var err error
	switch {
	case len(n.kids) == 4 && n.kid(1).is(asn1.TagOctetString):
		s.Layout = LayoutV4
		certDER, algNode, sigNode = n.kid(1).body, n.kid(2), n.kid(3)
	case len(n.kids) == 2 && n.kid(1).is(asn1.TagSequence) && len(n.kid(1).kids) == 3:
		s.Layout = LayoutV1
		si := n.kid(1)
		if certDER, err = r.octets(si.kid(0), "the seal maker's certificate"); err != nil {
			return nil, err
		}
		algNode, sigNode = si.kid(1), si.kid(2)
	default:
		return nil, fmt.Errorf("%w: SESeal has %d elements, neither the v4 nor the GM/T 0031 layout", ErrFormat, len(n.kids))
	}
	if s.alg, err = r.oid(algNode, "the seal's signature algorithm"); err != nil {
		return nil, err
	}
	if s.sig, err = r.bits(sigNode, "the seal maker's signature"); err != nil {
		return nil, err
	}
	if s.Maker, err = r.cert(certDER, "the seal maker's certificate"); err != nil {
		return nil, err
	}
	// v4 signs SES_SealInfo; GM/T 0031 signs SEQUENCE { esealInfo, cert, signatureAlgorithm }.
	both := tlvSeq(info.full, tlvOctets(certDER), algNode.full)
	if s.Layout == LayoutV4 {
		s.signedBy = [][]byte{info.full, both}
	} else {
		s.signedBy = [][]byte{both, info.full}
	}
	if !info.is(asn1.TagSequence) || len(info.kids) < 4 {
		return nil, fmt.Errorf("%w: SES_SealInfo is not a SEQUENCE of header, id, property and picture", ErrFormat)
	}
	h := info.kid(0)
	if !h.is(asn1.TagSequence) || len(h.kids) < 2 {
		return nil, fmt.Errorf("%w: the seal header is not a SEQUENCE", ErrFormat)
	}
	if r.text(h.kid(0)) != "ES" {
		return nil, fmt.Errorf("%w: seal header id %q, not ES", ErrFormat, r.text(h.kid(0)))
	}
	if s.Version, err = r.integer(h.kid(1), "the seal version"); err != nil {
		return nil, err
	}
	s.VID = r.text(h.kid(2))
	s.ID = r.text(info.kid(1))
	if (s.Version == 4) != (s.Layout == LayoutV4) {
		r.warnf("the seal header says version %d, but the seal has the %s layout", s.Version, s.Layout)
	}
	p := info.kid(2)
	if !p.is(asn1.TagSequence) || len(p.kids) < 5 {
		return nil, fmt.Errorf("%w: the seal property is not a SEQUENCE", ErrFormat)
	}
	s.Type, _ = r.integer(p.kid(0), "the seal type")
	s.Name = r.text(p.kid(1))
	i := 2
	if p.kid(i).is(asn1.TagInteger) { // v4: certListType
		i++
	}
	if cl := p.kid(i); cl != nil && cl.compound {
		for _, c := range cl.kids {
			if c.is(asn1.TagOctetString) {
				if cert, err := r.cert(c.body, "a holder certificate of the seal"); err == nil {
					s.HolderCerts = append(s.HolderCerts, cert)
				}
			}
		}
		i++
	}
	s.Created = r.time(p.kid(i), "the seal's creation date")
	s.ValidFrom = r.time(p.kid(i+1), "the seal's start of validity")
	s.ValidTo = r.time(p.kid(i+2), "the seal's end of validity")
	if pic := info.kid(3); pic.is(asn1.TagSequence) {
		s.PictureType = r.text(pic.kid(0))
		s.Picture = pic.kid(1).bodyOrNil()
		s.WidthMM, _ = r.integer(pic.kid(2), "the picture width")
		s.HeightMM, _ = r.integer(pic.kid(3), "the picture height")
	}
	return s, nil
}

func (n *node) bodyOrNil() []byte {
	if n == nil {
		return nil
	}
	return n.body
}

func tlvSeq(parts ...[]byte) []byte {
	b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: bytes.Join(parts, nil)})
	return b
}

func tlvOctets(b []byte) []byte {
	out, _ := asn1.Marshal(b)
	return out
}

// VerifyMaker checks the maker's signature over the seal (over SES_SealInfo, or over
// SEQUENCE{esealInfo, cert, signatureAlgorithm} in the GM/T 0031 layout). It does not
// check the maker's chain.
func (s *Seal) VerifyMaker() error {
	var first error
	for _, msg := range s.signedBy {
		warn, err := verifySM2w(s.Maker, s.alg, msg, s.sig)
		if err == nil {
			s.Warnings = appendOnce(s.Warnings, warn...)
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// ValidAt reports whether t is inside the seal's validity period.
func (s *Seal) ValidAt(t time.Time) bool {
	return !t.Before(s.ValidFrom) && !t.After(s.ValidTo)
}

// Signature is a parsed SES_Signature.
type Signature struct {
	Layout    string
	Version   int
	Seal      *Seal
	Time      time.Time
	DataHash  []byte
	Property  string // the path of the signed Signature.xml
	Signer    *smx509.Certificate
	TimeStamp []byte   // an RFC 3161 token over the signature value, if any
	Warnings  []string // the laxities read, the seal's included

	tbsDER []byte
	alg    asn1.ObjectIdentifier
	sig    []byte
}

// Parse reads an SES_Signature (SignedValue.dat) of either layout.
func Parse(der []byte) (*Signature, error) {
	r := &reader{}
	n, rest, err := parseNode(der, 0)
	if err != nil {
		fixed, _, berErr := signing.BERToDER(der)
		if berErr != nil {
			return nil, fmt.Errorf("%w: SES_Signature: %v", ErrFormat, err)
		}
		if n, rest, err = parseNode(fixed, 0); err != nil {
			return nil, fmt.Errorf("%w: SES_Signature: %v", ErrFormat, err)
		}
		r.warnf("the seal signature is BER-encoded, not DER")
	}
	if len(bytes.TrimRight(rest, "\x00")) > 0 {
		return nil, fmt.Errorf("%w: SES_Signature: %d bytes after it", ErrFormat, len(rest))
	}
	if !n.is(asn1.TagSequence) {
		return nil, fmt.Errorf("%w: SES_Signature is not a SEQUENCE", ErrFormat)
	}
	s := &Signature{}
	tbs := n.kid(0)
	if !tbs.is(asn1.TagSequence) || len(tbs.kids) < 5 {
		return nil, fmt.Errorf("%w: TBS_Sign is not a SEQUENCE of at least five elements", ErrFormat)
	}
	s.tbsDER = tbs.full
	var certDER []byte
	switch {
	case len(n.kids) >= 4 && len(n.kids) <= 5 && n.kid(1).is(asn1.TagOctetString):
		s.Layout = LayoutV4
		certDER = n.kid(1).body
		if s.alg, err = r.oid(n.kid(2), "the signature algorithm"); err != nil {
			return nil, err
		}
		if s.sig, err = r.bits(n.kid(3), "the signature"); err != nil {
			return nil, err
		}
		if ts := n.kid(4); ts != nil {
			if ts.class != asn1.ClassContextSpecific || ts.tag != 0 || len(ts.kids) != 1 {
				return nil, fmt.Errorf("%w: the timeStamp is not [0] EXPLICIT BIT STRING", ErrFormat)
			}
			if s.TimeStamp, err = r.bits(ts.kid(0), "the timestamp"); err != nil {
				return nil, err
			}
		}
	case len(n.kids) == 2 && n.kid(1).is(asn1.TagBitString) && len(tbs.kids) >= 7:
		s.Layout = LayoutV1
		if certDER, err = r.octets(tbs.kid(5), "the signer's certificate"); err != nil {
			return nil, err
		}
		if s.alg, err = r.oid(tbs.kid(6), "the signature algorithm"); err != nil {
			return nil, err
		}
		if s.sig, err = r.bits(n.kid(1), "the signature"); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: SES_Signature has %d elements, neither the v4 nor the GM/T 0031 layout", ErrFormat, len(n.kids))
	}
	if s.Version, err = r.integer(tbs.kid(0), "the TBS_Sign version"); err != nil {
		return nil, err
	}
	if (s.Version == 4) != (s.Layout == LayoutV4) {
		r.warnf("TBS_Sign says version %d, but the signature has the %s layout", s.Version, s.Layout)
	}
	if s.Seal, err = r.seal(tbs.kid(1)); err != nil {
		return nil, err
	}
	s.Time = r.time(tbs.kid(2), "the signing time")
	if s.Layout == LayoutV4 && !tbs.kid(2).is(asn1.TagGeneralizedTime) {
		r.warnf("the signing time is not a GeneralizedTime (GB/T 38540 requires one)")
	}
	if s.DataHash, err = r.bits(tbs.kid(3), "the data hash"); err != nil {
		return nil, err
	}
	s.Property = strings.TrimRight(r.text(tbs.kid(4)), "\x00")
	if s.Signer, err = r.cert(certDER, "the signer's certificate"); err != nil {
		return nil, err
	}
	s.Warnings = r.warn
	return s, nil
}

// VerifySignature checks the signer's SM2 signature over TBS_Sign. Laxities of the
// signature value's encoding are added to Warnings.
func (s *Signature) VerifySignature() error {
	w, err := verifySM2w(s.Signer, s.alg, s.tbsDER, s.sig)
	s.Warnings = appendOnce(s.Warnings, w...)
	return err
}

// SignerHoldsSeal reports whether the signer's certificate is one the seal lists.
func (s *Signature) SignerHoldsSeal() bool {
	for _, c := range s.Seal.HolderCerts {
		if c.Equal(s.Signer) {
			return true
		}
	}
	return false
}

// SignatureValue is the signer's signature value (what the timestamp covers).
func (s *Signature) SignatureValue() []byte { return s.sig }

// VerifyTimeStamp checks the timestamp token (SM3 imprint, a TSA chaining to roots) over
// the signature value.
func (s *Signature) VerifyTimeStamp(roots *smx509.CertPool) (*signing.TokenInfo, error) {
	if len(s.TimeStamp) == 0 {
		return nil, errors.New("the seal signature has no timestamp")
	}
	h := sm3.Sum(s.sig)
	return signing.VerifyToken(s.TimeStamp, h[:], roots)
}

// verifySM2w checks an SM2/SM3 signature of a seal or seal signature. The algorithm must
// be an SM2 one; issuers that name another OID there (the GM/T 0010 signedData OID, say)
// are accepted with a warning when the key is SM2 and the signature verifies.
func verifySM2w(cert *smx509.Certificate, alg asn1.ObjectIdentifier, msg, sig []byte) ([]string, error) {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !signing.IsSM2(pub) {
		return nil, fmt.Errorf("the key of %q is not SM2", cert.Subject.CommonName)
	}
	var warn []string
	if !alg.Equal(signing.OIDSM2WithSM3) && !alg.Equal(signing.OIDSM2Sign) {
		warn = append(warn, fmt.Sprintf("the signature algorithm is given as %v, not SM2 with SM3", alg))
		alg = signing.OIDSM2WithSM3
	}
	v, err := signing.VerifyMessage(pub, pkix.AlgorithmIdentifier{Algorithm: alg}, signing.OIDSM3, func(w io.Writer) { w.Write(msg) }, sig)
	if err != nil {
		return warn, err
	}
	return append(warn, v.Warnings...), nil
}
