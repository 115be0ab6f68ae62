//go:build !cgo

// Package pkcs11 is the key provider for keys kept in a PKCS#11 device; this build has no
// cgo, which the PKCS#11 binding needs.
package pkcs11

import (
	"crypto"
	"errors"

	"github.com/emmansun/gmsm/smx509"
)

// Config says which device, token and keys.
type Config struct {
	Module, Token, PIN, Prefix string
	SM2Mechanism               uint
}

// Provider is not available without cgo.
type Provider struct{}

// Open reports that this build cannot load PKCS#11 modules.
func Open(Config) (*Provider, error) {
	return nil, errors.New("pkcs11: this dangan was built without cgo (CGO_ENABLED=0): PKCS#11 modules cannot be loaded")
}

// Close does nothing.
func (p *Provider) Close() error { return nil }

// Signer is never reached.
func (p *Provider) Signer(string, *smx509.Certificate) (crypto.Signer, error) {
	return nil, errors.New("pkcs11: not available")
}
