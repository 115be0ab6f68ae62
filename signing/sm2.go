// Package signing holds dangan's national cryptography: SM2 keys and signatures with SM3,
// SM2 X.509 certificates and a development PKI, and RFC 3161 timestamps signed with SM2.
//
// Every signature dangan makes uses the default SM2 user ID "1234567812345678" and is a DER
// SEQUENCE{r, s}; verification also accepts a raw 64-byte r||s, as foreign files carry it.
//
//	key, _ := signing.GenerateKey()
//	sig, _ := signing.Sign(key, msg)
//	err := signing.Verify(&key.PublicKey, msg, sig) // nil when the signature is good
//
// For large signed content, hash it as a stream and sign the digest:
//
//	h := signing.NewSignatureHash(&key.PublicKey) // SM3(ZA || ...)
//	io.Copy(h, content)
//	sig, _ := signing.SignDigest(key, h.Sum(nil))
package signing

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"math/big"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
)

// DefaultUID is the SM2 user ID dangan signs and verifies with (GB/T 32918.2, GM/T 0009).
const DefaultUID = "1234567812345678"

// Object identifiers of the national algorithms (STANDARDS.md §6).
var (
	OIDSM2Curve     = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
	OIDSM2Sign      = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301, 1}
	OIDSM3          = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 401}
	OIDSM2WithSM3   = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 501}
	OIDGMData       = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 1}
	OIDGMSignedData = asn1.ObjectIdentifier{1, 2, 156, 10197, 6, 1, 4, 2, 2}
)

// ErrBadSignature is returned (wrapped) when a signature does not verify.
var ErrBadSignature = errors.New("signature does not verify")

// ErrDigestMismatch is returned (it is also an ErrBadSignature) when the signed content has
// changed: its digest is not the one signed.
var ErrDigestMismatch = fmt.Errorf("%w: the content's digest is not the one signed", ErrBadSignature)

// GenerateKey makes a new SM2 private key from the system's random source.
func GenerateKey() (*sm2.PrivateKey, error) {
	k, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate SM2 key: %w", err)
	}
	return k, nil
}

// NewSM3 returns a plain SM3 hash.
func NewSM3() hash.Hash { return sm3.New() }

// NewSignatureHash returns a hash that computes e = SM3(ZA || M) for the public key and the
// default user ID: the value an SM2 signature over M signs. Write M to it, then SignDigest or
// VerifyDigest with its Sum.
func NewSignatureHash(pub *ecdsa.PublicKey) hash.Hash {
	h, err := sm2.NewHashWithUserID(pub, []byte(DefaultUID))
	if err != nil {
		// Only a key on another curve fails here; dangan's keys are SM2 by construction.
		panic(fmt.Sprintf("signing: SM2 hash for a non-SM2 key: %v", err))
	}
	return h
}

// Sign signs msg with SM2/SM3 and the default user ID; the result is DER SEQUENCE{r, s}.
func Sign(key crypto.Signer, msg []byte) ([]byte, error) {
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("SM2 sign: the key is a %T, not an SM2 key", key.Public())
	}
	h := NewSignatureHash(pub)
	h.Write(msg)
	return SignDigest(key, h.Sum(nil))
}

// SignDigest signs e, the output of a NewSignatureHash, returning DER SEQUENCE{r, s}.
func SignDigest(key crypto.Signer, e []byte) ([]byte, error) {
	sig, err := signDigest(key, e)
	if err != nil {
		return nil, fmt.Errorf("SM2 sign: %w", err)
	}
	return sig, nil
}

// Verify checks an SM2/SM3 signature over msg with the default user ID. sig may be DER or a
// raw 64-byte r||s. It returns nil, or an error wrapping ErrBadSignature.
func Verify(pub *ecdsa.PublicKey, msg, sig []byte) error {
	h := NewSignatureHash(pub)
	h.Write(msg)
	return VerifyDigest(pub, h.Sum(nil), sig)
}

// VerifyDigest checks a signature over e, the output of a NewSignatureHash.
func VerifyDigest(pub *ecdsa.PublicKey, e, sig []byte) error {
	der, err := NormalizeSignature(sig)
	if err != nil {
		return err
	}
	if !sm2.VerifyASN1(pub, e, der) {
		return ErrBadSignature
	}
	return nil
}

// NormalizeSignature returns sig as DER SEQUENCE{r, s}: DER input is checked and returned,
// a raw 64-byte r||s is re-encoded.
func NormalizeSignature(sig []byte) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err == nil && len(rest) == 0 {
		return sig, nil
	}
	if len(sig) == 64 {
		rs.R = new(big.Int).SetBytes(sig[:32])
		rs.S = new(big.Int).SetBytes(sig[32:])
		der, err := asn1.Marshal(rs)
		if err != nil {
			return nil, fmt.Errorf("re-encode raw SM2 signature: %w", err)
		}
		return der, nil
	}
	return nil, fmt.Errorf("%w: neither DER SEQUENCE{r,s} nor raw 64-byte r||s (%d bytes)", ErrBadSignature, len(sig))
}

// IsSM2 reports whether pub is a key on the SM2 curve.
func IsSM2(pub *ecdsa.PublicKey) bool { return sm2.IsSM2PublicKey(pub) }
