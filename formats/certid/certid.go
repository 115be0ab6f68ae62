// Package certid makes and parses e-certificate identifiers (电子证照标识) per GB/T 36904:
//
//	1.2.156.3005.2.<类型代码>.<颁发机构代码>.<流水号>.<版本>.<校验位>
//
// The check character is ISO/IEC 7064 MOD 37,36 over the four fields without dots.
//
//	id, _ := certid.New("11100000000013338W011", "11430000006122244L", "20230000403", 1)
//	fmt.Println(id) // 1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U
//	back, err := certid.Parse(id.String())
package certid

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Prefix is the OID arc every e-certificate identifier starts with.
const Prefix = "1.2.156.3005.2."

// ErrInvalid is returned (wrapped) for an identifier that is not well formed or whose check
// character does not match.
var ErrInvalid = errors.New("invalid e-certificate identifier")

// ID is a parsed identifier.
type ID struct {
	TypeCode   string // 证照类型代码, 21 characters
	IssuerCode string // 颁发机构代码, the issuer's USCC, 18 characters
	Serial     string // 流水号
	Version    int    // 版本, 1..999
}

// New checks the fields and returns the identifier.
func New(typeCode, issuerCode, serial string, version int) (ID, error) {
	id := ID{TypeCode: typeCode, IssuerCode: issuerCode, Serial: serial, Version: version}
	return id, id.check()
}

func (id ID) check() error {
	if len(id.TypeCode) != 21 || !alnum(id.TypeCode) {
		return fmt.Errorf("%w: type code %q must be 21 digits or capital letters", ErrInvalid, id.TypeCode)
	}
	if len(id.IssuerCode) != 18 || !alnum(id.IssuerCode) {
		return fmt.Errorf("%w: issuer code %q must be an 18-character USCC", ErrInvalid, id.IssuerCode)
	}
	if id.Serial == "" || len(id.Serial) > 32 || !alnum(id.Serial) {
		return fmt.Errorf("%w: serial %q must be 1 to 32 digits or capital letters", ErrInvalid, id.Serial)
	}
	if id.Version < 1 || id.Version > 999 {
		return fmt.Errorf("%w: version %d must be 1 to 999", ErrInvalid, id.Version)
	}
	return nil
}

// String is the dotted identifier with its check character.
func (id ID) String() string {
	body := id.TypeCode + id.IssuerCode + id.Serial + fmt.Sprintf("%03d", id.Version)
	return fmt.Sprintf("%s%s.%s.%s.%03d.%c", Prefix, id.TypeCode, id.IssuerCode, id.Serial, id.Version, CheckChar(body))
}

// Next is the identifier of the next version of the same certificate.
func (id ID) Next() (ID, error) {
	n := id
	n.Version++
	return n, n.check()
}

// Parse reads a dotted identifier and checks its check character.
func Parse(s string) (ID, error) {
	if !strings.HasPrefix(s, Prefix) {
		return ID{}, fmt.Errorf("%w: %q does not start with %s", ErrInvalid, s, Prefix)
	}
	parts := strings.Split(s[len(Prefix):], ".")
	if len(parts) != 5 {
		return ID{}, fmt.Errorf("%w: %q has %d fields after %s, want 5 (type, issuer, serial, version, check)", ErrInvalid, s, len(parts), Prefix)
	}
	if len(parts[3]) != 3 {
		return ID{}, fmt.Errorf("%w: version %q must be 3 digits", ErrInvalid, parts[3])
	}
	v, err := strconv.Atoi(parts[3])
	if err != nil {
		return ID{}, fmt.Errorf("%w: version %q is not a number", ErrInvalid, parts[3])
	}
	id := ID{TypeCode: parts[0], IssuerCode: parts[1], Serial: parts[2], Version: v}
	if err := id.check(); err != nil {
		return ID{}, err
	}
	if len(parts[4]) != 1 {
		return ID{}, fmt.Errorf("%w: check %q must be one character", ErrInvalid, parts[4])
	}
	want := CheckChar(parts[0] + parts[1] + parts[2] + parts[3])
	if parts[4][0] != want {
		return ID{}, fmt.Errorf("%w: check character is %q, the fields give %q", ErrInvalid, parts[4], string(want))
	}
	return id, nil
}

// CheckChar is the ISO/IEC 7064 MOD 37,36 check character of s (digits and capital letters).
func CheckChar(s string) byte {
	p := 36
	for i := 0; i < len(s); i++ {
		p = (p + value(s[i])) % 36
		if p == 0 {
			p = 36
		}
		p = (2 * p) % 37
	}
	return symbol((37 - p) % 36)
}

func value(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 0
}

func symbol(v int) byte {
	if v < 10 {
		return byte('0' + v)
	}
	return byte('A' + v - 10)
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
