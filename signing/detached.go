package signing

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// Detached signatures: a GB/T 35275 SignedData without the content, over a digest the
// caller computes (a PDF's byte ranges). It carries the signing time as a signed attribute
// and, when a TSA is given, an RFC 3161 token over the signature value as an unsigned
// attribute (RFC 3161 appendix A).

var (
	oidAttrSigningTime    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidAttrTimeStampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
)

// SignDetached signs the SM3 digest of some content with id and returns a DER ContentInfo
// (GB/T 35275 signedData) without the content. With ts, the signature is timestamped.
func SignDetached(ctx context.Context, id *Identity, sm3Digest []byte, at time.Time, ts Timestamper) ([]byte, error) {
	signingTime, err := asn1.MarshalWithParams(at.UTC(), "utc")
	if err != nil {
		return nil, fmt.Errorf("signing time: %w", err)
	}
	attrs := derSet([][]byte{
		makeAttribute(oidAttrContentType, mustMarshal(OIDGMData)),
		makeAttribute(oidAttrSigningTime, signingTime),
		makeAttribute(oidAttrMessageDigest, tlv(0x04, sm3Digest)),
		makeAttribute(oidAttrSigningCertV2, essCertIDv2(id.Cert)),
	})
	sig, err := Sign(id.Key, tlv(0x31, attrs))
	if err != nil {
		return nil, fmt.Errorf("sign CMS attributes: %w", err)
	}
	var unsigned []byte
	if ts != nil {
		h := sm3.Sum(sig)
		token, err := ts.Timestamp(ctx, h[:])
		if err != nil {
			return nil, fmt.Errorf("timestamp the signature: %w", err)
		}
		unsigned = tlv(0xA1, makeAttribute(oidAttrTimeStampToken, token))
	}
	return assembleSignedData(id, 1, OIDGMSignedData, OIDGMData, nil, attrs, sig, unsigned), nil
}

// Detached is a parsed SignedData as signatures in files carry it (GB/T 35275 or RFC
// 5652): normally without its content, which is kept elsewhere (a PDF's byte ranges, an
// OFD's Signature.xml); some writers encapsulate the content or a digest of it.
type Detached struct {
	Signer      *smx509.Certificate   // nil when the SignedData does not carry it
	Certs       []*smx509.Certificate // every certificate carried
	SigningTime time.Time             // zero when there is no signing-time attribute
	Token       []byte                // the RFC 3161 token over the signature, if any
	// Content is the encapsulated content, when HasContent; the signature is over it.
	Content    []byte
	HasContent bool
	Signers    int      // SignerInfos in the SignedData (the first is verified)
	Warnings   []string // laxities of the encoding
	p          *parsedCMS
}

// ParseDetached reads a DER ContentInfo holding a SignedData. PDF signatures are often
// padded with zeros after the DER: they are ignored.
func ParseDetached(der []byte) (*Detached, error) {
	var raw asn1.RawValue
	var laxity string
	if _, err := asn1.Unmarshal(der, &raw); err != nil {
		// Streaming encoders write BER (indefinite lengths): re-encode, and say so.
		fixed, _, berErr := BERToDER(der)
		if berErr != nil {
			return nil, fmt.Errorf("parse CMS: %w", err)
		}
		raw.FullBytes, laxity = fixed, "the SignedData is BER-encoded (indefinite lengths), not DER"
	}
	p, err := parseCMS(raw.FullBytes)
	if err != nil {
		return nil, err
	}
	if laxity != "" {
		p.Warnings = append([]string{laxity}, p.Warnings...)
	}
	d := &Detached{Signer: p.Signer, Certs: p.Certs, Content: p.Content, HasContent: p.HasContent, Signers: p.Signers, Warnings: p.Warnings, p: p}
	if st, ok := p.attrs[oidAttrSigningTime.String()]; ok {
		if _, err := asn1.Unmarshal(st, &d.SigningTime); err != nil {
			return nil, fmt.Errorf("parse signing-time attribute: %w", err)
		}
	}
	if len(p.signerInfo.UnsignedAttrs.Raw) > 0 {
		var set asn1.RawValue
		if _, err := asn1.Unmarshal(p.signerInfo.UnsignedAttrs.Raw, &set); err != nil {
			return nil, fmt.Errorf("parse unsigned attributes: %w", err)
		}
		for rest := set.Bytes; len(rest) > 0; {
			var a attribute
			if rest, err = asn1.Unmarshal(rest, &a); err != nil {
				return nil, fmt.Errorf("parse unsigned attribute: %w", err)
			}
			if a.Values.Class != asn1.ClassUniversal || a.Values.Tag != asn1.TagSet {
				return nil, fmt.Errorf("unsigned attribute %v: values are not a SET", a.Type)
			}
			if a.Type.Equal(oidAttrTimeStampToken) {
				var first asn1.RawValue
				if _, err := asn1.Unmarshal(a.Values.Bytes, &first); err != nil {
					return nil, fmt.Errorf("parse timestamp token attribute: %w", err)
				}
				d.Token = first.FullBytes
			}
		}
	}
	return d, nil
}

// NewHash is the hash the signer used over the content.
func (d *Detached) NewHash() (hash.Hash, error) {
	return hashForOID(d.p.signerInfo.DigestAlgorithm.Algorithm)
}

// DigestAlgorithm is the signer's digest algorithm OID.
func (d *Detached) DigestAlgorithm() asn1.ObjectIdentifier {
	return d.p.signerInfo.DigestAlgorithm.Algorithm
}

// Verify checks the signature over content whose digest (made with NewHash) is given:
// the message-digest attribute, then the signature over the signed attributes. A
// signature without signed attributes needs the content itself: see VerifyContent.
func (d *Detached) Verify(contentDigest []byte) error {
	_, err := d.p.verifyDigest(contentDigest, false)
	return err
}

// VerifyContent checks the signature over the content that write produces (called once
// or twice). It does not check the chain: see VerifyChain.
func (d *Detached) VerifyContent(write func(io.Writer)) (*Verified, error) {
	return d.p.verify(write, false)
}

// SignatureValue is the signer's signature value (what a signature timestamp covers).
func (d *Detached) SignatureValue() []byte { return d.p.signerInfo.Signature }

// VerifyToken checks the timestamp token, if any, over the signature value: an SM3
// imprint, and the TSA chained to roots.
func (d *Detached) VerifyToken(roots *smx509.CertPool) (*TokenInfo, error) {
	if d.Token == nil {
		return nil, errors.New("the signature has no timestamp token")
	}
	h := sm3.Sum(d.p.signerInfo.Signature)
	return VerifyToken(d.Token, h[:], roots)
}
