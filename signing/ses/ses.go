// Package ses makes and checks electronic seals and seal signatures per GB/T 38540-2020
// (SES version 4), the way OFD documents carry them.
//
// A seal (Seal.esl, SESeal) binds a seal picture and the holder's certificate, and is
// signed by a seal maker. A seal signature (SignedValue.dat, SES_Signature) signs the SM3 of
// an OFD's Signature.xml with the holder's key and embeds the seal:
//
//	seal, _ := ses.MakeSeal(maker, ses.SealInfo{ID: "…", Name: "某局电子印章", Holder: dept.Cert, …})
//	sig, _ := ses.Sign(ctx, dept, seal, sm3(signatureXML), "/Doc_0/Signs/Sign_0/Signature.xml", now, tsa)
//	p, _ := ses.Parse(sig); err := p.VerifySignature(); err = p.Seal.VerifyMaker()
//
// Both corpus implementations seen (ofdrw, GOMAIN) sign the seal over the DER of its
// SES_SealInfo and the signature over the DER of its TBS_Sign; so does this package.
package ses

import (
	"context"
	"crypto/ecdsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
)

// ErrFormat is returned (wrapped) for bytes that are not an SES v4 structure.
var ErrFormat = errors.New("not an SES v4 seal or signature")

// SealInfo describes a seal to make.
type SealInfo struct {
	ID          string // esID, unique per seal
	VID         string // the maker's vendor id
	Type        int    // 1 official seal (单位印章), 2 personal
	Name        string
	Holder      *smx509.Certificate // the certificate allowed to use the seal
	Created     time.Time
	ValidFrom   time.Time
	ValidTo     time.Time
	PictureType string // "PNG"
	Picture     []byte
	WidthMM     int
	HeightMM    int
}

type header struct {
	ID      string `asn1:"ia5"`
	Version int
	VID     string `asn1:"ia5"`
}

type propertyInfo struct {
	Type         int
	Name         string `asn1:"utf8"`
	CertListType int
	CertList     []asn1.RawValue
	CreateDate   time.Time `asn1:"generalized"`
	ValidStart   time.Time `asn1:"generalized"`
	ValidEnd     time.Time `asn1:"generalized"`
}

type pictureInfo struct {
	Type   string `asn1:"ia5"`
	Data   []byte
	Width  int
	Height int
}

type sealInfo struct {
	Header   header
	ESID     string `asn1:"ia5"`
	Property propertyInfo
	Picture  pictureInfo
	ExtDatas asn1.RawValue `asn1:"optional"`
}

// MakeSeal has maker sign a seal and returns its DER (Seal.esl).
func MakeSeal(maker *signing.Identity, in SealInfo) ([]byte, error) {
	if in.Holder == nil {
		return nil, errors.New("seal: no holder certificate")
	}
	if in.VID == "" {
		in.VID = "dangan"
	}
	if in.Type == 0 {
		in.Type = 1
	}
	holder, err := asn1.Marshal(in.Holder.Raw)
	if err != nil {
		return nil, err
	}
	info := sealInfo{
		Header: header{ID: "ES", Version: 4, VID: in.VID},
		ESID:   in.ID,
		Property: propertyInfo{Type: in.Type, Name: in.Name, CertListType: 1, CertList: []asn1.RawValue{{FullBytes: holder}},
			CreateDate: in.Created.UTC(), ValidStart: in.ValidFrom.UTC(), ValidEnd: in.ValidTo.UTC()},
		Picture: pictureInfo{Type: in.PictureType, Data: in.Picture, Width: in.WidthMM, Height: in.HeightMM},
	}
	infoDER, err := asn1.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("seal info: %w", err)
	}
	sig, err := signing.Sign(maker.Key, infoDER)
	if err != nil {
		return nil, fmt.Errorf("sign seal: %w", err)
	}
	return asn1.Marshal(sesSeal{asn1.RawValue{FullBytes: infoDER}, maker.Cert.Raw, signing.OIDSM2WithSM3, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
}

// sesSeal is SESeal: the seal information, the maker's certificate, the algorithm and the
// maker's signature over the information.
type sesSeal struct {
	Info   asn1.RawValue
	Cert   []byte
	Alg    asn1.ObjectIdentifier
	Signed asn1.BitString
}

// Sign makes an SES_Signature: signer (the seal's holder) signs dataHash (SM3 of the
// Signature.xml at property) with the seal, at time at; with ts, the signature value is
// timestamped.
func Sign(ctx context.Context, signer *signing.Identity, seal, dataHash []byte, property string, at time.Time, ts signing.Timestamper) ([]byte, error) {
	if _, err := ParseSeal(seal); err != nil {
		return nil, err
	}
	tbs, err := asn1.Marshal(struct {
		Version  int
		Seal     asn1.RawValue
		TimeInfo time.Time `asn1:"generalized"`
		DataHash asn1.BitString
		Property string `asn1:"ia5"`
	}{4, asn1.RawValue{FullBytes: seal}, at.UTC(), asn1.BitString{Bytes: dataHash, BitLength: 8 * len(dataHash)}, property})
	if err != nil {
		return nil, fmt.Errorf("TBS_Sign: %w", err)
	}
	sig, err := signing.Sign(signer.Key, tbs)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	out := struct {
		TBS       asn1.RawValue
		Cert      []byte
		Alg       asn1.ObjectIdentifier
		Signature asn1.BitString
		TimeStamp asn1.BitString `asn1:"optional,explicit,tag:0"`
	}{TBS: asn1.RawValue{FullBytes: tbs}, Cert: signer.Cert.Raw, Alg: signing.OIDSM2WithSM3, Signature: asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}}
	if ts != nil {
		h := sm3.Sum(sig)
		token, err := ts.Timestamp(ctx, h[:])
		if err != nil {
			return nil, fmt.Errorf("timestamp the seal signature: %w", err)
		}
		out.TimeStamp = asn1.BitString{Bytes: token, BitLength: 8 * len(token)}
	}
	return asn1.Marshal(out)
}

