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
// dangan writes SES v4 as GB/T 38540 says: the seal signed over the DER of its
// SES_SealInfo, the signature over the DER of its TBS_Sign. Parse reads what issuers in the
// field write too (read.go): the GM/T 0031-2014 layouts, and encodings a strict DER reader
// refuses, each reported as a warning.
package ses

import (
	"context"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/dangan-archive/dangan/signing"
)

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
