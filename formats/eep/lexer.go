package eep

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
)

// lexer is an io.Reader between the package bytes and encoding/xml. It watches markup at
// the byte level to (1) send the exact bytes of the spans 被签名对象 and 电子签名块 to their
// hashes and (2) divert the base64 text of every 编码数据 into a streaming decoder, so the
// XML decoder sees an empty element and never buffers a document.
type lexer struct {
	src io.Reader
	off int64

	state    int
	tag      []byte // bytes of the markup construct being read, from its '<'
	tagStart int64
	special  []byte // terminator of a comment, PI or CDATA section

	spans  map[string]*span // element name → span (a child of the root of that name)
	active []*span
	depth  int // elements open
	// Every element named in marks, nested ones included, with where it lies.
	marks     map[string]bool
	open      []Occurrence
	occurs    []Occurrence
	inData    bool
	data      *b64sink
	dataStart int64
	newSink   func() *b64sink
	done      []*b64sink // finished data sinks, in document order
	fileHash  hash.Hash
}

type span struct {
	w          io.Writer
	start, end int64
	seen       bool
	err        error
}

// Occurrence is where one element lies in the file: from its start tag's '<' to just after
// its end tag, and how many elements of the same name enclose it.
type Occurrence struct {
	Name       string
	Level      int
	Start, End int64
}

const (
	stText = iota
	stTag
	stSpecial
)

const maxTag = 64 << 10

var errTagTooLong = errors.New("markup longer than 64 KiB")

func (l *lexer) Read(p []byte) (int, error) {
	for {
		n, err := l.src.Read(p)
		if n > 0 {
			if l.fileHash != nil {
				l.fileHash.Write(p[:n])
			}
			m, lerr := l.process(p[:n])
			if lerr != nil {
				return 0, lerr
			}
			if m > 0 || err != nil {
				return m, err
			}
			continue // everything was diverted: read on
		}
		if err == io.EOF && l.inData {
			return 0, io.ErrUnexpectedEOF
		}
		return n, err
	}
}

// process routes p and compacts it in place to the bytes the XML decoder should see.
func (l *lexer) process(p []byte) (int, error) {
	out := 0
	i := 0
	for i < len(p) {
		switch {
		case l.state == stText && l.inData:
			j := bytes.IndexByte(p[i:], '<')
			end := len(p)
			if j >= 0 {
				end = i + j
			}
			l.feedSpans(p[i:end])
			l.data.Write(p[i:end])
			l.off += int64(end - i)
			i = end
			if j >= 0 {
				l.finishData()
			}
		case l.state == stText:
			j := bytes.IndexByte(p[i:], '<')
			end := len(p)
			if j >= 0 {
				end = i + j
			}
			l.feedSpans(p[i:end])
			out += copy(p[out:], p[i:end])
			l.off += int64(end - i)
			i = end
			if j >= 0 {
				l.state = stTag
				l.tag = l.tag[:0]
				l.tagStart = l.off
			}
		case l.state == stTag:
			c := p[i]
			l.tag = append(l.tag, c)
			p[out] = c
			out++
			i++
			l.off++
			if len(l.tag) > maxTag {
				return 0, errTagTooLong
			}
			switch {
			case bytes.Equal(l.tag, []byte("<!--")):
				l.state, l.special = stSpecial, []byte("-->")
			case bytes.Equal(l.tag, []byte("<![CDATA[")):
				l.state, l.special = stSpecial, []byte("]]>")
			case bytes.Equal(l.tag, []byte("<?")):
				l.state, l.special = stSpecial, []byte("?>")
			case c == '>':
				l.endTag()
				l.state = stText
			}
		case l.state == stSpecial:
			c := p[i]
			l.tag = append(l.tag, c)
			p[out] = c
			out++
			i++
			l.off++
			if bytes.HasSuffix(l.tag, l.special) {
				l.feedSpans(l.tag)
				l.state = stText
			} else if len(l.tag) > maxTag {
				// Long comments and CDATA: flush what is certainly not the terminator.
				keep := len(l.special) - 1
				l.feedSpans(l.tag[:len(l.tag)-keep])
				l.tag = append(l.tag[:0], l.tag[len(l.tag)-keep:]...)
			}
		}
	}
	return out, nil
}