// Seal is a parsed SESeal.
type Seal struct {
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

	infoDER []byte
	alg     asn1.ObjectIdentifier
	sig     []byte
}

// ParseSeal reads a SESeal (v4).
func ParseSeal(der []byte) (*Seal, error) {
	var outer sesSeal
	if rest, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, fmt.Errorf("%w: SESeal: %v", ErrFormat, err)
	} else if len(rest) > 0 {
		return nil, fmt.Errorf("%w: SESeal: trailing bytes", ErrFormat)
	}
	if err := exactSequence(der, 4, 4); err != nil {
		return nil, fmt.Errorf("%w: SESeal: %v", ErrFormat, err)
	}
	if outer.Signed.BitLength%8 != 0 {
		return nil, fmt.Errorf("%w: the seal's signature has unused bits", ErrFormat)
	}
	var info sealInfo
	if _, err := asn1.Unmarshal(outer.Info.FullBytes, &info); err != nil {
		return nil, fmt.Errorf("%w: SES_SealInfo: %v", ErrFormat, err)
	}
	if info.Header.ID != "ES" || info.Header.Version != 4 {
		return nil, fmt.Errorf("%w: seal header %q version %d (only ES version 4)", ErrFormat, info.Header.ID, info.Header.Version)
	}
	s := &Seal{Version: info.Header.Version, ID: info.ESID, VID: info.Header.VID, Type: info.Property.Type, Name: info.Property.Name,
		Created: info.Property.CreateDate, ValidFrom: info.Property.ValidStart, ValidTo: info.Property.ValidEnd,
		PictureType: info.Picture.Type, Picture: info.Picture.Data, WidthMM: info.Picture.Width, HeightMM: info.Picture.Height,
		Raw: der, infoDER: outer.Info.FullBytes, alg: outer.Alg, sig: outer.Signed.Bytes}
	for _, c := range info.Property.CertList {
		var certDER []byte
		if _, err := asn1.Unmarshal(c.FullBytes, &certDER); err != nil {
			continue // certListType 2 (digests) carries no certificates
		}
		if cert, err := smx509.ParseCertificate(certDER); err == nil {
			s.HolderCerts = append(s.HolderCerts, cert)
		}
	}
	maker, err := smx509.ParseCertificate(outer.Cert)
	if err != nil {
		return nil, fmt.Errorf("%w: the seal maker's certificate: %v", ErrFormat, err)
	}
	s.Maker = maker
	return s, nil
}

// VerifyMaker checks the maker's signature over the seal. It does not check the maker's
// chain.
func (s *Seal) VerifyMaker() error {
	return verifySM2(s.Maker, s.alg, s.infoDER, s.sig)
}

// ValidAt reports whether t is inside the seal's validity period.
func (s *Seal) ValidAt(t time.Time) bool {
	return !t.Before(s.ValidFrom) && !t.After(s.ValidTo)
}

// Signature is a parsed SES_Signature.
type Signature struct {
	Version   int
	Seal      *Seal
	Time      time.Time
	DataHash  []byte
	Property  string // the path of the signed Signature.xml
	Signer    *smx509.Certificate
	TimeStamp []byte // an RFC 3161 token over the signature value, if any

	tbsDER []byte
	alg    asn1.ObjectIdentifier
	sig    []byte
}

