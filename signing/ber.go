package signing

import (
	"errors"
)

// BER to DER, for the CMS structures Java and C# libraries stream out with indefinite
// lengths (easyofd's PKCS #7, some PDF signers). Only the encoding changes: indefinite
// lengths become definite, constructed OCTET STRINGs primitive. What is signed (the DER of
// the signed attributes, the content) is read from the result, which is what signers hash.

var errBER = errors.New("malformed BER")

// maxBERDepth bounds nesting, so a hostile input cannot exhaust the stack.
const maxBERDepth = 64

// BERToDER re-encodes one BER element as DER, returning it and the bytes after it.
func BERToDER(b []byte) (der, rest []byte, err error) {
	return berElement(b, 0)
}

func berElement(b []byte, depth int) ([]byte, []byte, error) {
	if depth > maxBERDepth {
		return nil, nil, errBER
	}
	if len(b) < 2 {
		return nil, nil, errBER
	}
	// The identifier octets (a high tag number takes several).
	i := 1
	if b[0]&0x1f == 0x1f {
		for i < len(b) && b[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if i >= len(b) {
		return nil, nil, errBER
	}
	id := b[:i]
	constructed := b[0]&0x20 != 0
	l := b[i]
	i++
	if l == 0x80 { // indefinite: children until the end-of-contents octets
		if !constructed {
			return nil, nil, errBER
		}
		var body []byte
		rest := b[i:]
		for {
			if len(rest) >= 2 && rest[0] == 0 && rest[1] == 0 {
				rest = rest[2:]
				break
			}
			child, r, err := berElement(rest, depth+1)
			if err != nil {
				return nil, nil, err
			}
			body, rest = append(body, child...), r
		}
		return encode(id, body), rest, nil
	}
	n := int(l)
	if l&0x80 != 0 {
		k := int(l & 0x7f)
		if k > 4 || i+k > len(b) {
			return nil, nil, errBER
		}
		n = 0
		for _, c := range b[i : i+k] {
			n = n<<8 | int(c)
		}
		i += k
	}
	if n < 0 || i+n > len(b) {
		return nil, nil, errBER
	}
	content, rest := b[i:i+n], b[i+n:]
	if !constructed {
		return encode(id, content), rest, nil
	}
	var body []byte
	for c := content; len(c) > 0; {
		child, r, err := berElement(c, depth+1)
		if err != nil {
			return nil, nil, err
		}
		body, c = append(body, child...), r
	}
	return encode(id, body), rest, nil
}

// encode writes a definite-length element; a constructed OCTET STRING (0x24) becomes the
// primitive string of its segments, as DER requires.
func encode(id, body []byte) []byte {
	if len(id) == 1 && id[0] == 0x24 {
		var flat []byte
		for c := body; len(c) > 0; {
			_, content, rest, ok := splitTLV(c)
			if !ok {
				break
			}
			flat, c = append(flat, content...), rest
		}
		return tlv(0x04, flat)
	}
	if len(id) == 1 {
		return tlv(id[0], body)
	}
	out := tlv(0, body) // the length octets, after a placeholder tag
	return append(append([]byte{}, id...), out[1:]...)
}

// splitTLV splits a DER element into its tag byte, content and the rest.
func splitTLV(b []byte) (byte, []byte, []byte, bool) {
	if len(b) < 2 {
		return 0, nil, nil, false
	}
	n, i := int(b[1]), 2
	if b[1]&0x80 != 0 {
		k := int(b[1] & 0x7f)
		if k > 4 || 2+k > len(b) {
			return 0, nil, nil, false
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		i += k
	}
	if i+n > len(b) {
		return 0, nil, nil, false
	}
	return b[0], b[i : i+n], b[i+n:], true
}
