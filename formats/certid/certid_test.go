package certid

import (
	"errors"
	"testing"
)

// The two identifiers published with STANDARDS.md §5, from issued certificates.
var published = []string{
	"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U",
	"1.2.156.3005.2.11100000000013338W009.11330105002500287C.2025052201.002.0",
}

func TestPublishedVectors(t *testing.T) {
	for _, s := range published {
		id, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%s): %v", s, err)
		}
		if id.String() != s {
			t.Errorf("String() = %s, want %s", id, s)
		}
		made, err := New(id.TypeCode, id.IssuerCode, id.Serial, id.Version)
		if err != nil || made.String() != s {
			t.Errorf("New(...) = %s, %v; want %s", made, err, s)
		}
	}
}

func TestEverySingleChangeIsCaught(t *testing.T) {
	// MOD 37,36 detects every single substitution: change each character of the fields
	// to every other allowed character and the check must fail.
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	s := published[0]
	for i := len(Prefix); i < len(s)-2; i++ {
		if s[i] == '.' {
			continue
		}
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] == s[i] {
				continue
			}
			bad := s[:i] + string(alphabet[j]) + s[i+1:]
			if _, err := Parse(bad); err == nil {
				t.Fatalf("%s parsed though character %d changed", bad, i)
			}
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for _, s := range []string{
		"",
		"1.2.156.3005.1.11100000000013338W011.11430000006122244L.20230000403.001.U",
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001",
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.01.U",
		"1.2.156.3005.2.1110000000013338W011.11430000006122244L.20230000403.001.U",
		"1.2.156.3005.2.11100000000013338w011.11430000006122244L.20230000403.001.U",
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.V",
		"1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.000.U",
	} {
		if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", s, err)
		}
	}
}

func TestNext(t *testing.T) {
	id, _ := Parse(published[1])
	n, err := id.Next()
	if err != nil || n.Version != 3 {
		t.Fatalf("Next = %v, %v", n, err)
	}
	if _, err := Parse(n.String()); err != nil {
		t.Fatalf("the next version does not parse: %v", err)
	}
}