// Parse reads an SES_Signature (v4). The encoding must be exact: no bytes after an
// element, no unused bits in a signature or digest.
func Parse(der []byte) (*Signature, error) {
	var outer struct {
		TBS       asn1.RawValue
		Cert      []byte
		Alg       asn1.ObjectIdentifier
		Signature asn1.BitString
		TimeStamp asn1.RawValue `asn1:"optional,tag:0"`
	}
	if rest, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, fmt.Errorf("%w: SES_Signature: %v", ErrFormat, err)
	} else if len(rest) > 0 {
		return nil, fmt.Errorf("%w: SES_Signature: %d bytes after it", ErrFormat, len(rest))
	}
	if err := exactSequence(der, 4, 5); err != nil {
		return nil, fmt.Errorf("%w: SES_Signature: %v", ErrFormat, err)
	}
	var token asn1.BitString
	if len(outer.TimeStamp.FullBytes) > 0 {
		if rest, err := asn1.Unmarshal(outer.TimeStamp.Bytes, &token); err != nil || len(rest) > 0 || token.BitLength%8 != 0 {
			return nil, fmt.Errorf("%w: the timeStamp is not one whole BIT STRING", ErrFormat)
		}
	}
	if outer.Signature.BitLength%8 != 0 {
		return nil, fmt.Errorf("%w: the signature has unused bits", ErrFormat)
	}
	var tbs struct {
		Version  int
		Seal     asn1.RawValue
		TimeInfo time.Time `asn1:"generalized"`
		DataHash asn1.BitString
		Property string        `asn1:"ia5"`
		Ext      asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(outer.TBS.FullBytes, &tbs); err != nil {
		return nil, fmt.Errorf("%w: TBS_Sign: %v", ErrFormat, err)
	}
	if tbs.Version != 4 {
		return nil, fmt.Errorf("%w: TBS_Sign version %d", ErrFormat, tbs.Version)
	}
	if tbs.DataHash.BitLength%8 != 0 {
		return nil, fmt.Errorf("%w: the data hash has unused bits", ErrFormat)
	}
	seal, err := ParseSeal(tbs.Seal.FullBytes)
	if err != nil {
		return nil, err
	}
	signer, err := smx509.ParseCertificate(outer.Cert)
	if err != nil {
		return nil, fmt.Errorf("%w: the signer's certificate: %v", ErrFormat, err)
	}
	return &Signature{Version: tbs.Version, Seal: seal, Time: tbs.TimeInfo, DataHash: tbs.DataHash.Bytes, Property: tbs.Property,
		Signer: signer, TimeStamp: token.Bytes, tbsDER: outer.TBS.FullBytes, alg: outer.Alg, sig: outer.Signature.Bytes}, nil
}

// VerifySignature checks the signer's SM2 signature over TBS_Sign.
func (s *Signature) VerifySignature() error {
	return verifySM2(s.Signer, s.alg, s.tbsDER, s.sig)
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

// VerifyTimeStamp checks the timestamp token over the signature value.
func (s *Signature) VerifyTimeStamp(roots *smx509.CertPool) (*signing.TokenInfo, error) {
	if len(s.TimeStamp) == 0 {
		return nil, errors.New("the seal signature has no timestamp")
	}
	h := sm3.Sum(s.sig)
	return signing.VerifyToken(s.TimeStamp, h[:], roots)
}

func verifySM2(cert *smx509.Certificate, alg asn1.ObjectIdentifier, msg, sig []byte) error {
	if !alg.Equal(signing.OIDSM2WithSM3) && !alg.Equal(signing.OIDSM2Sign) {
		return fmt.Errorf("signature algorithm %v is not SM2 with SM3", alg)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !signing.IsSM2(pub) {
		return fmt.Errorf("the key of %q is not SM2", cert.Subject.CommonName)
	}
	return signing.Verify(pub, msg, sig)
}

// exactSequence checks that der is a SEQUENCE of between lo and hi elements with nothing
// else inside: Go's asn1 ignores elements after the fields it knows.
func exactSequence(der []byte, lo, hi int) error {
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(der, &seq); err != nil {
		return err
	}
	n := 0
	for rest := seq.Bytes; len(rest) > 0; n++ {
		var e asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &e); err != nil {
			return err
		}
	}
	if n < lo || n > hi {
		return fmt.Errorf("%d elements, want %d to %d", n, lo, hi)
	}
	return nil
}