// endTag handles a complete tag in l.tag: it opens or closes spans and data diversion.
func (l *lexer) endTag() {
	name, closing := tagName(l.tag)
	selfClosing := bytes.HasSuffix(l.tag, []byte("/>"))
	if l.marks[name] && !selfClosing {
		if !closing {
			level := 0
			for _, o := range l.open {
				if o.Name == name {
					level++
				}
			}
			l.open = append(l.open, Occurrence{Name: name, Level: level, Start: l.tagStart})
		} else if n := len(l.open); n > 0 && l.open[n-1].Name == name {
			o := l.open[n-1]
			o.End = l.off
			l.open = l.open[:n-1]
			l.occurs = append(l.occurs, o)
		}
	}
	// Spans are children of the root (depth 1 when their start tag is read): a nested
	// element of the same name (an amended package's previous layers) is not the span.
	markup := !bytes.HasPrefix(l.tag, []byte("<!"))
	if closing && markup {
		l.depth--
	}
	s, spanned := l.spans[name]
	if spanned && !closing && !s.seen && l.depth == 1 {
		s.seen = true
		s.start = l.tagStart
		l.active = append(l.active, s)
	}
	l.feedSpans(l.tag)
	if spanned && closing && s.seen && s.end == 0 && l.depth == 1 {
		s.end = l.off
		for k, a := range l.active {
			if a == s {
				l.active = append(l.active[:k], l.active[k+1:]...)
				break
			}
		}
	}
	if !closing && !selfClosing && markup {
		l.depth++
	}
	if name == "编码数据" && !closing && !bytes.HasSuffix(l.tag, []byte("/>")) {
		l.inData = true
		l.data = l.newSink()
		l.dataStart = l.off
	}
}

func (l *lexer) finishData() {
	l.data.close()
	l.data.offset = l.dataStart
	l.data.length = l.off - l.dataStart
	l.done = append(l.done, l.data)
	l.data = nil
	l.inData = false
}

func (l *lexer) feedSpans(b []byte) {
	for _, s := range l.active {
		if s.err == nil {
			_, s.err = s.w.Write(b)
		}
	}
}

// tagName returns the local name of a start or end tag.
func tagName(tag []byte) (string, bool) {
	t := bytes.TrimPrefix(tag, []byte("<"))
	closing := bytes.HasPrefix(t, []byte("/"))
	t = bytes.TrimPrefix(t, []byte("/"))
	end := bytes.IndexAny(t, " \t\r\n/>")
	if end >= 0 {
		t = t[:end]
	}
	if i := bytes.IndexByte(t, ':'); i >= 0 {
		t = t[i+1:]
	}
	return string(t), closing
}

// b64sink decodes base64 text (with any line breaks) as it arrives, hashing and counting
// the decoded bytes.
type b64sink struct {
	h              hash.Hash
	n              int64
	buf            []byte
	out            []byte
	err            error
	offset, length int64
}

func newB64Sink(h hash.Hash) *b64sink { return &b64sink{h: h, buf: make([]byte, 0, 64<<10)} }

func (s *b64sink) Write(p []byte) {
	for len(p) > 0 {
		// Lines end in LF; copy each line in bulk unless it holds other white space.
		line := p
		if j := bytes.IndexByte(p, '\n'); j >= 0 {
			line, p = p[:j], p[j+1:]
		} else {
			p = nil
		}
		if bytes.ContainsAny(line, " \t\r") {
			line = bytes.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\r' {
					return -1
				}
				return r
			}, line)
		}
		for len(line) > 0 {
			n := min(cap(s.buf)-len(s.buf), len(line))
			s.buf = append(s.buf, line[:n]...)
			line = line[n:]
			if len(s.buf) == cap(s.buf) {
				s.flush(false)
			}
		}
	}
}

func (s *b64sink) flush(final bool) {
	if s.err != nil {
		s.buf = s.buf[:0]
		return
	}
	n := len(s.buf)
	if !final {
		n -= n % 4
	}
	if n == 0 {
		return
	}
	if cap(s.out) < base64.StdEncoding.DecodedLen(n) {
		s.out = make([]byte, base64.StdEncoding.DecodedLen(n))
	}
	m, err := base64.StdEncoding.Decode(s.out[:cap(s.out)], s.buf[:n])
	if err != nil {
		s.err = fmt.Errorf("invalid base64 near decoded byte %d: %v", s.n, err)
		return
	}
	if s.h != nil {
		s.h.Write(s.out[:m])
	}
	s.n += int64(m)
	s.buf = append(s.buf[:0], s.buf[n:]...)
}

func (s *b64sink) close() {
	s.flush(true)
	if len(s.buf) > 0 && s.err == nil {
		s.err = errors.New("base64 text ends mid-quantum")
	}
}
