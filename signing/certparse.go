package signing

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/emmansun/gmsm/smx509"
)

// ParseCertificateLenient parses a certificate from a foreign file. Besides what smx509
// reads, it takes what signers in the field carry: a key on a Brainpool curve (the
// certificate's PublicKey is then an *ECKey), an Ed448 key (an ed448.PublicKey), negative
// serial numbers, and an SM2 key whose curve is named
// with the SM2 signature OID 1.2.156.10197.1.301.1 instead of the curve's 301. Each such
// leniency is returned as a warning. The certificate's Raw fields are always its own bytes.
func ParseCertificateLenient(der []byte) (*smx509.Certificate, []string, error) {
	c, err := smx509.ParseCertificate(der)
	if err == nil {
		return c, nil, nil
	}
	first := err
	parts, err := certParts(der)
	if err != nil {
		return nil, nil, first
	}
	if strings.Contains(first.Error(), "negative serial") {
		// Written before RFC 5280 forbade them, and still in the field: read as they are.
		serialAt := parts.spkiAt - 5
		var neg *big.Int
		if _, err := asn1.Unmarshal(parts.fields[serialAt].FullBytes, &neg); err != nil || neg.Sign() >= 0 {
			return nil, nil, first
		}
		parts.fields[serialAt].FullBytes = tlv(0x02, append([]byte{0}, parts.fields[serialAt].Bytes...))
		c, warn, err := ParseCertificateLenient(parts.assemble(der, parts.spki.FullBytes))
		if err != nil {
			return nil, nil, first
		}
		orig, _ := certParts(der)
		c.Raw, c.RawTBSCertificate, c.SerialNumber = der, orig.tbs.FullBytes, neg
		return c, append(warn, "the certificate's serial number is negative (RFC 5280 §4.1.2.2 forbids it)"), nil
	}
	var spki struct {
		Alg pkix.AlgorithmIdentifier
		Key asn1.BitString
	}
	if _, err := asn1.Unmarshal(parts.spki.FullBytes, &spki); err != nil {
		return nil, nil, first
	}
	if spki.Alg.Algorithm.Equal(oidEd448) && len(spki.Key.Bytes) == ed448.PublicKeySize {
		c, err := parts.reparse(der, placeholderSPKI(), ed448.PublicKey(spki.Key.Bytes))
		if err != nil {
			return nil, nil, first
		}
		c.PublicKeyAlgorithm = smx509.UnknownPublicKeyAlgorithm
		return c, nil, nil
	}
	if !spki.Alg.Algorithm.Equal(oidECPublicKey) {
		return nil, nil, first
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Alg.Parameters.FullBytes, &curve); err != nil {
		return nil, nil, first
	}
	switch {
	case curve.Equal(OIDSM2Sign):
		// Name the SM2 curve properly and parse again; the key is the same point.
		spki.Alg.Parameters = asn1.RawValue{FullBytes: mustMarshal(OIDSM2Curve)}
		c, err := parts.reparse(der, mustMarshal(spki), nil)
		if err != nil {
			return nil, nil, first
		}
		return c, []string{"the signer's key names its curve with the SM2 signature OID 1.2.156.10197.1.301.1, not the SM2 curve 1.2.156.10197.1.301"}, nil
	case curveByOID(curve) != nil:
		cv := curveByOID(curve)
		key, err := parseECPoint(cv, spki.Key.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("%s key: %w", cv.Name, err)
		}
		c, err := parts.reparse(der, placeholderSPKI(), key)
		if err != nil {
			return nil, nil, first
		}
		return c, nil, nil
	}
	return nil, nil, first
}

type certDER struct {
	tbs    asn1.RawValue
	fields []asn1.RawValue // the TBSCertificate's elements
	spkiAt int
	spki   asn1.RawValue
	rest   []byte // signatureAlgorithm and signatureValue
}

func certParts(der []byte) (*certDER, error) {
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, err
	}
	p := &certDER{}
	rest, err := asn1.Unmarshal(outer.Bytes, &p.tbs)
	if err != nil {
		return nil, err
	}
	p.rest = rest
	for b := p.tbs.Bytes; len(b) > 0; {
		var f asn1.RawValue
		if b, err = asn1.Unmarshal(b, &f); err != nil {
			return nil, err
		}
		p.fields = append(p.fields, f)
	}
	// [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo
	p.spkiAt = 5
	if len(p.fields) > 0 && p.fields[0].Class == asn1.ClassContextSpecific && p.fields[0].Tag == 0 {
		p.spkiAt = 6
	}
	if len(p.fields) <= p.spkiAt {
		return nil, errors.New("TBSCertificate too short")
	}
	p.spki = p.fields[p.spkiAt]
	return p, nil
}

// reparse parses the certificate with spki in place of its own, then restores the
// certificate's own bytes and, when key is not nil, sets it as the public key.
func (p *certDER) reparse(der, spki []byte, key any) (*smx509.Certificate, error) {
	c, err := smx509.ParseCertificate(p.assemble(der, spki))
	if err != nil {
		return nil, err
	}
	c.Raw, c.RawTBSCertificate, c.RawSubjectPublicKeyInfo = der, p.tbs.FullBytes, p.spki.FullBytes
	if key != nil {
		c.PublicKey = key
		c.PublicKeyAlgorithm = smx509.ECDSA
	}
	return c, nil
}

// assemble encodes the certificate again with spki in place of its own.
func (p *certDER) assemble(der, spki []byte) []byte {
	var tbs []byte
	for i, f := range p.fields {
		if i == p.spkiAt {
			tbs = append(tbs, spki...)
		} else {
			tbs = append(tbs, f.FullBytes...)
		}
	}
	return tlv(0x30, append(tlv(0x30, tbs), p.rest...))
}

var placeholder []byte

// placeholderSPKI is a valid P-256 key's SubjectPublicKeyInfo, to let smx509 parse a
// certificate whose own key it does not know.
func placeholderSPKI() []byte {
	if placeholder == nil {
		// The P-256 generator point.
		g := "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
		pt, _ := hex.DecodeString(g)
		placeholder = mustMarshal(struct {
			Alg pkix.AlgorithmIdentifier
			Key asn1.BitString
		}{pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: mustMarshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7})}},
			asn1.BitString{Bytes: pt, BitLength: 8 * len(pt)}})
	}
	return placeholder
}
