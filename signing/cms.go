package signing

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"sort"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// CMS (RFC 5652) SignedData. dangan writes one signer identified by issuer and serial,
// with signed attributes, SM2 with SM3 (GB/T 35275: signatureAlgorithm sm2-1). It reads
// what other software writes: any algorithm of the registry (algorithms.go), signers named
// by subject key identifier, signatures without signed attributes, encapsulated content.

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
		mustMarshal(pkix.AlgorithmIdentifier{Algorithm: OIDSM2Sign}), // GB/T 35275-2017: sm2-1 here, not 501
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
	SID                asn1.RawValue // issuerAndSerialNumber, or [0] subjectKeyIdentifier
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        rawContent `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      rawContent `asn1:"optional,tag:1"`
}

// parsedCMS is a verified-structure view of a SignedData, as far as its first signer.
type parsedCMS struct {
	ContentType asn1.ObjectIdentifier
	Content     []byte
	// HasContent reports an encapsulated content, even an empty one: the signature is then
	// over it, not over data kept elsewhere.
	HasContent bool
	Certs      []*smx509.Certificate
	Signer     *smx509.Certificate
	Signers    int      // how many SignerInfos the SignedData has
	Warnings   []string // laxities of the encoding that do not stop verification
	signerInfo signerInfoIn
	attrs      map[string][]byte // attribute OID → first value DER
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
	if sd.Version < 1 || sd.Version > 5 {
		return nil, fmt.Errorf("SignedData version %d (RFC 5652 §5.1)", sd.Version)
	}
	if p.ContentType.Equal(oidTSTInfo) && sd.Version != 3 {
		return nil, fmt.Errorf("SignedData version %d is not allowed for content type %v (RFC 5652 §5.1)", sd.Version, p.ContentType)
	}
	if len(sd.EncapContentInfo.EContent.FullBytes) > 0 {
		p.HasContent = true
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
			c, warn, err := ParseCertificateLenient(one.FullBytes)
			if err != nil {
				p.Warnings = append(p.Warnings, "a certificate in the SignedData does not parse: "+err.Error())
				continue
			}
			p.Warnings = append(p.Warnings, warn...)
			p.Certs = append(p.Certs, c)
		}
	}
	if len(sd.SignerInfos) == 0 {
		return nil, fmt.Errorf("%w: no signers", errUnsupportedCMSFeature)
	}
	p.Signers = len(sd.SignerInfos)
	si := sd.SignerInfos[0]
	p.signerInfo = si
	listed := false
	for _, a := range sd.DigestAlgorithms {
		listed = listed || a.Algorithm.Equal(si.DigestAlgorithm.Algorithm)
	}
	if !listed {
		p.Warnings = append(p.Warnings, "the signer's digest algorithm is not listed in SignedData.digestAlgorithms")
	}
	bySKI := si.SID.Class == asn1.ClassContextSpecific && si.SID.Tag == 0
	if (bySKI && si.Version != 3) || (!bySKI && si.Version != 1) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("SignerInfo version %d does not match its signer identifier (RFC 5652 §5.3)", si.Version))
	}
	if sd.Version != 1 && sd.Version != 3 && !p.ContentType.Equal(oidTSTInfo) {
		p.Warnings = append(p.Warnings, fmt.Sprintf("SignedData version %d", sd.Version))
	}
	switch {
	case si.SID.Class == asn1.ClassUniversal && si.SID.Tag == asn1.TagSequence:
		var ias issuerAndSerial
		if _, err := asn1.Unmarshal(si.SID.FullBytes, &ias); err != nil {
			return nil, fmt.Errorf("parse the signer's issuer and serial: %w", err)
		}
		for _, c := range p.Certs {
			if bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) && c.SerialNumber.Cmp(ias.Serial) == 0 {
				p.Signer = c
			}
		}
	case si.SID.Class == asn1.ClassContextSpecific && si.SID.Tag == 0:
		for _, c := range p.Certs {
			if bytes.Equal(c.SubjectKeyId, si.SID.Bytes) {
				p.Signer = c
			}
		}
	default:
		return nil, fmt.Errorf("%w: signer identifier of tag %d", errUnsupportedCMSFeature, si.SID.Tag)
	}
	if len(si.SignedAttrs.Raw) == 0 {
		return p, nil
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
	d, err := DigestByOID(oid)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUnsupportedCMSFeature, err)
	}
	return d.New(), nil
}

func writeBytes(b []byte) func(io.Writer) { return func(w io.Writer) { w.Write(b) } }

// verifySignature checks the signature over the encapsulated content; the signer must be
// bound by an ESS signing-certificate attribute (as RFC 3161 tokens are).
func (p *parsedCMS) verifySignature() error {
	_, err := p.verify(writeBytes(p.Content), true)
	return err
}

// verify checks the first signer's signature over the content that write produces. With
// signed attributes: the content-type and message-digest attributes, then the signature
// over the attributes; without, the signature over the content itself. requireCertAttr
// says whether an ESS signing-certificate attribute must bind the signer.
func (p *parsedCMS) verify(write func(io.Writer), requireCertAttr bool) (*Verified, error) {
	if p.Signer == nil {
		return nil, errors.New("the signer's certificate is not in the SignedData")
	}
	si := p.signerInfo
	if len(si.SignedAttrs.Raw) == 0 {
		v, err := VerifyMessage(p.Signer.PublicKey, si.SignatureAlgorithm, si.DigestAlgorithm.Algorithm, write, si.Signature)
		if err != nil {
			return nil, fmt.Errorf("CMS signer signature: %w", err)
		}
		v.Warnings = append(v.Warnings, "no signed attributes: the signature is over the content itself")
		return v, nil
	}
	h, err := hashForOID(si.DigestAlgorithm.Algorithm)
	if err != nil {
		return nil, err
	}
	write(h)
	digest := h.Sum(nil)
	v, err := p.verifyDigest(digest, requireCertAttr)
	if err == nil {
		d, _ := DigestByOID(si.DigestAlgorithm.Algorithm)
		v.ContentDigest, v.ContentDigestAlg = digest, d.Name
	}
	return v, err
}

// verifyDigest checks the signed attributes against the content's digest and the
// signature over them.
func (p *parsedCMS) verifyDigest(digest []byte, requireCertAttr bool) (*Verified, error) {
	si := p.signerInfo
	if p.Signer == nil {
		return nil, errors.New("the signer's certificate is not in the SignedData")
	}
	if len(si.SignedAttrs.Raw) == 0 {
		return nil, fmt.Errorf("%w: no signed attributes: the content itself is needed", errUnsupportedCMSFeature)
	}
	var warn []string
	if ct, ok := p.attrs[oidAttrContentType.String()]; !ok {
		warn = append(warn, "no content-type signed attribute (RFC 5652 §11.1 requires one)")
	} else if !bytes.Equal(ct, mustMarshal(p.ContentType)) {
		return nil, errors.New("the content-type attribute differs from the content's type")
	}
	md, ok := p.attrs[oidAttrMessageDigest.String()]
	if !ok {
		return nil, errors.New("message-digest attribute missing")
	}
	var got []byte
	if _, err := asn1.Unmarshal(md, &got); err != nil {
		return nil, fmt.Errorf("parse message-digest attribute: %w", err)
	}
	if !bytes.Equal(got, digest) {
		return nil, ErrDigestMismatch
	}
	_, v2 := p.attrs[oidAttrSigningCertV2.String()]
	_, v1 := p.attrs[oidAttrSigningCert.String()]
	if requireCertAttr || v1 || v2 {
		if err := p.checkSigningCertAttr(); err != nil {
			return nil, err
		}
	}
	signed := append([]byte{0x31}, si.SignedAttrs.Raw[1:]...)
	v, err := VerifyMessage(p.Signer.PublicKey, si.SignatureAlgorithm, si.DigestAlgorithm.Algorithm, writeBytes(signed), si.Signature)
	if err != nil {
		return nil, fmt.Errorf("CMS signer signature: %w", err)
	}
	v.Warnings = append(warn, v.Warnings...)
	return v, nil
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
