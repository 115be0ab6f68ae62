package pdfsig

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// A small reader of PDF objects (ISO 32000-1 §7.3), as far as checking signatures needs
// it: dictionaries, arrays, names, strings, numbers and references, and where a stream's
// data lies. It never follows references by itself and bounds its nesting, so a hostile
// file costs at most its own size.

// Object kinds.
const (
	kNull = iota
	kBool
	kNumber
	kName
	kString
	kArray
	kDict
	kRef
	kKeyword
)

// object is one parsed PDF object.
type object struct {
	kind  int
	s     string // name (without '/'), keyword, the number's text, or the decoded string
	arr   []object
	dict  map[string]object
	ref   [2]int    // object and generation number of a reference
	lo    int       // where the object starts in the buffer it was read from
	strm  *[2]int64 // for a stream: its data's offset and length (from /Length) in the buffer
	hexed bool      // a string written as <hex>
	dups  []string  // keys a dictionary has more than once (the last value is kept)
}

var errSyntax = errors.New("PDF syntax")

const maxDepth = 64

func isWhite(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isDelim(c byte) bool {
	return strings.IndexByte("()<>[]{}/%", c) >= 0
}

// parser reads objects from buf starting at pos.
type parser struct {
	buf []byte
	pos int
}

func (p *parser) skipWhite() {
	for p.pos < len(p.buf) {
		c := p.buf[p.pos]
		if isWhite(c) {
			p.pos++
		} else if c == '%' { // a comment runs to the end of the line
			for p.pos < len(p.buf) && p.buf[p.pos] != '\n' && p.buf[p.pos] != '\r' {
				p.pos++
			}
		} else {
			return
		}
	}
}

// three reads three regular tokens separated by white space ("12 0 obj", an
// cross-reference entry "0000012345 00000 n").
func (p *parser) three() (a, b, c string) {
	p.skipWhite()
	a = p.regular()
	p.skipWhite()
	b = p.regular()
	p.skipWhite()
	return a, b, p.regular()
}

// token returns the next regular token (a keyword or a number), without consuming
// delimiters.
func (p *parser) regular() string {
	start := p.pos
	for p.pos < len(p.buf) && !isWhite(p.buf[p.pos]) && !isDelim(p.buf[p.pos]) {
		p.pos++
	}
	return string(p.buf[start:p.pos])
}

// value reads one object. A number followed by "G R" is a reference.
func (p *parser) value(depth int) (object, error) {
	if depth > maxDepth {
		return object{}, fmt.Errorf("%w: nesting deeper than %d", errSyntax, maxDepth)
	}
	p.skipWhite()
	if p.pos >= len(p.buf) {
		return object{}, fmt.Errorf("%w: unexpected end", errSyntax)
	}
	start := p.pos
	c := p.buf[p.pos]
	switch {
	case c == '/':
		p.pos++
		name := p.regular()
		return object{kind: kName, s: decodeName(name), lo: start}, nil
	case c == '(':
		s, err := p.literal()
		return object{kind: kString, s: s, lo: start}, err
	case c == '<' && p.pos+1 < len(p.buf) && p.buf[p.pos+1] == '<':
		p.pos += 2
		d := map[string]object{}
		var dups []string
		for {
			p.skipWhite()
			if p.pos+1 < len(p.buf) && p.buf[p.pos] == '>' && p.buf[p.pos+1] == '>' {
				p.pos += 2
				break
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return object{}, err
			}
			if k.kind != kName {
				return object{}, fmt.Errorf("%w: a dictionary key at %d is not a name", errSyntax, k.lo)
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return object{}, err
			}
			if _, ok := d[k.s]; ok {
				dups = append(dups, k.s)
			}
			d[k.s] = v
		}
		return object{kind: kDict, dict: d, lo: start, dups: dups}, nil
	case c == '<':
		p.pos++
		end := bytes.IndexByte(p.buf[p.pos:], '>')
		if end < 0 {
			return object{}, fmt.Errorf("%w: unterminated hex string", errSyntax)
		}
		raw := p.buf[p.pos : p.pos+end]
		p.pos += end + 1
		return object{kind: kString, s: string(decodeHex(raw)), lo: start, hexed: true}, nil
	case c == '[':
		p.pos++
		var arr []object
		for {
			p.skipWhite()
			if p.pos < len(p.buf) && p.buf[p.pos] == ']' {
				p.pos++
				break
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return object{}, err
			}
			arr = append(arr, v)
		}
		return object{kind: kArray, arr: arr, lo: start}, nil
	case c == ')' || c == '>' || c == ']' || c == '{' || c == '}':
		p.pos++
		return object{}, fmt.Errorf("%w: unexpected %q at %d", errSyntax, c, start)
	}
	tok := p.regular()
	if tok == "" {
		p.pos++
		return object{}, fmt.Errorf("%w: unexpected %q at %d", errSyntax, c, start)
	}
	switch tok {
	case "true", "false":
		return object{kind: kBool, s: tok, lo: start}, nil
	case "null":
		return object{kind: kNull, lo: start}, nil
	}
	if isNumber(tok) {
		// "N G R" is a reference: look ahead without committing.
		save := p.pos
		p.skipWhite()
		g := p.regular()
		p.skipWhite()
		if isInt(tok) && isInt(g) && p.pos < len(p.buf) && p.buf[p.pos] == 'R' && (p.pos+1 == len(p.buf) || isWhite(p.buf[p.pos+1]) || isDelim(p.buf[p.pos+1])) {
			p.pos++
			n, _ := strconv.Atoi(tok)
			gn, _ := strconv.Atoi(g)
			return object{kind: kRef, ref: [2]int{n, gn}, lo: start}, nil
		}
		p.pos = save
		return object{kind: kNumber, s: tok, lo: start}, nil
	}
	return object{kind: kKeyword, s: tok, lo: start}, nil
}

func isInt(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// literal reads a (string) with its escapes.
func (p *parser) literal() (string, error) {
	p.pos++ // '('
	var b strings.Builder
	depth := 1
	for p.pos < len(p.buf) {
		c := p.buf[p.pos]
		p.pos++
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return b.String(), nil
			}
		case '\\':
			if p.pos >= len(p.buf) {
				break
			}
			e := p.buf[p.pos]
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case '\r':
				if p.pos < len(p.buf) && p.buf[p.pos] == '\n' {
					p.pos++
				}
			case '\n':
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for i := 0; i < 2 && p.pos < len(p.buf) && p.buf[p.pos] >= '0' && p.buf[p.pos] <= '7'; i++ {
						v = v*8 + int(p.buf[p.pos]-'0')
						p.pos++
					}
					b.WriteByte(byte(v))
				} else {
					b.WriteByte(e)
				}
			}
			continue
		}
		b.WriteByte(c)
	}
	return "", fmt.Errorf("%w: unterminated string", errSyntax)
}

