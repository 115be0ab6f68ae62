package signing

import (
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"
)

// Signing keys are crypto.Signers from a KeyProvider: the PKCS#8 files of pki/ (FileKeys)
// or a device (signing/pkcs11). Whatever the provider, a signer's Sign is given the digest
// to sign: for SM2, e = SM3(Z_A ‖ M) (NewSignatureHash), unless opts is an
// *sm2.SM2SignerOption asking for the message to be hashed (as certificate issuance does).

// ErrNoKey is a provider that does not hold the named key.
var ErrNoKey = errors.New("no such key")

// KeyProvider gives the private key of a named identity ("root", "archive", "tsa", a
// department's). cert is its certificate, for providers that find keys by public key.
type KeyProvider interface {
	Signer(name string, cert *smx509.Certificate) (crypto.Signer, error)
}

// FileKeys are the PKCS#8 PEM files DIR/NAME.key, encrypted with Password when it is set.
type FileKeys struct {
	Dir      string
	Password []byte
}

// Signer loads DIR/NAME.key; a missing file is ErrNoKey.
func (f FileKeys) Signer(name string, _ *smx509.Certificate) (crypto.Signer, error) {
	path := filepath.Join(f.Dir, name+".key")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoKey)
	}
	return LoadKey(path, f.Password)
}

// signDigest signs e with key: SM2 file keys directly, other signers through crypto.Signer.
func signDigest(key crypto.Signer, e []byte) ([]byte, error) {
	if k, ok := key.(*sm2.PrivateKey); ok {
		return sm2.SignASN1(rand.Reader, k, e, nil)
	}
	return key.Sign(rand.Reader, e, crypto.Hash(0))
}
