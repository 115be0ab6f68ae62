package signing

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"sort"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// CMS (RFC 5652) SignedData, only as far as timestamps need it: one signer identified by
// issuer and serial, signed attributes, SM2 with SM3.

var (
	oidSignedData            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidTSTInfo               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidAttrContentType       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningCert       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidAttrSigningCertV2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidSHA256                = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	errUnsupportedCMSFeature = errors.New("unsupported CMS feature")
)

// tlv encodes a DER element with a one-byte tag.
func tlv(tag byte, body []byte) []byte {
	n := len(body)
	var out []byte
	switch {
	case n < 0x80:
		out = append(out, tag, byte(n))
	case n < 0x100:
		out = append(out, tag, 0x81, byte(n))
	case n < 0x10000:
		out = append(out, tag, 0x82, byte(n>>8), byte(n))
	case n < 0x1000000:
		out = append(out, tag, 0x83, byte(n>>16), byte(n>>8), byte(n))
	default:
		out = append(out, tag, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(out, body...)
}

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("signing: marshal %T: %v", v, err))
	}
	return b
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

func makeAttribute(typ asn1.ObjectIdentifier, valueDER []byte) []byte {
	return tlv(0x30, append(mustMarshal(typ), tlv(0x31, valueDER)...))
}

// derSet sorts DER elements as X.690 requires for SET OF and concatenates them.
func derSet(elems [][]byte) []byte {
	sort.Slice(elems, func(i, j int) bool { return bytes.Compare(elems[i], elems[j]) < 0 })
	return bytes.Join(elems, nil)
}

// essCertIDv2 identifies the signer's certificate by its SM3 hash and issuer/serial.
func essCertIDv2(cert *smx509.Certificate) []byte {
	h := sm3.Sum(cert.Raw)
	alg := mustMarshal(pkix.AlgorithmIdentifier{Algorithm: OIDSM3})
	issuerSerial := tlv(0x30, append(tlv(0x30, tlv(0xA4, cert.RawIssuer)), mustMarshal(cert.SerialNumber)...))
	id := tlv(0x30, bytes.Join([][]byte{alg, tlv(0x04, h[:]), issuerSerial}, nil))
	return tlv(0x30, tlv(0x30, id)) // SigningCertificateV2 { certs SEQUENCE OF ESSCertIDv2 }
}

// signCMS makes a DER ContentInfo holding SignedData v3 over content of type contentType,
// signed by id with SM2/SM3, carrying id's certificates.
func signCMS(id *Identity, contentType asn1.ObjectIdentifier, content []byte) ([]byte, error) {
	digest := sm3.Sum(content)
	attrs := derSet([][]byte{
		makeAttribute(oidAttrContentType, mustMarshal(contentType)),
		makeAttribute(oidAttrMessageDigest, tlv(0x04, digest[:])),
		makeAttribute(oidAttrSigningCertV2, essCertIDv2(id.Cert)),
	})
	sig, err := Sign(id.Key, tlv(0x31, attrs))
	if err != nil {
		return nil, fmt.Errorf("sign CMS attributes: %w", err)
	}
	eContent := tlv(0xA0, tlv(0x04, content))
	return assembleSignedData(id, 3, oidSignedData, contentType, eContent, attrs, sig, nil), nil
}

// assembleSignedData builds a DER ContentInfo (of type outer) holding a SignedData with
// one signer, id, whose signature sig over the signed attributes attrs is already made.
// eContent is the [0] content, or nil for a detached signature; unsigned the [1]
// attributes, or nil.
func assembleSignedData(id *Identity, version int, outer, contentType asn1.ObjectIdentifier, eContent, attrs, sig, unsigned []byte) []byte {
	sm3Alg := mustMarshal(pkix.AlgorithmIdentifier{Algorithm: OIDSM3})
	signerInfo := tlv(0x30, bytes.Join([][]byte{
		mustMarshal(1),
		tlv(0x30, append(append([]byte{}, id.Cert.RawIssuer...), mustMarshal(id.Cert.SerialNumber)...)),
		sm3Alg,
		tlv(0xA0, attrs),
		mustMarshal(pkix.AlgorithmIdentifier{Algorithm: OIDSM2WithSM3}),
		tlv(0x04, sig),
		unsigned,
	}, nil))
	var certs [][]byte
	for _, c := range id.Certificates() {
		certs = append(certs, c.Raw)
	}
	signedData := tlv(0x30, bytes.Join([][]byte{
		mustMarshal(version),
		tlv(0x31, sm3Alg),
		tlv(0x30, append(mustMarshal(contentType), eContent...)),
		tlv(0xA0, bytes.Join(certs, nil)),
		tlv(0x31, signerInfo),
	}, nil))
	return tlv(0x30, append(mustMarshal(outer), tlv(0xA0, signedData)...))
}

// Parsing structures.