func decodeHex(raw []byte) []byte {
	// The common case, a long signature value without white space, at hex.Decode's speed.
	if len(raw)%2 == 0 {
		out := make([]byte, len(raw)/2)
		if _, err := hex.Decode(out, raw); err == nil {
			return out
		}
	}
	var out []byte
	hi, have := byte(0), false
	for _, c := range raw {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			continue
		}
		if have {
			out = append(out, hi<<4|v)
			have = false
		} else {
			hi, have = v, true
		}
	}
	if have {
		out = append(out, hi<<4)
	}
	return out
}

func decodeName(s string) string {
	if !strings.Contains(s, "#") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '#' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// indirect reads "N G obj <value> [stream ... endstream] endobj" at pos in buf and returns
// the object number and the value; a stream's data position is set from its /Length when
// that is a direct number, else by searching for "endstream".
func indirect(buf []byte, pos int) (num int, v object, err error) {
	p := &parser{buf: buf, pos: pos}
	n, g, kw := p.three()
	if !isInt(n) || !isInt(g) || kw != "obj" {
		return 0, object{}, fmt.Errorf("%w: no \"N G obj\" at %d", errSyntax, pos)
	}
	num, _ = strconv.Atoi(n)
	if v, err = p.value(0); err != nil {
		return num, v, err
	}
	p.skipWhite()
	if v.kind == kDict && bytes.HasPrefix(buf[p.pos:], []byte("stream")) {
		p.pos += len("stream")
		if p.pos < len(buf) && buf[p.pos] == '\r' {
			p.pos++
		}
		if p.pos < len(buf) && buf[p.pos] == '\n' {
			p.pos++
		}
		start := int64(p.pos)
		length := int64(-1)
		if l, ok := v.dict["Length"]; ok && l.kind == kNumber {
			if x, err := strconv.ParseInt(l.s, 10, 64); err == nil && x >= 0 && start+x <= int64(len(buf)) {
				length = x
			}
		}
		if length < 0 || !bytes.Contains(buf[start+length:min(int64(len(buf)), start+length+32)], []byte("endstream")) {
			end := bytes.Index(buf[start:], []byte("endstream"))
			if end < 0 {
				return num, v, fmt.Errorf("%w: stream of object %d has no endstream", errSyntax, num)
			}
			length = int64(end)
			for length > 0 && (buf[start+length-1] == '\n' || buf[start+length-1] == '\r') {
				length--
			}
		}
		v.strm = &[2]int64{start, length}
	}
	return num, v, nil
}

// name returns a dictionary entry that is a name, or "".
func (o object) name(key string) string {
	if o.kind != kDict {
		return ""
	}
	if v, ok := o.dict[key]; ok && v.kind == kName {
		return v.s
	}
	return ""
}

// canonical writes the object in one fixed form (sorted keys, single spaces), so two
// versions of an object compare equal exactly when they mean the same.
func (o object) canonical(b *strings.Builder) {
	switch o.kind {
	case kNull:
		b.WriteString("null")
	case kBool, kNumber, kKeyword:
		b.WriteString(o.s)
	case kName:
		b.WriteString("/" + o.s)
	case kString:
		b.WriteString("<" + fmt.Sprintf("%x", o.s) + ">")
	case kRef:
		fmt.Fprintf(b, "%d %d R", o.ref[0], o.ref[1])
	case kArray:
		b.WriteString("[")
		for i, e := range o.arr {
			if i > 0 {
				b.WriteString(" ")
			}
			e.canonical(b)
		}
		b.WriteString("]")
	case kDict:
		keys := make([]string, 0, len(o.dict))
		for k := range o.dict {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("<<")
		for _, k := range keys {
			b.WriteString("/" + k + " ")
			o.dict[k].canonical(b)
			b.WriteString(" ")
		}
		b.WriteString(">>")
	}
}

func (o object) String() string {
	var b strings.Builder
	o.canonical(&b)
	return b.String()
}