type rawContent struct{ Raw asn1.RawContent }

type contentInfoIn struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,tag:0"`
}

type encapContentInfoIn struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedDataIn struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfoIn
	Certificates     rawContent     `asn1:"optional,tag:0"`
	CRLs             rawContent     `asn1:"optional,tag:1"`
	SignerInfos      []signerInfoIn `asn1:"set"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type signerInfoIn struct {
	Version            int
	SID                issuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        rawContent `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      rawContent `asn1:"optional,tag:1"`
}

// parsedCMS is a verified-structure view of a SignedData with one signer.
type parsedCMS struct {
	ContentType asn1.ObjectIdentifier
	Content     []byte
	Certs       []*smx509.Certificate
	Signer      *smx509.Certificate
	signerInfo  signerInfoIn
	attrs       map[string][]byte // attribute OID → first value DER
}

func parseCMS(der []byte) (*parsedCMS, error) {
	var ci contentInfoIn
	if rest, err := asn1.Unmarshal(der, &ci); err != nil {
		return nil, fmt.Errorf("parse ContentInfo: %w", err)
	} else if len(rest) > 0 {
		return nil, errors.New("parse ContentInfo: trailing data")
	}
	if !ci.ContentType.Equal(oidSignedData) && !ci.ContentType.Equal(OIDGMSignedData) {
		return nil, fmt.Errorf("%w: content type %v is not SignedData", errUnsupportedCMSFeature, ci.ContentType)
	}
	var sd signedDataIn
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("parse SignedData: %w", err)
	}
	p := &parsedCMS{ContentType: sd.EncapContentInfo.EContentType, attrs: map[string][]byte{}}
	if sd.Version < 1 || sd.Version > 5 || (!p.ContentType.Equal(OIDGMData) && !p.ContentType.Equal(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}) && sd.Version != 3) {
		return nil, fmt.Errorf("SignedData version %d is not allowed for content type %v (RFC 5652 §5.1)", sd.Version, p.ContentType)
	}
	if len(sd.EncapContentInfo.EContent.Bytes) > 0 {
		var octets []byte
		if _, err := asn1.Unmarshal(sd.EncapContentInfo.EContent.Bytes, &octets); err != nil {
			return nil, fmt.Errorf("parse eContent: %w", err)
		}
		p.Content = octets
	}
	if len(sd.Certificates.Raw) > 0 {
		var outer asn1.RawValue
		if _, err := asn1.Unmarshal(sd.Certificates.Raw, &outer); err != nil {
			return nil, fmt.Errorf("parse certificates: %w", err)
		}
		for rest := outer.Bytes; len(rest) > 0; {
			var one asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &one); err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			if one.Class != asn1.ClassUniversal {
				continue // attribute certificates and others are not used here
			}
			c, err := smx509.ParseCertificate(one.FullBytes)
			if err != nil {
				return nil, fmt.Errorf("parse certificate: %w", err)
			}
			p.Certs = append(p.Certs, c)
		}
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("%w: %d signers, expected exactly one", errUnsupportedCMSFeature, len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	p.signerInfo = si
	listed := false
	for _, a := range sd.DigestAlgorithms {
		listed = listed || a.Algorithm.Equal(si.DigestAlgorithm.Algorithm)
	}
	if !listed {
		return nil, errors.New("the signer's digest algorithm is not listed in SignedData.digestAlgorithms")
	}
	if si.Version != 1 {
		return nil, fmt.Errorf("%w: SignerInfo version %d (only issuerAndSerialNumber signers)", errUnsupportedCMSFeature, si.Version)
	}
	for _, c := range p.Certs {
		if bytes.Equal(c.RawIssuer, si.SID.Issuer.FullBytes) && c.SerialNumber.Cmp(si.SID.Serial) == 0 {
			p.Signer = c
		}
	}
	if len(si.SignedAttrs.Raw) == 0 {
		return nil, fmt.Errorf("%w: no signed attributes", errUnsupportedCMSFeature)
	}
	var set asn1.RawValue
	if _, err := asn1.Unmarshal(si.SignedAttrs.Raw, &set); err != nil {
		return nil, fmt.Errorf("parse signed attributes: %w", err)
	}
	for rest := set.Bytes; len(rest) > 0; {
		var a attribute
		var err error
		if rest, err = asn1.Unmarshal(rest, &a); err != nil {
			return nil, fmt.Errorf("parse signed attribute: %w", err)
		}
		var first asn1.RawValue
		if _, err := asn1.Unmarshal(a.Values.Bytes, &first); err != nil {
			return nil, fmt.Errorf("parse signed attribute %v: %w", a.Type, err)
		}
		p.attrs[a.Type.String()] = first.FullBytes
	}
	return p, nil
}

func hashForOID(oid asn1.ObjectIdentifier) (hash.Hash, error) {
	switch {
	case oid.Equal(OIDSM3):
		return sm3.New(), nil
	case oid.Equal(oidSHA256):
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("%w: digest algorithm %v", errUnsupportedCMSFeature, oid)
}

// verifySignature checks the message digest, the signing-certificate attribute and the
// signer's SM2 signature over the signed attributes. It does not check the chain.
func (p *parsedCMS) verifySignature() error {
	h, err := hashForOID(p.signerInfo.DigestAlgorithm.Algorithm)
	if err != nil {
		return err
	}
	h.Write(p.Content)
	return p.verifySignatureOver(h.Sum(nil), true)
}

// verifySignatureOver checks the signature given the digest of the content (which may be
// detached); requireCertAttr says whether an ESS signing-certificate attribute must be there.
func (p *parsedCMS) verifySignatureOver(digest []byte, requireCertAttr bool) error {
	if p.Signer == nil {
		return errors.New("the signer's certificate is not in the SignedData")
	}
	ct, ok := p.attrs[oidAttrContentType.String()]
	if !ok || !bytes.Equal(ct, mustMarshal(p.ContentType)) {
		return errors.New("content-type attribute missing or different from the content")
	}
	md, ok := p.attrs[oidAttrMessageDigest.String()]
	if !ok {
		return errors.New("message-digest attribute missing")
	}
	var got []byte
	if _, err := asn1.Unmarshal(md, &got); err != nil {
		return fmt.Errorf("parse message-digest attribute: %w", err)
	}
	if !bytes.Equal(got, digest) {
		return ErrDigestMismatch
	}
	_, v2 := p.attrs[oidAttrSigningCertV2.String()]
	_, v1 := p.attrs[oidAttrSigningCert.String()]
	if requireCertAttr || v1 || v2 {
		if err := p.checkSigningCertAttr(); err != nil {
			return err
		}
	}
	pub, ok := p.Signer.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return fmt.Errorf("%w: signer key %T is not SM2", errUnsupportedCMSFeature, p.Signer.PublicKey)
	}
	alg := p.signerInfo.SignatureAlgorithm.Algorithm
	if !alg.Equal(OIDSM2WithSM3) && !alg.Equal(OIDSM2Sign) && !alg.Equal(OIDSM2Curve) {
		return fmt.Errorf("%w: signature algorithm %v", errUnsupportedCMSFeature, alg)
	}
	signed := append([]byte{0x31}, p.signerInfo.SignedAttrs.Raw[1:]...)
	if err := Verify(pub, signed, p.signerInfo.Signature); err != nil {
		return fmt.Errorf("CMS signer signature: %w", err)
	}
	return nil
}

// checkSigningCertAttr checks ESS signingCertificateV2 (or v1) against the signer.
func (p *parsedCMS) checkSigningCertAttr() error {
	if v2, ok := p.attrs[oidAttrSigningCertV2.String()]; ok {
		var sc struct{ Certs []asn1.RawValue }
		if _, err := asn1.Unmarshal(v2, &sc); err != nil || len(sc.Certs) == 0 {
			return errors.New("malformed signingCertificateV2 attribute")
		}
		var fields []asn1.RawValue
		for rest := sc.Certs[0].Bytes; len(rest) > 0; {
			var f asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &f); err != nil {
				return fmt.Errorf("parse ESSCertIDv2: %w", err)
			}
			fields = append(fields, f)
		}
		alg := pkix.AlgorithmIdentifier{Algorithm: oidSHA256} // the DEFAULT
		if len(fields) > 0 && fields[0].Tag == asn1.TagSequence {
			if _, err := asn1.Unmarshal(fields[0].FullBytes, &alg); err != nil {
				return fmt.Errorf("parse ESSCertIDv2 algorithm: %w", err)
			}
			fields = fields[1:]
		}
		if len(fields) == 0 || fields[0].Tag != asn1.TagOctetString {
			return errors.New("ESSCertIDv2 has no certHash")
		}
		h, err := hashForOID(alg.Algorithm)
		if err != nil {
			return err
		}
		h.Write(p.Signer.Raw)
		if !bytes.Equal(h.Sum(nil), fields[0].Bytes) {
			return errors.New("signingCertificateV2 does not name the signer's certificate")
		}
		return nil
	}
	if v1, ok := p.attrs[oidAttrSigningCert.String()]; ok {
		var sc struct{ Certs []struct{ Hash []byte } }
		if _, err := asn1.Unmarshal(v1, &sc); err != nil || len(sc.Certs) == 0 {
			return errors.New("malformed signingCertificate attribute")
		}
		h := sha1.Sum(p.Signer.Raw)
		if !bytes.Equal(h[:], sc.Certs[0].Hash) {
			return errors.New("signingCertificate does not name the signer's certificate")
		}
		return nil
	}
	return errors.New("no signingCertificate(V2) attribute: the signer certificate is not bound (RFC 3161 §2.4.1)")
}
